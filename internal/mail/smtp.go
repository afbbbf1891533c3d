package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Sender delivers one message. Send honours ctx's deadline and cancellation
// at every step (dial, TLS handshake, each SMTP command, the data transfer).
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// SenderFunc adapts a function to Sender (handy for tests and decorators).
type SenderFunc func(ctx context.Context, m Message) error

// Send calls f.
func (f SenderFunc) Send(ctx context.Context, m Message) error { return f(ctx, m) }

// DialFunc opens the TCP connection; net.Dialer.DialContext fits.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Option configures NewSMTPSender.
type Option func(*smtpSender)

// WithTLSConfig sets the TLS client configuration (RootCAs for a test
// server's self-signed certificate, a minimum version…). ServerName defaults
// to Config.Host.
func WithTLSConfig(c *tls.Config) Option {
	return func(s *smtpSender) { s.tls = c.Clone() }
}

// WithDialer replaces the TCP dialer, e.g. to reach a test server under a
// host name that is not loopback.
func WithDialer(d DialFunc) Option {
	return func(s *smtpSender) { s.dial = d }
}

// WithHelloName sets the name announced in EHLO (default "localhost").
func WithHelloName(name string) Option {
	return func(s *smtpSender) { s.helloName = name }
}

// WithTimeout bounds a Send whose context has no deadline (default 1 minute),
// so that a relay that stops answering cannot hold a sender forever.
func WithTimeout(d time.Duration) Option {
	return func(s *smtpSender) { s.timeout = d }
}

// WithClock sets the clock used for the Date header.
func WithClock(now func() time.Time) Option {
	return func(s *smtpSender) { s.now = now }
}

type smtpSender struct {
	cfg       Config
	tls       *tls.Config
	dial      DialFunc
	helloName string
	timeout   time.Duration
	now       func() time.Time
}

