package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/store"
)

func (s *testServer) login(t *testing.T, email, pw, userAgent string) tokens {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"email": email, "password": pw})
	res := s.do(t, http.MethodPost, "/v1/auth/login", b, "User-Agent", userAgent)
	require.Equal(t, http.StatusOK, res.status, string(res.body))
	return res.tokens(t)
}

func (s *testServer) bearer(t *testing.T, method, path, access string, body []byte) response {
	t.Helper()
	return s.do(t, method, path, body, "Authorization", "Bearer "+access)
}

// TestSessionManagement: a user lists, ends one and ends all other sessions;
// ended sessions fail at refresh and on Lanyard's bearer endpoints at once;
// nobody touches another user's sessions.
func TestSessionManagement(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		s := newTestServer(t, d)
		laptop := s.signUp(t, "multi@example.com")
		s.clock.Advance(time.Minute)
		phone := s.login(t, "multi@example.com", goodPassword, "Phone/1.0")
		s.clock.Advance(time.Minute)
		tablet := s.login(t, "multi@example.com", goodPassword, "Tablet/2.0")
		other := s.signUp(t, "someone-else@example.com")

		res := s.bearer(t, http.MethodGet, "/v1/me/sessions", phone.Access, nil)
		require.Equal(t, http.StatusOK, res.status, string(res.body))
		assert.Equal(t, "no-store", res.header.Get("Cache-Control"))
		var list struct {
			Sessions []struct {
				ID         string  `json:"id"`
				UserAgent  *string `json:"user_agent"`
				IP         *string `json:"ip"`
				Current    bool    `json:"current"`
				LastUsedAt string  `json:"last_used_at"`
			} `json:"sessions"`
		}
		require.NoError(t, json.Unmarshal(res.body, &list))
		require.Len(t, list.Sessions, 3)
		assert.Equal(t, "Tablet/2.0", *list.Sessions[0].UserAgent, "most recently used first")
		assert.Equal(t, "127.0.0.1", *list.Sessions[0].IP)
		var current []string
		for _, ss := range list.Sessions {
			if ss.Current {
				current = append(current, ss.ID)
			}
		}
		assert.Equal(t, []string{decodeClaims(t, phone.Access)["sid"].(string)}, current)

		// Another user's session is not found, and neither is an unknown id.
		otherSID := decodeClaims(t, other.Access)["sid"].(string)
		assert.Equal(t, http.StatusNotFound, s.bearer(t, http.MethodDelete, "/v1/me/sessions/"+otherSID, phone.Access, nil).status)
		assert.Equal(t, http.StatusNotFound, s.bearer(t, http.MethodDelete, "/v1/me/sessions/"+uuid.NewString(), phone.Access, nil).status)
		bad := s.bearer(t, http.MethodDelete, "/v1/me/sessions/not-a-uuid", phone.Access, nil)
		assert.Equal(t, http.StatusBadRequest, bad.status)
		assert.Equal(t, "validation_failed", bad.json(t)["code"])
		assert.Contains(t, string(bad.body), `"field":"id"`)
		assert.Equal(t, http.StatusUnauthorized, s.do(t, http.MethodDelete, "/v1/me/sessions/not-a-uuid", nil).status, "authentication comes first")
		assert.Equal(t, http.StatusOK, s.refresh(t, other.Refresh).status, "the other user's session is untouched")

		// End the laptop session from the phone.
		laptopSID := decodeClaims(t, laptop.Access)["sid"].(string)
		assert.Equal(t, http.StatusNoContent, s.bearer(t, http.MethodDelete, "/v1/me/sessions/"+laptopSID, phone.Access, nil).status)
		assert.Equal(t, http.StatusNoContent, s.bearer(t, http.MethodDelete, "/v1/me/sessions/"+laptopSID, phone.Access, nil).status, "idempotent")
		res = s.refresh(t, laptop.Refresh)
		assert.Equal(t, http.StatusUnauthorized, res.status)
		assert.Equal(t, "invalid_refresh_token", res.json(t)["code"])
		res = s.bearer(t, http.MethodGet, "/v1/me", laptop.Access, nil)
		assert.Equal(t, http.StatusUnauthorized, res.status, "an ended session's access token is refused before exp")
		assert.Equal(t, `Bearer realm="lanyard", error="invalid_token"`, res.header.Get("WWW-Authenticate"))

		// End all others from the phone: the tablet goes, the phone stays.
		assert.Equal(t, http.StatusNoContent, s.bearer(t, http.MethodDelete, "/v1/me/sessions", phone.Access, nil).status)
		assert.Equal(t, http.StatusUnauthorized, s.refresh(t, tablet.Refresh).status)
		assert.Equal(t, http.StatusUnauthorized, s.bearer(t, http.MethodGet, "/v1/me", tablet.Access, nil).status)
		assert.Equal(t, http.StatusOK, s.bearer(t, http.MethodGet, "/v1/me", phone.Access, nil).status)
		assert.Equal(t, http.StatusOK, s.refresh(t, phone.Refresh).status)
		require.NoError(t, json.Unmarshal(s.bearer(t, http.MethodGet, "/v1/me/sessions", phone.Access, nil).body, &list))
		assert.Len(t, list.Sessions, 1)

		// Ending the current session signs the caller out of Lanyard's endpoints.
		phoneSID := decodeClaims(t, phone.Access)["sid"].(string)
		assert.Equal(t, http.StatusNoContent, s.bearer(t, http.MethodDelete, "/v1/me/sessions/"+phoneSID, phone.Access, nil).status)
		assert.Equal(t, http.StatusUnauthorized, s.bearer(t, http.MethodGet, "/v1/me/sessions", phone.Access, nil).status)
	})
}

