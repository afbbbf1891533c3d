package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/store"
)

const (
	siteOrigin    = "https://learn.example.com"
	refreshCookie = "__Host-lanyard-refresh"
)

// cookieMode is what a browser app on siteOrigin sends with each auth call.
var cookieMode = []string{"Origin", siteOrigin, "Lanyard-Token-Delivery", "cookie"}

func headers(pairs []string, more ...string) []string {
	return append(append([]string{}, pairs...), more...)
}

// setCookie finds the refresh cookie the answer sets; nil when it sets none.
func setCookie(t *testing.T, res response) *http.Cookie {
	t.Helper()
	var found *http.Cookie
	for _, line := range res.header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		require.NoError(t, err, line)
		if c.Name == refreshCookie {
			require.Nil(t, found, "the refresh cookie is set twice: %v", res.header.Values("Set-Cookie"))
			found = c
		}
	}
	return found
}

// assertIssuedCookie checks the attributes RFC 6265bis and the contract ask
// of the refresh cookie, and returns its value.
func assertIssuedCookie(t *testing.T, res response, maxAge time.Duration) string {
	t.Helper()
	c := setCookie(t, res)
	require.NotNil(t, c, "no refresh cookie: %v", res.header)
	assert.True(t, c.Secure, "Secure")
	assert.True(t, c.HttpOnly, "HttpOnly")
	assert.Equal(t, http.SameSiteStrictMode, c.SameSite)
	assert.Equal(t, "/", c.Path)
	assert.Empty(t, c.Domain, "a __Host- cookie has no Domain")
	assert.InDelta(t, maxAge.Seconds(), c.MaxAge, 5, "Max-Age is what remains of the absolute lifetime")
	assert.True(t, strings.HasPrefix(c.Value, "lrt_"), c.Value)
	body := res.json(t)
	assert.NotContains(t, body, "refresh_token", "cookie mode keeps the refresh token out of the body")
	assert.NotEmpty(t, body["access_token"])
	assert.EqualValues(t, 7*24*3600, body["refresh_expires_in"])
	return c.Value
}

func assertClearsCookie(t *testing.T, res response) {
	t.Helper()
	c := setCookie(t, res)
	require.NotNil(t, c, "the refresh cookie is not cleared: %v", res.header)
	assert.Empty(t, c.Value)
	assert.Equal(t, -1, c.MaxAge, "Max-Age=0")
	assert.True(t, c.Secure && c.HttpOnly)
	assert.Equal(t, "/", c.Path)
}

func assertCSRFRejected(t *testing.T, res response) {
	t.Helper()
	require.Equal(t, http.StatusForbidden, res.status, string(res.body))
	assert.Equal(t, "csrf_rejected", res.json(t)["code"])
	assert.Nil(t, setCookie(t, res), "a refused request sets no cookie")
}

