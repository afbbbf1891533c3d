package store_test

import (
	"context"
	"io/fs"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/store"
	"github.com/lanyard-id/lanyard/internal/store/storetest"
	"github.com/lanyard-id/lanyard/internal/testdb"
)

// occupyPublic gives the database at dbURL an application's own tables in
// public under the names Lanyard uses, each with a row.
func occupyPublic(t *testing.T, dbURL string) {
	t.Helper()
	conn := testdb.Connect(t, dbURL)
	_, err := conn.Exec(context.Background(), `
CREATE TABLE public.users (id serial PRIMARY KEY, username text NOT NULL);
INSERT INTO public.users (username) VALUES ('app-user');
CREATE TABLE public.sessions (sid text PRIMARY KEY);
INSERT INTO public.sessions VALUES ('app-session');
CREATE TABLE public.profiles (nickname text);`)
	require.NoError(t, err)
}

// tablesOf lists the tables in schema.
func tablesOf(t *testing.T, dbURL, schema string) []string {
	t.Helper()
	return namesIn(t, dbURL, `SELECT table_name FROM information_schema.tables WHERE table_schema = $1`, schema)
}

// functionsOf lists the functions in schema, with their argument lists.
func functionsOf(t *testing.T, dbURL, schema string) []string {
	t.Helper()
	return namesIn(t, dbURL,
		`SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' FROM pg_proc p WHERE p.pronamespace = $1::regnamespace`, schema)
}

// namesIn runs query, which selects one text column for the schema $1.
func namesIn(t *testing.T, dbURL, query, schema string) []string {
	t.Helper()
	conn := testdb.Connect(t, dbURL)
	rows, err := conn.Query(context.Background(), query, schema)
	require.NoError(t, err)
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		names = append(names, n)
	}
	require.NoError(t, rows.Err())
	return names
}

// TestBesideAnApplication: on a database whose public schema has an
// application's users, sessions and profiles tables, Lanyard migrates into
// its own schema (the migration table included), passes the whole backend
// suite there, and leaves the application's tables as they were.
func TestBesideAnApplication(t *testing.T) {
	for _, schema := range []string{"", "auth"} { // the default, and a chosen one
		t.Run("schema="+schema, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T) storetest.Store {
				dbURL := testdb.PostgresURL(t)
				occupyPublic(t, dbURL)
				return testdb.OpenWith(t, store.Options{PostgresURL: dbURL, Schema: schema, MaxOpenConns: 40})
			})
			dbURL := testdb.PostgresURL(t)
			occupyPublic(t, dbURL)
			testdb.OpenWith(t, store.Options{PostgresURL: dbURL, Schema: schema})
			want := schema
			if want == "" {
				want = store.DefaultSchema
			}
			assert.ElementsMatch(t, store.Tables, tablesOf(t, dbURL, want), "every table Lanyard made is in its schema, and Tables lists them all")
			assert.ElementsMatch(t, []string{"users", "sessions", "profiles"}, tablesOf(t, dbURL, "public"), "public holds the application's tables only")

			conn := testdb.Connect(t, dbURL)
			var username string
			require.NoError(t, conn.QueryRow(context.Background(), `SELECT username FROM public.users`).Scan(&username))
			assert.Equal(t, "app-user", username, "the application's rows are untouched")
		})
	}
}

// TestSchemaPublic: a deployment from before LANYARD_DATABASE_SCHEMA keeps
// working with the schema set to public.
func TestSchemaPublic(t *testing.T) {
	dbURL := testdb.PostgresURL(t)
	s := testdb.OpenWith(t, store.Options{PostgresURL: dbURL, Schema: "public"})
	u, _ := signUp(t, s, "public@example.com")
	got, err := s.UserByID(context.Background(), u.ID)
	require.NoError(t, err)
	assert.Equal(t, u.Email, got.Email)
	assert.Subset(t, tablesOf(t, dbURL, "public"), store.Tables)
	assert.Empty(t, tablesOf(t, dbURL, store.DefaultSchema))
}