func TestChangePassword(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		s := newTestServer(t, d)
		a := s.signUp(t, "change@example.com")
		b := s.login(t, "change@example.com", goodPassword, "Other/1.0")
		const newPassword = "an entirely new passphrase 2026"
		body := func(current, next string) []byte {
			j, _ := json.Marshal(map[string]string{"current_password": current, "new_password": next})
			return j
		}

		res := s.bearer(t, http.MethodPost, "/v1/me/password", a.Access, body("not the password at all", newPassword))
		assert.Equal(t, http.StatusUnauthorized, res.status)
		assert.Equal(t, "invalid_credentials", res.json(t)["code"])
		assert.Empty(t, res.header.Get("WWW-Authenticate"), "the bearer token was fine; the password was not")
		res = s.bearer(t, http.MethodPost, "/v1/me/password", a.Access, body(goodPassword, "short"))
		assert.Equal(t, http.StatusBadRequest, res.status)
		assert.Equal(t, "validation_failed", res.json(t)["code"])
		assert.NotContains(t, string(res.body), goodPassword)
		assert.Equal(t, http.StatusOK, s.refresh(t, b.Refresh).status, "failed attempts end nothing")
		b = s.login(t, "change@example.com", goodPassword, "Other/1.0")
		assert.Equal(t, http.StatusUnauthorized, s.do(t, http.MethodPost, "/v1/me/password", body(goodPassword, newPassword)).status, "needs a bearer token")

		res = s.bearer(t, http.MethodPost, "/v1/me/password", a.Access, body(goodPassword, newPassword))
		require.Equal(t, http.StatusOK, res.status, string(res.body))
		assert.Equal(t, "no-store", res.header.Get("Cache-Control"))
		changed := res.tokens(t)
		assert.Equal(t, a.User.ID, changed.User.ID)
		assert.Equal(t, decodeClaims(t, a.Access)["sid"], decodeClaims(t, changed.Access)["sid"], "the same session")
		assert.Equal(t, http.StatusUnauthorized, s.refresh(t, b.Refresh).status, "other sessions end")
		assert.Equal(t, http.StatusUnauthorized, s.bearer(t, http.MethodGet, "/v1/me", b.Access, nil).status)

		// A thief who copied the current session's refresh token is evicted:
		// the token issued before the change is dead, the returned one works.
		stolen := s.refresh(t, a.Refresh)
		assert.Equal(t, http.StatusUnauthorized, stolen.status, "the current session's earlier refresh token")
		assert.Equal(t, "invalid_refresh_token", stolen.json(t)["code"])
		next := s.refresh(t, changed.Refresh)
		require.Equal(t, http.StatusOK, next.status, "the current session stays, under the returned pair")
		assert.Equal(t, http.StatusOK, s.bearer(t, http.MethodGet, "/v1/me", next.tokens(t).Access, nil).status)

		login := s.post(t, "/v1/auth/login", map[string]string{"email": "change@example.com", "password": goodPassword})
		assert.Equal(t, http.StatusUnauthorized, login.status, "the old password no longer works")
		s.login(t, "change@example.com", newPassword, "New/1.0")
	})
}

