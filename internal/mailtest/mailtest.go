// Package mailtest runs a real SMTP server (github.com/emersion/go-smtp) inside
// a test, on 127.0.0.1, and records what it receives, so that tests exercise
// the whole SMTP conversation (TLS, AUTH, envelope, MIME) instead of a fake
// Sender.
package mailtest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"html"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/lanyard-id/lanyard/internal/mail"
)

// RemoteHost is a name that is not loopback, in the server's certificate,
// that SenderOptions routes to the server: with it the sender treats the
// server as a remote relay and insists on STARTTLS, as in production.
const RemoteHost = "smtp.mailtest.test"

// Options configures Start. The zero value is a plaintext server without
// AUTH, which is what the sender accepts on loopback.
type Options struct {
	// STARTTLS offers STARTTLS with a generated self-signed certificate (see
	// Server.CertPool).
	STARTTLS bool
	// ImplicitTLS makes the listener speak TLS from the first byte (smtps).
	ImplicitTLS bool
	// RequireTLS refuses MAIL FROM (530) on a connection that is not TLS.
	RequireTLS bool
	// Username and Password, when set, turn on AUTH PLAIN and make it
	// mandatory before MAIL FROM. AUTH is offered over plaintext too, as
	// the sender uses it that way on loopback.
	Username, Password string
	// Hostnames are added to the certificate besides localhost, 127.0.0.1
	// and ::1, for tests that reach the server under a non-loopback name.
	Hostnames []string
	// SMTPUTF8 advertises SMTPUTF8 (RFC 6531).
	SMTPUTF8 bool
	// WaitTimeout bounds WaitFor (default 10 s).
	WaitTimeout time.Duration
}

// Message is one accepted mail.
type Message struct {
	From     string   // MAIL FROM
	To       []string // RCPT TO
	Raw      []byte   // the DATA as received
	Header   netmail.Header
	Subject  string // RFC 2047 decoded
	Text     string // decoded text/plain part
	HTML     string // decoded text/html part
	Links    []string
	TLS      bool   // the connection was TLS (implicit or STARTTLS)
	AuthUser string // user name that authenticated, if any
	UTF8     bool   // MAIL FROM had SMTPUTF8
}

// Link returns the first link whose path is path ("/verify-email"), or "".
func (m Message) Link(path string) string {
	for _, l := range m.Links {
		if u, err := url.Parse(l); err == nil && u.Path == path {
			return l
		}
	}
	return ""
}

// Token returns the "token" query parameter of the first link that has one.
func (m Message) Token() string {
	for _, l := range m.Links {
		if u, err := url.Parse(l); err == nil {
			if tok := u.Query().Get("token"); tok != "" {
				return tok
			}
		}
	}
	return ""
}

// Server is a running test SMTP server.
type Server struct {
	t    testing.TB
	opts Options
	addr string // fixed at Start, reused by Restart

	certPool *x509.CertPool
	tlsCert  tls.Certificate

	mu       sync.Mutex
	srv      *smtp.Server
	listener net.Listener
	done     chan struct{} // closed when the current Serve returns
	msgs     []Message
	changed  chan struct{} // closed and replaced whenever msgs grows
	failures map[string]*failure
	attempts int // RCPT commands seen
}

type failure struct {
	code  int
	times int // remaining; < 0 = forever
}

// Start runs a server on 127.0.0.1 at a free port; it stops when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.WaitTimeout <= 0 {
		opts.WaitTimeout = 10 * time.Second
	}
	s := &Server{t: t, opts: opts, changed: make(chan struct{}), failures: map[string]*failure{}}
	if opts.STARTTLS || opts.ImplicitTLS {
		cert, pool, err := selfSigned(opts.Hostnames)
		if err != nil {
			t.Fatalf("mailtest: certificate: %v", err)
		}
		s.tlsCert, s.certPool = cert, pool
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	s.addr = l.Addr().String()
	s.serve(l)
	t.Cleanup(s.Stop)
	return s
}

// Addr is "127.0.0.1:port".
func (s *Server) Addr() string { return s.addr }

// Host is "127.0.0.1".
func (s *Server) Host() string { h, _, _ := net.SplitHostPort(s.addr); return h }

// Port is the listening port, the same across Restart.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Config is a mail.Config that reaches this server.
func (s *Server) Config() mail.Config {
	return mail.Config{Host: s.Host(), Port: s.Port(), Username: s.opts.Username,
		Password: s.opts.Password, ImplicitTLS: s.opts.ImplicitTLS}
}

// RemoteConfig is Config with Host set to RemoteHost; use it with
// SenderOptions.
func (s *Server) RemoteConfig() mail.Config {
	cfg := s.Config()
	cfg.Host = RemoteHost
	return cfg
}

