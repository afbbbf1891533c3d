// Package emailaddr turns what a person typed as their email address into
// the one form Lanyard stores and compares, or refuses it, so that one
// mailbox is one account and look-alike addresses cannot become a second
// account next to it (issue 11 §7).
//
// Normalize applies, in this order:
//
//  1. Trim ASCII whitespace (tab, LF, FF, CR, space: what a browser strips
//     from an <input type=email>) at both ends, nothing else; refuse
//     anything over 4 KiB before doing any work, and invalid UTF-8.
//  2. Unicode NFC, so "é" typed composed or decomposed is one address.
//  3. Exactly one RFC 5322 addr-spec as net/mail parses it (RFC 6532 allows
//     UTF-8 in it) whose text is the whole input: no display name, angle
//     brackets, comments or quoted local part, no empty, leading, trailing
//     or doubled dot on either side of the @ — ErrSyntax.
//  4. Anywhere in the address: no control (Cc), format (Cf: zero-width
//     characters, bidi controls, tags…), white space or separator (NBSP,
//     U+3000…), other default-ignorable code point, variation selector or
//     blank-looking letter (Hangul fillers U+115F, U+1160, U+3164, U+FFA0,
//     Braille blank U+2800) — ErrInvisible.
//  5. Local part, character by character: no private-use or unassigned
//     character (noncharacters included) — ErrUnassigned; no character of
//     Script=Inherited (a combining mark), neither as typed (carol + U+0301
//     would compose into caroĺ, which passes for carol) nor left over after
//     NFC — ErrCombiningMark; accented letters typed precomposed (é) are
//     letters of their own; no character whose full
//     case fold is not one character with the same lowercase (ß→ss, ẞ,
//     ς→σ, ſ, ϐ, İ…), since two addresses differing only there are equal
//     under case-insensitive comparison — ErrCaseFold. Then as a whole:
//     unchanged by NFKC (fullwidth forms, ligatures, superscripts,
//     mathematical letters…) — ErrCompatibility; UTS #39 §5.2 "Highly
//     Restrictive": one script besides Common and Inherited, or only
//     scripts of one of Latin+Han+Hiragana+Katakana, Latin+Han+Bopomofo,
//     Latin+Han+Hangul — ErrMixedScripts; UTS #39 §5.3: decimal digits of
//     one numbering system — ErrMixedDigits. Then it is lowercased
//     (strings.ToLower, so case-insensitive comparison is plain equality)
//     and the lowercase form is checked again.
//  6. Domain: uppercase letters are lowercased, refused where that
//     disagrees with the case fold (İ, ẞ); then IDNA 2008 through
//     golang.org/x/net/idna's Registration profile (RFC 5891 §4: nothing
//     is mapped, so fullwidth letters or dots are refused rather than
//     folded; STD3 rules, hyphen, joiner and bidi rules, DNS lengths). A-
//     and U-labels are both accepted and give the same result; the domain
//     is stored as lowercase U-labels. Each label must moreover hold only
//     ASCII (LDH, by the STD3 rules) or letters, marks and decimal digits
//     (Ll, Lm, Lo, Mn, Mc, Nd), because the profile's tables are UTS #46's,
//     which let through symbols and emoji that IDNA 2008 disallows, and it
//     does not check CONTEXTO rules: "·" (Catalan l·l), "・", Greek keraia
//     and Hebrew geresh are refused here. Each label also passes the
//     Script=Inherited, mixed-script and mixed-digit rules of the local
//     part. At least two labels, the last not all digits (no IP address).
//     All — ErrDomain.
//  7. Lengths, of the stored local part and the A-label domain (the form
//     that goes on the wire): local part at most 64 bytes, each label at
//     most 63, the whole address at most 254 (RFC 5321) — ErrLength.
//
// Data: Go's unicode tables (scripts, categories, properties), the Unicode
// tables of golang.org/x/text/unicode/norm (NFC, NFKC) and
// golang.org/x/text/cases (full case folding), and those of
// golang.org/x/net/idna. With Go 1.26 all four are Unicode 15.0.0 (the x/
// modules pick their 15.0.0 tables before Go 1.27); a test fails when a
// toolchain or module upgrade changes that, so this comment is kept true.
//
// Not done, for want of the data in these libraries: UTS #39 uses
// Script_Extensions where this uses the Script property (so a character
// such as U+30FC "ー" counts as Common), and neither its confusables.txt
// (whole-script confusables such as an all-Cyrillic "сосо", or
// single-script ones such as Latin "ɑ" for "a") nor its Identifier_Status
// is applied. A diacritic that NFC composes onto its letter makes a
// different, visible letter ("caroĺ", like "josé" next to "jose") and is
// accepted as a different address.
//
// Every error's message is safe to show to the client: it names the rule
// that was broken, never the input.
package emailaddr

