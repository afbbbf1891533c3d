package httpapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/mail"
	"github.com/lanyard-id/lanyard/internal/mailtest"
	"github.com/lanyard-id/lanyard/internal/store"
)

// deliver runs the outbox once through a real SMTP server.
func (s *testServer) deliver(t *testing.T, smtp *mailtest.Server) {
	t.Helper()
	templates, err := mail.LoadTemplates("")
	require.NoError(t, err)
	postman := mail.Postman{Templates: templates, Sender: mail.NewSMTPSender(smtp.Config()), From: "no-reply@example.com"}
	for {
		n, err := s.svc.DeliverMail(context.Background(), postman, "test")
		require.NoError(t, err)
		if n == 0 {
			return
		}
	}
}

// TestMailTokenExpiry: a link works until its lifetime ends (24 h for a
// verification, 30 min for a reset), then answers like a used one.
func TestMailTokenExpiry(t *testing.T) {
	for _, dialect := range []store.Dialect{store.Postgres, store.SQLite} {
		t.Run(string(dialect), func(t *testing.T) {
			smtp := mailtest.Start(t, mailtest.Options{})
			s := newTestServer(t, dialect)
			s.signUp(t, "expiry@example.com")
			require.Equal(t, http.StatusAccepted, s.post(t, "/v1/auth/password/forgot", map[string]string{"email": "expiry@example.com"}).status)
			s.deliver(t, smtp)
			var verify, reset string
			for _, m := range smtp.MessagesTo("expiry@example.com") {
				if m.Link("/verify-email") != "" {
					verify = m.Token()
				}
				if m.Link("/reset-password") != "" {
					reset = m.Token()
				}
			}
			require.NotEmpty(t, verify)
			require.NotEmpty(t, reset)

			s.clock.Advance(30*time.Minute + time.Second)
			res := s.post(t, "/v1/auth/password/reset", map[string]string{"token": reset, "new_password": "a brand new passphrase 2026"})
			require.Equal(t, http.StatusBadRequest, res.status, string(res.body))
			assert.Equal(t, "invalid_token", res.json(t)["code"])

			s.clock.Advance(24 * time.Hour)
			res = s.post(t, "/v1/auth/email/verify", map[string]string{"token": verify})
			require.Equal(t, http.StatusBadRequest, res.status, string(res.body))
			assert.Equal(t, "invalid_token", res.json(t)["code"])
			var verified bool
			require.NoError(t, s.sql(t).Raw(`SELECT email_verified_at IS NOT NULL FROM users`).Scan(&verified).Error)
			assert.False(t, verified)
		})
	}
}

// TestLegacyStoredAddresses: accounts stored before the address rules (an
// A-label domain, a no-break space) still log in and reset, and nobody can
// sign up the same mailbox under its new spelling.
func TestLegacyStoredAddresses(t *testing.T) {
	for _, dialect := range []store.Dialect{store.Postgres, store.SQLite} {
		t.Run(string(dialect), func(t *testing.T) {
			smtp := mailtest.Start(t, mailtest.Options{SMTPUTF8: true})
			s := newTestServer(t, dialect)
			for stored, signedUp := range map[string]string{
				"old@xn--bcher-kva.de":      "old-alabel@example.com",
				"old\u00a0nbsp@example.com": "old-nbsp@example.com",
			} {
				u := s.signUp(t, signedUp)
				require.NoError(t, s.sql(t).Exec(`UPDATE users SET email = ? WHERE id = ?`, stored, u.User.ID).Error)
				res := s.post(t, "/v1/auth/login", map[string]string{"email": stored, "password": goodPassword})
				require.Equal(t, http.StatusOK, res.status, "%q: %s", stored, res.body)
				res = s.post(t, "/v1/auth/password/forgot", map[string]string{"email": stored})
				require.Equal(t, http.StatusAccepted, res.status, "%q: %s", stored, res.body)
			}
			s.deliver(t, smtp)
			resets := 0
			for _, m := range smtp.Messages() {
				if m.Link("/reset-password") != "" {
					resets++
				}
			}
			assert.Equal(t, 2, resets, "both legacy accounts got their reset link")

			res := s.post(t, "/v1/auth/signup", map[string]string{"email": "old@bücher.de", "password": goodPassword})
			require.Equal(t, http.StatusConflict, res.status, "the A-label account owns this mailbox: %s", res.body)
		})
	}
}

