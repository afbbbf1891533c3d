package httpapi

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCheckStrictJSON(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 20) + "1" + strings.Repeat("}", 20)
	cases := []struct {
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
		{"too deep", deep, errTooDeepNested},
		{"surrogate pair", `{"a":"\ud83d\ude00","b":"\\ud800"}`, nil},
		{"escaped backslash before u", `{"a":"\\\\ud800"}`, nil},
		{"lone high", `{"a":"x\ud800y"}`, errLoneSurrogate},
		{"lone high at end", `{"a":"\uD800"}`, errLoneSurrogate},
		{"lone low", `{"a":"\udfff"}`, errLoneSurrogate},
		{"high then non-low", `{"a":"\ud800\u0041"}`, errLoneSurrogate},
		{"reversed pair", `{"a":"\ude00\ud83d"}`, errLoneSurrogate},
		{"in key", `{"\ud800":1}`, errLoneSurrogate},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, checkStrictJSON([]byte(c.body)))
		})
	}
}
