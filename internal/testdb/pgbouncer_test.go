package testdb

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// withParam returns dbURL with one more query parameter.
func withParam(t *testing.T, dbURL, key, value string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// connectAs opens a connection to exactly dbURL and closes it at cleanup.
// Not Connect: that adds search_path to the startup message, which a
// pooler refuses.
func connectAs(t *testing.T, dbURL string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err, "connect through PgBouncer")
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestPgBouncer: the returned URL reaches the same database through the
// pooler, keeps the user and the query parameters, and serves queries,
// parameters and transactions in pgx's exec mode (no named prepared
// statements), the way Lanyard is configured behind a pooler.
func TestPgBouncer(t *testing.T) {
	upstream := PostgresURL(t)
	through := StartPgBouncer(t, upstream)

	up, err := url.Parse(upstream)
	require.NoError(t, err)
	u, err := url.Parse(through)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", u.Hostname())
	assert.NotEqual(t, up.Port(), u.Port(), "another port than the server's")
	assert.Equal(t, up.Path, u.Path, "the same database")
	assert.Equal(t, up.User.String(), u.User.String(), "the same user")
	assert.Equal(t, up.Query(), u.Query(), "the same parameters")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn := connectAs(t, withParam(t, through, "default_query_exec_mode", "exec"))
	var db string
	require.NoError(t, conn.QueryRow(ctx, `SELECT current_database()`).Scan(&db))
	assert.Equal(t, strings.TrimPrefix(up.Path, "/"), db)

	_, err = conn.Exec(ctx, `CREATE TABLE pooled (id int PRIMARY KEY, name text NOT NULL)`)
	require.NoError(t, err)
	for i := range 5 {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO pooled VALUES ($1, $2)`, i, "row"); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE pooled SET name = $1 WHERE id = $2`, "updated", i)
			return err
		})
		require.NoError(t, err)
	}
	var n int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pooled WHERE name = $1`, "updated").Scan(&n))
	assert.Equal(t, 5, n)

	// A rolled-back transaction leaves nothing behind.
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO pooled VALUES ($1, $2)`, 99, "gone"); err != nil {
			return err
		}
		return errors.New("roll back")
	})
	require.EqualError(t, err, "roll back")
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pooled`).Scan(&n))
	assert.Equal(t, 5, n)
}

// TestPgBouncerTransactionMode proves pool_mode = transaction with one
// server connection: an idle client holds none, so two clients take turns
// on the same backend; a client inside a transaction holds it until the
// transaction ends; and session state (a SET, a named prepared statement)
// set by one client is found by the next, which is why Lanyard qualifies
// table names instead of relying on search_path and runs with
// default_query_exec_mode=exec on a pooler without prepared-statement
// support. In session mode the second client would wait for the first to
// disconnect, and would see none of its state.
func TestPgBouncerTransactionMode(t *testing.T) {
	through := StartPgBouncerWith(t, PostgresURL(t), PgBouncerOptions{PoolSize: 1})
	execURL := withParam(t, through, "default_query_exec_mode", "exec")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	a, b := connectAs(t, execURL), connectAs(t, execURL)
	pid := func(c *pgx.Conn) int {
		t.Helper()
		var p int
		require.NoError(t, c.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&p))
		return p
	}
	pidA := pid(a)
	assert.Equal(t, pidA, pid(b), "b runs on the backend a used, while a stays connected")
	assert.Equal(t, pidA, pid(a))

	// A session-level SET by a outlives a's transaction on the backend: b
	// sees it. (work_mem: PgBouncer restores only a few tracked
	// parameters, such as application_name, per client.)
	_, err := a.Exec(ctx, `SET work_mem = '7MB'`)
	require.NoError(t, err)
	var workMem string
	require.NoError(t, b.QueryRow(ctx, `SHOW work_mem`).Scan(&workMem))
	assert.Equal(t, "7MB", workMem, "a's SET leaked to b: both ran on one server connection")
	_, err = b.Exec(ctx, `RESET work_mem`)
	require.NoError(t, err)

	// Inside a transaction, a holds the backend: a third client waits.
	tx, err := a.Begin(ctx)
	require.NoError(t, err)
	var inTx int
	require.NoError(t, tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&inTx))
	assert.Equal(t, pidA, inTx)
	c := connectAs(t, execURL)
	waitCtx, waitCancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = c.Exec(waitCtx, `SELECT 1`)
	waitCancel()
	assert.True(t, pgconn.Timeout(err), "no server connection is free while a's transaction is open, so the query waits out its deadline: %v", err)
	// Gone before a commits, c's queued query cannot take the backend. pgx
	// closes a connection whose query hit the deadline in the background,
	// reading until the peer hangs up (15 s at most); close the socket now.
	c.PgConn().Conn().Close()
	<-c.PgConn().CleanupDone()
	require.NoError(t, tx.Commit(ctx))
	_, err = b.Exec(ctx, `SELECT 1`)
	assert.NoError(t, err, "free again once a committed")

	// pgx's default mode prepares a named statement per query (stmtcache_
	// plus a hash of the SQL): the second client prepares the same name on
	// the same backend and is refused, as on PgBouncer 1.18 in transaction
	// mode with any pool size once two clients share a backend.
	cached := withParam(t, through, "default_query_exec_mode", "cache_statement")
	p, q := connectAs(t, cached), connectAs(t, cached)
	var one int
	require.NoError(t, p.QueryRow(ctx, `SELECT $1::int`, 1).Scan(&one))
	err = q.QueryRow(ctx, `SELECT $1::int`, 1).Scan(&one)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr, "the named statement of p is on the shared backend")
	assert.Equal(t, "42P05", pgErr.Code, "duplicate_prepared_statement: %v", err)
}

// TestPgBouncerRefusesStartupParameters: a session parameter in the
// startup message (pgx sends unknown URL parameters there) is refused with
// "unsupported startup parameter", the error Lanyard's store recognizes to
// connect again without statement_timeout and lock_timeout.
func TestPgBouncerRefusesStartupParameters(t *testing.T) {
	through := StartPgBouncer(t, PostgresURL(t))
	for _, param := range []string{"statement_timeout", "lock_timeout"} {
		t.Run(param, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := pgx.Connect(ctx, withParam(t, through, param, "3000"))
			if err == nil {
				conn.Close(ctx)
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), "unsupported startup parameter")
			assert.Contains(t, err.Error(), param)
		})
	}
	// The same server takes it directly: the refusal is the pooler's.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	direct := connectAs(t, withParam(t, PostgresURL(t), "statement_timeout", "3000"))
	var timeout string
	require.NoError(t, direct.QueryRow(ctx, `SHOW statement_timeout`).Scan(&timeout))
	assert.Equal(t, "3s", timeout)
}

// TestPgBouncerServerPassword: against a server that asks for a SCRAM
// password (as CI's stock Debian cluster does, LANYARD_TEST_POSTGRES_URL
// carrying the password), PgBouncer logs in with the password of the
// upstream URL, quoted however it is spelled.
func TestPgBouncerServerPassword(t *testing.T) {
	c := StartCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const password = `it's a "pass" word`
	admin := connectAs(t, c.URL())
	_, err := admin.Exec(ctx, `SET password_encryption = 'scram-sha-256'; ALTER USER postgres PASSWORD 'it''s a "pass" word'`)
	require.NoError(t, err)
	hba := "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
	require.NoError(t, os.WriteFile(filepath.Join(c.dataDir(), "pg_hba.conf"), []byte(hba), 0o600))
	_, err = admin.Exec(ctx, `SELECT pg_reload_conf()`)
	require.NoError(t, err)
	// The postmaster rereads pg_hba.conf when it handles the signal: poll
	// until a connection without the password is refused.
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for {
		conn, err := pgx.Connect(ctx, c.URL())
		if err != nil {
			require.ErrorContains(t, err, "password")
			break
		}
		conn.Close(ctx)
		select {
		case <-poll.C:
		case <-ctx.Done():
			t.Fatal("pg_hba.conf was not reloaded")
		}
	}

	u, err := url.Parse(c.URL())
	require.NoError(t, err)
	u.User = url.UserPassword("postgres", password)
	through := StartPgBouncer(t, u.String())
	conn := connectAs(t, withParam(t, through, "default_query_exec_mode", "exec"))
	var user string
	require.NoError(t, conn.QueryRow(ctx, `SELECT current_user`).Scan(&user))
	assert.Equal(t, "postgres", user)
}
