package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/testdb"
)

// The lost-answer tests use the default database deadline: long enough that
// a lock can be released well before it fires.
const lostDBTimeout = 3 * time.Second

// TestLostAnswer: a refresh waits behind a lock on its session while the
// client gives up. Whatever became of the server's write, the client's retry
// of the same token succeeds and the chain continues; the session is never
// revoked as reused.
func TestLostAnswer(t *testing.T) {
	dbURL := testdb.PostgresURL(t)
	l := start(t, map[string]string{
		"LANYARD_DATABASE_URL":      dbURL,
		"LANYARD_SECRET":            strings.Repeat("lost-answer-", 4),
		"LANYARD_ISSUER":            "http://lanyard.test",
		"LANYARD_DB_TIMEOUT":        lostDBTimeout.String(),
		"LANYARD_ARGON2_MEMORY_KIB": "8192", // sign-ups are not under test
		"LANYARD_ARGON2_TIME":       "1",
	})
	db := testdb.Connect(t, dbURL)
	users := 0
	signUp := func(t *testing.T) (refresh, sid string) {
		t.Helper()
		users++
		status, body := l.post(t, "/v1/auth/signup", map[string]any{"email": fmt.Sprintf("lost%d@example.com", users), "password": "correct horse battery staple"})
		require.Equal(t, http.StatusCreated, status, body)
		refresh = body["refresh_token"].(string)
		sid, gen := tokenParts(t, refresh)
		require.Zero(t, gen)
		return refresh, sid
	}
	// retry presents the token again and continues the chain one more step:
	// both must succeed, and the retry must return generation want.
	retryAndContinue := func(t *testing.T, token, sid string, want int64) {
		t.Helper()
		status, body := l.post(t, "/v1/auth/refresh", map[string]any{"refresh_token": token})
		require.Equal(t, http.StatusOK, status, "the retry of the same token: %v", body)
		next := body["refresh_token"].(string)
		_, gen := tokenParts(t, next)
		assert.Equal(t, want, gen, "the retry's successor")
		status, body = l.post(t, "/v1/auth/refresh", map[string]any{"refresh_token": next})
		require.Equal(t, http.StatusOK, status, "the chain continues: %v", body)
		_, gen = tokenParts(t, body["refresh_token"].(string))
		assert.Equal(t, want+1, gen)
		assert.Equal(t, want+1, sessionGeneration(t, db, sid))
		assert.False(t, sessionRevoked(t, db, sid), "the session is not revoked")
	}

	// hangUpWhileLocked locks the session's row, sends a refresh of token
	// that waits on it, hangs up, and checks the refresh still waits; the
	// returned func releases the lock.
	hangUpWhileLocked := func(t *testing.T, token, sid string) (release func()) {
		t.Helper()
		release = lockSessionRow(t, dbURL, sid)
		ctx, cancel := context.WithCancel(context.Background())
		sent := goRefresh(ctx, http.DefaultClient, l.url, token)
		awaitRefreshWaiters(t, db, 1)
		cancel()
		require.ErrorIs(t, <-sent, context.Canceled)
		// A hang-up never aborts the statement: it keeps waiting for the
		// lock. (A window to observe that it does not vanish, not a wait for
		// something to happen; the deadline is far off.)
		assertStillWaiting(t, db, 500*time.Millisecond)
		return release
	}

	// The server's write commits after the client hung up; the retry is a
	// duplicate of a rotated token, inside the grace window, and gets the
	// very successor whose answer was lost.
	t.Run("client gone, lock released before the deadline", func(t *testing.T) {
		g0, sid := signUp(t)
		logs := l.logMark()
		release := hangUpWhileLocked(t, g0, sid)
		release()
		awaitGeneration(t, db, sid, 1)
		rec := awaitLog(t, &l.logBook, logs, func(rec map[string]any) bool {
			return rec["msg"] == "request cancelled by client" && rec["route"] == "/v1/auth/refresh"
		})
		assert.Equal(t, "INFO", rec["level"], "a hang-up is not a server fault: %v", rec)
		assert.EqualValues(t, http.StatusOK, rec["status"], "the server finished the refresh: %v", rec)
		retryAndContinue(t, g0, sid, 1)
	})

	// The same with a client that times out on its own before the database
	// deadline: the server's write commits, the answer goes nowhere.
	t.Run("client timed out before the deadline", func(t *testing.T) {
		g0, sid := signUp(t)
		release := lockSessionRow(t, dbURL, sid)
		sent := goRefresh(context.Background(), &http.Client{Timeout: lostDBTimeout / 3}, l.url, g0)
		awaitRefreshWaiters(t, db, 1)
		err := <-sent
		var netErr net.Error
		require.True(t, errors.As(err, &netErr) && netErr.Timeout(), "the client timed out: %v", err)
		assertStillWaiting(t, db, 500*time.Millisecond)
		release()
		awaitGeneration(t, db, sid, 1)
		retryAndContinue(t, g0, sid, 1)
	})

	// The client gives up and retries while its first attempt still waits:
	// once the lock goes, one advances the session and the other is its
	// duplicate, so the retry gets the one successor.
	t.Run("retry while the first attempt still waits", func(t *testing.T) {
		g0, sid := signUp(t)
		logs := l.logMark()
		release := hangUpWhileLocked(t, g0, sid)
		type result struct {
			status int
			body   map[string]any
		}
		retried := make(chan result, 1)
		go func() {
			status, body, _ := refreshOnce(context.Background(), http.DefaultClient, l.url, g0)
			retried <- result{status, body}
		}()
		awaitRefreshWaiters(t, db, 2)
		release()
		r := <-retried
		require.Equal(t, http.StatusOK, r.status, "the retry: %v", r.body)
		_, gen := tokenParts(t, r.body["refresh_token"].(string))
		assert.EqualValues(t, 1, gen)
		awaitLog(t, &l.logBook, logs, func(rec map[string]any) bool {
			return rec["msg"] == "request cancelled by client" && rec["route"] == "/v1/auth/refresh" && rec["status"] == float64(http.StatusOK)
		})
		assert.EqualValues(t, 1, sessionGeneration(t, db, sid), "one advance between the two attempts")
		status, body := l.post(t, "/v1/auth/refresh", map[string]any{"refresh_token": r.body["refresh_token"]})
		require.Equal(t, http.StatusOK, status, "the chain continues: %v", body)
		assert.False(t, sessionRevoked(t, db, sid))
	})

	// The lock outlives the deadline: the server answers 503 in time, its
	// cancelled refresh does not commit, and the retry advances normally.
	t.Run("deadline fires, nothing commits", func(t *testing.T) {
		g0, sid := signUp(t)
		release := lockSessionRow(t, dbURL, sid)
		began := time.Now()
		status, body, err := refreshOnce(context.Background(), &http.Client{Timeout: 2 * lostDBTimeout}, l.url, g0)
		took := time.Since(began)
		require.NoError(t, err)
		assert.Equal(t, http.StatusServiceUnavailable, status, "%v", body)
		assert.Equal(t, "unavailable", body["code"])
		assert.LessOrEqual(t, took, lostDBTimeout+time.Second, "answered within the deadline")
		// The statement is gone from the lock queue before the lock is, so
		// nothing of it can commit afterwards.
		awaitRefreshWaiters(t, db, 0)
		release()
		assert.Zero(t, sessionGeneration(t, db, sid), "the refresh cancelled by its deadline did not commit")
		retryAndContinue(t, g0, sid, 1)
	})

	checkLogs(t, &l.logBook)
}

