package emailaddr

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/idna"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// carol is the existing account every look-alike below aims at.
const carol = "carol@example.com"

// lookalikes are issue 11's attacker list, row by row, with variants. Each
// is either folded into carol (want == carol) or refused with err.
var lookalikes = []struct {
	what, in string
	want     string // carol, or "" when refused
	err      error  // the refusal; errors.Is must hold
}{
	// The same address typed differently: folded into the existing account.
	{"as stored", "carol@example.com", carol, nil},
	{"uppercase", "CAROL@EXAMPLE.COM", carol, nil},
	{"mixed case", "Carol@Example.Com", carol, nil},
	{"ASCII whitespace around", " \t carol@example.com \r\n", carol, nil},
	{"uppercase A-label-free domain", "carol@EXAMPLE.com", carol, nil},

	// Fullwidth letters in the local part.
	{"fullwidth local", "ｃａｒｏｌ@example.com", "", ErrCompatibility},
	{"fullwidth uppercase local", "ＣＡＲＯＬ@example.com", "", ErrCompatibility},
	{"one fullwidth letter", "ｃarol@example.com", "", ErrCompatibility},
	{"fullwidth at sign", "carol＠example.com", "", ErrSyntax},
	{"roman numeral c", "\u217Darol@example.com", "", ErrCompatibility},
	{"mathematical bold", "𝐜𝐚𝐫𝐨𝐥@example.com", "", ErrCompatibility},
	{"superscript", "carolⁱ@example.com", "", ErrCompatibility},

	// Fullwidth letters in the domain.
	{"fullwidth domain", "carol@ｅｘａｍｐｌｅ.com", "", ErrDomain},
	{"fullwidth uppercase domain", "carol@ＥＸＡＭＰＬＥ.ＣＯＭ", "", ErrDomain},
	{"ideographic full stop", "carol@example\u3002com", "", ErrDomain},
	{"fullwidth full stop", "carol@example\uFF0Ecom", "", ErrDomain},

	// A Cyrillic а (and kin) among Latin letters.
	{"Cyrillic a", "c\u0430rol@example.com", "", ErrMixedScripts},
	{"Cyrillic es", "\u0441arol@example.com", "", ErrMixedScripts},
	{"Cyrillic o", "car\u043El@example.com", "", ErrMixedScripts},
	{"Greek omicron", "car\u03BFl@example.com", "", ErrMixedScripts},
	{"Cyrillic a in the domain", "carol@ex\u0430mple.com", "", ErrDomain},
	{"Cyrillic a as A-label", "carol@xn--exmple-4nf.com", "", ErrDomain},

	// A no-break space, and other spaces.
	{"NBSP inside", "carol\u00A0@example.com", "", ErrInvisible},
	{"NBSP before", "\u00A0carol@example.com", "", ErrInvisible},
	{"NBSP after", "carol@example.com\u00A0", "", ErrInvisible},
	{"NBSP in domain", "carol@\u00A0example.com", "", ErrInvisible},
	{"narrow NBSP", "carol\u202F@example.com", "", ErrInvisible},
	{"ideographic space", "carol\u3000@example.com", "", ErrInvisible},
	{"figure space", "car\u2007ol@example.com", "", ErrInvisible},
	{"ASCII space inside", "car ol@example.com", "", ErrSyntax},

	// U+3164 HANGUL FILLER and the other Hangul fillers.
	{"Hangul filler after", "carol\u3164@example.com", "", ErrInvisible},
	{"Hangul filler before", "\u3164carol@example.com", "", ErrInvisible},
	{"Hangul filler alone", "\u3164@example.com", "", ErrInvisible},
	{"Hangul filler in domain", "carol@example\u3164.com", "", ErrInvisible},
	{"Hangul choseong filler", "carol\u115F@example.com", "", ErrInvisible},
	{"Hangul jungseong filler", "carol\u1160@example.com", "", ErrInvisible},
	{"halfwidth Hangul filler", "carol\uFFA0@example.com", "", ErrInvisible},

	// U+2800 BRAILLE PATTERN BLANK.
	{"Braille blank after", "carol\u2800@example.com", "", ErrInvisible},
	{"Braille blank inside", "car\u2800ol@example.com", "", ErrInvisible},
	{"Braille blank in domain", "carol@example.com\u2800", "", ErrInvisible},

	// Combining marks that NFC cannot compose onto their letter.
	{"long stroke overlay", "caro\u0336l@example.com", "", ErrCombiningMark},
	{"dot above l", "carol\u0307@example.com", "", ErrCombiningMark},
	{"low line", "ca\u0332rol@example.com", "", ErrCombiningMark},
	{"enclosing circle", "carol\u20DD@example.com", "", ErrCombiningMark},
	{"second acute after a composed one", "ca\u0301\u0301rol@example.com", "", ErrCombiningMark},
	{"mark on the at sign", "carol\u0301\u0301@example.com", "", ErrCombiningMark},
	{"combining grapheme joiner", "carol\u034F@example.com", "", ErrInvisible},
	{"mark in the domain", "carol@exa\u0336mple.com", "", ErrDomain},

	// ß, and the other letters case-insensitive comparison changes.
	{"sharp s", "caroß@example.com", "", ErrCaseFold},
	{"capital sharp s", "CAROẞ@example.com", "", ErrCaseFold},
	{"final sigma", "carolς@example.com", "", ErrCaseFold},
	{"long s", "caroſ@example.com", "", ErrCaseFold},
	{"dotted capital I", "carİl@example.com", "", ErrCaseFold},
	{"dotted capital I in domain", "carol@İxample.com", "", ErrDomain},

	// Invisible, format and bidi characters.
	{"zero-width space", "car\u200Bol@example.com", "", ErrInvisible},
	{"zero-width joiner", "car\u200Dol@example.com", "", ErrInvisible},
	{"soft hyphen", "car\u00ADol@example.com", "", ErrInvisible},
	{"right-to-left override", "\u202Elorac@example.com", "", ErrInvisible},
	{"tag character", "carol\U000E0041@example.com", "", ErrInvisible},
	{"variation selector", "carol\uFE0F@example.com", "", ErrInvisible},
	{"BOM", "\uFEFFcarol@example.com", "", ErrInvisible},
	{"NUL", "carol\x00@example.com", "", ErrSyntax},
	{"next line (C1 control)", "carol\u0085@example.com", "", ErrInvisible},
	{"private use", "carol\uE000@example.com", "", ErrUnassigned},
	{"unassigned", "carol\u0378@example.com", "", ErrUnassigned},
	{"noncharacter", "carol\uFDD0@example.com", "", ErrUnassigned},

	// Syntax that would hide a second reading of the address.
	{"quoted local part", `"carol"@example.com`, "", ErrSyntax},
	{"display name", "Carol <carol@example.com>", "", ErrSyntax},
	{"angle brackets", "<carol@example.com>", "", ErrSyntax},
	{"comment", "carol@example.com (Carol)", "", ErrSyntax},
	{"two addresses", "carol@example.com, carol@example.org", "", ErrSyntax},
	{"trailing dot", "carol@example.com.", "", ErrSyntax},
	{"fake A-label", "carol@xn--example-.com", "", ErrDomain},
	{"invalid UTF-8", "carol\xff@example.com", "", ErrSyntax},
}