import (
	"net/mail"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Lengths in bytes.
const (
	MaxLength      = 254 // RFC 5321 §4.5.3.1.3: a path is 256 octets with its angle brackets
	MaxLocalLength = 64  // RFC 5321 §4.5.3.1.1
	MaxLabelLength = 63  // RFC 1035 §2.3.4
	// maxInput bounds the work done on a request. It is far above the
	// longest input that can normalise to an address within MaxLength,
	// even typed fully decomposed (NFD) and with U-labels.
	maxInput = 4096
)

// Error is a refusal. Its message names the rule that was broken and is
// safe to show to the client. A refusal belongs to one of the kinds below
// (errors.Is(err, ErrConfusable) and so on).
type Error struct {
	msg  string
	kind *Error // nil for a kind itself
}

func (e *Error) Error() string { return e.msg }

// Is makes every specific refusal match its kind.
func (e *Error) Is(target error) bool { return e.kind != nil && target == error(e.kind) }

// The kinds of refusal.
var (
	// ErrSyntax keeps the message the API has always given for a malformed
	// address.
	ErrSyntax     = &Error{msg: "must be a valid email address of at most 254 characters"}
	ErrLength     = &Error{msg: "is too long: at most 254 bytes in all, 64 before the @ and 63 in each part of the domain"}
	ErrInvisible  = &Error{msg: "must not contain spaces, control, formatting or invisible characters"}
	ErrUnassigned = &Error{msg: "must not contain private-use or unassigned characters"}
	ErrConfusable = &Error{msg: "must not contain characters that can pass for others"}
	ErrDomain     = &Error{msg: "must end in a valid internet domain name, such as example.com"}
)

// The confusable refusals, each telling the person what to change.
var (
	ErrCompatibility = &Error{kind: ErrConfusable,
		msg: "must not contain compatibility characters such as fullwidth letters, ligatures or superscripts"}
	ErrCombiningMark = &Error{kind: ErrConfusable,
		msg: "must not contain combining marks typed apart from their letter (type the accented letter itself)"}
	ErrCaseFold = &Error{kind: ErrConfusable,
		msg: "must not contain letters that case-insensitive comparison changes, such as ß or ς (write ss or σ)"}
	ErrMixedScripts = &Error{kind: ErrConfusable,
		msg: "must not mix the letters of different scripts, such as Latin and Cyrillic, before the @"}
	ErrMixedDigits = &Error{kind: ErrConfusable,
		msg: "must not mix digits of different numbering systems"}
)

// asciiWhitespace is what the WHATWG's "strip leading and trailing ASCII
// whitespace" removes from an email input.
const asciiWhitespace = "\t\n\f\r "

// Normalize returns the canonical form of an address, or an error whose
// Error() is safe to show to the client (never quotes the input). The
// result is NFC, lowercase, and Normalize returns it unchanged.
func Normalize(raw string) (string, error) {
	if len(raw) > maxInput {
		return "", ErrLength
	}
	s := strings.Trim(raw, asciiWhitespace)
	if s == "" || !utf8.ValidString(s) {
		return "", ErrSyntax
	}
	// A combining mark typed as a character of its own (carol + U+0301)
	// composes under NFC into a letter that passes for its base at a glance
	// (caroĺ): the classic way to open a second account that looks like
	// the first. Keyboards type accented letters precomposed (é), and those
	// stay accepted; a mark typed apart in the local part is refused.
	rawLocal := s
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		rawLocal = s[:at]
	}
	s = norm.NFC.String(s)
	// net/mail unquotes a quoted local part and drops comments, so an
	// address that comes back different was not a bare dot-atom addr-spec.
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s {
		return "", ErrSyntax
	}
	// net/mail takes any non-ASCII character as atext; say which rule an
	// invisible one breaks, on either side of the @.
	if strings.ContainsFunc(s, invisible) {
		return "", ErrInvisible
	}
	if strings.ContainsFunc(rawLocal, isInheritedMark) {
		return "", ErrCombiningMark
	}
	at := strings.LastIndexByte(s, '@')
	local, domain := s[:at], s[at+1:]
	// An ASCII domain that is too long is reported as too long, before the
	// IDNA check would report it as a bad domain. The local part is
	// measured once lowercased, the form that is stored.
	if tooLongASCII(len(local), domain) {
		return "", ErrLength
	}
	local, err = normaliseLocal(local)
	if err != nil {
		return "", err
	}
	uDomain, aDomain, err := normaliseDomain(domain)
	if err != nil {
		return "", err
	}
	if len(local) > MaxLocalLength || len(local)+1+len(aDomain) > MaxLength {
		return "", ErrLength
	}
	return local + "@" + uDomain, nil
}

