package accesstoken

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	now    = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	policy = Policy{Issuer: "https://id.example.com", Audience: "https://api.example.com", Leeway: DefaultLeeway}
)

func enc(s string) string { return b64.EncodeToString([]byte(s)) }

// payload is a valid claims set at now, with members replaced, added or
// (value "") removed by the pairs given, in order.
func payload(pairs ...string) []byte {
	members := [][2]string{
		{"iss", `"https://id.example.com"`},
		{"sub", `"0b6f1c9e-3d5a-4c1e-9f7a-2b8d6e4c1a30"`},
		{"aud", `"https://api.example.com"`},
		{"iat", "1795262400"},
		{"nbf", "1795262400"},
		{"exp", "1795263300"},
		{"jti", `"Zm9vYmFyYmF6cXV1eDEyMw"`},
		{"sid", `"6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"`},
		{"email", `"ada@example.com"`},
		{"email_verified", "true"},
		{"profile_complete", "true"},
		{"profile", `{"python_proficiency":"advanced","developer_role":"ml_engineer"}`},
	}
	for i := 0; i < len(pairs); i += 2 {
		replaced := false
		for j := range members {
			if members[j][0] == pairs[i] {
				members[j][1], replaced = pairs[i+1], true
			}
		}
		if !replaced {
			members = append(members, [2]string{pairs[i], pairs[i+1]})
		}
	}
	var b strings.Builder
	b.WriteByte('{')
	for _, m := range members {
		if m[1] == "" {
			continue
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + m[0] + `":` + m[1])
	}
	b.WriteByte('}')
	return []byte(b.String())
}

func TestPayloadHelperIsValidAtNow(t *testing.T) {
	require.Equal(t, int64(1795262400), now.Unix())
	c, err := policy.Check(payload(), now)
	require.NoError(t, err)
	at := time.Unix(now.Unix(), 0)
	assert.Equal(t, &Claims{
		Subject:         "0b6f1c9e-3d5a-4c1e-9f7a-2b8d6e4c1a30",
		SessionID:       "6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
		Email:           "ada@example.com",
		EmailVerified:   true,
		ProfileComplete: true,
		Profile:         &Profile{PythonProficiency: "advanced", DeveloperRole: "ml_engineer"},
		Issuer:          policy.Issuer,
		Audience:        policy.Audience,
		IssuedAt:        at,
		ExpiresAt:       at.Add(15 * time.Minute),
		NotBefore:       at,
		ID:              "Zm9vYmFyYmF6cXV1eDEyMw",
	}, c)
}

func TestSplit(t *testing.T) {
	h, p, s, err := Split("a.b.c")
	require.NoError(t, err)
	assert.Equal(t, [3]string{"a", "b", "c"}, [3]string{h, p, s})
	_, _, _, err = Split("..")
	require.NoError(t, err, "empty parts fail later, on decoding")
	for _, tok := range []string{"", "a", "a.b", "a.b.c.d", "a.b.c.", strings.Repeat("a", MaxLen-3) + ".b.c"} {
		_, _, _, err := Split(tok)
		assert.Error(t, err, "%.20q", tok)
	}
	_, _, _, err = Split(strings.Repeat("a", MaxLen-4) + ".b.c")
	assert.NoError(t, err, "exactly MaxLen")
}

