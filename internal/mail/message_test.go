package mail

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testNow = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

func sampleMessage() Message {
	return Message{
		ID:      "0193f7b2-5c1e-7000-8000-000000000001",
		From:    "Lanyard <no-reply@lanyard.example>",
		To:      "carol@example.com",
		Subject: "Confirm your email address",
		Text:    "Hello,\n\nOpen https://app.example/verify-email?token=abc\n\nA line long enough to need a soft line break in quoted-printable: " + strings.Repeat("x", 120) + "\n",
		HTML:    `<p>Hello, <a href="https://app.example/verify-email?token=abc">confirm</a> — ok</p>`,
	}
}

// decodeParts parses an encoded message back with net/mail and mime/multipart
// (which undoes the quoted-printable).
func decodeParts(t *testing.T, raw []byte) (*netmail.Message, map[string]string) {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	require.NoError(t, err)
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	require.NoError(t, err)
	parts := map[string]string{}
	if mt != "multipart/alternative" {
		require.Equal(t, "quoted-printable", msg.Header.Get("Content-Transfer-Encoding"))
		b, err := io.ReadAll(quotedPrintableReader(msg.Body))
		require.NoError(t, err)
		parts[mt] = string(b)
		return msg, parts
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		pt, pp, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		require.NoError(t, err)
		assert.Equal(t, "utf-8", pp["charset"])
		b, err := io.ReadAll(p)
		require.NoError(t, err)
		parts[pt] = string(b)
	}
	return msg, parts
}

func TestEncodeParsesBack(t *testing.T) {
	m := sampleMessage()
	raw, err := Encode(m, testNow)
	require.NoError(t, err)

	// CRLF everywhere, no bare LF, 7-bit, no line over 78 characters.
	assert.NotContains(t, strings.ReplaceAll(string(raw), "\r\n", ""), "\n")
	assert.NotContains(t, strings.ReplaceAll(string(raw), "\r\n", ""), "\r")
	for _, l := range strings.Split(string(raw), "\r\n") {
		assert.LessOrEqual(t, len(l), 78, l)
		assert.True(t, isASCII(l), l)
	}

	msg, parts := decodeParts(t, raw)
	h := msg.Header
	assert.Equal(t, "<0193f7b2-5c1e-7000-8000-000000000001@lanyard.example>", h.Get("Message-ID"))
	date, err := h.Date()
	require.NoError(t, err)
	assert.True(t, date.Equal(testNow))
	assert.Equal(t, "auto-generated", h.Get("Auto-Submitted"))
	assert.Equal(t, "1.0", h.Get("MIME-Version"))
	from, err := h.AddressList("From")
	require.NoError(t, err)
	assert.Equal(t, []*netmail.Address{{Name: "Lanyard", Address: "no-reply@lanyard.example"}}, from)
	to, err := h.AddressList("To")
	require.NoError(t, err)
	assert.Equal(t, []*netmail.Address{{Address: "carol@example.com"}}, to)
	assert.Equal(t, m.Subject, h.Get("Subject"))

	assert.Equal(t, strings.ReplaceAll(m.Text, "\n", "\r\n"), parts["text/plain"])
	assert.Equal(t, m.HTML, parts["text/html"])
	assert.Len(t, parts, 2)
}

func TestEncodeSubjectAndNames(t *testing.T) {
	m := sampleMessage()
	m.Subject = "Bestätige deine E-Mail-Adresse für Lanyard — " + strings.Repeat("ünïcödé ", 12)
	m.From = "Équipe Lanyard <no-reply@lanyard.example>"
	m.To = "josé@bücher.de"
	raw, err := Encode(m, testNow)
	require.NoError(t, err)
	msg, _ := decodeParts(t, raw)
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	require.NoError(t, err)
	assert.Equal(t, strings.TrimSpace(m.Subject), subject)
	assert.Contains(t, string(raw), "Subject: =?utf-8?q?")
	from, err := msg.Header.AddressList("From")
	require.NoError(t, err)
	assert.Equal(t, "Équipe Lanyard", from[0].Name)
	// The domain goes out as an A-label; the UTF-8 local part needs SMTPUTF8.
	assert.Contains(t, msg.Header.Get("To"), "@xn--bcher-kva.de")
	addr, utf8, err := envelopeAddress("To", m.To)
	require.NoError(t, err)
	assert.Equal(t, "josé@xn--bcher-kva.de", addr)
	assert.True(t, utf8)

	// An ASCII subject that looks like an encoded word is shown literally.
	m = sampleMessage()
	m.Subject = "=?utf-8?q?pwned?="
	raw, err = Encode(m, testNow)
	require.NoError(t, err)
	msg, _ = decodeParts(t, raw)
	subject, err = dec.DecodeHeader(msg.Header.Get("Subject"))
	require.NoError(t, err)
	assert.Equal(t, "=?utf-8?q?pwned?=", subject)
}