// tokenParts reads the session id and generation out of a refresh token
// ("lrt_" + base64url(version | session id | generation | ...)).
func tokenParts(t *testing.T, token string) (string, int64) {
	t.Helper()
	body, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(token, "lrt_"))
	require.NoError(t, err)
	require.Greater(t, len(body), 25, "a refresh token")
	id, err := uuid.FromBytes(body[1:17])
	require.NoError(t, err)
	return id.String(), int64(binary.BigEndian.Uint64(body[17:25]))
}

// lockSessionRow locks the session's row in an open transaction of its own
// connection; the returned func commits it.
func lockSessionRow(t *testing.T, dbURL, sid string) (release func()) {
	t.Helper()
	conn := testdb.Connect(t, dbURL)
	tx, err := conn.Begin(context.Background())
	require.NoError(t, err)
	var one int
	require.NoError(t, tx.QueryRow(context.Background(), `SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE`, sid).Scan(&one))
	return func() { require.NoError(t, tx.Commit(context.Background())) }
}

// refreshWaiters counts refresh statements waiting on a lock.
func refreshWaiters(t *testing.T, db *pgx.Conn) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRow(context.Background(), `
		SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock'
		  AND query ILIKE '%UPDATE lanyard.sessions%' AND pid <> pg_backend_pid()`).Scan(&n))
	return n
}

func awaitRefreshWaiters(t *testing.T, db *pgx.Conn, n int) {
	t.Helper()
	require.True(t, pollUntil(10*time.Second, 5*time.Millisecond, func() bool { return refreshWaiters(t, db) == n }),
		"after 10s the number of refreshes waiting on the lock is not %d", n)
}