func TestParseHeader(t *testing.T) {
	all := []string{"ES256", "EdDSA", "RS256"}
	for hdr, want := range map[string]Header{
		`{"alg":"ES256","kid":"k1","typ":"at+jwt"}`:                          {Alg: "ES256", Kid: "k1"},
		`{"typ":"application/at+jwt","kid":"k1","alg":"RS256"}`:              {Alg: "RS256", Kid: "k1"},
		` { "alg" : "EdDSA" , "kid" : "k\u0031" , "typ" : "AT+JWT" } `:       {Alg: "EdDSA", Kid: "k1"},
		`{"alg":"ES256","kid":"k1","typ":"at+jwt","x5t":"ignored","ALG2":1}`: {Alg: "ES256", Kid: "k1"},
	} {
		got, err := ParseHeader(enc(hdr), all)
		require.NoError(t, err, hdr)
		assert.Equal(t, want, got, hdr)
	}

	for hdr, why := range map[string]string{
		`{"alg":"ES256","kid":"k1","typ":"at+jwt"}x`: "not valid JSON",
		`["ES256"]`: "not a JSON object",
		`{"alg":"HS256","kid":"k1","typ":"at+jwt"}`:                             `alg "HS256" not allowed`,
		`{"alg":"none","kid":"k1","typ":"at+jwt"}`:                              `alg "none" not allowed`,
		`{"alg":"es256","kid":"k1","typ":"at+jwt"}`:                             `alg "es256" not allowed`,
		`{"ALG":"ES256","kid":"k1","typ":"at+jwt"}`:                             "alg missing",
		`{"alg":["ES256"],"kid":"k1","typ":"at+jwt"}`:                           "alg missing or not a string",
		`{"alg":"ES256","kid":"k1"}`:                                            "typ missing",
		`{"alg":"ES256","kid":"k1","typ":"JWT"}`:                                `typ "JWT" is not at+jwt`,
		`{"alg":"ES256","kid":"k1","typ":"at+jwt2"}`:                            "is not at+jwt",
		`{"alg":"ES256","kid":"","typ":"at+jwt"}`:                               "kid missing",
		`{"alg":"ES256","kid":7,"typ":"at+jwt"}`:                                "kid missing",
		`{"alg":"ES256","kid":"k1","typ":"at+jwt","crit":[]}`:                   "crit is not supported",
		`{"alg":"ES256","kid":"k1","typ":"at+jwt","b64":true}`:                  "b64 is not supported",
		`{"alg":"ES256","kid":"k1","typ":"at+jwt","kid":"k2"}`:                  `duplicate member names "kid" and "kid"`,
		`{"alg":"none","kid":"k1","typ":"at+jwt","Alg":"ES256"}`:                `duplicate member names "alg" and "Alg"`,
		`{"alg":"ES256","kid":"k1","typ":"at+jwt","x":{"a":1,"A":1}}`:           `duplicate member names "a" and "A"`,
		`{"alg":"ES256","kid":"k1","typ":"at+jwt","k\u0069d":"k2"}`:             `duplicate member names "kid" and "kid"`,
		`{"alg":"ES256","kid":"k1","typ":"at+jwt","x":[[{"y":{"z":1,"Z":2}}]]}`: `duplicate member names "z" and "Z"`,
	} {
		_, err := ParseHeader(enc(hdr), all)
		assert.ErrorContains(t, err, why, hdr)
	}
	_, err := ParseHeader(enc(`{"alg":"EdDSA","kid":"k1","typ":"at+jwt"}`), []string{"ES256"})
	assert.ErrorContains(t, err, "not allowed", "the caller's allow-list decides")
	_, err = ParseHeader(enc(`{"alg":"ES256","kid":"k1","typ":"at+jwt"}`)+"=", all)
	assert.ErrorContains(t, err, "header encoding", "padding is not canonical")
}