// NewSMTPSender returns a Sender that opens one connection per message with
// github.com/emersion/go-smtp: implicit TLS or STARTTLS (required unless
// the host is loopback, see Config), then AUTH PLAIN (or LOGIN when that is
// all the server offers) if a user name is set.
func NewSMTPSender(cfg Config, opts ...Option) Sender {
	s := &smtpSender{
		cfg:       cfg,
		dial:      (&net.Dialer{}).DialContext,
		helloName: "localhost",
		timeout:   time.Minute,
		now:       time.Now,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Stages of a Send, named in errors so an operator can tell a DNS problem
// from a refused recipient.
const (
	stageDial     = "connect"
	stageTLS      = "tls"
	stageHello    = "ehlo"
	stageStartTLS = "starttls"
	stageAuth     = "auth"
	stageMail     = "mail from"
	stageRcpt     = "rcpt to"
	stageData     = "data"
)

// SendError is what Send returns for a failure after the message was
// accepted for encoding: the stage it failed at and the cause, which may be
// an *smtp.SMTPError carrying the server's reply.
type SendError struct {
	Stage string
	Err   error
}

func (e *SendError) Error() string { return "smtp " + e.Stage + ": " + e.Err.Error() }
func (e *SendError) Unwrap() error { return e.Err }

// Permanent reports whether retrying cannot help: a 5xx reply to RCPT TO
// (unknown or refused recipient) or to the message data (content refused).
// A 5xx at connect, EHLO, STARTTLS, AUTH or MAIL FROM means the relay or our
// configuration is wrong, which affects every mail alike and gets fixed by an
// operator, so the mail is kept for later instead.
func (e *SendError) Permanent() bool {
	var se *smtp.SMTPError
	if !errors.As(e.Err, &se) || se.Code < 500 || se.Code > 599 {
		return false
	}
	return e.Stage == stageRcpt || e.Stage == stageData
}

type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() error   { return e.err }
func (e *permanentError) Permanent() bool { return true }

func permanent(err error) error { return &permanentError{err} }

// IsPermanent reports whether err means this message will never be
// delivered, so the outbox should stop retrying it: a 5xx reply to the
// recipient or to the data (see SendError.Permanent) or a message that cannot
// be encoded (bad address, header injection). Connection failures, timeouts,
// 4xx replies and relay-wide problems (TLS, authentication) are temporary.
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return err != nil && errors.As(err, &p) && p.Permanent()
}

func (s *smtpSender) Send(ctx context.Context, m Message) (err error) {
	raw, err := Encode(m, s.now())
	if err != nil {
		return err
	}
	from, fromUTF8, err := envelopeAddress("From", m.From)
	if err != nil {
		return err
	}
	to, toUTF8, err := envelopeAddress("To", m.To)
	if err != nil {
		return err
	}

	if _, ok := ctx.Deadline(); !ok && s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	// Whatever the failure, a cancelled or expired context is the cause the
	// caller wants to see (the I/O error is only its symptom).
	defer func() {
		if err == nil {
			return
		}
		cause := ctx.Err()
		if dl, ok := ctx.Deadline(); ok && cause == nil && !time.Now().Before(dl) {
			// The connection deadline (same instant) fired before the
			// context's own timer did.
			cause = context.DeadlineExceeded
		}
		if cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w (%w)", cause, err)
		}
	}()

	conn, err := s.dial(ctx, "tcp", s.cfg.Addr())
	if err != nil {
		return &SendError{Stage: stageDial, Err: err}
	}
	// go-smtp has no context support; closing the connection when ctx ends
	// unblocks whatever read or write is in progress.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}

	tlsConfig := s.tlsConfig()
	var c *smtp.Client
	switch {
	case s.cfg.ImplicitTLS:
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return &SendError{Stage: stageTLS, Err: err}
		}
		c = smtp.NewClient(tc)
	case s.cfg.RequiresSTARTTLS():
		// Fails when the server does not offer STARTTLS: nothing, not even
		// MAIL FROM, goes out in clear text to a remote host.
		c, err = smtp.NewClientStartTLS(conn, tlsConfig)
		if err != nil {
			return &SendError{Stage: stageStartTLS, Err: err}
		}
	default:
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		// go-smtp sets its own per-command deadline on the connection; keep
		// it within ours.
		if d := time.Until(dl); d > 0 {
			c.CommandTimeout, c.SubmissionTimeout = d, d
		}
	}

	if err := c.Hello(s.helloName); err != nil {
		return &SendError{Stage: stageHello, Err: err}
	}
	if s.cfg.Username != "" {
		if err := s.auth(c); err != nil {
			return &SendError{Stage: stageAuth, Err: err}
		}
	}
	var mopts *smtp.MailOptions
	if fromUTF8 || toUTF8 || !isASCII(string(raw)) {
		if ok, _ := c.Extension("SMTPUTF8"); !ok {
			// Only a different relay can carry this address.
			return permanent(&SendError{Stage: stageMail, Err: errors.New("the address needs SMTPUTF8, which the server does not support")})
		}
		mopts = &smtp.MailOptions{UTF8: true}
	}
	if err := c.Mail(from, mopts); err != nil {
		return &SendError{Stage: stageMail, Err: err}
	}
	if err := c.Rcpt(to, nil); err != nil {
		return &SendError{Stage: stageRcpt, Err: err}
	}
	w, err := c.Data()
	if err != nil {
		return &SendError{Stage: stageData, Err: err}
	}
	if _, err := w.Write(raw); err != nil {
		_ = w.Close()
		return &SendError{Stage: stageData, Err: err}
	}
	if err := w.Close(); err != nil {
		return &SendError{Stage: stageData, Err: err}
	}
	// The message is accepted at this point; a failing QUIT changes nothing.
	_ = c.Quit()
	return nil
}

func (s *smtpSender) tlsConfig() *tls.Config {
	c := &tls.Config{}
	if s.tls != nil {
		c = s.tls.Clone()
	}
	if c.ServerName == "" {
		c.ServerName = strings.Trim(s.cfg.Host, "[]")
	}
	if c.MinVersion == 0 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}

// auth authenticates with PLAIN, or LOGIN for servers that only offer that
// (older Exchange). Errors carry the server's reply, never the credentials.
func (s *smtpSender) auth(c *smtp.Client) error {
	if ok, _ := c.Extension("AUTH"); !ok {
		return errors.New("server does not offer AUTH but credentials are configured")
	}
	switch {
	case c.SupportsAuth(sasl.Plain):
		return c.Auth(sasl.NewPlainClient("", s.cfg.Username, s.cfg.Password))
	case c.SupportsAuth(sasl.Login):
		return c.Auth(sasl.NewLoginClient(s.cfg.Username, s.cfg.Password))
	default:
		return errors.New("server offers neither AUTH PLAIN nor AUTH LOGIN")
	}
}