// TestStrandedDeployment: with the default schema, a database whose
// Lanyard tables are in public (made before LANYARD_DATABASE_SCHEMA) is not
// migrated into a fresh, empty schema; the one-time move carries every
// table, row and migration record, after which it migrates and serves.
func TestStrandedDeployment(t *testing.T) {
	ctx := context.Background()
	dbURL := testdb.PostgresURL(t)
	old := testdb.OpenWith(t, store.Options{PostgresURL: dbURL, Schema: "public"})
	u, ns := signUp(t, old, "stranded@example.com")
	require.NoError(t, old.Close())
	// Older builds locked with an advisory lock: no goose_lock table.
	_, err := testdb.Connect(t, dbURL).Exec(ctx, `DROP TABLE public.goose_lock`)
	require.NoError(t, err)

	s, err := store.Open(ctx, store.Options{PostgresURL: dbURL})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	_, err = s.Migrate(ctx)
	require.ErrorIs(t, err, store.ErrStranded)
	assert.Contains(t, err.Error(), "set LANYARD_DATABASE_SCHEMA=public to keep them there, or move them once with `lanyard migrate --move-from public`")
	assert.Empty(t, tablesOf(t, dbURL, store.DefaultSchema), "nothing was created beside the old deployment")

	moved, err := s.MoveSchema(ctx, "public")
	require.NoError(t, err)
	assert.Contains(t, moved, "users")
	assert.Contains(t, moved, "goose_db_version")
	assert.Empty(t, tablesOf(t, dbURL, "public"), "public is empty again")
	assert.Empty(t, functionsOf(t, dbURL, "public"), "the functions moved too")
	assert.ElementsMatch(t, store.Functions, functionsOf(t, dbURL, store.DefaultSchema), "Functions lists every function the migrations make")
	applied, err := s.Migrate(ctx)
	require.NoError(t, err)
	assert.Empty(t, applied, "the migration records moved too: nothing is applied twice")

	got, err := s.UserByID(ctx, u.ID)
	require.NoError(t, err)
	assert.Equal(t, u.Email, got.Email)
	active, err := s.SessionActive(ctx, ns.ID, u.ID, t0, t0.Add(-1))
	require.NoError(t, err)
	assert.True(t, active, "the session moved with its user")

	_, err = s.MoveSchema(ctx, "public")
	assert.Error(t, err, "a second move finds nothing to move")

	// The documented rollback moves it back for an older binary.
	back, err := store.Open(ctx, store.Options{PostgresURL: dbURL, Schema: "public"})
	require.NoError(t, err)
	t.Cleanup(func() { back.Close() })
	_, err = back.MoveSchema(ctx, store.DefaultSchema)
	require.NoError(t, err)
	got, err = back.UserByID(ctx, u.ID)
	require.NoError(t, err)
	assert.Equal(t, u.Email, got.Email)
	assert.Subset(t, []string{"goose_lock"}, tablesOf(t, dbURL, store.DefaultSchema), "at most the lock table stays behind")
}

// TestConcurrentMigrations: replicas that start together on an empty
// database each migrate it (the lease-row lock orders them, no advisory
// lock); every migration is applied exactly once.
func TestConcurrentMigrations(t *testing.T) {
	ctx := context.Background()
	dbURL := testdb.PostgresURL(t)
	const replicas = 4
	applied := make([][]string, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := store.Open(ctx, store.Options{PostgresURL: dbURL})
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			applied[i], errs[i] = s.Migrate(ctx)
		}()
	}
	wg.Wait()
	seen := map[string]int{}
	for i := range replicas {
		require.NoError(t, errs[i])
		for _, m := range applied[i] {
			seen[m]++
		}
	}
	require.NotEmpty(t, seen)
	for m, n := range seen {
		assert.Equal(t, 1, n, "%s applied once", m)
	}
	s := testdb.OpenWith(t, store.Options{PostgresURL: dbURL})
	require.NoError(t, s.CreateUser(ctx, identity.User{ID: uuid.NewString(), Email: "after@example.com", CreatedAt: t0}, testHash))
}

