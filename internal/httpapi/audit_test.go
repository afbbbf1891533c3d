package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/mailtest"
	"github.com/lanyard-id/lanyard/internal/store"
)

const auditUA = "AuditTest/1.0 (X11)"

// as sends a JSON request from the audit test's browser, with a bearer
// token when access is not "".
func (s *testServer) as(t *testing.T, method, path, access string, body any) response {
	t.Helper()
	var b []byte
	if body != nil {
		b = jsonBody(t, body)
	}
	header := []string{"User-Agent", auditUA}
	if access != "" {
		header = append(header, "Authorization", "Bearer "+access)
	}
	return s.do(t, method, path, b, header...)
}

// auditEvents is every stored event, newest first.
func (s *testServer) auditEvents(t *testing.T) []identity.AuditEvent {
	t.Helper()
	events, err := s.store.ListAudit(context.Background(), identity.AuditQuery{Limit: 1000})
	require.NoError(t, err)
	return events
}

// ofType returns the events of typ for userID, newest first.
func ofType(events []identity.AuditEvent, typ, userID string) []identity.AuditEvent {
	var out []identity.AuditEvent
	for _, e := range events {
		if e.Type == typ && e.UserID == userID {
			out = append(out, e)
		}
	}
	return out
}

// TestAuditTrail: every flow writes its event, with the user, the actor,
// the client's address and user agent, and never a secret or an address;
// a refused change writes none.
func TestAuditTrail(t *testing.T) {
	for _, dialect := range []store.Dialect{store.Postgres, store.SQLite} {
		t.Run(string(dialect), func(t *testing.T) {
			t.Parallel()
			smtp := mailtest.Start(t, mailtest.Options{})
			s := newTestServer(t, dialect,
				withConfig(func(c *identity.Config) { c.BetterAuthSecret = []byte(betterAuthSecret) }),
				withRateLimits(identity.RateLimits{LoginAccountIP: identity.RateLimit{Max: 3, Window: 15 * time.Minute}, MaxDelay: time.Hour}))
			secrets := []string{goodPassword}

			// Sign-up, and one refused because the address is taken.
			res := s.as(t, http.MethodPost, "/v1/auth/signup", "", map[string]string{"email": "audit@example.com", "password": goodPassword})
			require.Equal(t, http.StatusCreated, res.status, string(res.body))
			me := res.tokens(t)
			secrets = append(secrets, me.Access, me.Refresh)
			res = s.as(t, http.MethodPost, "/v1/auth/signup", "", map[string]string{"email": "AUDIT@example.com", "password": goodPassword})
			require.Equal(t, http.StatusConflict, res.status)
			require.Len(t, ofType(s.auditEvents(t), identity.AuditSignup, me.User.ID), 1)
			assert.Len(t, s.auditEvents(t), 1, "the refused sign-up wrote nothing")

			// Logins: a wrong password, an unknown account, a success.
			login := func(email, password string) response {
				return s.as(t, http.MethodPost, "/v1/auth/login", "", map[string]string{"email": email, "password": password})
			}
			require.Equal(t, http.StatusUnauthorized, login("audit@example.com", "not the password at all").status)
			require.Equal(t, http.StatusUnauthorized, login("ghost@example.com", goodPassword).status)
			res = login("audit@example.com", goodPassword)
			require.Equal(t, http.StatusOK, res.status)
			second := res.tokens(t)
			secrets = append(secrets, second.Access, second.Refresh, "not the password at all")

			// Refresh: nothing, until a spent token comes back.
			res = s.as(t, http.MethodPost, "/v1/auth/refresh", "", map[string]string{"refresh_token": second.Refresh})
			require.Equal(t, http.StatusOK, res.status)
			rotated := res.tokens(t)
			secrets = append(secrets, rotated.Access, rotated.Refresh)
			before := len(s.auditEvents(t))
			s.clock.Advance(time.Minute) // past the grace window
			res = s.as(t, http.MethodPost, "/v1/auth/refresh", "", map[string]string{"refresh_token": second.Refresh})
			require.Equal(t, http.StatusUnauthorized, res.status)
			assert.Equal(t, "refresh_token_reused", res.json(t)["code"])
			res = s.as(t, http.MethodPost, "/v1/auth/refresh", "", map[string]string{"refresh_token": second.Refresh})
			require.Equal(t, http.StatusUnauthorized, res.status)
			assert.Len(t, s.auditEvents(t), before+1, "one event for the reuse, none for the refresh before or the replay after")

			// Sessions: end one, end the others, log out; ending another
			// user's session is refused and writes nothing.
			third := login("audit@example.com", goodPassword).tokens(t)
			fourth := login("audit@example.com", goodPassword).tokens(t)
			fifth := login("audit@example.com", goodPassword).tokens(t)
			secrets = append(secrets, third.Access, third.Refresh, fourth.Access, fourth.Refresh, fifth.Access, fifth.Refresh)
			var list struct {
				Sessions []struct {
					ID      string `json:"id"`
					Current bool   `json:"current"`
				} `json:"sessions"`
			}
			require.NoError(t, json.Unmarshal(s.as(t, http.MethodGet, "/v1/me/sessions", fourth.Access, nil).body, &list))
			var fourthID string
			for _, l := range list.Sessions {
				if l.Current {
					fourthID = l.ID
				}
			}
			require.NotEmpty(t, fourthID)
			other := s.signUp(t, "other-audit@example.com")
			before = len(s.auditEvents(t))
			require.Equal(t, http.StatusNotFound, s.as(t, http.MethodDelete, "/v1/me/sessions/"+fourthID, other.Access, nil).status)
			assert.Len(t, s.auditEvents(t), before, "a refused end writes nothing")
			require.Equal(t, http.StatusNoContent, s.as(t, http.MethodDelete, "/v1/me/sessions/"+fourthID, third.Access, nil).status)
			before = len(s.auditEvents(t))
			require.Equal(t, http.StatusNoContent, s.as(t, http.MethodDelete, "/v1/me/sessions/"+fourthID, third.Access, nil).status)
			assert.Len(t, s.auditEvents(t), before, "ending an ended session again writes nothing")
			require.Equal(t, http.StatusNoContent, s.as(t, http.MethodDelete, "/v1/me/sessions", third.Access, nil).status)
			before = len(s.auditEvents(t))
			require.Equal(t, http.StatusNoContent, s.as(t, http.MethodDelete, "/v1/me/sessions", third.Access, nil).status)
			assert.Len(t, s.auditEvents(t), before, "ending the others again ends nothing and writes nothing")
			require.Equal(t, http.StatusNoContent, s.as(t, http.MethodPost, "/v1/auth/logout", "", map[string]string{"refresh_token": third.Refresh}).status)
			require.Equal(t, http.StatusNoContent, s.as(t, http.MethodPost, "/v1/auth/logout", "", map[string]string{"refresh_token": third.Refresh}).status)
			ended := ofType(s.auditEvents(t), identity.AuditSessionEnded, me.User.ID)
			require.Len(t, ended, 3, "one, the others, the logout; the second logout ended nothing")
			assert.Equal(t, "logout", ended[0].Details["reason"])
			assert.Equal(t, "logout_others", ended[1].Details["reason"])
			assert.Equal(t, "2", ended[1].Details["count"], "the sign-up's session and the fifth")
			assert.Equal(t, fourthID, ended[2].Details["session_id"])

			// Password change: refused (wrong current password) writes a
			// failed login and no change; accepted writes the change.
			current := login("audit@example.com", goodPassword).tokens(t)
			secrets = append(secrets, current.Access, current.Refresh)
			newPassword := "a brand new passphrase 2026"
			secrets = append(secrets, newPassword)
			res = s.as(t, http.MethodPost, "/v1/me/password", current.Access, map[string]string{"current_password": "wrong wrong wrong wrong", "new_password": newPassword})
			require.Equal(t, http.StatusUnauthorized, res.status, string(res.body))
			assert.Empty(t, ofType(s.auditEvents(t), identity.AuditPasswordChanged, me.User.ID))
			res = s.as(t, http.MethodPost, "/v1/me/password", current.Access, map[string]string{"current_password": goodPassword, "new_password": "short"})
			require.Equal(t, http.StatusBadRequest, res.status, string(res.body))
			assert.Empty(t, ofType(s.auditEvents(t), identity.AuditPasswordChanged, me.User.ID))
			res = s.as(t, http.MethodPost, "/v1/me/password", current.Access, map[string]string{"current_password": goodPassword, "new_password": newPassword})
			require.Equal(t, http.StatusOK, res.status, string(res.body))
			changed := res.tokens(t)
			secrets = append(secrets, changed.Access, changed.Refresh)
			require.Len(t, ofType(s.auditEvents(t), identity.AuditPasswordChanged, me.User.ID), 1)

			// Mail flows: verification, reset (a bad token first), email change.
			res = s.as(t, http.MethodPost, "/v1/auth/password/forgot", "", map[string]string{"email": "audit@example.com"})
			require.Equal(t, http.StatusAccepted, res.status)
			s.deliver(t, smtp)
			var verify, reset string
			for _, m := range smtp.MessagesTo("audit@example.com") {
				if m.Link("/verify-email") != "" {
					verify = m.Token()
				}
				if m.Link("/reset-password") != "" {
					reset = m.Token()
				}
			}
			require.NotEmpty(t, verify)
			require.NotEmpty(t, reset)
			secrets = append(secrets, verify, reset)
			require.Equal(t, http.StatusNoContent, s.as(t, http.MethodPost, "/v1/auth/email/verify", "", map[string]string{"token": verify}).status)
			resetPassword := "the reset passphrase for 2026"
			secrets = append(secrets, resetPassword)
			require.Equal(t, http.StatusBadRequest, s.as(t, http.MethodPost, "/v1/auth/password/reset", "", map[string]string{"token": reset + "x", "new_password": resetPassword}).status)
			assert.Empty(t, ofType(s.auditEvents(t), identity.AuditPasswordReset, me.User.ID), "a refused reset writes nothing")
			require.Equal(t, http.StatusNoContent, s.as(t, http.MethodPost, "/v1/auth/password/reset", "", map[string]string{"token": reset, "new_password": resetPassword}).status)
			signedIn := login("audit@example.com", resetPassword).tokens(t)
			secrets = append(secrets, signedIn.Access, signedIn.Refresh)
			res = s.as(t, http.MethodPost, "/v1/me/email", signedIn.Access, map[string]string{"new_email": "audit-new@example.com", "current_password": resetPassword})
			require.Equal(t, http.StatusAccepted, res.status, string(res.body))
			s.deliver(t, smtp)
			var confirm string
			for _, m := range smtp.MessagesTo("audit-new@example.com") {
				if m.Link("/confirm-email") != "" {
					confirm = m.Token()
				}
			}
			require.NotEmpty(t, confirm)
			secrets = append(secrets, confirm)
			require.Equal(t, http.StatusNoContent, s.as(t, http.MethodPost, "/v1/auth/email/confirm", "", map[string]string{"token": confirm}).status)

			// Better-Auth exchange.
			s.importSession(t, "auditSessionToken0123456789abcdef", me.User.ID, s.clock.Now().Add(time.Hour))
			res = s.as(t, http.MethodPost, "/v1/auth/exchange/better-auth", "", map[string]string{"token": signBetterAuth("auditSessionToken0123456789abcdef", betterAuthSecret)})
			require.Equal(t, http.StatusOK, res.status, string(res.body))
			exchanged := res.tokens(t)
			secrets = append(secrets, exchanged.Access, exchanged.Refresh, "auditSessionToken0123456789abcdef")

			// Throttling: the fourth guess in a row (one was above) is refused.
			for range 2 {
				require.Equal(t, http.StatusUnauthorized, login("ghost@example.com", "guess guess guess guess").status)
			}
			require.Equal(t, http.StatusTooManyRequests, login("ghost@example.com", "guess guess guess guess").status)
			require.Equal(t, http.StatusTooManyRequests, login("ghost@example.com", "guess guess guess guess").status)
			require.Equal(t, http.StatusTooManyRequests, login("ghost@example.com", "guess guess guess guess").status)

			events := s.auditEvents(t)
			mine := func(typ string) []identity.AuditEvent { return ofType(events, typ, me.User.ID) }
			want := map[string]int{
				identity.AuditSignup: 1, identity.AuditLoginSucceeded: 7, identity.AuditLoginFailed: 2,
				identity.AuditRefreshReuse: 1, identity.AuditSessionEnded: 3, identity.AuditPasswordChanged: 1,
				identity.AuditPasswordReset: 1, identity.AuditEmailVerified: 1, identity.AuditEmailChanged: 1,
			}
			for typ, n := range want {
				assert.Len(t, mine(typ), n, typ)
			}
			assert.Equal(t, "wrong_password", mine(identity.AuditLoginFailed)[1].Details["reason"])
			assert.Equal(t, "password_change", mine(identity.AuditLoginFailed)[0].Details["operation"])
			assert.Equal(t, "better_auth", mine(identity.AuditLoginSucceeded)[0].Details["method"])
			assert.Equal(t, "password", mine(identity.AuditLoginSucceeded)[1].Details["method"])
			assert.Equal(t, "reuse", mine(identity.AuditRefreshReuse)[0].Details["reason"])
			unknown := ofType(events, identity.AuditLoginFailed, "")
			require.Len(t, unknown, 3, "the unknown account's failures carry no user id")
			for _, e := range unknown {
				assert.Equal(t, "unknown_account", e.Details["reason"])
			}
			throttled := ofType(events, identity.AuditThrottled, "")
			require.Len(t, throttled, 1, "one event for the block, however many requests it refused")
			assert.Equal(t, identity.ScopeLoginAccountIP, throttled[0].Details["scope"])

			for _, e := range events {
				assert.Equal(t, identity.ActorUser, e.Actor, e.Type)
				assert.Equal(t, "127.0.0.1", e.IP, e.Type)
				if e.UserID != other.User.ID {
					assert.Equal(t, auditUA, e.UserAgent, e.Type)
				}
				assert.WithinDuration(t, s.clock.Now(), e.At, time.Hour, e.Type)
				assert.NotEmpty(t, e.Type)
				for k, v := range e.Details {
					assert.NotContains(t, v, "@", "%s: details[%s] holds an address", e.Type, k)
					assert.NotContains(t, v, "$argon2", "%s: details[%s] holds a hash", e.Type, k)
					for _, secret := range secrets {
						assert.NotContains(t, v, secret, "%s: details[%s] holds a secret", e.Type, k)
					}
				}
			}
		})
	}
}

