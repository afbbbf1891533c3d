package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/store"
)

// refreshAs refreshes as a client with that User-Agent (every test client
// connects from 127.0.0.1, so the User-Agent tells them apart).
func (s *testServer) refreshAs(t *testing.T, token, userAgent string) response {
	t.Helper()
	return s.do(t, http.MethodPost, "/v1/auth/refresh", []byte(`{"refresh_token":"`+token+`"}`), "User-Agent", userAgent)
}

const (
	victimUA = "Mozilla/5.0 (Victim) Firefox/140.0"
	thiefUA  = "Mozilla/5.0 (Thief) Firefox/140.0"
)

// TestGraceRideAlong: a thief holding a copy of the victim's token pair
// waits for the victim to refresh, then presents the parent inside the grace
// window. It gets nothing, and the session is revoked, so the victim is
// signed out and sees it. Tabs of the victim's browser and retries of a lost
// answer still get the successor.
func TestGraceRideAlong(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		s := newTestServer(t, d)
		first := s.signUp(t, "ride@example.com")
		copied := first.Refresh // the thief's copy of the pair

		rotated := s.refreshAs(t, first.Refresh, victimUA)
		require.Equal(t, http.StatusOK, rotated.status, string(rotated.body))
		s.clock.Advance(2 * time.Second)
		tab := s.refreshAs(t, first.Refresh, victimUA) // a second tab, or a retry of a lost answer
		require.Equal(t, http.StatusOK, tab.status, string(tab.body))
		assert.Equal(t, rotated.tokens(t).Refresh, tab.tokens(t).Refresh, "the victim's own client gets the same successor")

		s.clock.Advance(time.Second) // still inside grace
		ride := s.refreshAs(t, copied, thiefUA)
		assert.Equal(t, http.StatusUnauthorized, ride.status)
		assert.Equal(t, "refresh_token_reused", ride.json(t)["code"], "another client inside grace is reuse")
		assert.NotContains(t, string(ride.body), "refresh_token\":", "no tokens for the thief")

		live := s.refreshAs(t, rotated.tokens(t).Refresh, victimUA)
		assert.Equal(t, http.StatusUnauthorized, live.status, "the session is revoked: the victim is signed out and notices")
		assert.Equal(t, "refresh_token_reused", live.json(t)["code"])
		assert.Equal(t, http.StatusUnauthorized, s.bearer(t, http.MethodGet, "/v1/me", rotated.tokens(t).Access, nil).status)
	})
}

// TestGraceUnbound: with LANYARD_REFRESH_GRACE_BINDING=none any client
// presenting the parent inside grace gets the successor.
func TestGraceUnbound(t *testing.T) {
	s := newTestServer(t, store.SQLite, func(o *serverOptions) { o.cfg.RefreshGraceUnbound = true })
	first := s.signUp(t, "unbound@example.com")
	rotated := s.refreshAs(t, first.Refresh, victimUA)
	require.Equal(t, http.StatusOK, rotated.status)
	s.clock.Advance(time.Second)
	other := s.refreshAs(t, first.Refresh, thiefUA)
	require.Equal(t, http.StatusOK, other.status, string(other.body))
	assert.Equal(t, rotated.tokens(t).Refresh, other.tokens(t).Refresh)
}