// TestSchemaName: LANYARD_DATABASE_SCHEMA is a plain identifier, never
// SQL.
func TestSchemaName(t *testing.T) {
	for _, ok := range []string{"lanyard", "public", "auth_2", "_x"} {
		assert.NoError(t, store.ValidSchema(ok), ok)
	}
	for _, bad := range []string{"user", "order", "table", "information_schema", "", "Lanyard", "auth; DROP TABLE users", `"q"`, "a.b", "pg_catalog", "1st", "sch ema", string(make([]byte, 64))} {
		assert.Error(t, store.ValidSchema(bad), bad)
	}
	_, err := store.Open(context.Background(), store.Options{PostgresURL: "postgres://postgres@127.0.0.1:5432/postgres", Schema: "x;y"})
	assert.ErrorContains(t, err, "schema")
}

// TestServerTimeouts: directly, the server applies the statement and lock
// timeouts Lanyard asks for at connection start (through a pooler it
// refuses them: TestConformance/postgres-pgbouncer).
func TestServerTimeouts(t *testing.T) {
	s := testdb.Open(t, store.Postgres)
	assert.True(t, s.ServerTimeouts())
	assert.Equal(t, store.DefaultSchema, s.Schema())
	assert.False(t, testdb.Open(t, store.SQLite).ServerTimeouts())
}

// TestReadyMadeSchema: a role that may not create schemas (no CREATE on
// the database), given a schema of its own by an administrator, migrates
// and serves in it.
func TestReadyMadeSchema(t *testing.T) {
	ctx := context.Background()
	dbURL := testdb.PostgresURL(t)
	role := "lanyard_limited_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	admin := testdb.Connect(t, dbURL)
	// No CREATE on the database, and no access to public at all (a
	// hardened database): Lanyard's look for older deployments reads the
	// catalogue, which needs neither.
	_, err := admin.Exec(ctx, `CREATE ROLE `+role+` LOGIN; REVOKE CREATE ON DATABASE `+dbName(t, dbURL)+` FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM PUBLIC; CREATE SCHEMA lanyard AUTHORIZATION `+role)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), `DROP OWNED BY `+role)
		_, _ = admin.Exec(context.Background(), `DROP ROLE `+role)
	})
	var canCreate bool
	require.NoError(t, admin.QueryRow(ctx, `SELECT has_database_privilege($1, current_database(), 'CREATE')`, role).Scan(&canCreate))
	require.False(t, canCreate)

	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	u.User = url.User(role)
	s, err := store.Open(ctx, store.Options{PostgresURL: u.String()})
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Migrate(ctx)
	require.NoError(t, err)
	require.NoError(t, s.CreateUser(ctx, identity.User{ID: uuid.NewString(), Email: "limited@example.com", CreatedAt: t0}, testHash))
}

// dbName is the database a URL names.
func dbName(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	return strings.TrimPrefix(u.Path, "/")
}

