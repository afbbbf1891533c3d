package mail_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/mail"
	"github.com/lanyard-id/lanyard/internal/mailtest"
)

// remoteHost is a name that is not loopback, so the sender must insist on
// STARTTLS; dialVia sends it to the test server instead of asking DNS.
const remoteHost = "smtp.lanyard.test"

func dialVia(addr string) mail.Option {
	return mail.WithDialer(func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	})
}

func remote(cfg mail.Config) mail.Config {
	cfg.Host = remoteHost
	return cfg
}

func message(to string) mail.Message {
	return mail.Message{
		ID:      "outbox-42",
		From:    "Lanyard <no-reply@lanyard.example>",
		To:      to,
		Subject: "Confirm your email address",
		Text:    "Open https://app.example/verify-email?token=abc123 to confirm.\n",
		HTML:    `<p><a href="https://app.example/verify-email?token=abc123">Confirm</a></p>`,
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestSendPlainOnLoopback(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	s := mail.NewSMTPSender(srv.Config())
	require.NoError(t, s.Send(ctxTimeout(t, 10*time.Second), message("carol@example.com")))

	msgs := srv.WaitFor(t, 1)
	require.Len(t, msgs, 1)
	m := msgs[0]
	assert.Equal(t, "no-reply@lanyard.example", m.From)
	assert.Equal(t, []string{"carol@example.com"}, m.To)
	assert.False(t, m.TLS)
	assert.Equal(t, "Confirm your email address", m.Subject)
	assert.Equal(t, "<outbox-42@lanyard.example>", m.Header.Get("Message-ID"))
	assert.Contains(t, m.Text, "https://app.example/verify-email?token=abc123")
	assert.Contains(t, m.HTML, `href="https://app.example/verify-email?token=abc123"`)
	assert.Equal(t, []string{"https://app.example/verify-email?token=abc123"}, m.Links)
	assert.Equal(t, "abc123", m.Token())
	assert.Equal(t, m.Links[0], m.Link("/verify-email"))
}

func TestSendSTARTTLSToRemoteHost(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{STARTTLS: true, Hostnames: []string{remoteHost}})
	s := mail.NewSMTPSender(remote(srv.Config()), dialVia(srv.Addr()), mail.WithTLSConfig(srv.ClientTLSConfig()))
	require.NoError(t, s.Send(ctxTimeout(t, 10*time.Second), message("carol@example.com")))
	msgs := srv.WaitFor(t, 1)
	assert.True(t, msgs[0].TLS, "the message went over TLS")
}

func TestSendRefusesRemoteHostWithoutSTARTTLS(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{Username: "app", Password: "s3cr3t-pw"})
	s := mail.NewSMTPSender(remote(srv.Config()), dialVia(srv.Addr()))
	err := s.Send(ctxTimeout(t, 10*time.Second), message("carol@example.com"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "STARTTLS")
	assert.NotContains(t, err.Error(), "s3cr3t-pw")
	assert.False(t, mail.IsPermanent(err))
	assert.Empty(t, srv.Messages())
	assert.Zero(t, srv.RcptAttempts(), "nothing was said in clear text")
}

func TestSendRefusesUntrustedCertificate(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{STARTTLS: true, Hostnames: []string{remoteHost}})
	s := mail.NewSMTPSender(remote(srv.Config()), dialVia(srv.Addr())) // system roots only
	err := s.Send(ctxTimeout(t, 10*time.Second), message("carol@example.com"))
	require.Error(t, err)
	assert.False(t, mail.IsPermanent(err))
	assert.Empty(t, srv.Messages())

	// A certificate for another name is refused too.
	s = mail.NewSMTPSender(remote(srv.Config()), dialVia(srv.Addr()),
		mail.WithTLSConfig(&tls.Config{RootCAs: srv.CertPool(), ServerName: "other.example"}))
	require.Error(t, s.Send(ctxTimeout(t, 10*time.Second), message("carol@example.com")))
	assert.Empty(t, srv.Messages())
}

func TestSendImplicitTLS(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{ImplicitTLS: true, Hostnames: []string{remoteHost}})
	cfg, err := mail.ParseSMTPURL(srv.URL())
	require.NoError(t, err)
	require.True(t, cfg.ImplicitTLS)
	s := mail.NewSMTPSender(remote(cfg), dialVia(srv.Addr()), mail.WithTLSConfig(srv.ClientTLSConfig()))
	require.NoError(t, s.Send(ctxTimeout(t, 10*time.Second), message("carol@example.com")))
	assert.True(t, srv.WaitFor(t, 1)[0].TLS)
}

