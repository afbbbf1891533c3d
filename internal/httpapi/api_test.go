package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/password"
	"github.com/lanyard-id/lanyard/internal/store"
	"github.com/lanyard-id/lanyard/internal/testdb"
)

// pooledPostgres is PostgreSQL reached through a PgBouncer in transaction
// mode (as Neon's pooled endpoint is): forEachDialect runs each test there
// too.
const pooledPostgres store.Dialect = "postgres-pgbouncer"

func forEachDialect(t *testing.T, f func(t *testing.T, d store.Dialect)) {
	for _, d := range append(slices.Clone(testdb.Dialects), pooledPostgres) {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			f(t, d)
		})
	}
}

func decodeClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	header, err := base64.RawURLEncoding.DecodeString(parts[0])
	require.NoError(t, err)
	var h map[string]any
	require.NoError(t, json.Unmarshal(header, &h))
	assert.Equal(t, "ES256", h["alg"])
	assert.Equal(t, "at+jwt", h["typ"])
	assert.NotEmpty(t, h["kid"])
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var c map[string]any
	require.NoError(t, json.Unmarshal(payload, &c))
	return c
}

func TestAuthFlow(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		s := newTestServer(t, d)
		name := "Ada Lovelace"
		res := s.post(t, "/v1/auth/signup", map[string]any{"email": "  Ada@Example.COM ", "password": goodPassword, "name": name})
		require.Equal(t, http.StatusCreated, res.status, string(res.body))
		assert.Equal(t, "no-store", res.header.Get("Cache-Control"))
		body := res.json(t)
		assert.Equal(t, "Bearer", body["token_type"])
		assert.EqualValues(t, 900, body["expires_in"])
		assert.EqualValues(t, 168*3600, body["refresh_expires_in"])
		user := body["user"].(map[string]any)
		assert.Equal(t, "ada@example.com", user["email"])
		assert.Equal(t, name, user["name"])
		assert.Equal(t, false, user["profile_complete"])
		assert.Nil(t, user["profile"])
		assert.Contains(t, user, "profile", "profile is present as null")
		tk := res.tokens(t)

		claims := decodeClaims(t, tk.Access)
		assert.Equal(t, issuer, claims["iss"])
		assert.Equal(t, issuer, claims["aud"])
		assert.Equal(t, user["id"], claims["sub"])
		assert.Equal(t, "ada@example.com", claims["email"])
		assert.Equal(t, false, claims["profile_complete"])
		assert.NotContains(t, claims, "profile")
		assert.NotEmpty(t, claims["sid"])
		assert.Equal(t, claims["iat"], claims["nbf"])
		assert.EqualValues(t, claims["iat"].(float64)+900, claims["exp"])
		jti, err := base64.RawURLEncoding.DecodeString(claims["jti"].(string))
		require.NoError(t, err)
		assert.GreaterOrEqual(t, len(jti), 16, "jti carries at least 128 bits")

		// The refresh token carries a 256-bit secret, and neither the token
		// nor the secret is stored: no column of any session row holds them.
		require.True(t, strings.HasPrefix(tk.Refresh, "lrt_"))
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tk.Refresh, "lrt_"))
		require.NoError(t, err)
		require.Len(t, raw, 1+16+8+32+32, "version, session id, generation, secret, tag")
		secret := raw[25:57]
		rows, err := s.sql(t).Raw(`SELECT * FROM sessions`).Rows()
		require.NoError(t, err)
		defer rows.Close()
		columns, err := rows.Columns()
		require.NoError(t, err)
		sessions := 0
		for rows.Next() {
			sessions++
			values := make([]any, len(columns))
			for i := range values {
				values[i] = new([]byte)
			}
			require.NoError(t, rows.Scan(values...))
			for i, v := range values {
				b := *v.(*[]byte)
				assert.False(t, bytes.Contains(b, secret), "column %s holds the session secret", columns[i])
				assert.False(t, bytes.Contains(b, []byte(tk.Refresh)), "column %s holds the refresh token", columns[i])
				assert.False(t, bytes.Contains(b, []byte(base64.RawURLEncoding.EncodeToString(secret))), "column %s holds the encoded secret", columns[i])
			}
		}
		require.NoError(t, rows.Err())
		assert.Equal(t, 1, sessions, "the check saw the session")

		me := s.do(t, http.MethodGet, "/v1/me", nil, "Authorization", "Bearer "+tk.Access)
		require.Equal(t, http.StatusOK, me.status, string(me.body))
		assert.Equal(t, user, me.json(t))
		assert.Equal(t, "no-store", me.header.Get("Cache-Control"), "personal data is not cached")

		// Login is case-insensitive on email and opens a second session.
		login := s.post(t, "/v1/auth/login", map[string]any{"email": "ADA@example.com", "password": goodPassword})
		require.Equal(t, http.StatusOK, login.status, string(login.body))
		assert.Equal(t, "no-store", login.header.Get("Cache-Control"))
		assert.NotEqual(t, claims["sid"], decodeClaims(t, login.tokens(t).Access)["sid"])
		assert.EqualValues(t, 2, s.count(t, "sessions"))

		ref := s.refresh(t, tk.Refresh)
		require.Equal(t, http.StatusOK, ref.status, string(ref.body))
		next := ref.tokens(t)
		assert.NotEqual(t, tk.Refresh, next.Refresh)
		assert.Equal(t, claims["sid"], decodeClaims(t, next.Access)["sid"], "rotation keeps the session")
		assert.Equal(t, user, ref.json(t)["user"])

		out := s.post(t, "/v1/auth/logout", map[string]string{"refresh_token": next.Refresh})
		assert.Equal(t, http.StatusNoContent, out.status)
		assert.Empty(t, out.body)
		again := s.post(t, "/v1/auth/logout", map[string]string{"refresh_token": next.Refresh})
		assert.Equal(t, http.StatusNoContent, again.status, "logout is idempotent")
		after := s.refresh(t, next.Refresh)
		assert.Equal(t, http.StatusUnauthorized, after.status)
		assert.Equal(t, "invalid_refresh_token", after.json(t)["code"])

		// Garbage logs out "successfully" too, revealing nothing.
		assert.Equal(t, http.StatusNoContent, s.post(t, "/v1/auth/logout", map[string]string{"refresh_token": "nonsense"}).status)
	})
}

