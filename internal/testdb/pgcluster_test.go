package testdb

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCluster drives one throwaway cluster through every fault the fault
// tests use and checks what a client sees each time, and that the data
// survives a stop and a crash.
func TestCluster(t *testing.T) {
	began := time.Now()
	c := StartCluster(t)
	t.Logf("cluster up in %v", time.Since(began).Round(time.Millisecond))

	conn := Connect(t, c.URL())
	_, err := conn.Exec(context.Background(), `CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)`)
	require.NoError(t, err)
	var addr string
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT inet_server_addr()::text`).Scan(&addr))
	assert.Equal(t, "127.0.0.1/32", addr, "listens on loopback TCP")

	// Frozen: the open connection hangs until the client's deadline, and so
	// does a new one (the kernel completes the handshake, nobody answers).
	c.Freeze()
	pm := c.postmaster()
	for _, pid := range append([]int{pm}, descendants(pm)...) {
		state, err := procState(pid)
		require.NoError(t, err)
		assert.Equal(t, byte('T'), state, "process %d is stopped", pid)
	}
	assert.ErrorIs(t, queryWithin(conn, 300*time.Millisecond), context.DeadlineExceeded)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err = pgx.Connect(ctx, c.URL())
	cancel()
	assert.Error(t, err, "a new connection to a frozen server does not complete")
	c.Thaw()
	conn = Connect(t, c.URL()) // the old one was closed by its cancelled query
	require.NoError(t, queryWithin(conn, 10*time.Second))

	// Stopped: the session is terminated and nothing listens; the data stays.
	c.Stop()
	assert.Error(t, queryWithin(conn, 10*time.Second))
	_, err = pgx.Connect(context.Background(), c.URL())
	assert.Error(t, err, "nothing listens")
	c.Start()
	conn = Connect(t, c.URL())
	assert.Equal(t, 42, kept(t, conn))

	// Killed: every process is gone at once; a restart runs crash recovery.
	pm = c.postmaster()
	backends := descendants(pm)
	require.NotEmpty(t, backends)
	c.Kill()
	for _, pid := range append([]int{pm}, backends...) {
		state, err := procState(pid)
		assert.True(t, err != nil || state == 'Z', "process %d is dead (state %c)", pid, state)
	}
	assert.Error(t, queryWithin(conn, 10*time.Second))
	_, err = os.Stat(c.dataDir() + "/postmaster.pid")
	assert.ErrorIs(t, err, os.ErrNotExist, "the stale lock file is gone")
	c.Start()
	conn = Connect(t, c.URL())
	assert.Equal(t, 42, kept(t, conn))
	assert.Contains(t, c.log(), "database system was interrupted", "the restart recovered from the crash")

	// A frozen cluster can be killed too.
	c.Freeze()
	c.Kill()
	c.Start()
	assert.Equal(t, 42, kept(t, Connect(t, c.URL())))
	// Cleanup stops it; a frozen cluster is left for cleanup to thaw.
	c.Freeze()
}

func queryWithin(conn *pgx.Conn, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var one int
	err := conn.QueryRow(ctx, `SELECT 1`).Scan(&one)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ctx.Err()
	}
	return err
}

func kept(t *testing.T, conn *pgx.Conn) int {
	t.Helper()
	var v int
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT v FROM kept`).Scan(&v))
	return v
}