// TestLifetimes: the idle and absolute lifetimes end a session exactly at
// their edges, and rotation never extends the absolute one.
func TestLifetimes(t *testing.T) {
	s := newTestServer(t, store.Postgres)
	tk := s.signUp(t, "lifetime@example.com")
	refresh := tk.Refresh
	// Refresh every 6 days: never idle, but the 30-day absolute end still comes.
	for range 4 {
		s.clock.Advance(6 * 24 * time.Hour)
		res := s.refresh(t, refresh)
		require.Equal(t, http.StatusOK, res.status, string(res.body))
		refresh = res.tokens(t).Refresh
	}
	s.clock.Advance(6*24*time.Hour - time.Microsecond) // 30 days minus 1 µs after sign-up
	res := s.refresh(t, refresh)
	require.Equal(t, http.StatusOK, res.status, "just inside the absolute lifetime")
	assert.EqualValues(t, 1, res.json(t)["refresh_expires_in"], "the remaining life is reported, never extended")
	refresh = res.tokens(t).Refresh
	s.clock.Advance(time.Microsecond)
	res = s.refresh(t, refresh)
	assert.Equal(t, http.StatusUnauthorized, res.status)
	assert.Equal(t, "session_expired", res.json(t)["code"])

	// The purge job keeps it a day (late refreshes still get session_expired),
	// then deletes it.
	n, err := s.svc.PurgeSessions(t.Context())
	require.NoError(t, err)
	assert.Zero(t, n)
	s.clock.Advance(24*time.Hour + time.Microsecond)
	n, err = s.svc.PurgeSessions(t.Context())
	require.NoError(t, err)
	assert.EqualValues(t, 1, n)
	assert.Zero(t, s.count(t, "sessions"))
}

// TestLostResponse: the refresh commits but the client never reads the answer
// and retries the parent. Within grace it gets the very successor it lost and
// the chain stays single; after grace the same retry is reuse.
func TestLostResponse(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		s := newTestServer(t, d)
		parent := s.signUp(t, "lost@example.com").Refresh
		lost := s.refresh(t, parent) // committed; pretend the response never arrived
		require.Equal(t, http.StatusOK, lost.status)

		s.clock.Advance(3 * time.Second)
		retry := s.refresh(t, parent)
		require.Equal(t, http.StatusOK, retry.status, string(retry.body))
		assert.Equal(t, lost.tokens(t).Refresh, retry.tokens(t).Refresh, "the retry gets the successor it lost")
		next := s.refresh(t, retry.tokens(t).Refresh)
		require.Equal(t, http.StatusOK, next.status, "one live chain continues")

		// A second lost response, this time retried after grace: reuse.
		s.clock.Advance(11 * time.Second)
		late := s.refresh(t, retry.tokens(t).Refresh)
		assert.Equal(t, http.StatusUnauthorized, late.status)
		assert.Equal(t, "refresh_token_reused", late.json(t)["code"])
		assert.Equal(t, http.StatusUnauthorized, s.refresh(t, next.tokens(t).Refresh).status, "the session is revoked")
	})
}

// TestConcurrentPasswordChanges: two devices change the password at once.
// Exactly one wins; the loser writes nothing; the winner's password works.
func TestConcurrentPasswordChanges(t *testing.T) {
	s := newTestServer(t, store.Postgres)
	a := s.signUp(t, "race-pw@example.com")
	b := s.login(t, "race-pw@example.com", goodPassword, "B/1.0")
	passwords := []string{"first new passphrase for A!", "second new passphrase for B"}
	results := make([]int, 2)
	start := make(chan struct{})
	done := make(chan struct{})
	for i, tk := range []tokens{a, b} {
		go func() {
			defer func() { done <- struct{}{} }()
			<-start
			body, _ := json.Marshal(map[string]string{"current_password": goodPassword, "new_password": passwords[i]})
			results[i] = s.bearer(t, http.MethodPost, "/v1/me/password", tk.Access, body).status
		}()
	}
	close(start)
	<-done
	<-done
	winners := 0
	for i, status := range results {
		if status == http.StatusOK {
			winners++
			s.login(t, "race-pw@example.com", passwords[i], "Winner/1.0")
			lost := s.post(t, "/v1/auth/login", map[string]string{"email": "race-pw@example.com", "password": passwords[1-i]})
			assert.Equal(t, http.StatusUnauthorized, lost.status, "the losing change wrote nothing")
		} else {
			assert.Equal(t, http.StatusUnauthorized, status)
		}
	}
	assert.Equal(t, 1, winners, "exactly one change wins: %v", results)
	assert.Equal(t, http.StatusUnauthorized, s.post(t, "/v1/auth/login", map[string]string{"email": "race-pw@example.com", "password": goodPassword}).status)
}

// TestAuthBeforeValidation: an anonymous caller gets 401, not a description
// of what a valid body would be.
func TestAuthBeforeValidation(t *testing.T) {
	s := newTestServer(t, store.SQLite)
	res := s.do(t, http.MethodPut, "/v1/me/profile", []byte(`{"python_proficiency":"guru"}`))
	assert.Equal(t, http.StatusUnauthorized, res.status)
	assert.NotContains(t, string(res.body), "advanced")
}