func TestSendAuth(t *testing.T) {
	opts := mailtest.Options{STARTTLS: true, RequireTLS: true, Username: "app@lanyard.example", Password: "p@ss:w/rd s3cr3t", Hostnames: []string{remoteHost}}
	srv := mailtest.Start(t, opts)
	cfg, err := mail.ParseSMTPURL(srv.URL())
	require.NoError(t, err)
	assert.Equal(t, opts.Password, cfg.Password)
	s := mail.NewSMTPSender(remote(cfg), dialVia(srv.Addr()), mail.WithTLSConfig(srv.ClientTLSConfig()))
	require.NoError(t, s.Send(ctxTimeout(t, 10*time.Second), message("carol@example.com")))
	m := srv.WaitFor(t, 1)[0]
	assert.Equal(t, "app@lanyard.example", m.AuthUser)
	assert.True(t, m.TLS)

	t.Run("wrong password", func(t *testing.T) {
		bad := remote(cfg)
		bad.Password = "wr0ng-s3cr3t"
		err := mail.NewSMTPSender(bad, dialVia(srv.Addr()), mail.WithTLSConfig(srv.ClientTLSConfig())).
			Send(ctxTimeout(t, 10*time.Second), message("carol@example.com"))
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "wr0ng-s3cr3t")
		assert.NotContains(t, err.Error(), "s3cr3t")
		var se *smtp.SMTPError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, 535, se.Code)
		assert.False(t, mail.IsPermanent(err), "a credentials problem is fixed by an operator, the mail waits")
	})
	t.Run("no credentials", func(t *testing.T) {
		anon := remote(cfg)
		anon.Username, anon.Password = "", ""
		err := mail.NewSMTPSender(anon, dialVia(srv.Addr()), mail.WithTLSConfig(srv.ClientTLSConfig())).
			Send(ctxTimeout(t, 10*time.Second), message("carol@example.com"))
		require.Error(t, err)
		assert.False(t, mail.IsPermanent(err))
	})
	assert.Len(t, srv.Messages(), 1)
}

func TestSendAuthOnLoopbackPlaintext(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{Username: "dev", Password: "devpw"})
	require.NoError(t, mail.NewSMTPSender(srv.Config()).Send(ctxTimeout(t, 10*time.Second), message("carol@example.com")))
	assert.Equal(t, "dev", srv.WaitFor(t, 1)[0].AuthUser)
}

func TestSendPermanentFailure(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	srv.RejectRecipient("nobody@example.com")
	s := mail.NewSMTPSender(srv.Config())
	err := s.Send(ctxTimeout(t, 10*time.Second), message("nobody@example.com"))
	require.Error(t, err)
	assert.True(t, mail.IsPermanent(err))
	var se *smtp.SMTPError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 550, se.Code)
	var sendErr *mail.SendError
	require.ErrorAs(t, err, &sendErr)
	assert.Equal(t, "rcpt to", sendErr.Stage)
	assert.Empty(t, srv.Messages())

	// Other recipients are unaffected.
	require.NoError(t, s.Send(ctxTimeout(t, 10*time.Second), message("carol@example.com")))
}

func TestSendTemporaryFailure(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	srv.TempFailRecipient("carol@example.com", 1)
	s := mail.NewSMTPSender(srv.Config())
	err := s.Send(ctxTimeout(t, 10*time.Second), message("carol@example.com"))
	require.Error(t, err)
	assert.False(t, mail.IsPermanent(err))
	var se *smtp.SMTPError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 451, se.Code)
	assert.Empty(t, srv.Messages())

	require.NoError(t, s.Send(ctxTimeout(t, 10*time.Second), message("carol@example.com")), "the retry goes through")
	assert.Len(t, srv.WaitFor(t, 1), 1)
	assert.Equal(t, 2, srv.RcptAttempts())
}

func TestSendConnectionRefusedThenRestart(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	s := mail.NewSMTPSender(srv.Config())
	srv.Stop()
	err := s.Send(ctxTimeout(t, 10*time.Second), message("carol@example.com"))
	require.Error(t, err)
	assert.False(t, mail.IsPermanent(err))
	assert.True(t, errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "refused"), err.Error())

	srv.Restart()
	require.NoError(t, s.Send(ctxTimeout(t, 10*time.Second), message("carol@example.com")))
	assert.Len(t, srv.WaitFor(t, 1), 1)
}