func TestLookalikes(t *testing.T) {
	for _, c := range lookalikes {
		got, err := Normalize(c.in)
		if c.err == nil {
			require.NoError(t, err, c.what)
			assert.Equal(t, c.want, got, c.what)
			continue
		}
		require.Error(t, err, "%s: %+q normalised to %+q", c.what, c.in, got)
		assert.ErrorIs(t, err, c.err, c.what)
		assert.Empty(t, got, c.what)
		assertSafeMessage(t, err)
	}
}

// every message Normalize can give: a refusal is one of these, so it
// cannot quote its input.
var messages = func() map[string]bool {
	m := map[string]bool{}
	for _, e := range []*Error{ErrSyntax, ErrLength, ErrInvisible, ErrUnassigned, ErrConfusable, ErrDomain,
		ErrCompatibility, ErrCombiningMark, ErrCaseFold, ErrMixedScripts, ErrMixedDigits} {
		m[e.Error()] = true
	}
	return m
}()

func assertSafeMessage(t testing.TB, err error) {
	t.Helper()
	assert.True(t, messages[err.Error()], "message %q", err.Error())
}

func TestConfusableKinds(t *testing.T) {
	for _, err := range []error{ErrCompatibility, ErrCombiningMark, ErrCaseFold, ErrMixedScripts, ErrMixedDigits} {
		assert.ErrorIs(t, err, ErrConfusable)
		assert.NotErrorIs(t, err, ErrSyntax)
	}
	assert.NotErrorIs(t, ErrSyntax, ErrConfusable)
}

