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

// TestReimportKeepsLanyardChanges: running the import again (as the guide
// says to, around the switch) never undoes what users changed in Lanyard
// since, while a user untouched in Lanyard still picks up Better-Auth's
// changes; and a password change in Lanyard ends the user's imported
// Better-Auth sessions for good, re-runs included.
func TestReimportKeepsLanyardChanges(t *testing.T) {
	peer := startBetterAuth(t)
	const pw = "a long passphrase for the move"
	moved, _ := peer.signUp(t, "Moved Early", "moved@example.com", pw)
	idle, _ := peer.signUp(t, "Still Idle", "idle@example.com", pw)
	cookie := peer.signInCookie(t, "moved@example.com", pw)
	peer.exec(t, `CREATE TABLE user_profile (user_id text PRIMARY KEY, python_proficiency text, developer_role text)`)
	peer.exec(t, `INSERT INTO user_profile VALUES ($1, 'advanced', 'researcher'), ($2, 'advanced', 'researcher')`, moved, idle)

	dbURL := testdb.PostgresURL(t)
	vars := map[string]string{
		"LANYARD_DATABASE_URL": dbURL, "LANYARD_SECRET": strings.Repeat("r", 40),
		"LANYARD_BETTER_AUTH_SECRET": betterAuthPeerSecret, "LANYARD_RATE_LIMIT_SIGNUP_IP": "0",
	}
	_, err := runImport(t, vars, "--from", peer.dbURL, "--sessions")
	require.NoError(t, err)
	l := start(t, vars)

	// In Lanyard: the early mover answers onboarding anew and changes the
	// password (which ends its other sessions, the Better-Auth one too).
	status, body := l.post(t, "/v1/auth/login", map[string]any{"email": "moved@example.com", "password": pw})
	require.Equal(t, http.StatusOK, status, "%v", body)
	access := body["access_token"].(string)
	status, _ = l.call(t, http.MethodPut, "/v1/me/profile", access, map[string]any{"python_proficiency": "beginner", "developer_role": "educator"})
	require.Equal(t, http.StatusOK, status)
	status, body = l.call(t, http.MethodPost, "/v1/me/password", access, map[string]any{"current_password": pw, "new_password": "a brand new passphrase after the move"})
	require.Equal(t, http.StatusOK, status, "%v", body)
	access = body["access_token"].(string)

	// In Better-Auth, both users' names change before the switch.
	peer.exec(t, `UPDATE "user" SET name = name || ' (renamed)'`)
	report, err := runImport(t, vars, "--from", peer.dbURL, "--sessions")
	require.NoError(t, err)
	assert.Contains(t, report, "updated 1, unchanged 1")

	status, body = l.get(t, "/v1/me", access)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "Moved Early", body["name"], "changed in Lanyard since: Lanyard's row stays")
	assert.Equal(t, "beginner", body["profile"].(map[string]any)["python_proficiency"])
	status, body = l.post(t, "/v1/auth/login", map[string]any{"email": "idle@example.com", "password": pw})
	require.Equal(t, http.StatusOK, status, "%v", body)
	assert.Equal(t, "Still Idle (renamed)", body["user"].(map[string]any)["name"], "untouched in Lanyard: Better-Auth's change arrives")

	status, body = l.post(t, "/v1/auth/exchange/better-auth", map[string]any{"token": cookie})
	assert.Equal(t, http.StatusBadRequest, status, "the password change ended the Better-Auth session, re-import or not: %v", body)
}