func TestSendHonoursContextDeadline(t *testing.T) {
	addr := mailtest.Blackhole(t)
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	cfg, err := mail.ParseSMTPURL("smtp://" + net.JoinHostPort(host, port))
	require.NoError(t, err)

	for _, implicit := range []bool{false, true} {
		cfg.ImplicitTLS = implicit
		s := mail.NewSMTPSender(cfg, mail.WithTimeout(time.Hour))
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		err = s.Send(ctx, message("carol@example.com"))
		elapsed := time.Since(start)
		cancel()
		require.Error(t, err)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.False(t, mail.IsPermanent(err))
		assert.Less(t, elapsed, 5*time.Second, "gave up near the deadline, not at go-smtp's 5-minute command timeout")
	}

	t.Run("cancellation", func(t *testing.T) {
		s := mail.NewSMTPSender(cfg)
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- s.Send(ctx, message("carol@example.com")) }()
		cancel()
		select {
		case err := <-errc:
			assert.ErrorIs(t, err, context.Canceled)
		case <-time.After(5 * time.Second):
			t.Fatal("Send ignored cancellation")
		}
	})

	t.Run("default timeout without deadline", func(t *testing.T) {
		s := mail.NewSMTPSender(cfg, mail.WithTimeout(200*time.Millisecond))
		err := s.Send(context.Background(), message("carol@example.com"))
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

func TestSendRefusesHeaderInjection(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	s := mail.NewSMTPSender(srv.Config())
	m := message("carol@example.com")
	m.Subject = "Hello\r\nBcc: victim@example.org"
	err := s.Send(ctxTimeout(t, 10*time.Second), m)
	require.ErrorIs(t, err, mail.ErrHeaderInjection)
	assert.True(t, mail.IsPermanent(err))
	assert.Zero(t, srv.RcptAttempts())
}

func TestSendInternationalAddresses(t *testing.T) {
	t.Run("IDN domain goes out as A-label", func(t *testing.T) {
		srv := mailtest.Start(t, mailtest.Options{})
		require.NoError(t, mail.NewSMTPSender(srv.Config()).Send(ctxTimeout(t, 10*time.Second), message("user@bücher.de")))
		m := srv.WaitFor(t, 1)[0]
		assert.Equal(t, []string{"user@xn--bcher-kva.de"}, m.To)
		assert.False(t, m.UTF8)
	})
	t.Run("UTF-8 local part needs SMTPUTF8", func(t *testing.T) {
		srv := mailtest.Start(t, mailtest.Options{})
		err := mail.NewSMTPSender(srv.Config()).Send(ctxTimeout(t, 10*time.Second), message("josé@example.com"))
		require.Error(t, err)
		assert.True(t, mail.IsPermanent(err))
		assert.Empty(t, srv.Messages())

		srv = mailtest.Start(t, mailtest.Options{SMTPUTF8: true})
		require.NoError(t, mail.NewSMTPSender(srv.Config()).Send(ctxTimeout(t, 10*time.Second), message("josé@example.com")))
		m := srv.WaitFor(t, 1)[0]
		assert.Equal(t, []string{"josé@example.com"}, m.To)
		assert.True(t, m.UTF8)
	})
}

// TestRenderedMailEndToEnd renders a default template, sends it and follows
// the link out of what the server received.
func TestRenderedMailEndToEnd(t *testing.T) {
	tpl, err := mail.LoadTemplates("")
	require.NoError(t, err)
	link := "https://app.example/reset-password?token=Zm9vYmFy_-"
	subject, text, html, err := tpl.Render(mail.KindResetPassword, mail.Data{AppName: "Acme", Email: "carol@example.com", Link: link, ExpiresIn: 30 * time.Minute})
	require.NoError(t, err)

	srv := mailtest.Start(t, mailtest.Options{})
	fixed := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	s := mail.NewSMTPSender(srv.Config(), mail.WithClock(func() time.Time { return fixed }), mail.WithHelloName("lanyard.example"))
	require.NoError(t, s.Send(ctxTimeout(t, 10*time.Second), mail.Message{ID: "7", From: "no-reply@lanyard.example", To: "carol@example.com", Subject: subject, Text: text, HTML: html}))

	m := srv.WaitFor(t, 1)[0]
	assert.Equal(t, "Reset your Acme password", m.Subject)
	assert.Equal(t, []string{link}, m.Links, "the same link in the text and the HTML part")
	assert.Equal(t, "Zm9vYmFy_-", m.Token())
	assert.Contains(t, m.Text, "30 minutes")
	date, err := m.Header.Date()
	require.NoError(t, err)
	assert.True(t, date.Equal(fixed))
}

func TestSenderFunc(t *testing.T) {
	var got mail.Message
	var s mail.Sender = mail.SenderFunc(func(_ context.Context, m mail.Message) error { got = m; return nil })
	require.NoError(t, s.Send(context.Background(), message("carol@example.com")))
	assert.Equal(t, "carol@example.com", got.To)
}