// assertStillWaiting checks for a while that the waiting refresh stays.
func assertStillWaiting(t *testing.T, db *pgx.Conn, window time.Duration) {
	t.Helper()
	assert.False(t, pollUntil(window, 10*time.Millisecond, func() bool { return refreshWaiters(t, db) == 0 }),
		"the refresh stopped waiting for the lock when its client hung up: the server abandoned its database work")
}

func awaitGeneration(t *testing.T, db *pgx.Conn, sid string, want int64) {
	t.Helper()
	require.True(t, pollUntil(lostDBTimeout+5*time.Second, 5*time.Millisecond, func() bool { return sessionGeneration(t, db, sid) == want }),
		"the session's generation is not %d: the refresh whose client left did not commit", want)
}

func sessionGeneration(t *testing.T, db *pgx.Conn, sid string) int64 {
	t.Helper()
	var gen int64
	require.NoError(t, db.QueryRow(context.Background(), `SELECT generation FROM sessions WHERE id = $1`, sid).Scan(&gen))
	return gen
}

func sessionRevoked(t *testing.T, db *pgx.Conn, sid string) bool {
	t.Helper()
	var revoked bool
	require.NoError(t, db.QueryRow(context.Background(), `SELECT revoked_at IS NOT NULL FROM sessions WHERE id = $1`, sid).Scan(&revoked))
	return revoked
}

// logMark is where the next log record will be.
func (b *logBook) logMark() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.logs)
}

// awaitLog waits for a log record from index from on matching match and
// returns it.
func awaitLog(t *testing.T, b *logBook, from int, match func(map[string]any) bool) map[string]any {
	t.Helper()
	var found map[string]any
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, rec := range b.logs[from:] {
			if match(rec) {
				found = rec
				return true
			}
		}
		return false
	}, lostDBTimeout+5*time.Second, 5*time.Millisecond, "no such log record within %s", lostDBTimeout+5*time.Second)
	return found
}

// goRefresh sends one refresh in the background; the channel gets its error.
func goRefresh(ctx context.Context, client *http.Client, base, token string) <-chan error {
	sent := make(chan error, 1)
	go func() {
		_, _, err := refreshOnce(ctx, client, base, token)
		sent <- err
	}()
	return sent
}

func refreshOnce(ctx context.Context, client *http.Client, base, token string) (int, map[string]any, error) {
	b, _ := json.Marshal(map[string]any{"refresh_token": token})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/auth/refresh", bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	var out map[string]any
	err = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out, err
}

// TestLateStatementNeverCommits: the refresh's statement reaches the
// database only after the request's deadline has passed and Lanyard has
// answered 503, as across a stalled network or a paused database host (the
// bytes wait in a socket; the database runs them when they arrive, with a
// fresh statement_timeout). The refresh was reported as failed, so it must
// not commit: if it did, the session would have moved on with a rotated_at
// from the original request, and a retry of the same token later than the
// grace window after that request would be judged reuse and revoke the
// session (a database frozen for longer than the grace window under load
// does exactly that to most sessions). A proxy holds the statement back, so
// the late arrival is certain, not a matter of timing.
func TestLateStatementNeverCommits(t *testing.T) {
	dbURL := testdb.PostgresURL(t)
	proxy := newHoldingProxy(t, dbURL)
	l := start(t, map[string]string{
		"LANYARD_DATABASE_URL":      proxy.url,
		"LANYARD_SECRET":            strings.Repeat("late-statement-", 3),
		"LANYARD_ISSUER":            "http://lanyard.test",
		"LANYARD_DB_TIMEOUT":        faultDBTimeout.String(),
		"LANYARD_ARGON2_MEMORY_KIB": "8192",
		"LANYARD_ARGON2_TIME":       "1",
	})
	db := testdb.Connect(t, dbURL)
	status, body := l.post(t, "/v1/auth/signup", map[string]any{"email": "late@example.com", "password": "correct horse battery staple"})
	require.Equal(t, http.StatusCreated, status, body)
	g0 := body["refresh_token"].(string)
	sid, _ := tokenParts(t, g0)

	// Hold back the first client message that carries this session's
	// secret hash: the refresh's Bind, and everything after it on that
	// connection.
	proxy.arm(secretHashOf(t, g0))
	began := time.Now()
	status, body, err := refreshOnce(context.Background(), &http.Client{Timeout: 10 * time.Second}, l.url, g0)
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, status, "%v", body)
	assert.Equal(t, "unavailable", body["code"])
	assert.LessOrEqual(t, time.Since(began), answerBound)
	var held *heldConn
	select {
	case held = <-proxy.held:
	default:
		t.Fatal("the refresh never sent its statement: nothing was held back")
	}
	select {
	case <-held.clientQuit: // Lanyard gave the connection up at its deadline
	case <-time.After(10 * time.Second):
		t.Fatal("Lanyard kept using the connection of the timed-out statement")
	}
	held.release()
	select {
	case <-held.serverDone: // the backend ran what it got, then saw the end
	case <-time.After(10 * time.Second):
		t.Fatal("the database did not finish the late statement within 10s")
	}
	assert.Zero(t, sessionGeneration(t, db, sid),
		"the refresh answered 503 committed when its statement reached the database late")

	// The chain continues either way.
	status, body = l.post(t, "/v1/auth/refresh", map[string]any{"refresh_token": g0})
	require.Equal(t, http.StatusOK, status, "the retry: %v", body)
	status, body = l.post(t, "/v1/auth/refresh", map[string]any{"refresh_token": body["refresh_token"]})
	require.Equal(t, http.StatusOK, status, "the chain continues: %v", body)
	assert.False(t, sessionRevoked(t, db, sid))
	checkLogs(t, &l.logBook)
}

