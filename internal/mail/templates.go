package mail

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/lanyard-id/lanyard/internal/identity"
)

// Kind names a mail; it is also the base name of its template files.
type Kind string

// The kinds are the ones the use cases write into the outbox, so the two
// lists cannot drift apart.
const (
	KindVerifyEmail           Kind = identity.KindVerifyEmail
	KindResetPassword         Kind = identity.KindResetPassword
	KindConfirmEmailChange    Kind = identity.KindConfirmEmailChange
	KindEmailChangeRequested  Kind = identity.KindEmailChangeRequested
	KindEmailChangedNotice    Kind = identity.KindEmailChangedNotice
	KindPasswordChangedNotice Kind = identity.KindPasswordChangedNotice
	KindSignupAttemptNotice   Kind = identity.KindSignUpAttemptNotice
)

// Kinds lists every Kind, in a stable order.
func Kinds() []Kind {
	return []Kind{KindVerifyEmail, KindResetPassword, KindConfirmEmailChange, KindEmailChangeRequested,
		KindEmailChangedNotice, KindPasswordChangedNotice, KindSignupAttemptNotice}
}

// Data is what a template sees.
type Data struct {
	// AppName is the product name shown to people ("Lanyard" when empty).
	AppName string
	// Email is the account's address before any email change: the
	// recipient of every kind except confirm_email_change (sent to NewEmail).
	Email string
	// Link is the action link with its token; empty for the notices.
	Link string
	// ExpiresIn is the link's lifetime; templates show it as ExpiresInWords.
	ExpiresIn time.Duration
	// NewEmail is the requested (or new) address, for the three email change
	// kinds.
	NewEmail string
}

// ExpiresInWords is ExpiresIn for people: "24 hours", "30 minutes",
// "1 hour 30 minutes".
func (d Data) ExpiresInWords() string { return humanDuration(d.ExpiresIn) }

func humanDuration(d time.Duration) string {
	d = d.Round(time.Minute)
	if d < time.Minute {
		return "less than a minute"
	}
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	var parts []string
	days, hours, mins := int64(d/(24*time.Hour)), int64(d%(24*time.Hour)/time.Hour), int64(d%time.Hour/time.Minute)
	// Whole days read better than "48 hours" only past two days.
	if days >= 2 {
		parts = append(parts, unit(days, "day"))
	} else {
		hours += days * 24
	}
	if hours > 0 {
		parts = append(parts, unit(hours, "hour"))
	}
	if mins > 0 {
		parts = append(parts, unit(mins, "minute"))
	}
	return strings.Join(parts, " ")
}

//go:embed templates/*
var defaultFS embed.FS

// Templates holds the parsed subject, text and HTML template of every Kind.
type Templates struct {
	subject map[Kind]*texttemplate.Template
	text    map[Kind]*texttemplate.Template
	html    map[Kind]*htmltemplate.Template
}

// Template file name suffixes: <kind>.subject.txt, <kind>.txt, <kind>.html.
const (
	subjectSuffix = ".subject.txt"
	textSuffix    = ".txt"
	htmlSuffix    = ".html"
)