// SenderOptions make a mail sender reach this server whatever host it is
// configured with, and trust the server's certificate.
func (s *Server) SenderOptions() []mail.Option {
	return []mail.Option{
		mail.WithTLSConfig(s.ClientTLSConfig()),
		mail.WithDialer(func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, s.addr)
		}),
	}
}

// URL is an smtp:// or smtps:// URL for this server, as LANYARD_SMTP_URL.
func (s *Server) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.addr}
	if s.opts.ImplicitTLS {
		u.Scheme = "smtps"
	}
	if s.opts.Username != "" {
		u.User = url.UserPassword(s.opts.Username, s.opts.Password)
	}
	return u.String()
}

// CertPool trusts the server's self-signed certificate (nil without TLS).
func (s *Server) CertPool() *x509.CertPool { return s.certPool }

// ClientTLSConfig is a client TLS configuration that trusts the server.
func (s *Server) ClientTLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.certPool, MinVersion: tls.VersionTLS12}
}

func (s *Server) serve(l net.Listener) {
	srv := smtp.NewServer(&backend{s})
	srv.Domain = "mailtest.localhost"
	srv.AllowInsecureAuth = true
	srv.EnableSMTPUTF8 = s.opts.SMTPUTF8
	srv.MaxMessageBytes = 10 << 20
	srv.ErrorLog = log.New(io.Discard, "", 0)
	// Bounds a connection a broken client leaves open, so Stop never hangs.
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	tlsConf := &tls.Config{Certificates: []tls.Certificate{s.tlsCert}, MinVersion: tls.VersionTLS12}
	if s.opts.STARTTLS {
		srv.TLSConfig = tlsConf
	}
	if s.opts.ImplicitTLS {
		l = tls.NewListener(l, tlsConf)
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.srv, s.listener, s.done = srv, l, done
	s.mu.Unlock()
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
}

// Stop closes the listener and every open connection, so the port refuses
// connections, as a relay that is down does. Messages are kept.
func (s *Server) Stop() {
	s.mu.Lock()
	srv, l, done := s.srv, s.listener, s.done
	s.srv, s.listener = nil, nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	// Our own Close of the listener, because smtp.Server.Close only closes
	// the listeners Serve has registered, which it may not have done yet.
	_ = l.Close()
	_ = srv.Close()
	<-done
}

// Restart listens again on the same port after Stop.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	running := s.srv != nil
	s.mu.Unlock()
	if running {
		s.t.Fatalf("mailtest: Restart without Stop")
	}
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatalf("mailtest: listen again on %s: %v", s.addr, err)
	}
	s.serve(l)
}

// FailRecipient answers RCPT TO for addr (case-insensitive) with code: a
// 4xx code is a temporary failure, a 5xx one a permanent one. times > 0
// limits how many RCPT commands fail before the address is accepted again;
// times <= 0 means until ClearFailures.
func (s *Server) FailRecipient(addr string, code, times int) {
	if times <= 0 {
		times = -1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[strings.ToLower(addr)] = &failure{code: code, times: times}
}

// TempFailRecipient answers 451 to the next n RCPT TO for addr.
func (s *Server) TempFailRecipient(addr string, n int) { s.FailRecipient(addr, 451, n) }

// RejectRecipient answers 550 (no such user) to every RCPT TO for addr.
func (s *Server) RejectRecipient(addr string) { s.FailRecipient(addr, 550, 0) }

// ClearFailures accepts every recipient again.
func (s *Server) ClearFailures() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = map[string]*failure{}
}

// RcptAttempts counts RCPT TO commands, refused ones included.
func (s *Server) RcptAttempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

// Messages returns a copy of the accepted messages, in arrival order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// MessagesTo returns the accepted messages with addr among the recipients.
func (s *Server) MessagesTo(addr string) []Message {
	var out []Message
	for _, m := range s.Messages() {
		for _, r := range m.To {
			if strings.EqualFold(r, addr) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// Reset forgets the messages received so far.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = nil
}

// WaitFor blocks until at least n messages have arrived and returns them
// all; it fails the test after Options.WaitTimeout. It wakes up on each
// arrival (no polling).
func (s *Server) WaitFor(t testing.TB, n int) []Message {
	t.Helper()
	timeout := time.NewTimer(s.opts.WaitTimeout)
	defer timeout.Stop()
	for {
		s.mu.Lock()
		if len(s.msgs) >= n {
			out := append([]Message(nil), s.msgs...)
			s.mu.Unlock()
			return out
		}
		changed, got := s.changed, len(s.msgs)
		s.mu.Unlock()
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("mailtest: waited %s for %d messages, got %d", s.opts.WaitTimeout, n, got)
			return nil
		}
	}
}

func (s *Server) add(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	close(s.changed)
	s.changed = make(chan struct{})
}

// rcptFailure consumes one failure for addr, if any.
func (s *Server) rcptFailure(addr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts++
	f := s.failures[strings.ToLower(addr)]
	if f == nil || f.times == 0 {
		return 0
	}
	if f.times > 0 {
		f.times--
	}
	return f.code
}

type backend struct{ s *Server }

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s, conn: c}, nil
}

