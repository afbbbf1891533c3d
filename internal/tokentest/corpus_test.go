package tokentest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	iss = "https://id.example.com"
	aud = "https://api.example.com"
)

var now = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// The names, order and verdicts other teams code against.
func TestCases(t *testing.T) {
	c, err := NewCorpus(iss, aud, now)
	require.NoError(t, err)
	assert.Equal(t, iss, c.Issuer)
	assert.Equal(t, aud, c.Audience)
	assert.Equal(t, []string{"ES256"}, c.Algorithms)
	type verdict struct {
		name             string
		accept, complete bool
	}
	var got []verdict
	for _, cs := range c.Cases {
		got = append(got, verdict{cs.Name, cs.Accept, cs.ProfileComplete})
	}
	assert.Equal(t, []verdict{
		{"good_complete", true, true},
		{"good_incomplete", true, false},
		{"expired", false, false},
		{"not_yet_valid", false, false},
		{"wrong_issuer", false, false},
		{"wrong_audience", false, false},
		{"tampered_payload", false, false},
		{"tampered_signature", false, false},
		{"alg_none", false, false},
		{"hs256_public_key", false, false},
		{"unknown_kid", false, false},
		{"missing_profile_complete", false, false},
		{"wrong_typ", false, false},
		{"missing_sid", false, false},
		{"exp_string", false, false},
		{"exp_huge", false, false},
		{"missing_nbf", true, true},
		{"iat_future", false, false},
		{"profile_true_without_profile", false, false},
		{"case_variant_claim", false, false},
		{"b64_false", false, false},
		{"trailing_whitespace", false, false},
		{"case_variant_only", false, false},
		{"duplicate_claim", false, false},
		{"case_duplicate_claim", false, false},
		{"duplicate_profile_member", false, false},
		{"duplicate_header_member", false, false},
		{"aud_array_with_null", false, false},
		{"lifetime_too_long", false, false},
	}, got)

	_, err = NewCorpus("", aud, now)
	require.Error(t, err)
	_, err = NewCorpus(iss, "", now)
	require.Error(t, err)
}