func TestRefreshReuseAndGrace(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		s := newTestServer(t, d)
		first := s.signUp(t, "grace@example.com")

		a := s.refresh(t, first.Refresh)
		require.Equal(t, http.StatusOK, a.status)
		s.clock.Advance(9 * time.Second)
		b := s.refresh(t, first.Refresh) // a retry, or a second tab, inside grace
		require.Equal(t, http.StatusOK, b.status, string(b.body))
		assert.Equal(t, a.tokens(t).Refresh, b.tokens(t).Refresh, "the parent gets the same successor: no fork")

		s.clock.Advance(2 * time.Second) // grace is over
		reuse := s.refresh(t, first.Refresh)
		assert.Equal(t, http.StatusUnauthorized, reuse.status)
		assert.Equal(t, "refresh_token_reused", reuse.json(t)["code"])
		live := s.refresh(t, a.tokens(t).Refresh)
		assert.Equal(t, http.StatusUnauthorized, live.status, "reuse revokes the whole session")
		assert.Equal(t, "refresh_token_reused", live.json(t)["code"])

		// Two generations old is reuse even inside grace.
		g0 := s.signUp(t, "generations@example.com")
		g1 := s.refresh(t, g0.Refresh).tokens(t)
		g2 := s.refresh(t, g1.Refresh).tokens(t)
		res := s.refresh(t, g0.Refresh)
		assert.Equal(t, "refresh_token_reused", res.json(t)["code"])
		assert.Equal(t, http.StatusUnauthorized, s.refresh(t, g2.Refresh).status)

		// Lifetimes: idle past 7 days is session_expired.
		idle := s.signUp(t, "idle@example.com")
		s.clock.Advance(168 * time.Hour)
		res = s.refresh(t, idle.Refresh)
		assert.Equal(t, http.StatusUnauthorized, res.status)
		assert.Equal(t, "session_expired", res.json(t)["code"])
	})
}