// TestMyEvents: GET /v1/me/events answers the caller's own newest 50
// events, newest first, and only with a valid access token.
func TestMyEvents(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		s := newTestServer(t, d)
		me := s.signUp(t, "events@example.com")
		other := s.signUp(t, "events-other@example.com")
		ctx := context.Background()
		for i := range 90 {
			user := me.User.ID
			if i%3 == 0 {
				user = other.User.ID
			}
			require.NoError(t, s.store.AppendAudit(ctx, identity.AuditEvent{At: s.clock.Now(), Type: identity.AuditLoginFailed, UserID: user,
				Actor: identity.ActorUser, IP: "198.51.100.9", UserAgent: "Old/1.0", Details: map[string]string{"n": fmt.Sprint(i)}}))
		}
		require.NoError(t, s.store.AppendAudit(ctx, identity.AuditEvent{At: s.clock.Now(), Type: identity.AuditUserDisabled, UserID: me.User.ID,
			Actor: identity.ActorAdmin, IP: "10.0.0.1", UserAgent: "curl/8", Details: map[string]string{"reason": "review"}}))

		for name, header := range map[string][]string{
			"no token":      nil,
			"garbage":       {"Authorization", "Bearer not-a-token"},
			"refresh token": {"Authorization", "Bearer " + me.Refresh},
		} {
			res := s.do(t, http.MethodGet, "/v1/me/events", nil, header...)
			assert.Equal(t, http.StatusUnauthorized, res.status, name)
		}

		res := s.bearer(t, http.MethodGet, "/v1/me/events", me.Access, nil)
		require.Equal(t, http.StatusOK, res.status, string(res.body))
		assert.Equal(t, "no-store", res.header.Get("Cache-Control"))
		var body struct {
			Events []struct {
				ID        int64             `json:"id"`
				Type      string            `json:"type"`
				At        time.Time         `json:"at"`
				Actor     string            `json:"actor"`
				IP        string            `json:"ip"`
				UserAgent string            `json:"user_agent"`
				Details   map[string]string `json:"details"`
			} `json:"events"`
		}
		require.NoError(t, json.Unmarshal(res.body, &body))
		require.Len(t, body.Events, 50, "the newest 50 of the user's 62")
		assert.Equal(t, identity.AuditUserDisabled, body.Events[0].Type, "newest first")
		assert.Equal(t, "admin", body.Events[0].Actor)
		assert.Empty(t, body.Events[0].IP, "an administrator's address is not shown")
		assert.Empty(t, body.Events[0].UserAgent)
		assert.Equal(t, "review", body.Events[0].Details["reason"])
		assert.Equal(t, "89", body.Events[1].Details["n"])
		assert.Equal(t, "198.51.100.9", body.Events[1].IP)
		for i, e := range body.Events {
			assert.NotEqual(t, "0", e.Details["n"])
			if n := e.Details["n"]; n != "" {
				var k int
				fmt.Sscan(n, &k)
				assert.NotZero(t, k%3, "another user's event")
			}
			if i > 0 {
				assert.Less(t, e.ID, body.Events[i-1].ID)
			}
		}
		assert.NotContains(t, string(res.body), "@", "no address in /v1/me/events")

		// An ended session's token is refused at once.
		require.Equal(t, http.StatusNoContent, s.post(t, "/v1/auth/logout", map[string]string{"refresh_token": me.Refresh}).status)
		assert.Equal(t, http.StatusUnauthorized, s.bearer(t, http.MethodGet, "/v1/me/events", me.Access, nil).status)
	})
}

