package password

import (
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The embedded list is what the generator promises: large enough, sorted,
// distinct, canonical, ASCII and no entry shorter than MinListedLength (the
// two facts that make leaving shorter entries out exact).
func TestCommonListShape(t *testing.T) {
	list := string(commonList())
	require.True(t, strings.HasSuffix(list, "\n"))
	entries := strings.Split(strings.TrimSuffix(list, "\n"), "\n")
	assert.GreaterOrEqual(t, len(entries), 100_000)
	for i, e := range entries {
		if i > 0 && entries[i-1] >= e {
			t.Fatalf("entry %d is not after the one before it", i)
		}
		if utf8.RuneCountInString(e) < MinListedLength || Canonical(e) != e {
			t.Fatalf("entry %d is short or not canonical", i)
		}
		for j := 0; j < len(e); j++ {
			if e[j] >= utf8.RuneSelf {
				t.Fatalf("entry %d is not ASCII", i)
			}
		}
	}
}

// Every entry is found, and strings next to entries in sort order are not.
func TestCommonListContains(t *testing.T) {
	list := commonList()
	entries := strings.Split(strings.TrimSuffix(string(list), "\n"), "\n")
	for _, e := range entries {
		if !list.contains(e) {
			t.Fatalf("%q is listed but not found", e)
		}
	}
	for _, s := range []string{"", "\n", entries[0][:len(entries[0])-1], entries[0] + "\x00",
		entries[len(entries)/2] + "\x00", entries[len(entries)-1] + "~", "\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f",
		"correct horse battery staple"} {
		assert.False(t, list.contains(s), "%q", s)
	}
}

func TestWeak(t *testing.T) {
	cases := []struct {
		password, email string
		want            Weakness
	}{
		// The examples.
		{"               ", "", Repetitive},
		{"aaaaaaaaaaaaaaa", "", Repetitive},
		{"passwordpassword", "", Repetitive},
		{"123456789012345", "", Repetitive},
		// Repeats, the last copy cut short, runs both ways with wrap-around,
		// and passwords of a few pieces.
		{"abcabcabcabcabca", "", Repetitive},
		{"correct horsecorrect horse", "", Repetitive},
		{"abcdefghijklmnopqrstuvwxyzabc", "", Repetitive},
		{"9876543210987654", "", Repetitive},
		{"ZYXWVUTSRQPONMLK", "", Repetitive},
		{"aaaaaaaaaaaaaab", "", Repetitive},
		{"               x", "", Repetitive},
		{"ababababababababbaba", "", Repetitive},
		{"aaaaaaaaaaaaaa1", "", Repetitive},
		{"123456789012345a", "", Repetitive},
		{"1234abcd5678efgh", "", Repetitive},
		{"qwe qwe qwe qwe qwe!", "", Repetitive},
		{"!!!!!!!horse!!!!!!!", "", Repetitive},
		{"ＡＡＡＡＡＡＡＡＡＡＡＡＡＡＡ", "", Repetitive}, // fullwidth: NFKC first
		// The service name, any case or width.
		{"my lanyard password", "", ContainsService},
		{"My LANYARD password", "", ContainsService},
		{"my ｌａｎｙａｒｄ password", "", ContainsService},
		// The email's local part, whole, without separators, or a piece of
		// at least four characters.
		{"Jane.Doe+news is me", "jane.doe+news@example.com", ContainsEmail},
		{"hello janedoe 2026", "jane.doe+news@example.com", ContainsEmail},
		{"the news of the day", "jane.doe+news@example.com", ContainsEmail},
		{"call me JANE twice", "jane.doe@example.com", ContainsEmail},
		{"the doe is a deer, a female deer", "jane.doe@example.com", NotWeak}, // "doe": too short
		{"jo jo goes the banjo", "jo@example.com", NotWeak},
		{"example.com rules all", "jane.doe@example.com", NotWeak}, // the domain is not personal
		// Listed, also as typed in another case or width.
		{"1q2w3e4r5t6y7u8i", "", Common},
		{"1Q2W3E4R5T6Y7U8I", "", Common},
		{"ｉｌｏｖｅｙｏｕ００", "", Common},
		// Passphrases and random strings pass.
		{"correct horse battery staple", "ada@example.com", NotWeak},
		{"Tr0ub4dor&3 with more words", "", NotWeak},
		{"vq8#Lm2!pZ0r", "", NotWeak},
		{"horse 1234567 battery", "", NotWeak}, // a run inside is one piece of many
	}
	for _, c := range cases {
		assert.Equal(t, c.want, Weak(c.password, c.email), "%q with %q", c.password, c.email)
	}
}

func TestPieces(t *testing.T) {
	for pw, want := range map[string]int{
		"":                    0,
		"ab":                  2,
		"abc":                 1, // a run
		"aab":                 3, // too short to be a run or a copy
		"aaaaaaaaaaaaaa1":     2,
		"passwordpassword":    9, // eight characters, then a copy
		"abcabcabcabcabca":    2, // a run, then a copy overlapping itself
		"correct horse":       13,
		"890123 zyx":          3,
		"1q2w3e4r5t6y7u8i":    16,
		"🔐🔑🔒🔓":                1, // U+1F510 to U+1F513: a run
		"horse battery horse": 15,
	} {
		assert.Equal(t, want, pieces([]rune(pw), 100), "%q", pw)
	}
	assert.Equal(t, 8, pieces([]rune("correct horse battery staple"), 8), "counts no further than asked")
}

// Every reason reads as the end of "password ..." and none can carry the
// password: they are constants.
func TestWeaknessMessages(t *testing.T) {
	for _, w := range []Weakness{Repetitive, ContainsService, ContainsEmail, Common} {
		assert.NotEmpty(t, string(w))
		assert.False(t, strings.HasSuffix(string(w), "."), "%q", w)
	}
}

func BenchmarkCommonListLoad(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		runtime.KeepAlive(loadCommonList())
	}
}

func BenchmarkWeak(b *testing.B) {
	commonList()
	b.ReportAllocs()
	for b.Loop() {
		Weak("correct horse battery staple", "ada.lovelace@example.com")
	}
}

// BenchmarkWeakLongest: a slow input for period and pieces at the longest
// password allowed: pairs that never repeat three characters long.
func BenchmarkWeakLongest(b *testing.B) {
	var pw strings.Builder
	for i := 0; pw.Len() < 1024; i++ {
		pw.WriteString(string(rune('a'+i%26)) + string(rune('a'+(i/26)%26)))
	}
	commonList()
	b.ReportAllocs()
	for b.Loop() {
		Weak(pw.String(), "")
	}
}

func BenchmarkCommonListContains(b *testing.B) {
	list := commonList()
	b.ReportAllocs()
	for b.Loop() {
		list.contains("qwertyuiop123456")
	}
}
