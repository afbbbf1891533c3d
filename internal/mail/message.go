package mail

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"net/textproto"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Message is one mail, already rendered.
type Message struct {
	// ID is stable for the life of the mail (the outbox row id): it becomes
	// the Message-ID, so a mail delivered again after an ambiguous failure is
	// recognisable as the same mail by the receiving side. Empty means a
	// random one. Allowed characters: letters, digits and . - _ + = .
	ID string
	// From is LANYARD_MAIL_FROM: "no-reply@example.com" or
	// "Example <no-reply@example.com>".
	From string
	// To is a single bare address, as stored on the account.
	To      string
	Subject string
	// Text is required; HTML is optional (then the mail is text/plain only).
	Text string
	HTML string
}

// ErrHeaderInjection is returned when a header value (From, To, Subject,
// ID) contains a line break or another control character that could start a
// header or a body of the attacker's choosing.
var ErrHeaderInjection = errors.New("mail: control character in a header value")

// maxLine is RFC 5322's hard limit on a line, CRLF excluded.
const maxLine = 998

// Encode renders m as an RFC 5322 message: MIME multipart/alternative
// (text/plain then text/html, both UTF-8 and quoted-printable, so every
// line stays short and 7-bit), an RFC 2047 encoded subject, Message-ID
// <ID@from-domain>, Date, Auto-Submitted: auto-generated, CRLF line endings.
// Errors from Encode are about the message itself and never go away on a
// retry: IsPermanent reports true for them.
func Encode(m Message, now time.Time) ([]byte, error) {
	for name, v := range map[string]string{"From": m.From, "To": m.To, "Subject": m.Subject, "Message-ID": m.ID} {
		if hasControl(v) {
			return nil, permanent(fmt.Errorf("%w (%s)", ErrHeaderInjection, name))
		}
		if !utf8.ValidString(v) {
			return nil, permanent(fmt.Errorf("mail: %s is not valid UTF-8", name))
		}
	}
	from, err := parseAddress("From", m.From)
	if err != nil {
		return nil, err
	}
	to, err := parseAddress("To", m.To)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(m.Text) == "" {
		return nil, permanent(errors.New("mail: empty text body"))
	}
	id := m.ID
	if id == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	} else if !validID(id) {
		return nil, permanent(errors.New("mail: message ID may only contain letters, digits and . - _ + ="))
	}
	_, fromDomain, _ := strings.Cut(from.Address, "@")

	var buf bytes.Buffer
	tooLong := false
	header := func(name, value string) {
		folded := fold(name + ": " + value)
		for _, l := range strings.Split(folded, "\r\n") {
			tooLong = tooLong || len(l) > maxLine
		}
		buf.WriteString(folded)
		buf.WriteString("\r\n")
	}
	header("Date", now.Format(time.RFC1123Z))
	header("From", from.String())
	header("To", to.String())
	header("Subject", encodeSubject(strings.TrimSpace(m.Subject)))
	header("Message-ID", "<"+id+"@"+fromDomain+">")
	header("MIME-Version", "1.0")
	// RFC 3834: tells autoresponders (vacation replies) to stay quiet.
	header("Auto-Submitted", "auto-generated")
	// The same for Exchange, which does not read Auto-Submitted.
	header("X-Auto-Response-Suppress", "All")
	if tooLong {
		return nil, permanent(errors.New("mail: a header line is longer than 998 characters"))
	}

	if m.HTML == "" {
		header("Content-Type", "text/plain; charset=utf-8")
		header("Content-Transfer-Encoding", "quoted-printable")
		buf.WriteString("\r\n")
		if err := writeQP(&buf, m.Text); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	header("Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()}))
	buf.WriteString("\r\n")
	// Clients show the last alternative they understand, so the richer part
	// goes last (RFC 2046 §5.1.4).
	for _, p := range []struct{ ctype, content string }{
		{"text/plain; charset=utf-8", m.Text},
		{"text/html; charset=utf-8", m.HTML},
	} {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {p.ctype},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		if err := writeQP(w, p.content); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	buf.Write(body.Bytes())
	return buf.Bytes(), nil
}

// parseAddress accepts exactly one address and puts its domain in A-label
// form, which every server and client understands; a non-ASCII local part
// stays UTF-8 (RFC 6532) and needs SMTPUTF8 on the wire.
func parseAddress(field, raw string) (*netmail.Address, error) {
	a, err := netmail.ParseAddress(raw)
	if err != nil {
		// The address is the user's: keep it out of the message.
		return nil, permanent(fmt.Errorf("mail: %s is not a single valid address", field))
	}
	local, domain, ok := strings.Cut(a.Address, "@")
	if !ok || local == "" || domain == "" {
		return nil, permanent(fmt.Errorf("mail: %s is not a single valid address", field))
	}
	ascii, err := idna.Lookup.ToASCII(domain)
	if err != nil {
		return nil, permanent(fmt.Errorf("mail: %s has an invalid domain", field))
	}
	a.Address = local + "@" + ascii
	return a, nil
}

// envelopeAddress is the bare address for MAIL FROM / RCPT TO, and whether it
// needs SMTPUTF8.
func envelopeAddress(field, raw string) (string, bool, error) {
	a, err := parseAddress(field, raw)
	if err != nil {
		return "", false, err
	}
	return a.Address, !isASCII(a.Address), nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func validID(id string) bool {
	if len(id) > 200 {
		return false
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune(".-_+=", r):
		default:
			return false
		}
	}
	return !strings.HasPrefix(id, ".") && !strings.HasSuffix(id, ".") && !strings.Contains(id, "..")
}

// encodeSubject uses RFC 2047 only where needed; an ASCII subject that
// happens to look like an encoded word is encoded too, so that readers show
// it literally.
func encodeSubject(s string) string {
	if isASCII(s) && !strings.Contains(s, "=?") {
		return s
	}
	if enc := mime.QEncoding.Encode("utf-8", s); enc != s {
		return enc
	}
	// mime leaves printable ASCII alone; force one encoded word.
	return "=?utf-8?q?" + qWord(s) + "?="
}

// qWord is the Q encoding of an ASCII string (RFC 2047 §4.2).
func qWord(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ':
			b.WriteByte('_')
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "=%02X", c)
		}
	}
	return b.String()
}

// fold breaks a header line at spaces so that lines stay under 78 characters
// where possible (RFC 5322 §2.2.3); encoded words are separated by spaces, so
// they fold too.
func fold(line string) string {
	const soft = 78
	if len(line) <= soft {
		return line
	}
	var b strings.Builder
	cur := 0
	words := strings.Split(line, " ")
	for i, w := range words {
		if i > 0 {
			// Never right after "Name:", which some parsers dislike.
			if cur+1+len(w) > soft && i > 1 {
				b.WriteString("\r\n ")
				cur = 1
			} else {
				b.WriteByte(' ')
				cur++
			}
		}
		b.WriteString(w)
		cur += len(w)
	}
	return b.String()
}

// writeQP writes s quoted-printable with CRLF line breaks, whatever line
// endings the template used.
func writeQP(w io.Writer, s string) error {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	qp := quotedprintable.NewWriter(w)
	if _, err := qp.Write([]byte(s)); err != nil {
		return err
	}
	return qp.Close()
}