// tooLongASCII reports an ASCII domain that breaks a length limit as it
// stands (its A-label form is itself, lowercased).
func tooLongASCII(localLen int, domain string) bool {
	for _, r := range domain {
		if r >= utf8.RuneSelf {
			return false
		}
	}
	if localLen+1+len(domain) > MaxLength {
		return true
	}
	for label := range strings.SplitSeq(domain, ".") {
		if len(label) > MaxLabelLength {
			return true
		}
	}
	return false
}

// ASCIIDomain returns addr with its domain as IDNA A-labels, for the SMTP
// envelope of a server without SMTPUTF8 and for headers. It does not apply
// Normalize's local-part rules, so an address stored before them can still
// be mailed, but refuses one whose local part could break an SMTP command
// or a header (controls, format characters, white space, angle brackets).
func ASCIIDomain(addr string) (string, error) {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || !utf8.ValidString(addr) {
		return "", ErrSyntax
	}
	local := addr[:at]
	if strings.ContainsFunc(local, func(r rune) bool {
		return invisible(r) || r == '<' || r == '>'
	}) {
		return "", ErrSyntax
	}
	_, aDomain, err := normaliseDomain(addr[at+1:])
	if err != nil {
		return "", err
	}
	return local + "@" + aDomain, nil
}

// normaliseLocal checks an NFC local part and returns it lowercased. The
// lowercased form is checked again, so that what is stored passes every
// rule and Normalize is idempotent even where lowercasing a character
// produced one the rules treat differently.
func normaliseLocal(local string) (string, error) {
	if err := checkLocal(local); err != nil {
		return "", err
	}
	lower := norm.NFC.String(strings.ToLower(local))
	if lower != local {
		if err := checkLocal(lower); err != nil {
			return "", err
		}
	}
	return lower, nil
}

func checkLocal(local string) error {
	fold := cases.Fold() // a Caser is not safe for concurrent use
	for _, r := range local {
		switch {
		case invisible(r):
			return ErrInvisible
		case unicode.In(r, unicode.Cn, unicode.Co): // noncharacters are Cn too
			return ErrUnassigned
		case unicode.Is(unicode.Inherited, r):
			return ErrCombiningMark
		case !foldsLikeLower(fold, r):
			return ErrCaseFold
		}
	}
	if !norm.NFKC.IsNormalString(local) {
		return ErrCompatibility
	}
	return checkMix(local)
}

// normaliseDomain returns a domain's lowercase U-label and A-label forms.
func normaliseDomain(domain string) (uDomain, aDomain string, err error) {
	if domain == "" || strings.HasSuffix(domain, ".") {
		return "", "", ErrDomain
	}
	// The Registration profile maps nothing, uppercase included, so the
	// domain is lowercased first, refusing a letter whose lowercase is not
	// its case fold (İ would become i here but i̇ under UTS #46).
	fold := cases.Fold()
	for _, r := range domain {
		if l := unicode.ToLower(r); l != r && fold.String(string(r)) != string(l) {
			return "", "", ErrDomain
		}
	}
	lower := norm.NFC.String(strings.ToLower(domain))
	if aDomain, err = idna.Registration.ToASCII(lower); err != nil {
		return "", "", domainError(lower)
	}
	if uDomain, err = idna.Registration.ToUnicode(aDomain); err != nil {
		return "", "", ErrDomain
	}
	aLabels, uLabels := strings.Split(aDomain, "."), strings.Split(uDomain, ".")
	if len(aLabels) < 2 || len(aLabels) != len(uLabels) || allDigits(aLabels[len(aLabels)-1]) {
		return "", "", ErrDomain
	}
	for i, label := range uLabels {
		if len(aLabels[i]) > MaxLabelLength {
			return "", "", ErrLength
		}
		if label == "" || !domainLabelRunes(label) || checkMix(label) != nil {
			return "", "", ErrDomain
		}
	}
	return uDomain, aDomain, nil
}

// domainLabelRunes reports whether a U-label holds only what IDNA 2008
// lets a label hold, less what this package refuses everywhere: ASCII
// (already limited to LDH by the STD3 rules) and letters, marks and
// decimal digits, but no combining mark of Script=Inherited left over by
// NFC and no joiner (ZWJ and ZWNJ are Cf, so outside these categories).
func domainLabelRunes(label string) bool {
	for _, r := range label {
		if r < utf8.RuneSelf {
			continue
		}
		if !unicode.In(r, unicode.Ll, unicode.Lm, unicode.Lo, unicode.Mn, unicode.Mc, unicode.Nd) ||
			unicode.Is(unicode.Inherited, r) || invisible(r) {
			return false
		}
	}
	return true
}

