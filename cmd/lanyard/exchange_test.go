package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/testdb"
)

// betterAuthPeerSecret is the peer's fixed development secret
// (../shared/peers/better-auth/auth.mjs).
const betterAuthPeerSecret = "peer-dev-only-secret-0123456789abcdefghijklmnopqrstuvwxyz"

// signInCookie signs in to the Better-Auth peer and returns the value of
// the session cookie it sets, as a browser would hold it.
func (p *betterAuthPeer) signInCookie(t *testing.T, email, password string) string {
	t.Helper()
	body, err := json.Marshal(map[string]string{"email": email, "password": password})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, p.base+"/api/auth/sign-in/email", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", p.base)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	for _, c := range res.Cookies() {
		if strings.HasSuffix(c.Name, "better-auth.session_token") {
			return c.Value
		}
	}
	t.Fatalf("no session cookie in %v", res.Header.Values("Set-Cookie"))
	return ""
}

// TestExchangeRealBetterAuthSession: a session opened on the real
// Better-Auth server, imported with --sessions, is traded once for a
// Lanyard session of the same user.
func TestExchangeRealBetterAuthSession(t *testing.T) {
	peer := startBetterAuth(t)
	const email, pw = "session-mover@example.com", "a long passphrase for the move"
	id, _ := peer.signUp(t, "Session Mover", email, pw)
	cookie := peer.signInCookie(t, email, pw)

	vars := map[string]string{
		"LANYARD_DATABASE_URL":       testdb.PostgresURL(t),
		"LANYARD_SECRET":             strings.Repeat("x", 40),
		"LANYARD_BETTER_AUTH_SECRET": betterAuthPeerSecret,
	}
	_, err := runImport(t, vars, "--from", peer.dbURL, "--sessions")
	require.NoError(t, err)
	l := start(t, vars)

	status, body := l.post(t, "/v1/auth/exchange/better-auth", map[string]any{"token": cookie})
	require.Equal(t, http.StatusOK, status, "%v", body)
	assert.Equal(t, id, body["user"].(map[string]any)["id"], "the Better-Auth id is the sub")
	assert.Equal(t, id, claim(t, body["access_token"].(string), "sub"))
	status, _ = l.post(t, "/v1/auth/refresh", map[string]any{"refresh_token": body["refresh_token"]})
	assert.Equal(t, http.StatusOK, status, "a working Lanyard session")

	status, body = l.post(t, "/v1/auth/exchange/better-auth", map[string]any{"token": cookie})
	require.Equal(t, http.StatusBadRequest, status, "exchanged once: %v", body)
	assert.Equal(t, "invalid_token", body["code"])
}