// Internationalised addresses people have, which must pass.
func TestInternationalAddresses(t *testing.T) {
	for in, want := range map[string]string{
		"иван@пример.рф":                 "иван@пример.рф", // all-Cyrillic, local part and domain
		"Иван.Петров@example.com":        "иван.петров@example.com",
		"山田たろう@example.jp":               "山田たろう@example.jp",    // Han + Hiragana
		"ヤマダ.たろう@例え.jp":                  "ヤマダ.たろう@例え.jp",       // Katakana + Hiragana, Han + Hiragana domain
		"Tanaka山田@example.jp":            "tanaka山田@example.jp", // Latin + Han
		"홍길동@example.kr":                 "홍길동@example.kr",
		"我買@屋企.香港":                       "我買@屋企.香港",
		"δοκιμή@παράδειγμα.δοκιμή":       "δοκιμή@παράδειγμα.δοκιμή",
		"ΣΟΦΙΑ@example.gr":               "σοφια@example.gr",    // capital sigma lowers to σ, never ς
		"संपर्क@डाटामेल.भारत":            "संपर्क@डाटामेल.भारत", // Devanagari vowel signs and virama
		"ติดต่อ@example.co.th":           "ติดต่อ@example.co.th",
		"علي@example.com":                "علي@example.com",
		"josé@example.com":               "josé@example.com",
		"JOSÉ@EXAMPLE.COM":               "josé@example.com",
		"o'brien+tag@sub.example.co.uk":  "o'brien+tag@sub.example.co.uk",
		"user@straße.de":                 "user@straße.de", // ß is a letter of its own in IDNA 2008 domains
		"user123@example.com":            "user123@example.com",
		"राम१२@example.in":               "राम१२@example.in",               // Devanagari digits with Devanagari letters
		"\u13A3\u13B3\u13A9@example.com": "\uAB73\uAB83\uAB79@example.com", // Cherokee: both cases fold alike
	} {
		got, err := Normalize(in)
		require.NoError(t, err, "%+q", in)
		assert.Equal(t, want, got, "%+q", in)
	}
}

// A mark typed apart in the local part would compose into a letter that
// passes for its base (carol + U+0301 = caroĺ): refused. A letter typed
// precomposed is a letter of its own, as é is.
func TestCombiningMarksTypedApart(t *testing.T) {
	for _, in := range []string{"carol\u0301@example.com", "ca\u0301rol@example.com", "c\u0327arol@example.com",
		"caro\u0323l@example.com", "jose\u0301@example.com"} {
		_, err := Normalize(in)
		assert.ErrorIs(t, err, ErrCombiningMark, "%+q", in)
	}
	got, err := Normalize("caro\u013A@example.com")
	require.NoError(t, err)
	assert.NotEqual(t, carol, got, "ĺ typed as one letter is another address")
	got, err = Normalize("user@bu\u0308cher.de")
	require.NoError(t, err, "domains go through IDNA, which composes")
	assert.Equal(t, "user@bücher.de", got)
}