func TestEncodeTextOnly(t *testing.T) {
	m := sampleMessage()
	m.HTML = ""
	raw, err := Encode(m, testNow)
	require.NoError(t, err)
	msg, parts := decodeParts(t, raw)
	assert.Equal(t, "text/plain; charset=utf-8", msg.Header.Get("Content-Type"))
	assert.Equal(t, strings.ReplaceAll(m.Text, "\n", "\r\n"), parts["text/plain"])
}

func TestEncodeRandomIDWhenEmpty(t *testing.T) {
	m := sampleMessage()
	m.ID = ""
	a, err := Encode(m, testNow)
	require.NoError(t, err)
	b, err := Encode(m, testNow)
	require.NoError(t, err)
	ma, _ := decodeParts(t, a)
	mb, _ := decodeParts(t, b)
	assert.Regexp(t, `^<[0-9a-f]{32}@lanyard\.example>$`, ma.Header.Get("Message-ID"))
	assert.NotEqual(t, ma.Header.Get("Message-ID"), mb.Header.Get("Message-ID"))
}

func TestEncodeRefusesHeaderInjection(t *testing.T) {
	for name, mutate := range map[string]func(*Message){
		"subject CRLF": func(m *Message) { m.Subject = "Hi\r\nBcc: victim@example.org" },
		"subject LF":   func(m *Message) { m.Subject = "Hi\nBcc: victim@example.org" },
		"subject CR":   func(m *Message) { m.Subject = "Hi\rBcc: victim@example.org" },
		"subject NUL":  func(m *Message) { m.Subject = "Hi\x00" },
		"subject NEL":  func(m *Message) { m.Subject = "Hi\u0085Bcc: x@example.org" },
		"subject LS":   func(m *Message) { m.Subject = "Hi\u2028Bcc: x@example.org" },
		"to CRLF":      func(m *Message) { m.To = "carol@example.com\r\nBcc: victim@example.org" },
		"from LF":      func(m *Message) { m.From = "Lanyard\n <no-reply@lanyard.example>" },
		"id CRLF":      func(m *Message) { m.ID = "1\r\nBcc: victim@example.org" },
	} {
		t.Run(name, func(t *testing.T) {
			m := sampleMessage()
			mutate(&m)
			raw, err := Encode(m, testNow)
			require.ErrorIs(t, err, ErrHeaderInjection)
			assert.Nil(t, raw)
			assert.True(t, IsPermanent(err))
		})
	}
}

func TestEncodeRefusesBadMessages(t *testing.T) {
	for name, mutate := range map[string]func(*Message){
		"two recipients":   func(m *Message) { m.To = "a@example.com, b@example.com" },
		"no recipient":     func(m *Message) { m.To = "" },
		"bad from":         func(m *Message) { m.From = "not an address" },
		"bad id":           func(m *Message) { m.ID = "a b" },
		"id with brackets": func(m *Message) { m.ID = "a>b" },
		"empty text":       func(m *Message) { m.Text = " \n" },
		"invalid utf-8":    func(m *Message) { m.Subject = "\xff" },
		"bad idn domain":   func(m *Message) { m.To = "carol@xn--zz" },
		"long subject":     func(m *Message) { m.Subject = strings.Repeat("a", 1200) },
	} {
		t.Run(name, func(t *testing.T) {
			m := sampleMessage()
			mutate(&m)
			_, err := Encode(m, testNow)
			require.Error(t, err)
			assert.True(t, IsPermanent(err))
		})
	}
}

func quotedPrintableReader(r io.Reader) io.Reader { return quotedprintable.NewReader(r) }
