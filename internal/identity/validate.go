package identity

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

const (
	maxEmailLength     = 254 // RFC 5321 path limit
	maxEmailLocalPart  = 64
	maxNameCodePoints  = 200
	emailFieldMessage  = "must be a valid email address of at most 254 characters"
	nameFieldMessageFm = "must be at most %d characters without control characters"
)

// normaliseEmail trims and lower-cases an address and checks it is a bare
// addr-spec. Lower-casing the whole address is what users expect of sign-in
// (nobody relies on a case-sensitive local part), and it makes the
// case-insensitive unique index agree with every lookup.
func normaliseEmail(raw string) (string, *FieldError) {
	bad := &FieldError{Field: "email", Message: emailFieldMessage}
	// NFC first, so "é" typed composed or decomposed is one account.
	email := norm.NFC.String(strings.TrimSpace(raw))
	if email == "" || len(email) > maxEmailLength || !utf8.ValidString(email) || strings.ContainsFunc(email, invisible) {
		return "", bad
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Name != "" || addr.Address != email {
		return "", bad
	}
	at := strings.LastIndexByte(email, '@')
	local, domain := email[:at], email[at+1:]
	if len(local) > maxEmailLocalPart || !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") ||
		strings.HasSuffix(domain, ".") || strings.HasPrefix(domain, "[") {
		return "", bad
	}
	return strings.ToLower(email), nil
}

// invisible reports control and format characters (zero-width, bidi
// overrides, tag characters): nothing a real address contains, and the way
// to make two addresses that look the same.
func invisible(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }

// bidiControl reports the explicit direction controls that can make a name
// display as something else. Other format characters (the zero-width
// joiner in emoji sequences) are legitimate in names.
func bidiControl(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) || r == 0x200E || r == 0x200F
}

func normaliseName(raw *string) (*string, *FieldError) {
	if raw == nil {
		return nil, nil
	}
	name := strings.TrimSpace(*raw)
	if name == "" {
		return nil, nil
	}
	if utf8.RuneCountInString(name) > maxNameCodePoints || strings.ContainsFunc(name, unicode.IsControl) || strings.ContainsFunc(name, bidiControl) {
		return nil, &FieldError{Field: "name", Message: fmt.Sprintf(nameFieldMessageFm, maxNameCodePoints)}
	}
	return &name, nil
}

// checkNewPassword applies NIST SP 800-63B-4 length rules, counted in code
// points as typed (NFKC can expand one character into many, and the minimum
// is about what the user chose); no composition rules.
func (s *Service) checkNewPassword(field, pw string) *FieldError {
	n := utf8.RuneCountInString(pw)
	if n < s.cfg.PasswordMinLength || n > s.cfg.PasswordMaxLength {
		return &FieldError{Field: field, Message: fmt.Sprintf("must be %d to %d characters long", s.cfg.PasswordMinLength, s.cfg.PasswordMaxLength)}
	}
	return nil
}
