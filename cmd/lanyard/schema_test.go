package main

import (
	"context"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/testdb"
)

// TestSchemaMoveCLI: an operator upgrading a deployment whose tables are in
// public (made before LANYARD_DATABASE_SCHEMA) is stopped with the way out,
// by serve, migrate and the admin commands alike; `lanyard migrate
// --move-from public` moves it, and the account signed up before the move
// logs in afterwards, beside an application's own public.users.
func TestSchemaMoveCLI(t *testing.T) {
	dbURL := testdb.PostgresURL(t)
	old := map[string]string{
		"LANYARD_DATABASE_URL": dbURL, "LANYARD_SECRET": strings.Repeat("m", 40),
		"LANYARD_ISSUER": "http://lanyard.test", "LANYARD_DATA_DIR": t.TempDir(),
		"LANYARD_DATABASE_SCHEMA": "public",
	}
	l := start(t, old)
	const email, password = "mover@example.com", "correct horse battery staple"
	status, body := l.post(t, "/v1/auth/signup", map[string]any{"email": email, "password": password})
	require.Equal(t, http.StatusCreated, status, body)
	l.stop(t)

	vars := maps.Clone(old)
	delete(vars, "LANYARD_DATABASE_SCHEMA") // the new default, lanyard
	for _, args := range [][]string{{"migrate"}, {"keys", "list"}} {
		err, _ := runAdmin(t, args, vars)
		require.Error(t, err, args)
		assert.Contains(t, err.Error(), "set LANYARD_DATABASE_SCHEMA=public to keep them there, or move them once with `lanyard migrate --move-from public`", args)
	}
	// serve refuses the same way, at start (bounded, so a regression fails
	// rather than serving an empty schema until the test times out).
	serveVars := map[string]string{"LANYARD_ADDR": "127.0.0.1:0", "LANYARD_ADMIN_ADDR": "off"}
	maps.Copy(serveVars, vars)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err := run(ctx, []string{"serve"}, env(serveVars), io.Discard, io.Discard)
	cancel()
	require.Error(t, err)
	assert.ErrorContains(t, err, "lanyard migrate --move-from public")

	err, _ = runAdmin(t, []string{"migrate", "--move-from", "pg_catalog"}, vars)
	assert.Error(t, err, "only Lanyard deployments move, and only between plain schemas")

	err, out := runAdmin(t, []string{"migrate", "--move-from", "public"}, vars)
	require.NoError(t, err, out)
	assert.Regexp(t, `moved \d+ tables from public to lanyard: .*users`, out)

	// The application takes public back for its own users table.
	conn := testdb.Connect(t, dbURL)
	_, err = conn.Exec(context.Background(), `CREATE TABLE public.users (id serial PRIMARY KEY, handle text)`)
	require.NoError(t, err)

	vars["LANYARD_DATA_DIR"] = filepath.Join(t.TempDir(), "new")
	l = start(t, vars)
	status, body = l.post(t, "/v1/auth/login", map[string]any{"email": email, "password": password})
	assert.Equal(t, http.StatusOK, status, "the account moved with its password: %v", body)
}