func TestRefreshRejectsForgeries(t *testing.T) {
	s := newTestServer(t, store.SQLite)
	tk := s.signUp(t, "forge@example.com")
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tk.Refresh, "lrt_"))
	require.NoError(t, err)
	bump := slices.Clone(raw)
	bump[24]++ // advance the generation without the server key
	flip := slices.Clone(raw)
	flip[len(flip)-1] ^= 1
	for name, token := range map[string]string{
		"generation bumped": "lrt_" + base64.RawURLEncoding.EncodeToString(bump),
		"tag flipped":       "lrt_" + base64.RawURLEncoding.EncodeToString(flip),
		"no prefix":         strings.TrimPrefix(tk.Refresh, "lrt_"),
		"truncated":         tk.Refresh[:len(tk.Refresh)-2],
		"sql":               "lrt_' OR '1'='1",
		"garbage":           "x",
	} {
		res := s.refresh(t, token)
		assert.Equal(t, http.StatusUnauthorized, res.status, name)
		assert.Equal(t, "invalid_refresh_token", res.json(t)["code"], name)
	}
	assert.Equal(t, http.StatusOK, s.refresh(t, tk.Refresh).status, "forgeries did not disturb the session")
}

func TestLoginFailuresAreIndistinguishable(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		s := newTestServer(t, d)
		s.signUp(t, "known@example.com")
		wrong := s.post(t, "/v1/auth/login", map[string]any{"email": "known@example.com", "password": "not the right password"})
		unknown := s.post(t, "/v1/auth/login", map[string]any{"email": "unknown@example.com", "password": "not the right password"})
		malformed := s.post(t, "/v1/auth/login", map[string]any{"email": "not-an-email", "password": "not the right password"})
		assert.Equal(t, http.StatusUnauthorized, wrong.status)
		assert.Equal(t, "invalid_credentials", wrong.json(t)["code"])
		assert.Equal(t, wrong.body, unknown.body, "byte-identical")
		assert.Equal(t, wrong.body, malformed.body, "byte-identical")
		assert.NotContains(t, wrong.header, "Www-Authenticate")
	})
}

// countingHasher proves the unknown-email path does the same hash work.
type countingHasher struct {
	identity.Hasher
	mu      sync.Mutex
	verify  int
	dummies int
}

func (c *countingHasher) VerifyDummy(ctx context.Context, pw string) error {
	c.mu.Lock()
	c.dummies++
	c.mu.Unlock()
	return c.Hasher.VerifyDummy(ctx, pw)
}

func (c *countingHasher) Verify(ctx context.Context, pw, phc string) (bool, bool, error) {
	c.mu.Lock()
	c.verify++
	c.mu.Unlock()
	return c.Hasher.Verify(ctx, pw, phc)
}

func TestUnknownEmailCostsAHash(t *testing.T) {
	h := &countingHasher{Hasher: fastHasher(t)}
	s := newTestServer(t, store.SQLite, withHasher(h))
	s.post(t, "/v1/auth/login", map[string]any{"email": "ghost@example.com", "password": "whatever password"})
	assert.Equal(t, 1, h.dummies)
	assert.Equal(t, 0, h.verify)
}

// busyHasher answers like a password.Hasher whose slots are all taken.
type busyHasher struct{ identity.Hasher }

func (busyHasher) Hash(context.Context, string) (string, error) { return "", password.ErrBusy }
func (busyHasher) Verify(context.Context, string, string) (bool, bool, error) {
	return false, false, password.ErrBusy
}
func (busyHasher) VerifyDummy(context.Context, string) error { return password.ErrBusy }

func TestHashCapAnswers503(t *testing.T) {
	s := newTestServer(t, store.SQLite, withHasher(busyHasher{}))
	for _, path := range []string{"/v1/auth/signup", "/v1/auth/login"} {
		res := s.post(t, path, map[string]any{"email": "busy@example.com", "password": goodPassword})
		assert.Equal(t, http.StatusServiceUnavailable, res.status, path)
		assert.Equal(t, "unavailable", res.json(t)["code"])
		assert.Equal(t, "2", res.header.Get("Retry-After"))
	}
	assert.Zero(t, s.count(t, "users"))
}

