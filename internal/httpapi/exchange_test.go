package httpapi_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/store"
)

const betterAuthSecret = "better-auth-secret-of-the-old-server"

// signBetterAuth is what Better-Auth puts in its session cookie.
func signBetterAuth(token, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(token))
	return token + "." + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// importSession stores a Better-Auth session as `lanyard import
// better-auth --sessions` does.
func (s *testServer) importSession(t *testing.T, token, userID string, expires time.Time) {
	t.Helper()
	hash := sha256.Sum256([]byte(token))
	require.NoError(t, s.sql(t).Exec(`INSERT INTO better_auth_sessions (user_id, token_hash, expires_at) VALUES (?, ?, ?)`,
		userID, hash[:], expires).Error)
}

func TestExchangeBetterAuthSession(t *testing.T) {
	for _, dialect := range []store.Dialect{store.Postgres, store.SQLite} {
		t.Run(string(dialect), func(t *testing.T) {
			s := newTestServer(t, dialect, withCORS(siteOrigin), withConfig(func(c *identity.Config) { c.BetterAuthSecret = []byte(betterAuthSecret) }))
			user := s.signUp(t, "moved@example.com")
			now := s.clock.Now()
			s.importSession(t, "liveSessionToken0123456789abcdef", user.User.ID, now.Add(time.Hour))
			s.importSession(t, "expiredSessionToken0123456789abc", user.User.ID, now.Add(-time.Minute))
			s.importSession(t, "cookieSessionToken0123456789abcd", user.User.ID, now.Add(time.Hour))

			exchange := func(token string, header ...string) response {
				return s.do(t, http.MethodPost, "/v1/auth/exchange/better-auth", jsonBody(t, map[string]string{"token": token}), header...)
			}
			for name, bad := range map[string]string{
				"wrong secret":   signBetterAuth("liveSessionToken0123456789abcdef", "another secret"),
				"unsigned":       "liveSessionToken0123456789abcdef",
				"tampered token": signBetterAuth("liveSessionToken0123456789abcdef", betterAuthSecret)[1:],
				"expired":        signBetterAuth("expiredSessionToken0123456789abc", betterAuthSecret),
				"never imported": signBetterAuth("unknownSessionToken0123456789abc", betterAuthSecret),
				"not base64":     "liveSessionToken0123456789abcdef.%%%",
			} {
				res := exchange(bad)
				require.Equal(t, http.StatusBadRequest, res.status, "%s: %s", name, res.body)
				assert.Equal(t, "invalid_token", res.json(t)["code"], name)
			}

			// The cookie's value as the browser holds it (URL-encoded) works, once.
			signed := signBetterAuth("liveSessionToken0123456789abcdef", betterAuthSecret)
			res := exchange(url.QueryEscape(signed))
			require.Equal(t, http.StatusOK, res.status, string(res.body))
			tk := res.tokens(t)
			assert.Equal(t, user.User.ID, tk.User.ID)
			assert.Equal(t, http.StatusOK, s.refresh(t, tk.Refresh).status, "a working Lanyard session")
			res = exchange(signed)
			require.Equal(t, http.StatusBadRequest, res.status, "exchanged once")
			assert.Equal(t, "invalid_token", res.json(t)["code"])

			// Cookie mode, like login.
			res = exchange(signBetterAuth("cookieSessionToken0123456789abcd", betterAuthSecret), cookieMode...)
			require.Equal(t, http.StatusOK, res.status, string(res.body))
			assertIssuedCookie(t, res, 720*time.Hour)

			// Ending the user's other sessions (as a password change does)
			// ends the imported ones too: a stolen Better-Auth cookie stops
			// working when its owner locks thieves out.
			s.importSession(t, "stolenSessionToken0123456789abcd", user.User.ID, now.Add(time.Hour))
			res = s.do(t, http.MethodDelete, "/v1/me/sessions", nil, "Authorization", "Bearer "+tk.Access)
			require.Equal(t, http.StatusNoContent, res.status, string(res.body))
			res = exchange(signBetterAuth("stolenSessionToken0123456789abcd", betterAuthSecret))
			require.Equal(t, http.StatusBadRequest, res.status, string(res.body))
			assert.Equal(t, "invalid_token", res.json(t)["code"])
		})
	}
	t.Run("disabled without the secret", func(t *testing.T) {
		s := newTestServer(t, store.SQLite)
		res := s.do(t, http.MethodPost, "/v1/auth/exchange/better-auth", jsonBody(t, map[string]string{"token": signBetterAuth("x", betterAuthSecret)}))
		require.Equal(t, http.StatusNotFound, res.status)
		assert.Equal(t, "not_found", res.json(t)["code"])
	})
}
