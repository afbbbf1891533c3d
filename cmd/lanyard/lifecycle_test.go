package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/config"
	"github.com/lanyard-id/lanyard/internal/testdb"
)

// bookWriter feeds a logBook from a slog JSON handler, which writes each
// record in one call.
type bookWriter struct{ *logBook }

func (w bookWriter) Write(p []byte) (int, error) {
	var rec map[string]any
	if json.Unmarshal(p, &rec) == nil {
		w.record(rec)
	}
	return len(p), nil
}

// loopFrames name the background loops as they appear in a goroutine dump.
var loopFrames = []string{"/cmd/lanyard.purgeSessions+", "/cmd/lanyard.purgeAudit+", "/cmd/lanyard.maintainKeys+", "/cmd/lanyard.sendMail+", "/cmd/lanyard.watchImportedHashes+", "/internal/identity.(*DatabaseClock).Run+"}

// runningLoops returns which loops have a goroutine carrying this pprof
// label (goroutines inherit their creator's labels, so it singles out one
// app even if other tests run servers at the same time).
func runningLoops(t *testing.T, label string) []string {
	t.Helper()
	var dump bytes.Buffer
	require.NoError(t, pprof.Lookup("goroutine").WriteTo(&dump, 1))
	var running []string
	// debug=1 prints one block per distinct stack and label set.
	for _, block := range strings.Split(dump.String(), "\n\n") {
		if !strings.Contains(block, `"lifecycle":"`+label+`"`) {
			continue
		}
		for _, frame := range loopFrames {
			if strings.Contains(block, frame) {
				running = append(running, frame)
			}
		}
	}
	return running
}

// TestListenerFailureStopsEverything: when the listener breaks under a
// running server, run returns that error, and by then every background loop
// has returned; the store is still open until close. (Before, the loops ran
// on bare goroutines that outlived run and kept using the closed store.)
func TestListenerFailureStopsEverything(t *testing.T) {
	cfg, err := config.Load(env(map[string]string{
		"LANYARD_DATA_DIR": t.TempDir(), "LANYARD_ADDR": "127.0.0.1:0", "LANYARD_ADMIN_ADDR": "127.0.0.1:0", "LANYARD_CLEANUP_INTERVAL": "20ms",
	}))
	require.NoError(t, err)
	var logs logBook
	ctx := context.Background()
	a, err := newApp(ctx, cfg, slog.New(slog.NewJSONHandler(bookWriter{&logs}, nil)))
	require.NoError(t, err)
	defer a.close()

	done := make(chan error, 1)
	go pprof.Do(ctx, pprof.Labels("lifecycle", t.Name()), func(ctx context.Context) {
		done <- a.run(ctx)
	})
	url := "http://" + a.listener.Addr().String()
	require.Eventually(t, func() bool {
		res, err := http.Get(url + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}, 30*time.Second, 10*time.Millisecond, "the server never became ready")
	require.Eventually(t, func() bool { return len(runningLoops(t, t.Name())) == len(loopFrames) },
		30*time.Second, 10*time.Millisecond, "not every loop started: %v", runningLoops(t, t.Name()))

	require.NoError(t, a.listener.Close()) // the listener fails under Serve
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after its listener failed")
	}
	require.ErrorIs(t, err, net.ErrClosed, "run reports the listener's failure")
	assert.Empty(t, runningLoops(t, t.Name()), "every loop has returned by the time run does")
	assert.NotNil(t, logs.first("listener failed; stopping"))
	assert.Nil(t, logs.first("stopped"), "a failure is not a clean stop")

	require.NoError(t, a.store.Ping(ctx), "run leaves the store to close, which comes after every loop has ended")
	a.close()
	assert.Error(t, a.store.Ping(ctx), "close closed the store")
}

