package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/lanyard-id/lanyard/internal/httpapi"
	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/password"
	"github.com/lanyard-id/lanyard/internal/store"
	"github.com/lanyard-id/lanyard/internal/testdb"
	"github.com/lanyard-id/lanyard/internal/tokentest"
	"github.com/lanyard-id/lanyard/keys"
)

const issuer = "https://id.example.test"

type testServer struct {
	*httptest.Server
	admin *httptest.Server // the admin listener (/metrics)
	api   *httpapi.Server
	store *store.Store
	svc   *identity.Service
	clock *tokentest.Clock
	ring  *identity.KeyRing
	// statements counts Postgres statements on the wire (withStatementCounter).
	statements *testdb.StatementCounter
	// spec checks every response against openapi.yaml.
	spec *specChecker
	t    testing.TB
}

type option func(*serverOptions)

type serverOptions struct {
	cfg      identity.Config
	hasher   identity.Hasher
	cors     []string
	counted  bool // Postgres behind a statement-counting proxy
	db       func(*store.Store) httpapi.Pinger
	lifetime context.Context
	log      slog.Handler
	wrap     func(http.Handler) http.Handler
	// proxies and clientIPHeader are Deps.TrustedProxies and ClientIPHeader.
	proxies        []string
	clientIPHeader string
	adminToken     []byte // Deps.AdminToken
}

// withAdminToken turns the admin API on with token.
func withAdminToken(token string) option {
	return func(o *serverOptions) { o.adminToken = []byte(token) }
}

func withStatementCounter() option { return func(o *serverOptions) { o.counted = true } }

// withConfig changes the use cases' configuration.
func withConfig(change func(*identity.Config)) option {
	return func(o *serverOptions) { change(&o.cfg) }
}

// withProxies trusts proxies to write the client's address into header.
func withProxies(header string, proxies ...string) option {
	return func(o *serverOptions) { o.proxies, o.clientIPHeader = proxies, header }
}

// withRateLimits turns throttling on with limits.
func withRateLimits(limits identity.RateLimits) option {
	return func(o *serverOptions) { o.cfg.RateLimits = limits }
}

func withHasher(h identity.Hasher) option { return func(o *serverOptions) { o.hasher = h } }
func withCORS(origins ...string) option   { return func(o *serverOptions) { o.cors = origins } }

// withPinger replaces the store as readiness's database check.
func withPinger(p httpapi.Pinger) option {
	return func(o *serverOptions) { o.db = func(*store.Store) httpapi.Pinger { return p } }
}

// withLifetime sets Deps.Lifetime (default: the test's context).
func withLifetime(ctx context.Context) option { return func(o *serverOptions) { o.lifetime = ctx } }

// withLog sends the server's log to h (default: discarded).
func withLog(h slog.Handler) option { return func(o *serverOptions) { o.log = h } }

// withWrap puts a handler in front of the server's, to watch requests.
func withWrap(wrap func(http.Handler) http.Handler) option {
	return func(o *serverOptions) { o.wrap = wrap }
}

func fastHasher(t testing.TB) *password.Hasher {
	h, err := password.NewHasher(password.Params{MemoryKiB: 64, Time: 1, Threads: 1}, 4, time.Second)
	require.NoError(t, err)
	return h
}