func TestMe(t *testing.T) {
	s := newTestServer(t, store.Postgres)
	tk := s.signUp(t, "me@example.com")
	other := newTestServer(t, store.SQLite) // another issuer's key
	foreign := other.signUp(t, "me@example.com")
	parts := strings.Split(tk.Access, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"x"}`)) + "." + parts[2]
	for name, header := range map[string]string{
		"missing":        "",
		"wrong scheme":   "Basic " + tk.Access,
		"empty bearer":   "Bearer ",
		"garbage":        "Bearer abc.def.ghi",
		"tampered":       "Bearer " + tampered,
		"foreign issuer": "Bearer " + foreign.Access,
		"refresh token":  "Bearer " + tk.Refresh,
	} {
		res := s.do(t, http.MethodGet, "/v1/me", nil, "Authorization", header)
		assert.Equal(t, http.StatusUnauthorized, res.status, name)
		assert.Equal(t, "unauthorized", res.json(t)["code"], name)
		assert.Equal(t, `Bearer realm="lanyard", error="invalid_token"`, res.header.Get("WWW-Authenticate"), name)
	}
	assert.Equal(t, http.StatusOK, s.do(t, http.MethodGet, "/v1/me", nil, "Authorization", "bearer "+tk.Access).status, "scheme is case-insensitive")

	s.clock.Advance(15*time.Minute + 31*time.Second)
	res := s.do(t, http.MethodGet, "/v1/me", nil, "Authorization", "Bearer "+tk.Access)
	assert.Equal(t, http.StatusUnauthorized, res.status, "expired")
}

func TestWellKnown(t *testing.T) {
	s := newTestServer(t, store.SQLite)
	res := s.do(t, http.MethodGet, "/.well-known/jwks.json", nil, "Origin", "https://anywhere.example")
	require.Equal(t, http.StatusOK, res.status)
	assert.Equal(t, "public, max-age=300", res.header.Get("Cache-Control"))
	assert.Equal(t, "*", res.header.Get("Access-Control-Allow-Origin"))
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(res.body, &set))
	require.Len(t, set.Keys, 1)
	k := set.Keys[0]
	assert.Equal(t, "sig", k["use"])
	assert.Equal(t, "ES256", k["alg"])
	assert.Equal(t, s.ring.Ring().SigningKeyID(), k["kid"])
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
		assert.NotContains(t, k, private)
	}

	etag := res.header.Get("ETag")
	require.Regexp(t, `^"[A-Za-z0-9_-]{22}"$`, etag, "a strong ETag")
	assert.Equal(t, s.ring.Ring().JWKSETag(), etag)
	for _, inm := range []string{etag, `"other", ` + etag, "W/" + etag, "*"} {
		nm := s.do(t, http.MethodGet, "/.well-known/jwks.json", nil, "If-None-Match", inm)
		assert.Equal(t, http.StatusNotModified, nm.status, inm)
		assert.Empty(t, nm.body)
		assert.Equal(t, etag, nm.header.Get("ETag"))
		assert.Equal(t, "public, max-age=300", nm.header.Get("Cache-Control"))
	}
	assert.Equal(t, http.StatusOK, s.do(t, http.MethodGet, "/.well-known/jwks.json", nil, "If-None-Match", `"stale"`).status)

	res = s.do(t, http.MethodGet, "/.well-known/openid-configuration", nil)
	require.Equal(t, http.StatusOK, res.status)
	d := res.json(t)
	assert.Equal(t, issuer, d["issuer"])
	assert.Equal(t, issuer+"/.well-known/jwks.json", d["jwks_uri"])
	assert.Equal(t, []any{"ES256"}, d["id_token_signing_alg_values_supported"])
	assert.Equal(t, []any{"public"}, d["subject_types_supported"])
	// Only what Lanyard serves: no OAuth 2.0 token endpoint, grants or
	// response types (a standard client would send a form-encoded request
	// to the refresh endpoint and get 415).
	assert.Len(t, d, 4, "issuer, jwks_uri, subject_types_supported, id_token_signing_alg_values_supported: %v", d)
	for _, unserved := range []string{"token_endpoint", "grant_types_supported", "response_types_supported", "token_endpoint_auth_methods_supported", "authorization_endpoint"} {
		assert.NotContains(t, d, unserved)
	}
	assert.Equal(t, "*", res.header.Get("Access-Control-Allow-Origin"))
}

func TestHealthReadinessMetrics(t *testing.T) {
	s := newTestServer(t, store.SQLite)
	assert.Equal(t, http.StatusOK, s.do(t, http.MethodGet, "/healthz", nil).status)
	assert.Equal(t, http.StatusOK, s.do(t, http.MethodGet, "/readyz", nil).status)
	s.api.SetReady(false)
	res := s.do(t, http.MethodGet, "/readyz", nil)
	assert.Equal(t, http.StatusServiceUnavailable, res.status)
	assert.Equal(t, "unavailable", res.json(t)["code"])
	assert.Equal(t, "2", res.header.Get("Retry-After"))
	assert.Equal(t, http.StatusOK, s.do(t, http.MethodGet, "/healthz", nil).status, "alive while draining")
	s.api.SetReady(true)

	s.signUp(t, "metrics@example.com")
	s.post(t, "/v1/auth/login", map[string]any{"email": "metrics@example.com", "password": goodPassword})
	s.post(t, "/v1/auth/login", map[string]any{"email": "metrics@example.com", "password": "wrong wrong wrong"})
	s.refresh(t, "garbage")
	s.do(t, http.MethodGet, "/.well-known/jwks.json", nil)
	m := s.metrics(t)
	for _, line := range []string{
		`lanyard_logins_total{result="success"} 1`,
		`lanyard_logins_total{result="invalid_credentials"} 1`,
		`lanyard_refreshes_total{result="invalid_refresh_token"} 1`,
		`lanyard_http_requests_total{method="POST",route="/v1/auth/signup",status="201"} 1`,
		`lanyard_http_requests_total{method="POST",route="/v1/auth/login",status="401"} 1`,
		`lanyard_http_request_duration_seconds_count{method="POST",route="/v1/auth/login"} 2`,
		`lanyard_password_hashes_in_flight 0`,
		`lanyard_http_requests_total{method="GET",route="/.well-known/jwks.json",status="200"} 1`,
	} {
		assert.Contains(t, m, line)
	}
	assert.NotContains(t, m, "metrics@example.com")
}

// TestCORS: each operation's CORS policy comes from the spec. Operations
// marked public (keys, discovery) are readable by any origin, without
// credentials; every other one only by the configured origins, with
// credentials (the refresh cookie of cookie mode).
func TestCORS(t *testing.T) {
	const app = "https://app.example.com"
	s := newTestServer(t, store.SQLite, withCORS(app))
	preflight := func(path, origin, method string) response {
		return s.do(t, http.MethodOptions, path, nil, "Origin", origin, "Access-Control-Request-Method", method, "Access-Control-Request-Headers", "content-type")
	}
	res := preflight("/v1/auth/login", app, "POST")
	assert.Equal(t, http.StatusNoContent, res.status)
	assert.Equal(t, app, res.header.Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "POST", res.header.Get("Access-Control-Allow-Methods"))
	assert.Contains(t, strings.ToLower(res.header.Get("Access-Control-Allow-Headers")), "authorization")
	assert.Contains(t, strings.ToLower(res.header.Get("Access-Control-Allow-Headers")), "content-type")
	assert.Contains(t, strings.ToLower(res.header.Get("Access-Control-Allow-Headers")), "lanyard-token-delivery")
	assert.Contains(t, res.header.Values("Vary"), "Origin")
	assert.Equal(t, "true", res.header.Get("Access-Control-Allow-Credentials"))

	for _, origin := range []string{"https://evil.example.com", "https://app.example.com.evil.com", "http://app.example.com", "null"} {
		res = preflight("/v1/auth/login", origin, "POST")
		assert.Equal(t, http.StatusNoContent, res.status, origin)
		assert.Empty(t, res.header.Get("Access-Control-Allow-Origin"), origin)
		assert.Empty(t, res.header.Get("Access-Control-Allow-Methods"), origin)
		assert.Empty(t, res.header.Get("Access-Control-Allow-Credentials"), origin)
	}
	res = preflight("/v1/auth/login", app, "DELETE")
	assert.Empty(t, res.header.Get("Access-Control-Allow-Methods"), "no such operation: the browser blocks it")
	res = preflight("/v1/me/sessions/"+uuid.NewString(), app, "DELETE")
	assert.Equal(t, "DELETE", res.header.Get("Access-Control-Allow-Methods"), "a path with a parameter")

	// Public operations: any origin, without credentials, preflight included.
	for _, path := range []string{"/.well-known/jwks.json", "/.well-known/openid-configuration"} {
		res = s.do(t, http.MethodGet, path, nil, "Origin", "https://anywhere.example")
		assert.Equal(t, "*", res.header.Get("Access-Control-Allow-Origin"), path)
		assert.Empty(t, res.header.Get("Access-Control-Allow-Credentials"), path)
		res = preflight(path, "https://anywhere.example", "GET")
		assert.Equal(t, "*", res.header.Get("Access-Control-Allow-Origin"), path)
		assert.Equal(t, "GET", res.header.Get("Access-Control-Allow-Methods"), path)
		assert.Empty(t, res.header.Get("Access-Control-Allow-Credentials"), path)
	}
	res = s.do(t, http.MethodGet, "/healthz", nil, "Origin", "https://anywhere.example")
	assert.Empty(t, res.header.Get("Access-Control-Allow-Origin"), "not a public operation")

	// Actual requests, errors included, are readable by the allowed origin.
	res = s.do(t, http.MethodGet, "/healthz", nil, "Origin", app)
	assert.Equal(t, app, res.header.Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "true", res.header.Get("Access-Control-Allow-Credentials"))
	res = s.do(t, http.MethodGet, "/v1/me", nil, "Origin", app)
	assert.Equal(t, http.StatusUnauthorized, res.status)
	assert.Equal(t, app, res.header.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, res.header.Get("Access-Control-Expose-Headers"), "WWW-Authenticate")

	// OPTIONS that is not a preflight is a method the path lacks.
	res = s.do(t, http.MethodOptions, "/v1/auth/login", nil)
	assert.Equal(t, http.StatusMethodNotAllowed, res.status)
	assert.Equal(t, "method_not_allowed", res.json(t)["code"])
}

// TestParallelRefreshPostgres: twenty tabs refresh one token at once. All get
// 200 and the one same successor; the session survives and that successor is
// live; a token two generations old then revokes the session.
func TestParallelRefreshPostgres(t *testing.T) {
	s := newTestServer(t, store.Postgres)
	first := s.signUp(t, "tabs@example.com")
	const n = 20
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		results = make([]response, n)
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = s.refresh(t, first.Refresh)
		}()
	}
	close(start)
	wg.Wait()
	successor := ""
	for i, r := range results {
		require.Equal(t, http.StatusOK, r.status, "refresh %d: %s", i, r.body)
		tk := r.tokens(t)
		if successor == "" {
			successor = tk.Refresh
		}
		assert.Equal(t, successor, tk.Refresh, "refresh %d forked the session", i)
	}
	next := s.refresh(t, successor)
	require.Equal(t, http.StatusOK, next.status, "the successor is live: %s", next.body)

	old := s.refresh(t, first.Refresh) // two generations old now
	assert.Equal(t, http.StatusUnauthorized, old.status)
	assert.Equal(t, "refresh_token_reused", old.json(t)["code"])
	assert.Equal(t, http.StatusUnauthorized, s.refresh(t, next.tokens(t).Refresh).status, "the session is revoked")
}

// TestLoginRehashes: a login under new argon2 parameters upgrades the stored
// hash, and the password keeps working.
func TestLoginRehashes(t *testing.T) {
	s := newTestServer(t, store.SQLite)
	s.signUp(t, "rehash@example.com")
	storedHash := func() string {
		var h string
		require.NoError(t, s.sql(t).Raw(`SELECT password_hash FROM users`).Scan(&h).Error)
		return h
	}
	assert.Contains(t, storedHash(), "m=64,t=1,p=1")

	stronger, err := password.NewHasher(password.Params{MemoryKiB: 128, Time: 2, Threads: 1}, 2, time.Second)
	require.NoError(t, err)
	svc, err := identity.NewService(identity.Config{
		Issuer: issuer, Audience: issuer, AccessTTL: time.Minute, RefreshIdleTTL: time.Hour, RefreshAbsoluteTTL: time.Hour,
		PasswordMinLength: 15, PasswordMaxLength: 1024, Secret: make([]byte, 32),
	}, s.store, stronger, s.ring, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	_, err = svc.LogIn(context.Background(), "rehash@example.com", goodPassword, identity.Client{})
	require.NoError(t, err)
	assert.Contains(t, storedHash(), "m=128,t=2,p=1")
	_, err = svc.LogIn(context.Background(), "rehash@example.com", goodPassword, identity.Client{})
	assert.NoError(t, err, "the upgraded hash verifies")
	_, err = svc.LogIn(context.Background(), "rehash@example.com", "a wrong password!", identity.Client{})
	assert.Equal(t, identity.CodeInvalidCredentials, identity.ErrorCode(err))
	assert.Contains(t, storedHash(), "m=128,t=2,p=1", "a failed login never rewrites the hash")
}

func TestUnknownRoutes(t *testing.T) {
	s := newTestServer(t, store.SQLite)
	res := s.do(t, http.MethodPost, "/v1/auth/nope", []byte(`not json`), "Content-Type", "text/plain")
	assert.Equal(t, http.StatusNotFound, res.status)
	assert.Equal(t, "not_found", res.json(t)["code"])
	res = s.do(t, http.MethodPut, "/v1/auth/login", []byte(`{}`))
	assert.Equal(t, http.StatusMethodNotAllowed, res.status)
	assert.Equal(t, "method_not_allowed", res.json(t)["code"])
	assert.Equal(t, "application/problem+json", res.header.Get("Content-Type"))
}

// TestHostileRequestMetadata: headers and methods a client controls never
// cause a 500 or unbounded metric labels, HEAD works, and paths are exact.
func TestHostileRequestMetadata(t *testing.T) {
	s := newTestServer(t, store.Postgres)
	// net/http's client refuses such a header, so write the request by hand;
	// the server accepts bytes 0x80-0xFF in header values.
	body := `{"email":"ua@example.com","password":"` + goodPassword + `"}`
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /v1/auth/signup HTTP/1.1\r\nHost: x\r\nUser-Agent: Mozilla\xff\xfe/5.0\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	require.NoError(t, err)
	raw, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	rawBody, err := io.ReadAll(raw.Body)
	require.NoError(t, err)
	raw.Body.Close()
	require.Equal(t, http.StatusCreated, raw.StatusCode)
	s.checkResponse(t, httptest.NewRequest(http.MethodPost, "/v1/auth/signup", nil), raw.StatusCode, raw.Header, rawBody)
	var ua string
	require.NoError(t, s.sql(t).Raw(`SELECT user_agent FROM sessions`).Scan(&ua).Error)
	assert.Equal(t, "Mozilla\uFFFD/5.0", ua, "invalid bytes become one replacement character")

	head := s.do(t, http.MethodHead, "/healthz", nil)
	assert.Equal(t, http.StatusOK, head.status)
	assert.Empty(t, head.body)
	assert.Equal(t, http.StatusOK, s.do(t, http.MethodHead, "/.well-known/jwks.json", nil).status)

	for _, path := range []string{"/v1/auth/login/", "/healthz/", "/V1/ME"} {
		res := s.do(t, http.MethodPost, path, []byte(`{}`))
		assert.Equal(t, http.StatusNotFound, res.status, path)
		assert.Equal(t, "application/problem+json", res.header.Get("Content-Type"), path)
	}

	for i := range 3 {
		s.do(t, fmt.Sprintf("BREW%d", i), "/healthz", nil)
	}
	m := s.metrics(t)
	assert.NotContains(t, m, "BREW")
	assert.Contains(t, m, `method="other"`)
}

// TestPasswordLengthCountedAsTyped: length rules count the code points the
// user typed (NFKC can turn one character into eighteen), while login accepts
// any NFKC-equivalent spelling of the password.
func TestPasswordLengthCountedAsTyped(t *testing.T) {
	s := newTestServer(t, store.SQLite, func(o *serverOptions) { o.cfg.PasswordMaxLength = 64 })
	for _, tooShort := range []string{"\ufdfa", strings.Repeat("\ufb03", 5)} { // NFKC expands both past 15
		res := s.post(t, "/v1/auth/signup", map[string]any{"email": "short@example.com", "password": tooShort})
		assert.Equal(t, http.StatusBadRequest, res.status)
	}
	tooLong := s.post(t, "/v1/auth/signup", map[string]any{"email": "long@example.com", "password": strings.Repeat("e\u0301", 40)})
	assert.Equal(t, http.StatusBadRequest, tooLong.status, "80 code points as typed")

	composed := "\u00e9t\u00e9 \u00e0 la plage, caf\u00e9 cr\u00e8me \u00e0 no\u00ebl"
	res := s.post(t, "/v1/auth/signup", map[string]any{"email": "nfd@example.com", "password": composed})
	require.Equal(t, http.StatusCreated, res.status, string(res.body))
	assert.Equal(t, http.StatusOK, s.post(t, "/v1/auth/login", map[string]any{"email": "nfd@example.com", "password": composed}).status)
	decomposed := "e\u0301te\u0301 a\u0300 la plage, cafe\u0301 cre\u0300me a\u0300 noe\u0308l"
	assert.Equal(t, http.StatusOK, s.post(t, "/v1/auth/login", map[string]any{"email": "nfd@example.com", "password": decomposed}).status,
		"the decomposed spelling of the same password logs in")
}