func TestCheckAccepts(t *testing.T) {
	for name, p := range map[string][]byte{
		"incomplete profile":        payload("profile_complete", "false", "profile", ""),
		"no email_verified":         payload("email_verified", ""),
		"email not verified":        payload("email_verified", "false"),
		"incomplete, null profile":  payload("profile_complete", "false", "profile", "null"),
		"aud array":                 payload("aud", `["other","https://api.example.com"]`),
		"exp within leeway":         payload("exp", "1795262371"),
		"nbf at leeway":             payload("nbf", "1795262430"),
		"iat at leeway":             payload("iat", "1795262430"),
		"no nbf":                    payload("nbf", ""),
		"no email, no jti":          payload("email", "", "jti", ""),
		"fractional dates":          payload("iat", "1795262400.5", "exp", "1795263300.25"),
		"extra claims":              payload("scope", `"read"`, "amr", `["pwd",{"a":1}]`, "n", "null"),
		"case variant alone":        payload("email", "", "Email", `"eve@example.com"`),
		"escaped strings":           payload("sub", `"\u0030b6f"`, "iss", `"https:\/\/id.example.com"`),
		"whitespace":                []byte(" \n" + strings.ReplaceAll(string(payload()), ",", " ,\t") + "\r\n"),
		"profile with extra member": payload("profile", `{"python_proficiency":"none","developer_role":"other","x":[]}`),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := policy.Check(p, now)
			require.NoError(t, err, "%s", p)
		})
	}

	c, err := policy.Check(payload("email", "", "Email", `"eve@example.com"`), now)
	require.NoError(t, err)
	assert.Empty(t, c.Email, "claim names are exact")
	c, err = policy.Check(payload("sub", `"\u0030b6f"`, "iss", `"https:\/\/id.example.com"`), now)
	require.NoError(t, err)
	assert.Equal(t, "0b6f", c.Subject)
	c, err = policy.Check(payload("nbf", ""), now)
	require.NoError(t, err)
	assert.True(t, c.NotBefore.IsZero())
	c, err = policy.Check(payload("iat", "1795262400.5"), now)
	require.NoError(t, err)
	assert.Equal(t, time.Unix(1795262400, 5e8), c.IssuedAt)
}

func TestCheckRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		payload []byte
		why     string
	}{
		"not JSON":                 {[]byte(`{"iss":`), "not valid JSON"},
		"trailing garbage":         {append(payload(), '}'), "not valid JSON"},
		"an array":                 {[]byte(`[{}]`), "not a JSON object"},
		"null":                     {[]byte(`null`), "not a JSON object"},
		"empty object":             {[]byte(`{}`), "iss missing"},
		"iss wrong":                {payload("iss", `"https://evil.example.com"`), "iss"},
		"iss trailing slash":       {payload("iss", `"https://id.example.com/"`), "iss"},
		"iss an array":             {payload("iss", `["https://id.example.com"]`), "iss"},
		"iss missing":              {payload("iss", ""), "iss missing"},
		"aud wrong":                {payload("aud", `"https://other.example.com"`), "aud"},
		"aud missing":              {payload("aud", ""), "aud missing"},
		"aud null":                 {payload("aud", "null"), "not a string or an array"},
		"aud empty array":          {payload("aud", `[]`), "does not contain"},
		"aud array without ours":   {payload("aud", `["a","b"]`), "does not contain"},
		"aud array with null":      {payload("aud", `[null,"https://api.example.com"]`), "aud entry null is not a string"},
		"aud array with an array":  {payload("aud", `["https://api.example.com",["x"]]`), "is not a string"},
		"aud a number":             {payload("aud", "1"), "not a string or an array"},
		"expired":                  {payload("exp", "1795258800"), "expired"},
		"expired at leeway edge":   {payload("exp", "1795262370"), "expired"},
		"exp missing":              {payload("exp", ""), "exp missing"},
		"exp a string":             {payload("exp", `"1795263300"`), "not a NumericDate"},
		"exp null":                 {payload("exp", "null"), "not a NumericDate"},
		"exp negative":             {payload("exp", "-1"), "not a NumericDate"},
		"exp 2^53":                 {payload("exp", "9007199254740992"), "not a NumericDate"},
		"exp absurd":               {payload("exp", "1e300"), "not a NumericDate"},
		"exp an array":             {payload("exp", "[1795263300]"), "not a NumericDate"},
		"nbf past leeway":          {payload("nbf", "1795262431"), "not valid before"},
		"nbf null":                 {payload("nbf", "null"), "not a NumericDate"},
		"iat past leeway":          {payload("iat", "1795262431"), "issued in the future"},
		"iat missing":              {payload("iat", ""), "iat missing"},
		"iat a boolean":            {payload("iat", "true"), "not a NumericDate"},
		"sub missing":              {payload("sub", ""), "sub missing"},
		"sub empty":                {payload("sub", `""`), "sub missing"},
		"sub a number":             {payload("sub", "7"), "sub missing"},
		"sub only as SUB":          {payload("sub", "", "SUB", `"x"`), "sub missing"},
		"sid missing":              {payload("sid", ""), "sid missing"},
		"email null":               {payload("email", "null"), "email is not a string"},
		"jti a number":             {payload("jti", "7"), "jti is not a string"},
		"profile_complete missing": {payload("profile_complete", ""), "profile_complete missing"},
		"email_verified string":    {payload("email_verified", `"true"`), "email_verified is not a boolean"},
		"email_verified null":      {payload("email_verified", "null"), "email_verified is not a boolean"},
		"profile_complete null":    {payload("profile_complete", "null"), "profile_complete missing"},
		"profile_complete string":  {payload("profile_complete", `"true"`), "profile_complete missing"},
		"profile_complete 1":       {payload("profile_complete", "1"), "profile_complete missing"},
		"profile not an object":    {payload("profile", `"advanced"`), "profile is not an object"},
		"profile member missing":   {payload("profile", `{"developer_role":"student"}`), "python_proficiency missing"},
		"profile member null":      {payload("profile", `{"python_proficiency":null,"developer_role":"student"}`), "python_proficiency missing"},
		"profile member variant":   {payload("profile", `{"Python_Proficiency":"none","developer_role":"student"}`), "python_proficiency missing"},
		"malformed, incomplete":    {payload("profile_complete", "false", "profile", "3"), "profile is not an object"},
		"complete without profile": {payload("profile", ""), "profile is missing"},
		"complete, null profile":   {payload("profile", "null"), "profile is missing"},

		// Duplicates, exact or ignoring case, at any depth.
		"sub and SUB":         {payload("SUB", `"someone-else"`), `duplicate member names "sub" and "SUB"`},
		"sub escaped":         {payload("s\\u0075b", `"someone-else"`), `duplicate member names "sub" and "sub"`},
		"Unicode case fold":   {payload("ſub", `"someone-else"`), `duplicate member names "sub" and "ſub"`},
		"profile member case": {payload("profile", `{"python_proficiency":"none","developer_role":"student","Developer_Role":"x"}`), "duplicate member names"},
		"unknown claim twice": {payload("x", "1", "X", "2"), `duplicate member names "x" and "X"`},
		"deep inside":         {payload("x", `[1,{"a":[{"b":1,"b":2}]}]`), `duplicate member names "b" and "b"`},
		"not UTF-8":           {payload("x", "\"\xff\""), "not UTF-8"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := policy.Check(tc.payload, now)
			require.ErrorContains(t, err, tc.why, "%s", tc.payload)
		})
	}

	// payload() cannot repeat a name exactly.
	base := payload()
	twice := append(append([]byte(nil), base[:len(base)-1]...), `,"sub":"someone-else"}`...)
	_, err := policy.Check(twice, now)
	require.ErrorContains(t, err, `duplicate member names "sub" and "sub"`)
}

func TestPolicyValidate(t *testing.T) {
	require.NoError(t, policy.Validate())
	for name, p := range map[string]Policy{
		"no issuer":             {Audience: "a", Leeway: DefaultLeeway},
		"no audience":           {Issuer: "i", Leeway: DefaultLeeway},
		"negative leeway":       {Issuer: "i", Audience: "a", Leeway: -time.Second},
		"negative max lifetime": {Issuer: "i", Audience: "a", MaxLifetime: -time.Second},
		"leeway over max":       {Issuer: "i", Audience: "a", Leeway: MaxLeeway + time.Second},
	} {
		require.Error(t, p.Validate(), name)
		// A policy that cannot be right accepts nothing, not everything.
		_, err := p.Check(payload("iss", `""`, "aud", `""`), now)
		require.ErrorContains(t, err, "policy", name)
	}
	// Zero leeway is exact.
	exact := policy
	exact.Leeway = 0
	_, err := exact.Check(payload("exp", "1795262401"), now)
	require.NoError(t, err)
	_, err = exact.Check(payload("exp", "1795262400"), now)
	require.ErrorContains(t, err, "expired")
	_, err = exact.Check(payload("iat", "1795262401"), now)
	require.ErrorContains(t, err, "issued in the future")
}

