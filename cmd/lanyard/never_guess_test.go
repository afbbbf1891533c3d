package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/lanyard-id/lanyard/internal/testdb"
)

// adminCommands are the commands that work on an existing database (issue
// 13 §3): none of them may create one.
var adminCommands = [][]string{
	{"keys", "list"},
	{"keys", "rotate"},
	{"keys", "rotate", "--now"},
	{"keys", "revoke", "some-kid"},
	{"keys", "reseal"},
	{"users", "list"},
	{"users", "show", "some-id"},
	{"users", "disable", "some-id"},
	{"users", "enable", "some-id"},
	{"users", "end-sessions", "some-id"},
	{"users", "delete", "--yes", "some-id"},
	{"audit"},
}

// runAdmin runs one admin command and returns its error and output.
func runAdmin(t *testing.T, args []string, vars map[string]string) (error, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, env(vars), &out, &errOut)
	return err, out.String() + errOut.String()
}

// entries lists a directory's names ("" for each level of a tree is not
// needed: the data directory is flat).
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	require.NoError(t, err)
	names := make([]string, 0, len(des))
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// TestAdminCommandsNeverGuess: with no LANYARD_DATABASE_URL and no embedded
// database, every admin command refuses with one line naming the data
// directory and the variable to set, and creates nothing: not the data
// directory, not an empty database, not a generated secret.
func TestAdminCommandsNeverGuess(t *testing.T) {
	for _, args := range adminCommands {
		name := strings.Join(args, " ")
		t.Run(name+"/missing data dir", func(t *testing.T) {
			parent := t.TempDir()
			dataDir := filepath.Join(parent, "data")
			err, output := runAdmin(t, args, map[string]string{"LANYARD_DATA_DIR": dataDir})
			require.Error(t, err)
			assert.Equal(t, "no database: LANYARD_DATABASE_URL is unset and LANYARD_DATA_DIR ("+dataDir+
				") holds no embedded database (lanyard.db); set LANYARD_DATABASE_URL, or LANYARD_DATA_DIR to the server's data directory", err.Error())
			assert.Empty(t, output, "nothing printed besides the error")
			assert.NoDirExists(t, dataDir, "no data directory created")
			assert.Empty(t, entries(t, parent))
		})
		t.Run(name+"/empty data dir", func(t *testing.T) {
			dataDir := t.TempDir()
			err, _ := runAdmin(t, args, map[string]string{"LANYARD_DATA_DIR": dataDir})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "no database: LANYARD_DATABASE_URL is unset")
			assert.NotContains(t, err.Error(), "\n")
			assert.Empty(t, entries(t, dataDir), "no database, secret or lock file created")
		})
	}
}

// TestAdminCommandsDefaultDataDir: the case the issue met, with no
// LANYARD_* variable at all: ./lanyard-data is not created in the working
// directory.
func TestAdminCommandsDefaultDataDir(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	err, _ := runAdmin(t, []string{"keys", "list"}, map[string]string{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "LANYARD_DATA_DIR (./lanyard-data) holds no embedded database")
	assert.NoDirExists(t, filepath.Join(dir, "lanyard-data"))
	assert.Empty(t, entries(t, dir))
}

// TestAdminCommandsUnmigratedEmbedded: an embedded database that exists but
// was never migrated (an empty file, or SQLite with no tables) is refused
// with the command that migrates it, never "no such table"; no secret is
// generated beside it. After lanyard migrate the same command works.
func TestAdminCommandsUnmigratedEmbedded(t *testing.T) {
	for _, args := range adminCommands {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			dataDir := t.TempDir()
			db := filepath.Join(dataDir, "lanyard.db")
			require.NoError(t, os.WriteFile(db, nil, 0o600))
			err, output := runAdmin(t, args, map[string]string{"LANYARD_DATA_DIR": dataDir})
			require.Error(t, err)
			assert.Equal(t, "the embedded database "+db+" has no Lanyard tables yet: run lanyard migrate (or start the server, which migrates) first", err.Error())
			assert.NotContains(t, err.Error()+output, "no such table")
			assert.NoFileExists(t, filepath.Join(dataDir, "secret"), "no secret generated")
			assert.NoFileExists(t, filepath.Join(dataDir, "lanyard.lock"))
			for _, name := range entries(t, dataDir) {
				assert.True(t, strings.HasPrefix(name, "lanyard.db"), "unexpected file %s", name)
			}
		})
	}

	t.Run("then migrated", func(t *testing.T) {
		vars := map[string]string{"LANYARD_DATA_DIR": t.TempDir()}
		require.NoError(t, os.WriteFile(filepath.Join(vars["LANYARD_DATA_DIR"], "lanyard.db"), nil, 0o600))
		err, _ := runAdmin(t, []string{"keys", "list"}, vars)
		require.ErrorContains(t, err, "run lanyard migrate")
		require.NoError(t, run(context.Background(), []string{"migrate"}, env(vars), io.Discard, io.Discard))
		err, output := runAdmin(t, []string{"keys", "list"}, vars)
		require.NoError(t, err)
		assert.Contains(t, output, "KID")
	})
}

// TestAdminCommandsOlderSchema: a database whose signing_keys table predates
// this binary's columns is told to migrate, not shown "no such column".
func TestAdminCommandsOlderSchema(t *testing.T) {
	dataDir := t.TempDir()
	db, err := gorm.Open(sqlite.Open("file:"+filepath.Join(dataDir, "lanyard.db")), &gorm.Config{})
	require.NoError(t, err)
	require.NoError(t, db.Exec(`CREATE TABLE signing_keys (kid TEXT PRIMARY KEY)`).Error)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	require.NoError(t, sqlDB.Close())

	err, output := runAdmin(t, []string{"keys", "list"}, map[string]string{"LANYARD_DATA_DIR": dataDir})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "was migrated by an older lanyard: run lanyard migrate first")
	assert.NotContains(t, err.Error()+output, "no such column")
}

// TestAdminCommandsUnmigratedPostgres: the same on PostgreSQL, for a
// database with no tables and one with an older signing_keys table.
func TestAdminCommandsUnmigratedPostgres(t *testing.T) {
	url := testdb.PostgresURL(t)
	vars := map[string]string{
		"LANYARD_DATABASE_URL": url, "LANYARD_SECRET": strings.Repeat("k", 32),
		"LANYARD_DATA_DIR": filepath.Join(t.TempDir(), "unused"),
	}
	for _, args := range adminCommands {
		err, output := runAdmin(t, args, vars)
		require.Error(t, err, args)
		assert.Equal(t, "the database at LANYARD_DATABASE_URL has no Lanyard tables in schema lanyard (LANYARD_DATABASE_SCHEMA) yet: run lanyard migrate (or start the server, which migrates) first", err.Error())
		assert.NotContains(t, err.Error()+output, "does not exist")
	}
	assert.NoDirExists(t, vars["LANYARD_DATA_DIR"], "a PostgreSQL deployment never touches the data directory")

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `CREATE SCHEMA lanyard; CREATE TABLE lanyard.signing_keys (kid text PRIMARY KEY)`)
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))
	err, _ = runAdmin(t, []string{"keys", "list"}, vars)
	assert.EqualError(t, err, "the database at LANYARD_DATABASE_URL was migrated by an older lanyard: run lanyard migrate first")
}
