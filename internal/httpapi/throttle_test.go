package httpapi_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/store"
)

// sessionIP signs up with the given request headers and returns the client
// IP the new session recorded.
func (s *testServer) sessionIP(t *testing.T, email string, header ...string) string {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"email": email, "password": goodPassword})
	res := s.do(t, http.MethodPost, "/v1/auth/signup", b, header...)
	require.Equal(t, http.StatusCreated, res.status, string(res.body))
	list := s.bearer(t, http.MethodGet, "/v1/me/sessions", res.tokens(t).Access, nil)
	require.Equal(t, http.StatusOK, list.status, string(list.body))
	var body struct {
		Sessions []struct {
			IP *string `json:"ip"`
		} `json:"sessions"`
	}
	require.NoError(t, json.Unmarshal(list.body, &body))
	require.Len(t, body.Sessions, 1)
	require.NotNil(t, body.Sessions[0].IP)
	return *body.Sessions[0].IP
}

// TestClientIP: the client IP is the socket's peer unless that peer is a
// trusted proxy; then it is the rightmost untrusted hop of the one
// configured header, and the other header is never read. A client-supplied
// X-Forwarded-For cannot beat the proxy's X-Real-IP, nor the reverse.
func TestClientIP(t *testing.T) {
	const spoofed, real = "6.6.6.6", "203.0.113.9"
	for name, tt := range map[string]struct {
		proxies []string
		header  string
		sent    []string
		want    string
	}{
		"no proxy trusted: headers ignored":   {nil, "", []string{"X-Forwarded-For", real, "X-Real-IP", real}, "127.0.0.1"},
		"trusted proxy, no header":            {[]string{"127.0.0.1"}, "", nil, "127.0.0.1"},
		"X-Forwarded-For appended by proxy":   {[]string{"127.0.0.1"}, "", []string{"X-Forwarded-For", spoofed + ", " + real}, real},
		"X-Forwarded-For: X-Real-IP not read": {[]string{"127.0.0.1"}, "X-Forwarded-For", []string{"X-Forwarded-For", real, "X-Real-IP", spoofed}, real},
		"X-Real-IP: X-Forwarded-For not read": {[]string{"127.0.0.1"}, "X-Real-IP", []string{"X-Forwarded-For", spoofed, "X-Real-IP", real}, real},
		"trusted hops are skipped":            {[]string{"127.0.0.1", "10.0.0.0/8"}, "", []string{"X-Forwarded-For", spoofed + ", " + real + ", 10.1.2.3"}, real},
		"a malformed header means the peer":   {[]string{"127.0.0.1"}, "", []string{"X-Forwarded-For", "not an address"}, "127.0.0.1"},
	} {
		t.Run(name, func(t *testing.T) {
			s := newTestServer(t, store.SQLite, withProxies(tt.header, tt.proxies...))
			assert.Equal(t, tt.want, s.sessionIP(t, "ip@example.com", tt.sent...))
		})
	}
}