func jsonBody(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// sessionState is what a refresh changes in a session's row.
func (s *testServer) sessionState(t *testing.T, userID string) (generation int64, revoked bool) {
	t.Helper()
	var row struct {
		Generation int64
		Revoked    bool
	}
	require.NoError(t, s.sql(t).Raw(`SELECT generation, revoked_at IS NOT NULL AS revoked FROM sessions WHERE user_id = ?`, userID).Scan(&row).Error)
	return row.Generation, row.Revoked
}

func TestCookieMode(t *testing.T) {
	for _, dialect := range []store.Dialect{store.Postgres, store.SQLite} {
		t.Run(string(dialect), func(t *testing.T) { testCookieMode(t, dialect) })
	}
}

func testCookieMode(t *testing.T, dialect store.Dialect) {
	s := newTestServer(t, dialect, withCORS(siteOrigin))
	const absolute = 720 * time.Hour
	creds := map[string]any{"email": "reader@example.com", "password": goodPassword}

	// Sign-up from the site: the refresh token is only in the cookie.
	res := s.do(t, http.MethodPost, "/v1/auth/signup", jsonBody(t, creds), cookieMode...)
	require.Equal(t, http.StatusCreated, res.status, string(res.body))
	first := assertIssuedCookie(t, res, absolute)
	userID := res.json(t)["user"].(map[string]any)["id"].(string)
	assert.Equal(t, siteOrigin, res.header.Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "true", res.header.Get("Access-Control-Allow-Credentials"))

	// Refresh with the cookie alone (the body is {} or absent): a new
	// cookie, and the one presented is spent.
	res = s.do(t, http.MethodPost, "/v1/auth/refresh", []byte(`{}`), headers(cookieMode, "Cookie", refreshCookie+"="+first)...)
	require.Equal(t, http.StatusOK, res.status, string(res.body))
	second := assertIssuedCookie(t, res, absolute)
	assert.NotEqual(t, first, second)
	gen, _ := s.sessionState(t, userID)
	assert.EqualValues(t, 1, gen)
	res = s.do(t, http.MethodPost, "/v1/auth/refresh", nil, headers(cookieMode, "Cookie", refreshCookie+"="+second)...)
	require.Equal(t, http.StatusOK, res.status, "no body at all: %s", res.body)
	third := assertIssuedCookie(t, res, absolute)

	// A request the cookie would authenticate without the header, or from
	// an origin not on the list, or with no Origin: refused, untouched.
	for name, hdrs := range map[string][]string{
		"no header":      {"Origin", siteOrigin},
		"body header":    {"Origin", siteOrigin, "Lanyard-Token-Delivery", "body"},
		"other origin":   {"Origin", "https://evil.example", "Lanyard-Token-Delivery", "cookie"},
		"lookalike":      {"Origin", siteOrigin + ".evil.example", "Lanyard-Token-Delivery", "cookie"},
		"null origin":    {"Origin", "null", "Lanyard-Token-Delivery", "cookie"},
		"no origin":      {"Lanyard-Token-Delivery", "cookie"},
		"plain http":     {"Origin", strings.Replace(siteOrigin, "https", "http", 1), "Lanyard-Token-Delivery", "cookie"},
		"no header, bot": {},
	} {
		for _, path := range []string{"/v1/auth/refresh", "/v1/auth/logout"} {
			res = s.do(t, http.MethodPost, path, []byte(`{}`), headers(hdrs, "Cookie", refreshCookie+"="+third)...)
			assertCSRFRejected(t, res)
			if len(hdrs) < 2 || hdrs[0] != "Origin" || hdrs[1] != siteOrigin {
				assert.Empty(t, res.header.Get("Access-Control-Allow-Origin"), "%s %s: not readable by that page", name, path)
			}
		}
		gen, revoked := s.sessionState(t, userID)
		assert.EqualValues(t, 2, gen, name)
		assert.False(t, revoked, name)
	}

	// Sign-up and login in cookie mode from elsewhere are refused before
	// anything is written or a password checked.
	other := map[string]any{"email": "other@example.com", "password": goodPassword}
	assertCSRFRejected(t, s.do(t, http.MethodPost, "/v1/auth/signup", jsonBody(t, other), "Origin", "https://evil.example", "Lanyard-Token-Delivery", "cookie"))
	assert.EqualValues(t, 1, s.count(t, "users"))
	assertCSRFRejected(t, s.do(t, http.MethodPost, "/v1/auth/login", jsonBody(t, creds), "Lanyard-Token-Delivery", "cookie"))
	assert.EqualValues(t, 1, s.count(t, "sessions"))

	// Only "body" and "cookie" are delivery modes.
	res = s.do(t, http.MethodPost, "/v1/auth/login", jsonBody(t, creds), "Origin", siteOrigin, "Lanyard-Token-Delivery", "jar")
	require.Equal(t, http.StatusBadRequest, res.status, string(res.body))
	assert.Equal(t, "validation_failed", res.json(t)["code"])

	// A token in the body wins over the cookie.
	login := s.do(t, http.MethodPost, "/v1/auth/login", jsonBody(t, creds))
	require.Equal(t, http.StatusOK, login.status, string(login.body))
	bodyToken := login.tokens(t).Refresh
	assert.Nil(t, setCookie(t, login), "body mode sets no cookie")
	res = s.do(t, http.MethodPost, "/v1/auth/refresh", jsonBody(t, map[string]string{"refresh_token": bodyToken}), headers(cookieMode, "Cookie", refreshCookie+"=lrt_garbage")...)
	require.Equal(t, http.StatusOK, res.status, string(res.body))
	assertIssuedCookie(t, res, absolute)

	// No token anywhere: body mode says what is missing; cookie mode says
	// sign in again.
	for _, body := range [][]byte{[]byte(`{}`), nil} {
		res = s.do(t, http.MethodPost, "/v1/auth/refresh", body)
		require.Equal(t, http.StatusBadRequest, res.status, string(res.body))
		assert.Equal(t, "refresh_token", res.json(t)["errors"].([]any)[0].(map[string]any)["field"])
		res = s.do(t, http.MethodPost, "/v1/auth/logout", body)
		require.Equal(t, http.StatusBadRequest, res.status, string(res.body))
	}
	res = s.do(t, http.MethodPost, "/v1/auth/refresh", []byte(`{}`), cookieMode...)
	require.Equal(t, http.StatusUnauthorized, res.status, string(res.body))
	assert.Equal(t, "invalid_refresh_token", res.json(t)["code"])

	// Logout with the cookie ends the session and clears the cookie.
	res = s.do(t, http.MethodPost, "/v1/auth/logout", []byte(`{}`), headers(cookieMode, "Cookie", refreshCookie+"="+third)...)
	require.Equal(t, http.StatusNoContent, res.status, string(res.body))
	assertClearsCookie(t, res)
	res = s.refresh(t, third)
	assert.Equal(t, http.StatusUnauthorized, res.status, "the session ended")
	// A refused cookie is cleared, so the browser stops sending it.
	res = s.do(t, http.MethodPost, "/v1/auth/refresh", nil, headers(cookieMode, "Cookie", refreshCookie+"="+third)...)
	require.Equal(t, http.StatusUnauthorized, res.status, string(res.body))
	assertClearsCookie(t, res)
	// Logging out again, or with no cookie at all, still clears it.
	res = s.do(t, http.MethodPost, "/v1/auth/logout", nil, cookieMode...)
	require.Equal(t, http.StatusNoContent, res.status, string(res.body))
	assertClearsCookie(t, res)

	// Login in cookie mode starts a new session whose cookie works.
	res = s.do(t, http.MethodPost, "/v1/auth/login", jsonBody(t, creds), cookieMode...)
	require.Equal(t, http.StatusOK, res.status, string(res.body))
	fresh := assertIssuedCookie(t, res, absolute)
	res = s.do(t, http.MethodPost, "/v1/auth/refresh", nil, headers(cookieMode, "Cookie", refreshCookie+"="+fresh)...)
	require.Equal(t, http.StatusOK, res.status, string(res.body))

	// A password change in cookie mode replaces the cookie; the old one is
	// dead. From elsewhere it is refused before the password is checked.
	access := res.json(t)["access_token"].(string)
	change := jsonBody(t, map[string]string{"current_password": goodPassword, "new_password": "a different passphrase, long enough"})
	assertCSRFRejected(t, s.do(t, http.MethodPost, "/v1/me/password", change, "Authorization", "Bearer "+access, "Origin", "https://evil.example", "Lanyard-Token-Delivery", "cookie"))
	beforeChange := assertIssuedCookie(t, res, absolute)
	res = s.do(t, http.MethodPost, "/v1/me/password", change, headers(cookieMode, "Authorization", "Bearer "+access)...)
	require.Equal(t, http.StatusOK, res.status, string(res.body))
	afterChange := assertIssuedCookie(t, res, absolute)
	assert.Equal(t, http.StatusUnauthorized, s.refresh(t, beforeChange).status)
	res = s.do(t, http.MethodPost, "/v1/auth/refresh", nil, headers(cookieMode, "Cookie", refreshCookie+"="+afterChange)...)
	require.Equal(t, http.StatusOK, res.status, string(res.body))

	// Rotation never extends the absolute lifetime: Max-Age counts down.
	s.clock.Advance(48 * time.Hour)
	res = s.do(t, http.MethodPost, "/v1/auth/refresh", nil, headers(cookieMode, "Cookie", refreshCookie+"="+assertIssuedCookie(t, res, absolute))...)
	require.Equal(t, http.StatusOK, res.status, string(res.body))
	assertIssuedCookie(t, res, absolute-48*time.Hour)
}