// secretHashOf is what the store keeps of the token's session secret
// (SHA-256 of the 32 bytes after the version, session id and generation).
func secretHashOf(t *testing.T, token string) []byte {
	t.Helper()
	body, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(token, "lrt_"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(body), 57, "a refresh token")
	h := sha256.Sum256(body[25:57])
	return h[:]
}

// holdingProxy forwards PostgreSQL connections and, once armed, holds back
// the client messages of one connection from the first that contains the
// needle, until released.
type holdingProxy struct {
	url  string
	mu   sync.Mutex
	arms [][]byte       // the needle, as sent in binary and in text format
	held chan *heldConn // the connection that met the needle
}

// heldConn is a connection whose client messages are being held back.
type heldConn struct {
	server     net.Conn
	mu         sync.Mutex
	buf        []byte
	quitOnce   sync.Once
	clientQuit chan struct{}   // closed once the client sent Terminate or closed its side
	serverDone <-chan struct{} // closed when the server closed the connection
}

func (hc *heldConn) quit() { hc.quitOnce.Do(func() { close(hc.clientQuit) }) }

func newHoldingProxy(t *testing.T, dbURL string) *holdingProxy {
	t.Helper()
	p := &holdingProxy{held: make(chan *heldConn, 1)}
	// Whatever the test left held, nothing outlives it: the proxy closes
	// every connection at cleanup.
	p.url = testdb.ProxyPostgres(t, dbURL, func(client, server net.Conn, serverClosed <-chan struct{}) {
		p.forward(client, &heldConn{server: server, clientQuit: make(chan struct{}), serverDone: serverClosed})
	})
	return p
}

// arm makes the next client message containing needle (raw, or hex as a
// text-format bytea) and all after it on that connection wait for release.
func (p *holdingProxy) arm(needle []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.arms = [][]byte{needle, []byte(`\x` + hex.EncodeToString(needle))}
}

// trips reports whether msg contains the armed needle, disarming it if so.
func (p *holdingProxy) trips(msg []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range p.arms {
		if bytes.Contains(msg, n) {
			p.arms = nil
			return true
		}
	}
	return false
}

// forward copies client messages to the server until the needle shows up,
// then keeps them in hc until release.
func (p *holdingProxy) forward(client net.Conn, hc *heldConn) {
	holding := false
	defer func() {
		if holding {
			hc.quit()
			<-hc.serverDone // the server side stays open for release
		}
	}()
	startup, err := testdb.ReadStartupMessage(client)
	if err != nil {
		return
	}
	if _, err := hc.server.Write(startup); err != nil {
		return
	}
	for {
		msg, err := testdb.ReadMessage(client)
		if err != nil {
			return
		}
		if !holding && p.trips(msg) {
			holding = true
			p.held <- hc
		}
		if holding {
			hc.mu.Lock()
			hc.buf = append(hc.buf, msg...)
			hc.mu.Unlock()
			if msg[0] == 'X' { // Terminate: the client has given up on the connection
				hc.quit()
			}
			continue
		}
		if _, err := hc.server.Write(msg); err != nil {
			return
		}
	}
}

// release delivers the held messages, as a stalled network or a thawed
// host would, and then the end of the stream: the client has quit.
func (hc *heldConn) release() {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	_, _ = hc.server.Write(hc.buf)
	_ = hc.server.(*net.TCPConn).CloseWrite()
}