func newTestServer(t testing.TB, dialect store.Dialect, opts ...option) *testServer {
	t.Helper()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	o := serverOptions{
		cfg: identity.Config{
			Issuer: issuer, Audience: issuer,
			AccessTTL: 15 * time.Minute, RefreshIdleTTL: 168 * time.Hour, RefreshAbsoluteTTL: 720 * time.Hour,
			RefreshReuseGrace: 10 * time.Second, PasswordMinLength: 15, PasswordMaxLength: 1024,
			Secret: secret,
		},
		hasher:   fastHasher(t),
		db:       func(st *store.Store) httpapi.Pinger { return st },
		lifetime: t.Context(),
		log:      slog.DiscardHandler,
		wrap:     func(h http.Handler) http.Handler { return h },
	}
	for _, opt := range opts {
		opt(&o)
	}
	var st *store.Store
	var statements *testdb.StatementCounter
	if o.counted {
		st, statements = testdb.OpenCounted(t)
	} else if dialect == pooledPostgres {
		st = testdb.OpenPooled(t)
	} else {
		st = testdb.Open(t, dialect)
	}
	clk := tokentest.NewClock(identity.Now())
	sealer, err := keys.NewSealer(secret)
	require.NoError(t, err)
	ring, _, err := identity.LoadKeyRing(context.Background(), st, sealer, keys.ES256, clk.Now())
	require.NoError(t, err)
	log := slog.New(o.log)
	svc, err := identity.NewService(o.cfg, st, o.hasher, ring, log)
	require.NoError(t, err)
	svc.Now = clk.Now
	srv, err := httpapi.New(httpapi.Deps{
		Service: svc, Keys: ring, DB: o.db(st), Log: log, Lifetime: o.lifetime,
		Issuer: issuer, CORSOrigins: o.cors,
		TrustedProxies: o.proxies, ClientIPHeader: o.clientIPHeader,
		HashesInFlight: func() int { return 0 }, AdminToken: o.adminToken,
	})
	require.NoError(t, err)
	srv.SetReady(true)
	ts := startServer(t, o.wrap(srv.Handler()))
	admin := startServer(t, srv.AdminHandler())
	s := &testServer{Server: ts, admin: admin, api: srv, store: st, svc: svc, clock: clk, ring: ring, statements: statements, spec: newSpecChecker(t), t: t}
	// Every response the tests receive through the server's client is
	// checked against openapi.yaml.
	ts.Client().Transport = checkedTransport{base: ts.Client().Transport, s: s}
	admin.Client().Transport = checkedTransport{base: admin.Client().Transport, s: s}
	return s
}

// startServer serves h on a loopback port as lanyard serve does, request
// framing watched.
func startServer(t testing.TB, h http.Handler) *httptest.Server {
	ts := httptest.NewUnstartedServer(h)
	ts.Listener = httpapi.GuardFraming(ts.Config, ts.Listener)
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

// metrics is what the admin listener's /metrics shows now.
func (s *testServer) metrics(t testing.TB) string {
	t.Helper()
	res, err := s.admin.Client().Get(s.admin.URL + "/metrics")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return string(b)
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), string(r.body))
	return m
}

func (s *testServer) do(t testing.TB, method, path string, body []byte, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := s.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func (s *testServer) post(t testing.TB, path string, v any) response {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return s.do(t, http.MethodPost, path, b)
}

type tokens struct {
	Access  string `json:"access_token"`
	Refresh string `json:"refresh_token"`
	User    struct {
		ID string `json:"id"`
	} `json:"user"`
}

func (r response) tokens(t testing.TB) tokens {
	t.Helper()
	var tk tokens
	require.NoError(t, json.Unmarshal(r.body, &tk), string(r.body))
	require.NotEmpty(t, tk.Access)
	require.NotEmpty(t, tk.Refresh)
	return tk
}

const goodPassword = "correct horse battery staple"

func (s *testServer) signUp(t testing.TB, email string) tokens {
	t.Helper()
	res := s.post(t, "/v1/auth/signup", map[string]any{"email": email, "password": goodPassword})
	require.Equal(t, http.StatusCreated, res.status, string(res.body))
	return res.tokens(t)
}

func (s *testServer) refresh(t testing.TB, token string) response {
	t.Helper()
	return s.post(t, "/v1/auth/refresh", map[string]string{"refresh_token": token})
}

func (s *testServer) count(t testing.TB, table string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, s.sql(t).Table(table).Count(&n).Error)
	return n
}

// sql is a raw handle on the server's database, to inspect rows.
func (s *testServer) sql(t testing.TB) *gorm.DB { return testdb.SQL(t, s.store) }