// Each case is wrong in exactly the way its name says, checked here with
// plain crypto so the corpus does not depend on any verifier's opinion.
func TestTokensAreWhatTheySay(t *testing.T) {
	c, err := NewCorpus(iss, aud, now)
	require.NoError(t, err)

	var jwks struct {
		Keys []map[string]string `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(c.JWKS, &jwks))
	require.Len(t, jwks.Keys, 1)
	jwk := jwks.Keys[0]
	assert.Equal(t, "EC", jwk["kty"])
	assert.Equal(t, "P-256", jwk["crv"])
	assert.Equal(t, "ES256", jwk["alg"])
	assert.Equal(t, "sig", jwk["use"])
	x, err := b64.DecodeString(jwk["x"])
	require.NoError(t, err)
	y, err := b64.DecodeString(jwk["y"])
	require.NoError(t, err)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	require.NoError(t, err)

	type parsed struct {
		hdr       map[string]any
		claims    map[string]any
		rawHdr    string // the JSON, which may hold what a map cannot: duplicates
		rawClaims string
		in        string
		sig       []byte
	}
	parse := func(tok string) parsed {
		p := strings.Split(tok, ".")
		require.Len(t, p, 3)
		var out parsed
		h, err := b64.DecodeString(p[0])
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(h, &out.hdr))
		body, err := b64.DecodeString(p[1])
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(body, &out.claims))
		out.rawHdr, out.rawClaims = string(h), string(body)
		out.sig, err = b64.DecodeString(p[2])
		require.NoError(t, err)
		out.in = p[0] + "." + p[1]
		return out
	}
	esValid := func(p parsed) bool {
		if len(p.sig) != 64 {
			return false
		}
		d := sha256.Sum256([]byte(p.in))
		return ecdsa.Verify(pub, d[:], new(big.Int).SetBytes(p.sig[:32]), new(big.Int).SetBytes(p.sig[32:]))
	}

	seen := map[string]bool{}
	for _, cs := range c.Cases {
		t.Run(cs.Name, func(t *testing.T) {
			tok := cs.Token
			if cs.Name == "trailing_whitespace" {
				require.True(t, strings.HasSuffix(tok, " "))
				tok = strings.TrimSuffix(tok, " ")
			}
			p := parse(tok)
			cl := p.claims
			for _, k := range []string{"sub", "sid", "jti"} {
				if v, ok := cl[k].(string); ok {
					assert.False(t, seen[k+v], "%s unique across cases", k)
					seen[k+v] = true
				}
			}
			want := []string{"iss", "sub", "aud", "iat", "nbf", "exp", "jti", "sid", "email"}
			switch cs.Name {
			case "missing_sid":
				want = slices.DeleteFunc(want, func(k string) bool { return k == "sid" })
			case "missing_nbf":
				want = slices.DeleteFunc(want, func(k string) bool { return k == "nbf" })
			}
			for _, k := range want {
				assert.Contains(t, cl, k)
			}
			wantHdr := map[string]any{"alg": "ES256", "kid": jwk["kid"], "typ": "at+jwt"}
			var wantExp any = float64(now.Add(15 * time.Minute).Unix())
			wantValidSig := true
			var wantAud any = aud
			switch cs.Name {
			case "good_complete":
				assert.Equal(t, true, cl["profile_complete"])
				assert.Equal(t, map[string]any{"python_proficiency": "intermediate", "developer_role": "software_engineer"}, cl["profile"])
			case "good_incomplete":
				assert.Equal(t, false, cl["profile_complete"])
				assert.NotContains(t, cl, "profile")
			case "expired":
				wantExp = float64(now.Add(-time.Hour).Unix())
			case "not_yet_valid":
				assert.Equal(t, float64(now.Add(time.Hour).Unix()), cl["nbf"])
			case "wrong_issuer":
				assert.NotEqual(t, iss, cl["iss"])
			case "wrong_audience":
				assert.NotEqual(t, aud, cl["aud"])
			case "tampered_payload":
				assert.Equal(t, true, cl["profile_complete"], "claims a completed profile")
				wantValidSig = false
			case "tampered_signature":
				wantValidSig = false
			case "alg_none":
				wantHdr["alg"] = "none"
				assert.Empty(t, p.sig)
				wantValidSig = false
			case "hs256_public_key":
				wantHdr["alg"] = "HS256"
				der, err := x509.MarshalPKIXPublicKey(pub)
				require.NoError(t, err)
				m := hmac.New(sha256.New, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
				m.Write([]byte(p.in))
				assert.Equal(t, m.Sum(nil), p.sig, "HMAC keyed with the public key PEM")
				wantValidSig = false
			case "unknown_kid":
				assert.NotEqual(t, jwk["kid"], p.hdr["kid"])
				wantHdr["kid"] = p.hdr["kid"]
				wantValidSig = false
			case "missing_profile_complete":
				assert.NotContains(t, cl, "profile_complete")
			case "wrong_typ":
				wantHdr["typ"] = "JWT"
			case "missing_sid":
				assert.NotContains(t, cl, "sid")
			case "exp_string":
				wantExp = strconv.FormatInt(now.Add(15*time.Minute).Unix(), 10)
			case "exp_huge":
				wantExp = 1e300
			case "missing_nbf":
				assert.NotContains(t, cl, "nbf")
				assert.Equal(t, true, cl["profile_complete"])
			case "iat_future":
				assert.Equal(t, float64(now.Add(time.Hour).Unix()), cl["iat"])
				wantExp = float64(now.Add(time.Hour + 15*time.Minute).Unix())
			case "profile_true_without_profile":
				assert.Equal(t, true, cl["profile_complete"])
				assert.NotContains(t, cl, "profile")
			case "case_variant_claim":
				assert.Equal(t, false, cl["profile_complete"])
				assert.Equal(t, true, cl["Profile_Complete"])
				i, j := strings.Index(p.rawClaims, `"profile_complete":false`), strings.Index(p.rawClaims, `"Profile_Complete":true`)
				assert.True(t, i >= 0 && j > i, "the variant comes after the real claim, so last-wins case folding would pick it: %s", p.rawClaims)
			case "b64_false":
				wantHdr["b64"] = false
			case "trailing_whitespace":
			case "case_variant_only":
				assert.NotContains(t, cl, "profile_complete")
				assert.Equal(t, true, cl["Profile_Complete"])
				assert.Contains(t, cl, "profile")
			case "duplicate_claim":
				assert.Equal(t, 2, strings.Count(p.rawClaims, `"sub":"`), p.rawClaims)
			case "case_duplicate_claim":
				assert.Contains(t, cl, "SUB")
				assert.NotEqual(t, cl["sub"], cl["SUB"])
			case "duplicate_profile_member":
				assert.Equal(t, 2, strings.Count(p.rawClaims, `"developer_role":"`), p.rawClaims)
			case "duplicate_header_member":
				// The last kid is the published one, the first another.
				assert.Equal(t, 2, strings.Count(p.rawHdr, `"kid":"`), p.rawHdr)
				assert.False(t, strings.HasPrefix(p.rawHdr, `{"alg":"ES256","kid":"`+jwk["kid"]), p.rawHdr)
			case "aud_array_with_null":
				wantAud = []any{nil, aud}
			case "lifetime_too_long":
				assert.Equal(t, float64(now.Unix()), cl["iat"], "valid now")
				wantExp = float64(now.Add(24 * time.Hour).Unix())
			default:
				t.Fatalf("unexpected case %q", cs.Name)
			}
			assert.Equal(t, wantHdr, p.hdr)
			assert.Equal(t, wantExp, cl["exp"])
			assert.Equal(t, wantValidSig, esValid(p), "signature under the published key")
			if !strings.HasPrefix(cs.Name, "wrong_") {
				assert.Equal(t, iss, cl["iss"])
				assert.Equal(t, wantAud, cl["aud"])
			}
		})
	}
}

// The corpus travels as JSON to the Python and Node tests.
func TestJSONRoundTrip(t *testing.T) {
	c, err := NewCorpus(iss, aud, now)
	require.NoError(t, err)
	b, err := json.Marshal(c)
	require.NoError(t, err)
	var back Corpus
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, c.Cases, back.Cases)
	assert.JSONEq(t, string(c.JWKS), string(back.JWKS))
	assert.Contains(t, string(b), `"jwks":{"keys":[`)

	c2, err := NewCorpus(iss, aud, now)
	require.NoError(t, err)
	assert.NotEqual(t, string(c.JWKS), string(c2.JWKS), "a fresh key per Build")
}