// domainError tells a domain the Registration profile refused for its
// length (it checks DNS lengths on the A-labels) from one refused for
// anything else.
func domainError(domain string) error {
	a, err := idna.Punycode.ToASCII(domain)
	if err != nil {
		return ErrDomain
	}
	for label := range strings.SplitSeq(a, ".") {
		if len(label) > MaxLabelLength {
			return ErrLength
		}
	}
	if len(a) > MaxLength-2 { // no room for a local part and the @
		return ErrLength
	}
	return ErrDomain
}

func allDigits(s string) bool {
	return strings.Trim(s, "0123456789") == ""
}

// blank lists letters and symbols that render as nothing or as a space
// but are neither white space nor (all of them) default-ignorable.
var blank = map[rune]bool{
	'\u115F': true, // HANGUL CHOSEONG FILLER
	'\u1160': true, // HANGUL JUNGSEONG FILLER
	'\u3164': true, // HANGUL FILLER
	'\uFFA0': true, // HALFWIDTH HANGUL FILLER
	'\u2800': true, // BRAILLE PATTERN BLANK
}

// invisible reports characters that show nothing, show as a space or
// change how the text around them is shown: controls, format characters
// (which include the bidi controls and the tags), white space and
// separators, default-ignorable code points, variation selectors and the
// blank letters.
func invisible(r rune) bool {
	return unicode.IsControl(r) || unicode.IsSpace(r) || blank[r] ||
		unicode.In(r, unicode.Cf, unicode.Z, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}

// foldsLikeLower reports whether r's full case fold is one character with
// r's lowercase. For strings of such characters equal case folds imply
// equal lowercase, so comparing stored lowercase forms is exactly Unicode
// case-insensitive comparison. Both cases of Cherokee pass (each folds to
// one letter with the same lowercase); ß, ẞ, ς, ſ, ϐ and İ do not.
func foldsLikeLower(fold cases.Caser, r rune) bool {
	f := fold.String(string(r))
	fr, size := utf8.DecodeRuneInString(f)
	return size == len(f) && unicode.ToLower(fr) == unicode.ToLower(r)
}

// highlyRestrictive lists the script sets UTS #39 §5.2 allows together
// beyond a single script (Latn + Jpan, Latn + Hanb, Latn + Kore).
var highlyRestrictive = [][]string{
	{"Latin", "Han", "Hiragana", "Katakana"},
	{"Latin", "Han", "Bopomofo"},
	{"Latin", "Han", "Hangul"},
}

// scripts holds Go's script tables but Common and Inherited, in a fixed
// order.
var scripts = func() []string {
	names := make([]string, 0, len(unicode.Scripts))
	for name := range unicode.Scripts {
		if name != "Common" && name != "Inherited" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}()

// scriptOf returns the Script property of r, which is neither Common nor
// Inherited; "" for a character in no script table (unassigned).
func scriptOf(r rune) string {
	for _, name := range scripts {
		if unicode.Is(unicode.Scripts[name], r) {
			return name
		}
	}
	return ""
}

// checkMix applies UTS #39 §5.2 (Highly Restrictive) and §5.3 (digits of
// one numbering system) to s, using the Script property.
func checkMix(s string) error {
	var seen []string
	zero := rune(-1)
	for _, r := range s {
		if unicode.Is(unicode.Nd, r) {
			z := digitZero(r)
			if zero >= 0 && z != zero {
				return ErrMixedDigits
			}
			zero = z
		}
		if unicode.In(r, unicode.Common, unicode.Inherited) {
			continue
		}
		if sc := scriptOf(r); !slices.Contains(seen, sc) {
			seen = append(seen, sc)
		}
	}
	if len(seen) <= 1 {
		return nil
	}
	for _, allowed := range highlyRestrictive {
		if !slices.ContainsFunc(seen, func(sc string) bool { return !slices.Contains(allowed, sc) }) {
			return nil
		}
	}
	return ErrMixedScripts
}

// digitZero returns the digit zero of the decimal system r belongs to.
// Unicode assigns decimal digits (Nd) only in contiguous runs of whole
// 0…9 sequences, so the run starts with a zero.
func digitZero(r rune) rune {
	start := r
	for unicode.Is(unicode.Nd, start-1) {
		start--
	}
	return start + (r-start)/10*10
}

// isInheritedMark: a combining mark of no script of its own (U+0300–U+036F
// and the like), which takes the look of whatever letter precedes it.
func isInheritedMark(r rune) bool { return unicode.Is(unicode.Inherited, r) }
