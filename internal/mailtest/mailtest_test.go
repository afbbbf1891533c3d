package mailtest_test

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/mail"
	"github.com/lanyard-id/lanyard/internal/mailtest"
)

func send(t *testing.T, srv *mailtest.Server, to, link string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A TLS server is reached through RemoteHost, so that the sender uses
	// STARTTLS (it does not on loopback).
	cfg := srv.Config()
	if srv.CertPool() != nil {
		cfg = srv.RemoteConfig()
	}
	return mail.NewSMTPSender(cfg, srv.SenderOptions()...).Send(ctx, mail.Message{
		ID: "m1", From: "no-reply@lanyard.example", To: to, Subject: "Sübject",
		Text: "Go to " + link + ".\n",
		HTML: `<p><a href="` + strings.ReplaceAll(link, "&", "&amp;") + `">go</a> <a href="https://app.example/other">x</a></p>`,
	})
}

func TestCapturesAndParses(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	link := "https://app.example/confirm-email?token=t0k&x=1"
	require.NoError(t, send(t, srv, "Carol@Example.com", link))
	m := srv.WaitFor(t, 1)[0]
	assert.Equal(t, "Sübject", m.Subject)
	assert.Equal(t, "Go to "+link+".\n", m.Text)
	assert.Equal(t, []string{link, "https://app.example/other"}, m.Links)
	assert.Equal(t, "t0k", m.Token())
	assert.Equal(t, link, m.Link("/confirm-email"))
	assert.Empty(t, m.Link("/nope"))
	assert.Contains(t, string(m.Raw), "Message-ID: <m1@lanyard.example>")
	assert.Len(t, srv.MessagesTo("carol@example.com"), 1)
	assert.Empty(t, srv.MessagesTo("dave@example.com"))
	srv.Reset()
	assert.Empty(t, srv.Messages())
}

func TestWaitForWakesOnArrival(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	errc := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() { errc <- send(t, srv, "carol@example.com", "https://app.example/a?token=x") }()
	}
	assert.Len(t, srv.WaitFor(t, 3), 3)
	for i := 0; i < 3; i++ {
		require.NoError(t, <-errc)
	}
}

func TestWaitForFailsAfterTimeout(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{WaitTimeout: 50 * time.Millisecond})
	ft := &fakeT{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.WaitFor(ft, 1)
	}()
	<-done
	assert.True(t, ft.failed)
	assert.Contains(t, ft.msg, "got 0")
}

// fakeT records Fatalf instead of ending the real test.
type fakeT struct {
	testing.TB
	failed bool
	msg    string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = true
	f.msg = fmt.Sprintf(format, args...)
	// Like testing's Fatalf, do not return to the caller.
	runtime.Goexit()
}

func TestStopRestartSamePort(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	port := srv.Port()
	srv.Stop()
	srv.Stop() // idempotent
	_, err := net.Dial("tcp", srv.Addr())
	require.Error(t, err, "a stopped server refuses connections")
	require.Error(t, send(t, srv, "carol@example.com", "https://app.example/a?token=x"))

	srv.Restart()
	assert.Equal(t, port, srv.Port())
	require.NoError(t, send(t, srv, "carol@example.com", "https://app.example/a?token=x"))
	assert.Len(t, srv.WaitFor(t, 1), 1)
}

func TestRecipientFailures(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	srv.TempFailRecipient("carol@example.com", 2)
	srv.RejectRecipient("ghost@example.com")
	var se *smtp.SMTPError
	for i := 0; i < 2; i++ {
		err := send(t, srv, "CAROL@example.com", "https://app.example/a?token=x")
		require.ErrorAs(t, err, &se)
		assert.Equal(t, 451, se.Code)
	}
	require.NoError(t, send(t, srv, "carol@example.com", "https://app.example/a?token=x"))
	for i := 0; i < 2; i++ {
		err := send(t, srv, "ghost@example.com", "https://app.example/a?token=x")
		require.ErrorAs(t, err, &se)
		assert.Equal(t, 550, se.Code)
	}
	srv.ClearFailures()
	require.NoError(t, send(t, srv, "ghost@example.com", "https://app.example/a?token=x"))
	assert.Len(t, srv.Messages(), 2)
	assert.Equal(t, 6, srv.RcptAttempts())
}

func TestTLSAndAuthOptions(t *testing.T) {
	for name, opts := range map[string]mailtest.Options{
		"starttls":       {STARTTLS: true, RequireTLS: true},
		"implicit":       {ImplicitTLS: true},
		"starttls+auth":  {STARTTLS: true, Username: "u", Password: "p w"},
		"plaintext+auth": {Username: "u", Password: "p"},
	} {
		t.Run(name, func(t *testing.T) {
			srv := mailtest.Start(t, opts)
			cfg, err := mail.ParseSMTPURL(srv.URL())
			require.NoError(t, err)
			assert.Equal(t, srv.Config(), cfg)
			require.NoError(t, send(t, srv, "carol@example.com", "https://app.example/a?token=x"))
			m := srv.WaitFor(t, 1)[0]
			assert.Equal(t, opts.STARTTLS || opts.ImplicitTLS, m.TLS)
			assert.Equal(t, opts.Username, m.AuthUser)
			if opts.STARTTLS || opts.ImplicitTLS {
				assert.NotNil(t, srv.CertPool())
			}
		})
	}
}

func TestAuthRequiredAndTLSRequired(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{Username: "u", Password: "p"})
	c, err := smtp.Dial(srv.Addr())
	require.NoError(t, err)
	defer c.Close()
	var se *smtp.SMTPError
	require.ErrorAs(t, c.Mail("a@example.com", nil), &se)
	assert.Equal(t, 530, se.Code)

	srv = mailtest.Start(t, mailtest.Options{STARTTLS: true, RequireTLS: true})
	c2, err := smtp.Dial(srv.Addr())
	require.NoError(t, err)
	defer c2.Close()
	require.ErrorAs(t, c2.Mail("a@example.com", nil), &se)
	assert.Equal(t, 530, se.Code)
}

func TestBlackholeNeverAnswers(t *testing.T) {
	addr := mailtest.Blackhole(t)
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout())
}