// TestShutdownCancelsInFlightWork: a refresh stuck behind a table lock when
// SIGTERM comes. Once LANYARD_SHUTDOWN_TIMEOUT passes, its database work is
// cancelled, it answers 503, and run returns only after it has: nothing is left
// waiting in the database, so releasing the lock commits nothing, and the
// same refresh token still works on the next start (the lost answer did not
// rotate, let alone revoke, the session).
func TestShutdownCancelsInFlightWork(t *testing.T) {
	dbURL := testdb.PostgresURL(t)
	vars := map[string]string{
		"LANYARD_DATABASE_URL": dbURL, "LANYARD_SECRET": strings.Repeat("w", 40),
		// Only the shutdown can end the stuck statement within this test.
		"LANYARD_REFRESH_REUSE_GRACE": "5m", "LANYARD_DB_TIMEOUT": "60s",
		"LANYARD_SHUTDOWN_TIMEOUT": "1s", "LANYARD_SHUTDOWN_DRAIN": "0s",
	}
	l := start(t, vars)
	status, body := l.post(t, "/v1/auth/signup", map[string]any{"email": "inflight@example.com", "password": "correct horse battery staple"})
	require.Equal(t, http.StatusCreated, status, body)
	refresh := body["refresh_token"].(string)
	sid := replicaClaim(t, body["access_token"].(string), "sid")

	ctx := context.Background()
	locker := testdb.Connect(t, dbURL)
	monitor := testdb.Connect(t, dbURL)
	tx, err := locker.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, `LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE`)
	require.NoError(t, err)
	waiting := func() int {
		return replicaCount(t, monitor, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)
	}

	answered := make(chan int, 1)
	go func() {
		b, _ := json.Marshal(map[string]any{"refresh_token": refresh})
		res, err := http.Post(l.url+"/v1/auth/refresh", "application/json", bytes.NewReader(b))
		if err != nil {
			answered <- 0
			return
		}
		res.Body.Close()
		answered <- res.StatusCode
	}()
	require.True(t, pollUntil(30*time.Second, 10*time.Millisecond, func() bool { return waiting() == 1 }),
		"the refresh never queued behind the lock")

	l.cancel()
	l.cancel = nil
	var runErr error
	select {
	case runErr = <-l.done:
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after the shutdown timeout")
	}
	assert.ErrorContains(t, runErr, "LANYARD_SHUTDOWN_TIMEOUT")
	assert.NotNil(t, l.first("shutdown timeout passed; cancelling the requests still in flight"))
	assert.Zero(t, waiting(), "run returned with the refresh's statement still waiting in the database")
	assert.Equal(t, http.StatusServiceUnavailable, <-answered, "the cancelled refresh answers 503 before its connection closes")

	require.NoError(t, tx.Rollback(ctx))
	assert.Equal(t, 0, replicaCount(t, monitor, `SELECT generation FROM sessions WHERE id = $1`, sid), "nothing committed after the process stopped")

	l = start(t, vars)
	status, body = l.post(t, "/v1/auth/refresh", map[string]any{"refresh_token": refresh})
	assert.Equal(t, http.StatusOK, status, "the same token works after the restart: %v", body)
}

// TestDataDirInUse: one process per embedded data directory. A second serve
// or migrate on it fails at once with one line saying so (the same line a
// second real process prints), and a new one starts once the first stopped.
func TestDataDirInUse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	vars := map[string]string{"LANYARD_DATA_DIR": dir}
	l := start(t, vars)
	inUse := "data directory " + dir + " is in use by another lanyard process"

	for _, cmd := range []string{"serve", "migrate"} {
		second := make(chan error, 1)
		go func() {
			second <- run(context.Background(), []string{cmd}, env(map[string]string{"LANYARD_DATA_DIR": dir, "LANYARD_ADDR": "127.0.0.1:0"}), io.Discard, io.Discard)
		}()
		select {
		case err := <-second:
			assert.EqualError(t, err, inUse, cmd)
		case <-time.After(30 * time.Second):
			t.Fatalf("a second %s on the data directory did not give up", cmd)
		}
	}
	info, err := os.Stat(filepath.Join(dir, "lanyard.lock"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	info, err = os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), info.Mode().Perm())

	// A separate process: it exits 1 with that one line.
	bin := replicaBuild(t)
	cmd := exec.Command(bin, "serve")
	cmd.Env = []string{"LANYARD_DATA_DIR=" + dir, "LANYARD_ADDR=127.0.0.1:0"}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the second process exits with an error: %s", out)
	assert.Equal(t, 1, exit.ExitCode())
	assert.Equal(t, "lanyard: "+inUse+"\n", string(out))

	l.stop(t)
	var migrated bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"migrate"}, env(vars), &migrated, io.Discard), "the directory is free again")
	assert.Equal(t, "database is up to date\n", migrated.String())
	l = start(t, vars)
	status, _ := l.get(t, "/readyz", "")
	assert.Equal(t, http.StatusOK, status)
}

// TestPostgresTakesNoDataDirLock: replicas on Postgres share nothing on disk
// that needs the lock, so two of them may name the same LANYARD_DATA_DIR.
func TestPostgresTakesNoDataDirLock(t *testing.T) {
	vars := map[string]string{
		"LANYARD_DATA_DIR": t.TempDir(), "LANYARD_DATABASE_URL": testdb.PostgresURL(t), "LANYARD_SECRET": strings.Repeat("p", 40),
	}
	start(t, vars)
	start(t, vars)
	require.NoError(t, run(context.Background(), []string{"migrate"}, env(vars), io.Discard, io.Discard))
}