// LoadTemplates parses the embedded default templates and then, if dir is
// not empty, the files of dir that override them, one file at a time:
// <kind>.subject.txt and <kind>.txt are text/template, <kind>.html is
// html/template (so every value is escaped for its HTML context). Every
// template is also executed once with sample data, so that a misspelt field
// fails at startup rather than when the first mail goes out. A file in dir
// that matches no kind is an error too: it is most likely a misnamed
// override that would otherwise be silently ignored.
func LoadTemplates(dir string) (*Templates, error) {
	t := &Templates{
		subject: map[Kind]*texttemplate.Template{},
		text:    map[Kind]*texttemplate.Template{},
		html:    map[Kind]*htmltemplate.Template{},
	}
	defaults, err := fs.Sub(defaultFS, "templates")
	if err != nil {
		return nil, err
	}
	for _, k := range Kinds() {
		for _, suffix := range []string{subjectSuffix, textSuffix, htmlSuffix} {
			name := string(k) + suffix
			src, err := fs.ReadFile(defaults, name)
			if err != nil {
				return nil, fmt.Errorf("mail templates: embedded %s: %w", name, err)
			}
			if err := t.parse(k, suffix, "embedded "+name, string(src)); err != nil {
				return nil, err
			}
		}
	}
	if dir != "" {
		if err := t.loadDir(dir); err != nil {
			return nil, err
		}
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Templates) loadDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("mail templates: %w", err)
	}
	known := map[string]bool{}
	for _, k := range Kinds() {
		known[string(k)] = true
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		var kind, suffix string
		for _, s := range []string{subjectSuffix, textSuffix, htmlSuffix} {
			if strings.HasSuffix(name, s) {
				kind, suffix = strings.TrimSuffix(name, s), s
				break
			}
		}
		if suffix == "" || !known[kind] {
			return fmt.Errorf("mail templates: %s: unknown file name (expected <kind>%s, <kind>%s or <kind>%s with kind one of %s)",
				filepath.Join(dir, name), subjectSuffix, textSuffix, htmlSuffix, kindList())
		}
		src, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("mail templates: %w", err)
		}
		if err := t.parse(Kind(kind), suffix, filepath.Join(dir, name), string(src)); err != nil {
			return err
		}
	}
	return nil
}

func kindList() string {
	var ks []string
	for _, k := range Kinds() {
		ks = append(ks, string(k))
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

func (t *Templates) parse(k Kind, suffix, name, src string) error {
	var err error
	switch suffix {
	case subjectSuffix:
		t.subject[k], err = texttemplate.New(name).Option("missingkey=error").Parse(src)
	case textSuffix:
		t.text[k], err = texttemplate.New(name).Option("missingkey=error").Parse(src)
	case htmlSuffix:
		t.html[k], err = htmltemplate.New(name).Option("missingkey=error").Parse(src)
	}
	if err != nil {
		return fmt.Errorf("mail templates: %w", err)
	}
	return nil
}

// check executes every template once with sample data: field names are only
// resolved at execution time.
func (t *Templates) check() error {
	sample := Data{AppName: "Lanyard", Email: "someone@example.com", NewEmail: "new@example.com",
		Link: "https://app.example.com/action?token=sample", ExpiresIn: time.Hour}
	for _, k := range Kinds() {
		if _, _, _, err := t.Render(k, sample); err != nil {
			return err
		}
	}
	return nil
}

// Render executes kind's three templates. The subject is trimmed and must be
// a single line.
func (t *Templates) Render(kind Kind, data Data) (subject, text, html string, err error) {
	st, tt, ht := t.subject[kind], t.text[kind], t.html[kind]
	if st == nil || tt == nil || ht == nil {
		return "", "", "", fmt.Errorf("mail templates: unknown kind %q", kind)
	}
	if data.AppName == "" {
		data.AppName = "Lanyard"
	}
	var b bytes.Buffer
	if err := st.Execute(&b, data); err != nil {
		return "", "", "", fmt.Errorf("mail templates: %w", err)
	}
	subject = strings.TrimSpace(b.String())
	if strings.ContainsAny(subject, "\r\n") {
		return "", "", "", fmt.Errorf("mail templates: %s: %w", st.Name(), errors.New("subject spans several lines"))
	}
	if subject == "" {
		return "", "", "", fmt.Errorf("mail templates: %s: empty subject", st.Name())
	}
	b.Reset()
	if err := tt.Execute(&b, data); err != nil {
		return "", "", "", fmt.Errorf("mail templates: %w", err)
	}
	text = b.String()
	b.Reset()
	if err := ht.Execute(&b, data); err != nil {
		return "", "", "", fmt.Errorf("mail templates: %w", err)
	}
	return subject, text, b.String(), nil
}
