package identity

import (
	"context"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/lanyard-id/lanyard/internal/emailaddr"
	"github.com/lanyard-id/lanyard/internal/password"
)

const (
	maxNameCodePoints  = 200
	nameFieldMessageFm = "must be at most %d characters, without control, direction or invisible characters"
)

// normaliseEmail returns an address's one canonical form (emailaddr holds
// the rules: IDNA 2008 domains, NFC local parts, nothing invisible,
// confusable or of mixed scripts; its messages are written for clients).
// Lower-casing the whole address is what users expect of sign-in (nobody
// relies on a case-sensitive local part), and it makes the
// case-insensitive unique index agree with every lookup.
func normaliseEmail(raw string) (string, *FieldError) {
	email, err := emailaddr.Normalize(raw)
	if err != nil {
		return "", &FieldError{Field: "email", Message: err.Error()}
	}
	return email, nil
}

// invisible reports characters that show nothing yet change what a string
// is: controls (C0, C1), format characters (zero-width space, joiners, bidi
// embeddings, overrides and isolates, word joiner, invisible operators,
// BOM, soft hyphen, tag characters), the other default-ignorable code
// points (Hangul fillers U+115F, U+1160, U+3164, U+FFA0, the combining
// grapheme joiner), variation selectors, line and paragraph separators and
// the Braille blank U+2800 (which renders as a space but is not one). None
// belongs in an email address or a stored header; names allow a few in
// their legitimate places (nameInvisibleAllowed).
func invisible(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Other_Default_Ignorable_Code_Point,
		unicode.Variation_Selector, unicode.Zl, unicode.Zp) || r == '\u2800'
}

const (
	zwnj        = '\u200C'
	zwj         = '\u200D'
	blackFlag   = '\U0001F3F4'
	cancelTag   = '\U000E007F'
	maxFlagTags = 7 // the longest subdivision code ("gbsct" and kin) with room to spare
)

// nameInvisibleAllowed reports whether the invisible character at rs[i] is in
// one of the places where names need it: a joiner (ZWJ, ZWNJ) between two
// visible characters, as in emoji sequences (👩‍💻) and Persian or Indic
// names; a variation selector right after a visible character (❤️, CJK
// variants); and the tag characters of a subdivision flag (🏴 + "gbeng" +
// cancel tag). Anywhere else they would hide text or make two names that
// look the same.
func nameInvisibleAllowed(rs []rune, i int) bool {
	visible := func(j int) bool { return j >= 0 && j < len(rs) && !invisible(rs[j]) && !unicode.IsSpace(rs[j]) }
	switch r := rs[i]; {
	case r == zwj || r == zwnj:
		return visible(i-1) && visible(i+1)
	case unicode.Is(unicode.Variation_Selector, r):
		return visible(i - 1)
	case isFlagTag(r) || r == cancelTag:
		return inFlagSequence(rs, i)
	}
	return false
}

// isFlagTag reports the tag characters a flag sequence spells with: tag
// digits and tag small letters.
func isFlagTag(r rune) bool {
	return (r >= 0xE0030 && r <= 0xE0039) || (r >= 0xE0061 && r <= 0xE007A)
}

// inFlagSequence reports whether rs[i], a flag tag or the cancel tag, lies
// in 🏴, one to maxFlagTags flag tags, cancel tag.
func inFlagSequence(rs []rune, i int) bool {
	start := i
	for start > 0 && isFlagTag(rs[start-1]) {
		start--
	}
	end := start
	for end < len(rs) && isFlagTag(rs[end]) {
		end++
	}
	return start > 0 && rs[start-1] == blackFlag && end > start && end-start <= maxFlagTags &&
		end < len(rs) && rs[end] == cancelTag
}

// NormaliseName applies the display-name rules of sign-up (trim; at most
// 200 characters; no invisible characters outside their legitimate places)
// for callers outside the service, such as the Better-Auth import. ok is
// false when the name is refused; an empty or blank name gives "", true.
func NormaliseName(raw string) (name string, ok bool) {
	n, f := normaliseName(&raw)
	if f != nil {
		return "", false
	}
	if n == nil {
		return "", true
	}
	return *n, true
}

// normaliseName trims a display name and refuses one that is too long or
// holds invisible characters outside their legitimate places: a name is
// shown to other people, so it is refused with a reason rather than
// silently changed into something its owner did not type.
func normaliseName(raw *string) (*string, *FieldError) {
	if raw == nil {
		return nil, nil
	}
	name := strings.TrimSpace(*raw)
	if name == "" {
		return nil, nil
	}
	bad := &FieldError{Field: "name", Message: fmt.Sprintf(nameFieldMessageFm, maxNameCodePoints)}
	rs := []rune(name)
	if len(rs) > maxNameCodePoints {
		return nil, bad
	}
	for i, r := range rs {
		if invisible(r) && !nameInvisibleAllowed(rs, i) {
			return nil, bad
		}
	}
	return &name, nil
}

// checkNewPassword applies NIST SP 800-63B-4's rules to a password the
// user chooses: checkPasswordLength, then weakness. No composition rules.
func (s *Service) checkNewPassword(field, pw, email string) *FieldError {
	if f := s.checkPasswordLength(field, pw); f != nil {
		return f
	}
	return weakness(field, pw, email)
}

// checkPasswordLength counts code points as typed: NFKC can expand one
// character into many, and the minimum is about what the user chose.
func (s *Service) checkPasswordLength(field, pw string) *FieldError {
	n := utf8.RuneCountInString(pw)
	if n < s.cfg.PasswordMinLength || n > s.cfg.PasswordMaxLength {
		return &FieldError{Field: field, Message: fmt.Sprintf("must be %d to %d characters long", s.cfg.PasswordMinLength, s.cfg.PasswordMaxLength)}
	}
	return nil
}

// weakness refuses what password.Weak finds: repetition, the service name,
// the local part of email, a listed common password. The message says
// which rule, never the password.
func weakness(field, pw, email string) *FieldError {
	if w := password.Weak(pw, email); w != password.NotWeak {
		return &FieldError{Field: field, Message: string(w)}
	}
	return nil
}

// checkPasswordChange checks the new password of an existing user, reading
// the user's email for the personal-word rule only once the length is
// right, so a request refused on length reads nothing.
func (s *Service) checkPasswordChange(ctx context.Context, userID, next string) error {
	f := s.checkPasswordLength("new_password", next)
	if f == nil {
		user, err := s.store.UserByID(ctx, userID)
		if err != nil {
			return userError(err)
		}
		f = weakness("new_password", next, user.Email)
	}
	if f != nil {
		return &Error{Code: CodeValidation, Message: "the request has invalid fields", Fields: []FieldError{*f}}
	}
	return nil
}