// TestMaxLifetime: exp - iat beyond the maximum is refused, even though the
// token is otherwise valid now; the zero MaxLifetime is the default, not
// "unbounded".
func TestMaxLifetime(t *testing.T) {
	// iat is now (1795262400); DefaultMaxLifetime is 960 s.
	_, err := policy.Check(payload("exp", "1795263360"), now)
	require.NoError(t, err, "exactly the default maximum")
	_, err = policy.Check(payload("exp", "1795263361"), now)
	require.ErrorContains(t, err, "lifetime 16m1s exceeds the maximum 16m0s")
	_, err = policy.Check(payload("exp", "1795348800"), now)
	require.ErrorContains(t, err, "exceeds the maximum", "a 24 h token")
	_, err = policy.Check(payload("iat", "1795262399.5", "exp", "1795263360"), now)
	require.ErrorContains(t, err, "exceeds the maximum", "fractions count")

	long := policy
	long.MaxLifetime = time.Hour
	_, err = long.Check(payload("exp", "1795266000"), now)
	require.NoError(t, err)
	_, err = long.Check(payload("exp", "1795266001"), now)
	require.ErrorContains(t, err, "exceeds the maximum 1h0m0s")
	short := policy
	short.MaxLifetime = time.Minute
	_, err = short.Check(payload(), now)
	require.ErrorContains(t, err, "lifetime 15m0s exceeds the maximum 1m0s")
}

// Payload writes what Check reads: the same names, dates in seconds.
func TestPayloadRoundTrip(t *testing.T) {
	at := time.Unix(now.Unix(), 0)
	for name, c := range map[string]Claims{
		"complete": {
			Subject: "u1", SessionID: "s1", Email: `<eve"@example.com>`, ProfileComplete: true,
			Profile: &Profile{PythonProficiency: "none", DeveloperRole: "student"},
			Issuer:  policy.Issuer, Audience: policy.Audience,
			IssuedAt: at, NotBefore: at, ExpiresAt: at.Add(15 * time.Minute), ID: "j1",
		},
		"incomplete, no nbf, verified": {
			Subject: "u2", SessionID: "s2", Email: "ada@example.com", EmailVerified: true,
			Issuer: policy.Issuer, Audience: policy.Audience,
			IssuedAt: at, ExpiresAt: at.Add(time.Minute), ID: "j2",
		},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := c.Payload()
			require.NoError(t, err)
			got, err := policy.Check(p, now)
			require.NoError(t, err, "%s", p)
			assert.Equal(t, c, *got)
		})
	}

	c := Claims{Subject: "u", SessionID: "s", Issuer: "i", Audience: "a", IssuedAt: at, NotBefore: at, ExpiresAt: at.Add(time.Minute), ID: "j"}
	p, err := c.Payload()
	require.NoError(t, err)
	assert.JSONEq(t, `{"iss":"i","sub":"u","aud":"a","iat":1795262400,"nbf":1795262400,"exp":1795262460,"jti":"j","sid":"s","email":"","email_verified":false,"profile_complete":false}`, string(p))
	assert.True(t, strings.HasPrefix(string(p), `{"iss":"i","sub":"u","aud":"a","iat":`), "contract order: %s", p)
}

