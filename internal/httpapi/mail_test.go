package httpapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
