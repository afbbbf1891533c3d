package httpapi

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// strictJSONCases are the verdicts checkStrictJSON must reach; their bodies
// seed FuzzCheckStrictJSON.
var strictJSONCases = []struct {
	name string
	body string
	want error
}{
	{"object", `{"email":"a@b.co","password":"x"}`, nil},
	{"nested ok", `{"a":{"b":[1,2,{"c":null}]},"d":true}`, nil},
	{"whitespace around", " \n{\"a\":1}\n ", nil},
	{"emoji", `{"password":"🔐🔑 correct horse"}`, nil},
	{"escaped unicode", `{"name":"\u00e9\ud83d\ude00"}`, nil},
	{"empty", ``, errEmptyBody},
	{"blank", "  \n", errEmptyBody},
	{"invalid utf8", "{\"a\":\"\xff\xfe\"}", errInvalidUTF8},
	{"truncated", `{"a":`, errMalformed},
	{"not json", `email=a`, errMalformed},
	{"array", `[1]`, errNotAnObject},
	{"string", `"x"`, errNotAnObject},
	{"trailing object", `{"a":1}{"b":2}`, errTrailingData},
	{"trailing garbage", `{"a":1} x`, errTrailingData},
	{"duplicate", `{"a":1,"a":2}`, errDuplicateKey},
	{"duplicate nested", `{"x":{"a":1,"a":1}}`, errDuplicateKey},
	{"duplicate via escape", `{"a":1,"\u0061":2}`, errDuplicateKey},
	{"nul escaped", `{"a":"x\u0000y"}`, errNULCharacter},
	{"nul in key", `{"a\u0000":1}`, errNULCharacter},
	{"nul in array", `{"a":["\u0000"]}`, errNULCharacter},
	{"too deep", strings.Repeat(`{"a":`, 20) + "1" + strings.Repeat("}", 20), errTooDeepNested},
	{"surrogate pair", `{"a":"\ud83d\ude00","b":"\\ud800"}`, nil},
	{"escaped backslash before u", `{"a":"\\\\ud800"}`, nil},
	{"lone high", `{"a":"x\ud800y"}`, errLoneSurrogate},
	{"lone high at end", `{"a":"\uD800"}`, errLoneSurrogate},
	{"lone low", `{"a":"\udfff"}`, errLoneSurrogate},
	{"high then non-low", `{"a":"\ud800\u0041"}`, errLoneSurrogate},
	{"reversed pair", `{"a":"\ude00\ud83d"}`, errLoneSurrogate},
	{"in key", `{"\ud800":1}`, errLoneSurrogate},
}

func TestCheckStrictJSON(t *testing.T) {
	for _, c := range strictJSONCases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, checkStrictJSON([]byte(c.body)))
		})
	}
}

// FuzzCheckStrictJSON holds the strict check to encoding/json, which decodes
// the body after it: it never panics; what it accepts is one JSON object
// that encoding/json decodes with nothing silently altered (no NUL, no
// U+FFFD that the body did not spell out, as many members as names); and
// what it calls malformed, encoding/json refuses too.
func FuzzCheckStrictJSON(f *testing.F) {
	for _, c := range strictJSONCases {
		f.Add([]byte(c.body))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := checkStrictJSON(b)
		switch err {
		case nil:
			require.True(t, json.Valid(b), "accepted what encoding/json refuses: %q", b)
			var m map[string]any
			require.NoError(t, json.Unmarshal(b, &m), "accepted a non-object: %q", b)
			// U+FFFD as is, or as an escape in any case.
			spelled := bytes.ContainsRune(b, utf8.RuneError) || bytes.Contains(bytes.ToLower(b), []byte(`\ufffd`))
			walkStrings(m, func(s string) {
				require.NotContains(t, s, "\x00", "%q", b)
				require.True(t, spelled || !strings.ContainsRune(s, utf8.RuneError), "a string was altered: %q", b)
			})
			require.Len(t, m, topLevelNames(t, b), "a repeated name was let through: %q", b)
		case errMalformed, errTrailingData, errEmptyBody:
			require.False(t, json.Valid(b), "called valid JSON malformed: %q", b)
		case errInvalidUTF8:
			require.False(t, utf8.Valid(b))
		case errNotAnObject:
			require.False(t, bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("{")), "%q", b)
		}
	})
}

// walkStrings calls fn with every member name and string value in v.
func walkStrings(v any, fn func(string)) {
	switch v := v.(type) {
	case string:
		fn(v)
	case map[string]any:
		for k, e := range v {
			fn(k)
			walkStrings(e, fn)
		}
	case []any:
		for _, e := range v {
			walkStrings(e, fn)
		}
	}
}

// topLevelNames counts the member names of the JSON object b, repeats included.
func topLevelNames(t *testing.T, b []byte) int {
	var members []json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	_, err := dec.Token() // {
	require.NoError(t, err)
	for dec.More() {
		_, err := dec.Token() // the name
		require.NoError(t, err)
		var v json.RawMessage
		require.NoError(t, dec.Decode(&v))
		members = append(members, v)
	}
	return len(members)
}