// objectMembers must agree with encoding/json on what is valid and on
// every member whenever it accepts, refuse duplicates exactly when a
// plain recursive check finds some, and never panic.
func FuzzObjectMembers(f *testing.F) {
	for _, seed := range []string{
		string(payload()), `{}`, `{"a":[]}`, `{"a":{}}`, `{"a":[1,[2,{"b":"\"}"}]]}`, `{"a":1,"A":2}`,
		`{"\u0041":1,"a":2}`, `{"a":"\\"}`, ` {"a" : -1.5e+3 , "b":true,"c":null} `, `[]`, `{"a":1}x`, `"s"`,
		`{"x":{"a":1},"y":{"a":1}}`, `{"ſ":1,"S":2}`, `{"K":1,"k":2}`, string(manyMembers(20, `"m7"`)),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := objectMembers(b, nil)
		if err != nil {
			if strings.HasPrefix(err.Error(), "duplicate member names") {
				require.True(t, hasDuplicate(t, b), "refused for a duplicate that is not there: %q", b)
			}
			return
		}
		require.False(t, hasDuplicate(t, b), "missed a duplicate: %q", b)
		var m map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(b, &m), "accepted what encoding/json refuses: %q", b)
		require.Len(t, m, len(ms), "%q", b)
		for _, mem := range ms {
			v, ok := m[string(mem.name)]
			require.True(t, ok, "%q", mem.name)
			// Compared as compacted text: JSONEq would parse numbers into
			// float64, which JSON does not promise to fit (1e700).
			var want, got bytes.Buffer
			require.NoError(t, json.Compact(&want, v))
			require.NoError(t, json.Compact(&got, mem.value))
			require.Equal(t, want.String(), got.String(), "%q", mem.name)
		}
	})
}

// hasDuplicate is the plain statement of the rule: some object in the
// valid JSON b has two member names that strings.EqualFold finds equal.
func hasDuplicate(t *testing.T, b []byte) bool {
	type level struct {
		object, wantName bool
		names            []string
	}
	var open []*level
	// A value starts: in an object, a name comes next.
	valueStarts := func() {
		if len(open) > 0 && open[len(open)-1].object {
			open[len(open)-1].wantName = true
		}
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber() // JSON allows numbers no float64 holds (1e700); only names matter here
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return false
		}
		require.NoError(t, err)
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				valueStarts()
				open = append(open, &level{object: v == '{', wantName: v == '{'})
			default:
				open = open[:len(open)-1]
			}
		case string:
			if top := open[len(open)-1]; top.object && top.wantName {
				for _, n := range top.names {
					if strings.EqualFold(n, v) {
						return true
					}
				}
				top.names, top.wantName = append(top.names, v), false
				continue
			}
			valueStarts()
		default:
			valueStarts()
		}
	}
}

// manyMembers is an object with n members m0, m1, … and then the members
// extra: enough to take the map path for duplicates.
func manyMembers(n int, extra string) []byte {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		fmt.Fprintf(&b, `"m%d":%d,`, i, i)
	}
	b.WriteString(extra + `:0}`)
	return []byte(b.String())
}

// Objects with more names than maxLinearNames are checked through a map,
// with the same verdicts.
func TestManyMembers(t *testing.T) {
	n := 3 * maxLinearNames
	for extra, dup := range map[string]bool{
		`"m7"`: true, `"M40"`: true, `"m\u0034"`: true, `"new"`: false, `"m48"`: false,
	} {
		_, err := objectMembers(manyMembers(n, extra), nil)
		if dup {
			assert.ErrorContains(t, err, "duplicate member names", extra)
		} else {
			assert.NoError(t, err, extra)
		}
		// The same, nested: each object has its own names.
		nested := `{"a":` + string(manyMembers(n, extra)) + `,"b":` + string(manyMembers(n, `"x"`)) + `}`
		_, err = objectMembers([]byte(nested), nil)
		if dup {
			assert.ErrorContains(t, err, "duplicate member names", extra)
		} else {
			assert.NoError(t, err, extra)
		}
	}
	// Unicode case folding, as bytes.EqualFold: ſ (long s) folds to s,
	// the Kelvin sign to k.
	for _, pair := range [][2]string{{"s", "ſ"}, {"k", "K"}, {"ß", "ẞ"}} {
		_, err := objectMembers(manyMembers(n, `"`+pair[0]+`":1,"`+pair[1]+`"`), nil)
		assert.ErrorContains(t, err, "duplicate member names", pair)
		_, err = objectMembers([]byte(`{"`+pair[0]+`":1,"`+pair[1]+`":2}`), nil)
		assert.ErrorContains(t, err, "duplicate member names", pair)
	}
	_, err := objectMembers(manyMembers(n, `"ss":1,"ß"`), nil)
	assert.NoError(t, err, "EqualFold folds rune by rune: ß is not ss")
}
