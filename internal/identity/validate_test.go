package identity

import (
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// englandFlag is 🏴, the tags g b e n g, cancel tag.
const englandFlag = "\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F"

// Characters that show nothing, reorder text or pass for a space.
var invisibles = map[string]string{
	"zero-width space":           "\u200B",
	"zero-width non-joiner":      "\u200C",
	"zero-width joiner":          "\u200D",
	"left-to-right mark":         "\u200E",
	"right-to-left mark":         "\u200F",
	"LRE":                        "\u202A",
	"RLE":                        "\u202B",
	"PDF":                        "\u202C",
	"LRO":                        "\u202D",
	"RLO":                        "\u202E",
	"LRI":                        "\u2066",
	"RLI":                        "\u2067",
	"FSI":                        "\u2068",
	"PDI":                        "\u2069",
	"Arabic letter mark":         "\u061C",
	"word joiner":                "\u2060",
	"function application":       "\u2061",
	"invisible times":            "\u2062",
	"invisible separator":        "\u2063",
	"invisible plus":             "\u2064",
	"BOM":                        "\uFEFF",
	"soft hyphen":                "\u00AD",
	"Mongolian vowel separator":  "\u180E",
	"Hangul filler":              "\u3164",
	"Hangul choseong filler":     "\u115F",
	"Hangul jungseong filler":    "\u1160",
	"halfwidth Hangul filler":    "\uFFA0",
	"combining grapheme joiner":  "\u034F",
	"Braille blank":              "\u2800",
	"tag A":                      "\U000E0041",
	"language tag":               "\U000E0001",
	"cancel tag":                 "\U000E007F",
	"variation selector 16":      "\uFE0F",
	"variation selector 17":      "\U000E0100",
	"line separator":             "\u2028",
	"paragraph separator":        "\u2029",
	"NUL":                        "\x00",
	"escape":                     "\x1b",
	"next line (C1)":             "\u0085",
	"interlinear annotation end": "\uFFFB",
}

func TestInvisible(t *testing.T) {
	for what, s := range invisibles {
		assert.True(t, invisible([]rune(s)[0]), what)
	}
	for _, r := range " aZ9éß漢👩💻❤🏴\u0301\u00A0\u3000" {
		assert.False(t, invisible(r), "%U", r)
	}
}

func TestNormaliseName(t *testing.T) {
	for what, s := range invisibles {
		names := []string{s + "Ada", "Ada" + s, "Ada " + s + " Lovelace", s}
		switch r := []rune(s)[0]; {
		case unicode.IsSpace(r): // trimmed at either end, like a space
			names = names[2:3]
		case unicode.Is(unicode.Variation_Selector, r): // "Ada"+s is a letter's variant
			names = []string{s + "Ada", "Ada " + s + " Lovelace", s}
		}
		for _, name := range names {
			_, f := normaliseName(&name)
			require.NotNil(t, f, "%s in %+q", what, name)
			assert.Equal(t, "name", f.Field)
			assert.Equal(t, "must be at most 200 characters, without control, direction or invisible characters", f.Message)
		}
	}
	for _, name := range []string{
		"A\u200Cda\u200D", "\u200DAda", "Ada\u200D\u200DLovelace", "Ada \u200D👩", // joiners out of place
		"\uFE0FAda", "Ada \uFE0F", "A\uFE0F\uFE0F", // selectors out of place
		"Ada\U000E0067\U000E0062\U000E007F",                            // tags without the flag
		"\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067", // no cancel tag
		"\U0001F3F4" + strings.Repeat("\U000E0061", 8) + "\U000E007F",  // too many tags
		"\U0001F3F4\U000E0041\U000E007F",                               // tag capital A
		"\U0001F3F4\U000E007F",                                         // no tags
		englandFlag + "\U000E007F",                                     // a second cancel tag
		strings.Repeat("é", 201),
	} {
		_, f := normaliseName(&name)
		assert.NotNil(t, f, "%+q", name)
	}
	for _, name := range []string{
		"Ada Lovelace", "  Ada  ", "José Ñúñez", "\u00e9\u0301", "李小龍", "Ада",
		"علی\u200Cرضا",                      // Alireza: ZWNJ between letters
		"👩\u200D💻 Grace", "👨\u200D👩\u200D👧", // emoji joined by ZWJ
		"❤\uFE0F Ada", "葛\U000E0100", // emoji and ideographic variation selectors
		"Ada " + englandFlag, englandFlag,
		strings.Repeat("é", 200),
	} {
		got, f := normaliseName(&name)
		require.Nil(t, f, "%+q", name)
		assert.Equal(t, strings.TrimSpace(name), *got)
	}
}

func TestNormaliseEmailRefusesInvisibles(t *testing.T) {
	for what, s := range invisibles {
		_, f := normaliseEmail("ada" + s + "@example.com")
		assert.NotNil(t, f, what)
	}
}

// Stored user agents keep what is visible and lose everything invisible,
// joiners and selectors included: no user agent needs them.
func TestPrintable(t *testing.T) {
	var ua strings.Builder
	ua.WriteString("Mozilla/5.0")
	for _, s := range invisibles {
		ua.WriteString(s)
	}
	ua.WriteString(" (X11) ❤ \xff" + englandFlag)
	assert.Equal(t, "Mozilla/5.0 (X11) ❤ \uFFFD\U0001F3F4", printable(ua.String(), 512))
	assert.Equal(t, "Mozilla", printable("Mozilla\u202E/5.0", 7), "at most n bytes")
	assert.Equal(t, "ab", printable("ab\u00e9", 3), "never a cut character")
}

// Issue 11's look-alikes of an existing carol@example.com: each is refused
// as an email field error, or folds into carol's address so that sign-up
// finds the account taken and log-in finds carol's. internal/emailaddr
// tests the rules row by row; this is the wiring.
func TestNormaliseEmailLookalikes(t *testing.T) {
	const carol = "carol@example.com"
	for _, folded := range []string{"CAROL@EXAMPLE.COM", " Carol@Example.Com\t", "carol@EXAMPLE.com"} {
		got, f := normaliseEmail(folded)
		require.Nil(t, f, "%+q", folded)
		assert.Equal(t, carol, got)
	}
	for what, in := range map[string]string{
		"fullwidth local part": "ｃａｒｏｌ@example.com",
		"fullwidth domain":     "carol@ｅｘａｍｐｌｅ.com",
		"Cyrillic а":           "c\u0430rol@example.com",
		"no-break space":       "carol\u00A0@example.com",
		"Hangul filler":        "carol\u3164@example.com",
		"Braille blank":        "carol\u2800@example.com",
		"combining mark":       "caro\u0336l@example.com",
		"ß":                    "caroß@example.com",
	} {
		got, f := normaliseEmail(in)
		require.NotNil(t, f, "%s: %+q gave %+q", what, in, got)
		assert.Equal(t, "email", f.Field, what)
		assert.NotContains(t, f.Message, in, what)
		assert.NotContains(t, f.Message, "carol", what)
	}
}

func TestNormaliseEmailInternational(t *testing.T) {
	for in, want := range map[string]string{
		"Иван@пример.рф":        "иван@пример.рф",
		"user@xn--bcher-kva.de": "user@bücher.de",
		"user@BÜCHER.de":        "user@bücher.de",
		"josé@example.com":      "josé@example.com",
		"山田たろう@example.jp":      "山田たろう@example.jp",
	} {
		got, f := normaliseEmail(in)
		require.Nil(t, f, "%+q", in)
		assert.Equal(t, want, got)
	}
}
