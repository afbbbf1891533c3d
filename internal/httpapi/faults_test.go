package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/store"
)

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Clone())
	return nil
}

// requests returns the access-log lines of route (any message), with their attributes.
func (l *logRecorder) requests(route string) []logLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []logLine
	for _, r := range l.records {
		line := logLine{level: r.Level, msg: r.Message, attrs: map[string]any{}}
		r.Attrs(func(a slog.Attr) bool {
			line.attrs[a.Key] = a.Value.Any()
			return true
		})
		if line.attrs["route"] == route {
			out = append(out, line)
		}
	}
	return out
}

func (l *logRecorder) maxLevel() slog.Level {
	l.mu.Lock()
	defer l.mu.Unlock()
	highest := slog.LevelDebug
	for _, r := range l.records {
		highest = max(highest, r.Level)
	}
	return highest
}

type logLine struct {
	level slog.Level
	msg   string
	attrs map[string]any
}

// blockingPinger never answers before its context ends, like a frozen
// database or a pool with every connection taken.
type blockingPinger struct{}

func (blockingPinger) Ping(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestReadinessAnswersWithinOneSecond: a database that does not answer makes
// /readyz 503 unavailable with Retry-After within the 1 s bound, and the
// cause is logged at WARN.
func TestReadinessAnswersWithinOneSecond(t *testing.T) {
	log := &logRecorder{}
	s := newTestServer(t, store.SQLite, withPinger(blockingPinger{}), withLog(log))
	start := time.Now()
	res := s.do(t, http.MethodGet, "/readyz", nil)
	elapsed := time.Since(start)
	assert.Equal(t, http.StatusServiceUnavailable, res.status)
	assert.Equal(t, "unavailable", res.json(t)["code"])
	assert.Equal(t, "2", res.header.Get("Retry-After"))
	assert.Less(t, elapsed, time.Second)
	lines := log.requests("/readyz")
	require.Len(t, lines, 1)
	assert.Equal(t, slog.LevelWarn, lines[0].level)
	assert.Contains(t, lines[0].attrs["error"], context.DeadlineExceeded.Error(), "the cause is logged")
	assert.Equal(t, http.StatusOK, s.do(t, http.MethodGet, "/healthz", nil).status, "alive all the same")
}

// TestReadinessWithPoolExhausted: the embedded database's one connection is
// held by a transaction; readiness's real query cannot get it and /readyz
// says 503 within 1 s, then 200 once the connection is free again.
func TestReadinessWithPoolExhausted(t *testing.T) {
	s := newTestServer(t, store.SQLite)
	require.Equal(t, http.StatusOK, s.do(t, http.MethodGet, "/readyz", nil).status)

	held, release, done := make(chan struct{}), make(chan struct{}), make(chan error)
	go func() {
		done <- s.store.Atomically(context.Background(), func(identity.Tx) error {
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	start := time.Now()
	res := s.do(t, http.MethodGet, "/readyz", nil)
	elapsed := time.Since(start)
	close(release)
	require.NoError(t, <-done)
	assert.Equal(t, http.StatusServiceUnavailable, res.status)
	assert.Equal(t, "unavailable", res.json(t)["code"])
	assert.NotEmpty(t, res.header.Get("Retry-After"))
	assert.Less(t, elapsed, time.Second)

	assert.Equal(t, http.StatusOK, s.do(t, http.MethodGet, "/readyz", nil).status, "ready again")
}

// gateHasher holds every hash until released, announcing each one.
type gateHasher struct {
	identity.Hasher
	entered chan struct{}
	release chan struct{}
}

func (g gateHasher) Hash(ctx context.Context, pw string) (string, error) {
	g.entered <- struct{}{}
	<-g.release
	return g.Hasher.Hash(ctx, pw)
}

// TestClientDisconnect: a client that hangs up mid-request does not stop the
// work (the sign-up commits), and the request is logged at INFO as
// cancelled by the client with the status the server chose, never as an
// error.
func TestClientDisconnect(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		log := &logRecorder{}
		gate := gateHasher{Hasher: fastHasher(t), entered: make(chan struct{}), release: make(chan struct{})}
		gone, served := make(chan struct{}), make(chan struct{})
		watch := func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/v1/auth/signup" {
					h.ServeHTTP(w, r)
					return
				}
				defer close(served)
				stop := context.AfterFunc(r.Context(), func() { close(gone) })
				defer stop()
				h.ServeHTTP(w, r)
			})
		}
		s := newTestServer(t, d, withHasher(gate), withLog(log), withWrap(watch))

		ctx, hangUp := context.WithCancel(t.Context())
		body, _ := json.Marshal(map[string]string{"email": "gone@example.com", "password": goodPassword})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/v1/auth/signup", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		sent := make(chan error)
		go func() {
			_, err := s.Client().Do(req)
			sent <- err
		}()
		<-gate.entered
		hangUp()
		require.ErrorIs(t, <-sent, context.Canceled)
		<-gone // the server saw the client go
		close(gate.release)
		<-served

		assert.EqualValues(t, 1, s.count(t, "users"), "the work finished")
		assert.EqualValues(t, 1, s.count(t, "sessions"))
		lines := log.requests("/v1/auth/signup")
		require.Len(t, lines, 1)
		assert.Equal(t, "request cancelled by client", lines[0].msg)
		assert.Equal(t, slog.LevelInfo, lines[0].level)
		assert.EqualValues(t, http.StatusCreated, lines[0].attrs["status"], "the status the server chose")
		assert.Less(t, log.maxLevel(), slog.LevelWarn, "nothing logged as a fault")

		// The database is healthy for the next request.
		s.login(t, "gone@example.com", goodPassword, "Next/1.0")
	})
}

// TestLifetimeEndsDatabaseWork: once the server's lifetime is over, use
// cases run under a cancelled work context, and whatever fails because of it
// answers 503 unavailable with Retry-After (a retry elsewhere will do),
// never 500; the lifetime's end is not a fault either.
func TestLifetimeEndsDatabaseWork(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		lifetime, end := context.WithCancel(t.Context())
		log := &logRecorder{}
		s := newTestServer(t, d, withLifetime(lifetime), withLog(log))
		tk := s.signUp(t, "lifetime@example.com")
		end()

		for name, res := range map[string]response{
			"refresh": s.refresh(t, tk.Refresh),
			"me":      s.do(t, http.MethodGet, "/v1/me", nil, "Authorization", "Bearer "+tk.Access),
			"login":   s.post(t, "/v1/auth/login", map[string]string{"email": "lifetime@example.com", "password": goodPassword}),
		} {
			assert.Equal(t, http.StatusServiceUnavailable, res.status, name)
			assert.Equal(t, "unavailable", res.json(t)["code"], name)
			assert.Equal(t, "2", res.header.Get("Retry-After"), name)
		}
		assert.Less(t, log.maxLevel(), slog.LevelError, "503s are WARN")
		for _, line := range log.requests("/v1/auth/refresh") {
			assert.Equal(t, slog.LevelWarn, line.level)
			assert.NotEmpty(t, line.attrs["error"], "with the cause")
		}
	})
}