func TestMixedDigits(t *testing.T) {
	for _, in := range []string{"राम१2@example.in", "ali٣3@example.com"} {
		_, err := Normalize(in)
		assert.Error(t, err, "%+q", in)
		assert.ErrorIs(t, err, ErrConfusable, "%+q", in)
	}
	_, err := Normalize("राम१2@example.in")
	assert.ErrorIs(t, err, ErrMixedDigits)
	assert.Equal(t, rune('0'), digitZero('7'))
	assert.Equal(t, rune(0x0966), digitZero(0x096F))
	assert.Equal(t, rune(0x1D7D8), digitZero(0x1D7DB), "mathematical digits: five systems in a row")
}

func TestMixedScripts(t *testing.T) {
	for _, ok := range []string{"abc", "абв", "山田たろうヤマダ", "tanaka山田たろう", "ㄅ漢latin", "홍漢latin", "a-b.c_1", "ー"} {
		assert.NoError(t, checkMix(ok), ok)
	}
	for _, bad := range []string{"abcабв", "홍たろう", "ㄅたろう", "abcα", "אabc", "ㄅ홍"} {
		assert.ErrorIs(t, checkMix(bad), ErrMixedScripts, bad)
	}
}

func TestALabelsAndULabelsAreOneDomain(t *testing.T) {
	for _, in := range []string{"user@bücher.de", "user@xn--bcher-kva.de", "USER@BÜCHER.DE", "user@XN--BCHER-KVA.DE", "user@bu\u0308cher.de"} {
		got, err := Normalize(in)
		require.NoError(t, err, in)
		assert.Equal(t, "user@bücher.de", got, in)
		ascii, err := ASCIIDomain(got)
		require.NoError(t, err)
		assert.Equal(t, "user@xn--bcher-kva.de", ascii)
	}
	got, err := Normalize("иван@xn--e1afmkfd.xn--p1ai")
	require.NoError(t, err)
	assert.Equal(t, "иван@пример.рф", got)
	ascii, err := ASCIIDomain(got)
	require.NoError(t, err)
	assert.Equal(t, "иван@xn--e1afmkfd.xn--p1ai", ascii, "the local part is left to SMTPUTF8")
}

func TestASCIIDomain(t *testing.T) {
	got, err := ASCIIDomain("user@straße.de")
	require.NoError(t, err)
	assert.Equal(t, "user@xn--strae-oqa.de", got)
	got, err = ASCIIDomain("legacy.ß@example.com")
	require.NoError(t, err, "a stored local part is not re-checked")
	assert.Equal(t, "legacy.ß@example.com", got)
	for _, bad := range []string{"", "example.com", "@example.com", "user@", "user@ｅｘａｍｐｌｅ.com", "a\r\nRCPT TO:<x@example.com>@example.com",
		"a b@example.com", "<a>@example.com", "user@example.com.", "user@localhost"} {
		_, err := ASCIIDomain(bad)
		require.Error(t, err, "%+q", bad)
		assertSafeMessage(t, err)
	}
}

func TestLengths(t *testing.T) {
	label := strings.Repeat("d", 63)
	domain := label + "." + label + "." + label + "." + strings.Repeat("d", 53) + ".com"
	require.Len(t, domain, 249)
	ok := []string{
		strings.Repeat("a", 64) + "@example.com",
		strings.Repeat("a", 4) + "@" + domain, // 254
		strings.Repeat("é", 32) + "@example.com",
	}
	for _, in := range ok {
		got, err := Normalize(in)
		require.NoError(t, err, in)
		assert.Equal(t, in, got)
	}
	for _, in := range []string{
		strings.Repeat("a", 65) + "@example.com",
		strings.Repeat("é", 33) + "@example.com", // 66 bytes
		strings.Repeat("a", 5) + "@" + domain,    // 255
		"a@" + strings.Repeat("d", 64) + ".com",
		"a@" + strings.Repeat("ü", 60) + ".com", // its A-label is longer than 63
		strings.Repeat("a", 60) + "@" + strings.Repeat("b", 190) + ".com",
		strings.Repeat("a", maxInput+1),
	} {
		_, err := Normalize(in)
		require.Error(t, err, in)
		assert.ErrorIs(t, err, ErrLength, in)
	}
}