// TestEmailChangeMails: the requester's own address hears of every change
// request, whether or not the new address is taken (so the mails tell
// nothing), and a signed-in user cannot flood an address.
func TestEmailChangeMails(t *testing.T) {
	smtp := mailtest.Start(t, mailtest.Options{})
	s := newTestServer(t, store.Postgres, withRateLimits(identity.RateLimits{MailResend: identity.RateLimit{Max: 3, Window: time.Hour}, MaxDelay: time.Hour}))
	me := s.signUp(t, "changer@example.com")
	s.signUp(t, "taken@example.com")
	change := func(to string) response {
		return s.do(t, http.MethodPost, "/v1/me/email", jsonBody(t, map[string]string{"new_email": to, "current_password": goodPassword}),
			"Authorization", "Bearer "+me.Access)
	}
	require.Equal(t, http.StatusAccepted, change("free@example.com").status)
	require.Equal(t, http.StatusAccepted, change("taken@example.com").status)
	s.deliver(t, smtp)
	notices := 0
	for _, m := range smtp.MessagesTo("changer@example.com") {
		if len(m.Links) == 0 {
			notices++
		}
	}
	assert.Equal(t, 2, notices, "a notice for each request, taken or not")
	assert.Len(t, smtp.MessagesTo("free@example.com"), 1)
	assert.Len(t, smtp.MessagesTo("taken@example.com"), 1, "only its own sign-up verification; no confirmation")

	require.Equal(t, http.StatusAccepted, change("free@example.com").status)
	res := change("free@example.com")
	require.Equal(t, http.StatusTooManyRequests, res.status, "3 per hour: %s", res.body)
	assert.NotEmpty(t, res.header.Get("Retry-After"))
}

// TestRequiredModeLoginSendsNewLink: a user whose link expired gets a new
// one by logging in with the right password, within the mail limit.
func TestRequiredModeLoginSendsNewLink(t *testing.T) {
	smtp := mailtest.Start(t, mailtest.Options{})
	s := newTestServer(t, store.SQLite,
		withConfig(func(c *identity.Config) { c.Mail.Verification = identity.VerificationRequired }),
		withRateLimits(identity.RateLimits{MailResend: identity.RateLimit{Max: 2, Window: time.Hour}, MaxDelay: time.Hour}))
	res := s.post(t, "/v1/auth/signup", map[string]string{"email": "late@example.com", "password": goodPassword})
	require.Equal(t, http.StatusAccepted, res.status, string(res.body))
	s.clock.Advance(25 * time.Hour) // the first link expired
	for range 3 {
		res = s.post(t, "/v1/auth/login", map[string]string{"email": "late@example.com", "password": goodPassword})
		require.Equal(t, http.StatusForbidden, res.status)
		assert.Equal(t, "email_unverified", res.json(t)["code"])
	}
	res = s.post(t, "/v1/auth/login", map[string]string{"email": "late@example.com", "password": "not the password at all"})
	require.Equal(t, http.StatusUnauthorized, res.status)
	s.deliver(t, smtp)
	mails := smtp.MessagesTo("late@example.com")
	require.Len(t, mails, 3, "the sign-up link and two new ones (the limit is 2 per hour)")
	res = s.post(t, "/v1/auth/email/verify", map[string]string{"token": mails[2].Token()})
	require.Equal(t, http.StatusNoContent, res.status, string(res.body))
	res = s.post(t, "/v1/auth/login", map[string]string{"email": "late@example.com", "password": goodPassword})
	require.Equal(t, http.StatusOK, res.status, string(res.body))
}