// TestRateLimited: past a limit the answer is 429 rate_limited with
// Retry-After (the seconds until the attempt could pass), counted by reason
// in the metrics; current-password checks count with logins.
func TestRateLimited(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		limits := identity.DefaultRateLimits()
		limits.LoginAccountIP = identity.RateLimit{Max: 2, Window: time.Minute}
		limits.SignUpIP = identity.RateLimit{Max: 2, Window: time.Hour}
		s := newTestServer(t, d, withRateLimits(limits))
		user := s.signUp(t, "limited@example.com")
		wrong := map[string]string{"email": "limited@example.com", "password": "not the right password"}
		assert.Equal(t, http.StatusUnauthorized, s.post(t, "/v1/auth/login", wrong).status)
		s.clock.Advance(20 * time.Second)
		change, _ := json.Marshal(map[string]string{"current_password": "not the right password", "new_password": goodPassword + " and more"})
		assert.Equal(t, http.StatusUnauthorized, s.bearer(t, http.MethodPost, "/v1/me/password", user.Access, change).status)

		res := s.post(t, "/v1/auth/login", map[string]string{"email": "limited@example.com", "password": goodPassword})
		assert.Equal(t, http.StatusTooManyRequests, res.status, "the right password too: nothing is checked")
		assert.Equal(t, "40", res.header.Get("Retry-After"))
		assert.Equal(t, "rate_limited", res.json(t)["code"])

		s.signUp(t, "second@example.com")
		res = s.post(t, "/v1/auth/signup", map[string]any{"email": "third@example.com", "password": goodPassword})
		assert.Equal(t, http.StatusTooManyRequests, res.status)
		assert.Equal(t, "3580", res.header.Get("Retry-After"), "the window opened with the first sign-up, 20 s earlier")

		metrics := s.metrics(t)
		assert.Contains(t, metrics, `lanyard_throttled_requests_total{reason="login_account_ip"} 1`)
		assert.Contains(t, metrics, `lanyard_throttled_requests_total{reason="signup_ip"} 1`)

		s.clock.Advance(40 * time.Second)
		assert.Equal(t, http.StatusOK, s.post(t, "/v1/auth/login", map[string]string{"email": "limited@example.com", "password": goodPassword}).status,
			"after Retry-After the attempt passes")
	})
}

// TestAuthEvents: every security event is one "auth event" record naming
// the user by id, the client IP and the outcome; never the email or a secret.
func TestAuthEvents(t *testing.T) {
	log := &logRecorder{}
	s := newTestServer(t, store.SQLite, withLog(log), withProxies("", "127.0.0.1"))
	user := s.signUp(t, "events@example.com")
	from := []string{"X-Forwarded-For", "198.51.100.23"}
	wrong, _ := json.Marshal(map[string]string{"email": "events@example.com", "password": "not the password at all"})
	assert.Equal(t, http.StatusUnauthorized, s.do(t, http.MethodPost, "/v1/auth/login", wrong, from...).status)
	right, _ := json.Marshal(map[string]string{"email": "events@example.com", "password": goodPassword})
	assert.Equal(t, http.StatusOK, s.do(t, http.MethodPost, "/v1/auth/login", right, from...).status)

	assert.Equal(t, http.StatusOK, s.refresh(t, user.Refresh).status)
	s.clock.Advance(time.Minute) // past the grace window: the parent is reuse
	assert.Equal(t, http.StatusUnauthorized, s.refresh(t, user.Refresh).status)

	other := s.signUp(t, "events-other@example.com")
	change, _ := json.Marshal(map[string]string{"current_password": goodPassword, "new_password": goodPassword + " and more"})
	assert.Equal(t, http.StatusOK, s.bearer(t, http.MethodPost, "/v1/me/password", other.Access, change).status)

	var events []string
	var everything strings.Builder
	log.mu.Lock()
	for _, r := range log.records {
		fmt.Fprint(&everything, r.Message)
		attrs := map[string]string{}
		r.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value.String()
			fmt.Fprint(&everything, " ", a.Key, "=", a.Value.String())
			return true
		})
		if r.Message == "auth event" {
			events = append(events, strings.Join([]string{attrs["event"], attrs["user_id"], attrs["client_ip"], attrs["outcome"]}, " "))
		}
	}
	log.mu.Unlock()
	assert.Equal(t, []string{
		"login_failed " + user.User.ID + " 198.51.100.23 failure",
		"login_succeeded " + user.User.ID + " 198.51.100.23 success",
		"refresh_reused " + user.User.ID + " 127.0.0.1 session_revoked",
		"password_changed " + other.User.ID + " 127.0.0.1 success",
	}, events)
	for _, secret := range []string{"events@example.com", goodPassword, user.Refresh, user.Access} {
		assert.NotContains(t, everything.String(), secret)
	}
}