// TestAppUsesGooseInPublic: an application that migrates with goose in
// public and has its own users, sessions and signing_keys tables is not
// taken for an older Lanyard deployment: Lanyard migrates into its own
// schema and moves nothing. With LANYARD_DATABASE_SCHEMA=public it refuses
// to read the application's goose versions as its own, and changes nothing.
func TestAppUsesGooseInPublic(t *testing.T) {
	ctx := context.Background()
	dbURL := testdb.PostgresURL(t)
	conn := testdb.Connect(t, dbURL)
	_, err := conn.Exec(ctx, `
CREATE TABLE public.goose_db_version (id serial PRIMARY KEY, version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp DEFAULT now());
INSERT INTO public.goose_db_version (version_id, is_applied) VALUES (0, true), (1, true), (2, true), (3, true);
CREATE TABLE public.users (id serial PRIMARY KEY, handle text);
CREATE TABLE public.sessions (sid text PRIMARY KEY);
CREATE TABLE public.signing_keys (kid text PRIMARY KEY, webhook_secret text);`)
	require.NoError(t, err)
	appTables := tablesOf(t, dbURL, "public")

	s, err := store.Open(ctx, store.Options{PostgresURL: dbURL, Schema: "public"})
	require.NoError(t, err)
	_, err = s.Migrate(ctx)
	require.ErrorIs(t, err, store.ErrForeignGooseTable)
	require.NoError(t, s.Close())
	var columns int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'sessions'`).Scan(&columns))
	assert.Equal(t, 1, columns, "the application's sessions table is untouched")

	s = testdb.OpenWith(t, store.Options{PostgresURL: dbURL})
	require.NoError(t, s.CreateUser(ctx, identity.User{ID: uuid.NewString(), Email: "beside@example.com", CreatedAt: t0}, testHash))
	assert.ElementsMatch(t, appTables, tablesOf(t, dbURL, "public"), "public keeps exactly the application's tables")
	_, err = s.MoveSchema(ctx, "public")
	assert.ErrorContains(t, err, "holds no Lanyard deployment")
	assert.ElementsMatch(t, appTables, tablesOf(t, dbURL, "public"))
}

// TestStrandedOnSearchPath: an older build put its tables wherever the
// database user's search_path pointed (here the database's default path
// names the schema auth); upgrading with the default schema finds them
// there instead of starting empty.
func TestStrandedOnSearchPath(t *testing.T) {
	ctx := context.Background()
	dbURL := testdb.PostgresURL(t)
	old := testdb.OpenWith(t, store.Options{PostgresURL: dbURL, Schema: "auth"})
	require.NoError(t, old.Close())
	conn := testdb.Connect(t, dbURL)
	_, err := conn.Exec(ctx, `ALTER DATABASE `+dbName(t, dbURL)+` SET search_path TO auth, public`)
	require.NoError(t, err)

	s, err := store.Open(ctx, store.Options{PostgresURL: dbURL})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	_, err = s.Migrate(ctx)
	var stranded *store.StrandedError
	require.ErrorAs(t, err, &stranded)
	assert.Equal(t, "auth", stranded.Schema)
	assert.Contains(t, err.Error(), "lanyard migrate --move-from auth")
	assert.Empty(t, tablesOf(t, dbURL, store.DefaultSchema))
}

// TestMigrationsSetTheirSchema: every Up and Down section of every
// embedded PostgreSQL migration starts with the SET LOCAL search_path line,
// however goose's annotation is spelled, and a migration that would run
// outside a transaction (where SET LOCAL does nothing) is refused.
func TestMigrationsSetTheirSchema(t *testing.T) {
	src := store.PostgresMigrations()
	files, err := fs.Glob(src, "*.sql")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	check := func(t *testing.T, fsys fs.FS, name string, sections int) {
		t.Helper()
		b, err := fs.ReadFile(store.InSchema(fsys, "auth"), name)
		require.NoError(t, err)
		lines := strings.Split(string(b), "\n")
		found := 0
		for i, line := range lines {
			if l := strings.ToLower(line); strings.HasPrefix(l, "--") && (strings.Contains(l, "+goose up") || strings.Contains(l, "+goose down")) {
				found++
				require.Less(t, i+1, len(lines))
				assert.Equal(t, "SET LOCAL search_path TO auth;", lines[i+1], "%s line %d", name, i+2)
			}
		}
		assert.Equal(t, sections, found, name)
	}
	for _, name := range files {
		check(t, src, name, 2)
	}
	odd := fstest.MapFS{
		"1_odd.sql":  {Data: []byte("--+goose up\nCREATE TABLE a (x int);\n-- +goose DOWN\nDROP TABLE a;\n")},
		"2_notx.sql": {Data: []byte("-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON a (x);\n")},
	}
	check(t, odd, "1_odd.sql", 2)
	_, err = fs.ReadFile(store.InSchema(odd, "auth"), "2_notx.sql")
	assert.ErrorContains(t, err, "must run in a transaction")
}