func TestSyntax(t *testing.T) {
	for _, bad := range []string{"", "   ", "carol", "carol@", "@example.com", "carol@@example.com", "carol@localhost",
		"carol@example", "carol..x@example.com", ".carol@example.com", "carol.@example.com", "carol@[127.0.0.1]",
		"carol@127.0.0.1", "carol@-example.com", "carol@exa_mple.com", "carol@example..com", "a\nb@example.com",
		"x'; DROP TABLE users; --@example.com", "carol@☃.com", "carol@xn--n3h.com", "carol@l·l.cat", "carol@a\u200Cb.com",
		"carol@.example.com", "not an email"} {
		got, err := Normalize(bad)
		require.Error(t, err, "%+q gave %+q", bad, got)
		assertSafeMessage(t, err)
	}
	_, err := Normalize("not an email")
	assert.Equal(t, "must be a valid email address of at most 254 characters", err.Error(), "the message the API always gave")
}

// Labels the Registration profile passes but IDNA 2008 does not
// (symbols, emoji, CONTEXTO punctuation out of context or at all).
func TestDomainLabelsBeyondTheProfile(t *testing.T) {
	for _, label := range []string{"☃", "💩", "l·l", "ab・cd", "αβ͵γ", "אב׳"} {
		_, err := Normalize("user@" + label + ".com")
		assert.ErrorIs(t, err, ErrDomain, "%+q", label)
	}
}

// The package doc names one Unicode version: every table it uses must be
// of that version, so an upgrade that changes one fails here until the doc
// is updated.
func TestUnicodeVersion(t *testing.T) {
	const documented = "15.0.0"
	assert.Equal(t, documented, unicode.Version, "Go's unicode tables")
	assert.Equal(t, documented, norm.Version, "golang.org/x/text/unicode/norm")
	assert.Equal(t, documented, cases.UnicodeVersion, "golang.org/x/text/cases")
	assert.Equal(t, documented, idna.UnicodeVersion, "golang.org/x/net/idna")
}

// FuzzNormalize: Normalize never panics; what it returns is its own
// normal form (idempotent), valid UTF-8, NFC, within the lengths, and
// mailable; composed and decomposed input agree; a refusal says only one
// of the fixed messages.
func FuzzNormalize(f *testing.F) {
	for _, c := range lookalikes {
		f.Add(c.in)
	}
	for _, s := range []string{"user@bücher.de", "иван@пример.рф", "山田たろう@example.jp", "jose\u0301@example.com",
		"ΣΟΦΙΑ@example.gr", "ᏣᎳᎩ@example.com", "ꮳꮃꭹ@example.com", "Ⱥ@example.com", "ǅ@example.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := Normalize(in)
		if err != nil {
			var e *Error
			require.True(t, errors.As(err, &e))
			assertSafeMessage(t, err)
			require.Empty(t, out)
		} else {
			require.True(t, utf8.ValidString(out))
			require.True(t, norm.NFC.IsNormalString(out))
			again, err := Normalize(out)
			require.NoError(t, err, "%+q from %+q", out, in)
			require.Equal(t, out, again, "from %+q", in)
			ascii, err := ASCIIDomain(out)
			require.NoError(t, err, "%+q", out)
			require.LessOrEqual(t, len(ascii), MaxLength)
		}
		if utf8.ValidString(in) {
			// Decomposed input agrees, unless its local part now holds a
			// mark typed apart, which is refused.
			out2, err2 := Normalize(norm.NFD.String(in))
			if !errors.Is(err2, ErrCombiningMark) {
				require.Equal(t, out, out2, "NFD of %+q", in)
				require.Equal(t, err, err2, "NFD of %+q", in)
			}
		}
	})
}