// TestAuditStatements: on PostgreSQL the audit trail adds no round trip to
// the hot paths: a refresh is one statement (and writes no event), a reuse
// is the same one statement (event included), and a login's session and
// event are one statement after the account lookup.
func TestAuditStatements(t *testing.T) {
	s := newTestServer(t, store.Postgres, withStatementCounter())
	me := s.signUp(t, "counted@example.com")
	s.statements.Reset()
	res := s.refresh(t, me.Refresh)
	require.Equal(t, http.StatusOK, res.status)
	assert.Equal(t, int64(1), s.statements.Count(), "refresh")
	assert.Empty(t, ofType(s.auditEvents(t), identity.AuditRefreshReuse, me.User.ID))

	s.clock.Advance(time.Minute)
	s.statements.Reset()
	res = s.refresh(t, me.Refresh)
	require.Equal(t, http.StatusUnauthorized, res.status)
	assert.Equal(t, int64(1), s.statements.Count(), "reuse detected, session revoked and event written in one statement")
	assert.Len(t, ofType(s.auditEvents(t), identity.AuditRefreshReuse, me.User.ID), 1)

	s.statements.Reset()
	res = s.post(t, "/v1/auth/login", map[string]string{"email": "counted@example.com", "password": goodPassword})
	require.Equal(t, http.StatusOK, res.status)
	assert.Equal(t, int64(2), s.statements.Count(), "the account lookup, then the session with its event")
	assert.Len(t, ofType(s.auditEvents(t), identity.AuditLoginSucceeded, me.User.ID), 1)
}
