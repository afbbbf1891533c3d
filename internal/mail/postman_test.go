package mail_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/mail"
	"github.com/lanyard-id/lanyard/internal/mailtest"
)

// TestPostmanLogsWithoutSMTP: the development default logs the link and
// sends nothing.
func TestPostmanLogsWithoutSMTP(t *testing.T) {
	templates, err := mail.LoadTemplates("")
	require.NoError(t, err)
	var buf bytes.Buffer
	p := mail.Postman{Templates: templates, AppName: "Learn", Log: slog.New(slog.NewJSONHandler(&buf, nil))}
	link := "http://localhost:3000/verify-email?token=lmt_abc"
	require.NoError(t, p.Deliver(context.Background(), "id-1", identity.KindVerifyEmail, "ada@example.com",
		identity.MailData{Email: "ada@example.com", Link: link, ExpiresIn: time.Hour}))
	var rec map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rec))
	assert.Equal(t, link, rec["link"])
	assert.Equal(t, "ada@example.com", rec["to"])
}

// TestPostmanSends renders and sends through a real SMTP server; a kind
// without a template is a permanent failure.
func TestPostmanSends(t *testing.T) {
	smtp := mailtest.Start(t, mailtest.Options{})
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "verify_email.subject.txt"), []byte("Welcome to {{.AppName}}"), 0o600))
	templates, err := mail.LoadTemplates(dir)
	require.NoError(t, err)
	p := mail.Postman{Templates: templates, Sender: mail.NewSMTPSender(smtp.Config()), From: "Learn <no-reply@learn.example.com>", AppName: "Learn"}
	require.NoError(t, p.Deliver(context.Background(), "mail-1", identity.KindVerifyEmail, "ada@example.com",
		identity.MailData{Email: "ada@example.com", Link: "https://learn.example.com/verify-email?token=lmt_abc", ExpiresIn: time.Hour}))
	got := smtp.MessagesTo("ada@example.com")
	require.Len(t, got, 1)
	assert.Equal(t, "Welcome to Learn", got[0].Subject)
	assert.Equal(t, "lmt_abc", got[0].Token())

	err = p.Deliver(context.Background(), "mail-2", "no_such_kind", "ada@example.com", identity.MailData{})
	require.Error(t, err)
	assert.True(t, p.Permanent(err))
	smtp.Stop()
	err = p.Deliver(context.Background(), "mail-3", identity.KindVerifyEmail, "ada@example.com", identity.MailData{Email: "ada@example.com"})
	require.Error(t, err)
	assert.False(t, p.Permanent(err), "a relay that is down is retried")
}