type session struct {
	s        *Server
	conn     *smtp.Conn
	authUser string
	from     string
	utf8     bool
	to       []string
}

var _ smtp.AuthSession = (*session)(nil)

func (se *session) AuthMechanisms() []string {
	if se.s.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (se *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || se.s.opts.Username == "" {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			return errors.New("identity mismatch")
		}
		if username != se.s.opts.Username || password != se.s.opts.Password {
			return smtp.ErrAuthFailed
		}
		se.authUser = username
		return nil
	}), nil
}

func (se *session) isTLS() bool {
	_, ok := se.conn.TLSConnectionState()
	return ok
}

func (se *session) Mail(from string, opts *smtp.MailOptions) error {
	if se.s.opts.RequireTLS && !se.isTLS() {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	}
	if se.s.opts.Username != "" && se.authUser == "" {
		// RFC 4954's reply (go-smtp's ErrAuthRequired says 502).
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	se.from = from
	se.utf8 = opts != nil && opts.UTF8
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if code := se.s.rcptFailure(to); code != 0 {
		enh := smtp.EnhancedCode{4, 2, 1}
		msg := "Mailbox temporarily unavailable, try again later"
		if code >= 500 {
			enh, msg = smtp.EnhancedCode{5, 1, 1}, "No such user here"
		}
		return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg}
	}
	se.to = append(se.to, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Message{From: se.from, To: append([]string(nil), se.to...), Raw: raw,
		TLS: se.isTLS(), AuthUser: se.authUser, UTF8: se.utf8}
	if err := parse(&m); err != nil {
		// Accept anyway: the test looks at Raw and sees what went wrong.
		m.Text = "mailtest: could not parse message: " + err.Error()
	}
	se.s.add(m)
	return nil
}

func (se *session) Reset() { se.from, se.to, se.utf8 = "", nil, false }

func (se *session) Logout() error { return nil }

var textLink = regexp.MustCompile(`https?://[^\s<>"']+`)
var hrefLink = regexp.MustCompile(`(?i)href\s*=\s*"([^"]*)"`)

// parse fills the header, subject, decoded parts and links of m from m.Raw.
func parse(m *Message) error {
	pm, err := netmail.ReadMessage(bytes.NewReader(m.Raw))
	if err != nil {
		return err
	}
	m.Header = pm.Header
	dec := new(mime.WordDecoder)
	if m.Subject, err = dec.DecodeHeader(pm.Header.Get("Subject")); err != nil {
		return err
	}
	if err := readPart(m, pm.Header.Get("Content-Type"), pm.Header.Get("Content-Transfer-Encoding"), pm.Body); err != nil {
		return err
	}
	seen := map[string]bool{}
	addLink := func(l string) {
		if !seen[l] {
			seen[l] = true
			m.Links = append(m.Links, l)
		}
	}
	for _, l := range textLink.FindAllString(m.Text, -1) {
		addLink(strings.TrimRight(l, ".,;:!?)"))
	}
	for _, sub := range hrefLink.FindAllStringSubmatch(m.HTML, -1) {
		addLink(html.UnescapeString(sub[1]))
	}
	return nil
}

func readPart(m *Message, ctype, cte string, body io.Reader) error {
	if ctype == "" {
		ctype = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		return err
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := readPart(m, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p); err != nil {
				return err
			}
		}
	}
	switch strings.ToLower(cte) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "", "7bit", "8bit", "binary":
	default:
		return fmt.Errorf("unsupported transfer encoding %q", cte)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	switch mt {
	case "text/plain":
		m.Text = text
	case "text/html":
		m.HTML = text
	}
	return nil
}

// Blackhole listens on 127.0.0.1 and accepts connections but never says a
// word: a relay that hangs, to test that a sender gives up at its deadline.
// It returns the address; everything is closed when the test ends.
func Blackhole(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// selfSigned makes an ECDSA certificate valid for a day for localhost,
// the loopback addresses and names, and a pool that trusts it.
func selfSigned(names []string) (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "mailtest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              append([]string{"localhost", RemoteHost}, names...),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}
