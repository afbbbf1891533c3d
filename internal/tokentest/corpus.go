package tokentest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Case is one token and the verdict every verifier must reach.
type Case struct {
	Name            string `json:"name"`
	Token           string `json:"token"`
	Accept          bool   `json:"accept"`           // a verifier must accept it
	ProfileComplete bool   `json:"profile_complete"` // for accepted tokens: what a personalised route sees (403 when false)
}

// Corpus is the verifier configuration and the cases to judge with it.
// The Go verifier's test, Lanyard's own bearer check and the FastAPI and
// Node examples' tests (through examples/corpus) each serve JWKS at their
// JWKS URL, configure Issuer, Audience and Algorithms, and check every
// Case.
type Corpus struct {
	Issuer     string          `json:"issuer"`
	Audience   string          `json:"audience"`
	Algorithms []string        `json:"algorithms"` // ["ES256"]
	JWKS       json.RawMessage `json:"jwks"`       // serve this at the JWKS URL
	Cases      []Case          `json:"cases"`
	// Key is the published key, for a keys.Ring that checks the cases as
	// Lanyard itself does. It does not travel in the JSON.
	Key *Key `json:"-"`
}

// randomID returns n random bytes, base64url.
func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand aborts the program instead)
	return b64.EncodeToString(b)
}

// uuid4 returns a random RFC 9562 version 4 UUID, the form of sub and sid.
func uuid4() string {
	var u [16]byte
	rand.Read(u[:]) // never fails (crypto/rand aborts the program instead)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}

// NewCorpus generates a fresh ES256 key and returns the corpus for a
// verifier configured with issuer and audience and running at about now:
// every token that should be valid is valid from now for 15 minutes.
func NewCorpus(issuer, audience string, now time.Time) (*Corpus, error) {
	if issuer == "" || audience == "" {
		return nil, errors.New("tokentest: issuer and audience are required")
	}
	published := NewKey("ES256")
	stranger := NewKey("ES256") // signs unknown_kid; never published

	// claims returns a full contract claim set, each call with its own
	// sub, sid and jti so no two tokens are alike.
	claims := func(complete bool) map[string]any {
		c := Claims(issuer, audience, now)
		sub := uuid4()
		c["sub"] = sub
		c["sid"] = uuid4()
		c["jti"] = randomID(16) // 128 bits, as the contract requires
		c["email"] = "corpus-" + sub[:8] + "@example.com"
		// The onboarded user proved the address; the new one has not yet.
		c["email_verified"] = complete
		c["profile_complete"] = complete
		delete(c, "profile")
		if complete {
			c["profile"] = map[string]string{"python_proficiency": "intermediate", "developer_role": "software_engineer"}
		}
		return c
	}
	lanyardHeader := Header("ES256", published.Kid, "at+jwt")
	// std is a token signed by the published key under Lanyard's header,
	// with the claims mut leaves.
	std := func(complete bool, mut func(map[string]any)) func() string {
		return func() string {
			c := claims(complete)
			if mut != nil {
				mut(c)
			}
			return published.SignRaw(lanyardHeader, mustJSON(c))
		}
	}
	// appended is a token signed by the published key whose claims JSON
	// ends with the extra members given, which a map cannot hold:
	// duplicate names.
	appended := func(complete bool, extra string) func() string {
		return func() string {
			payload := mustJSON(claims(complete))
			payload = append(payload[:len(payload)-1], ","+extra+"}"...)
			return published.SignRaw(lanyardHeader, payload)
		}
	}

	specs := []struct {
		name     string
		accept   bool
		complete bool
		build    func() string
	}{
		{"good_complete", true, true, std(true, nil)},
		{"good_incomplete", true, false, std(false, nil)},
		{"expired", false, false, std(true, func(c map[string]any) {
			c["iat"] = now.Add(-time.Hour - accessTTL).Unix()
			c["nbf"] = c["iat"]
			c["exp"] = now.Add(-time.Hour).Unix()
		})},
		{"not_yet_valid", false, false, std(true, func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() })},
		{"wrong_issuer", false, false, std(true, func(c map[string]any) { c["iss"] = "https://issuer.invalid" })},
		{"wrong_audience", false, false, std(true, func(c map[string]any) { c["aud"] = "https://audience.invalid" })},
		// An incomplete user's token edited to claim onboarding is done:
		// the escalation a backend most needs to catch.
		{"tampered_payload", false, false, func() string {
			c := claims(false)
			tok := published.SignRaw(lanyardHeader, mustJSON(c))
			c["profile_complete"] = true
			c["profile"] = map[string]string{"python_proficiency": "advanced", "developer_role": "researcher"}
			return replacePart(tok, 1, b64.EncodeToString(mustJSON(c)))
		}},
		{"tampered_signature", false, false, func() string {
			tok := std(true, nil)()
			sig, err := b64.DecodeString(part(tok, 2))
			if err != nil {
				panic(err)
			}
			sig[10] ^= 0x01 // inside r; still 64 bytes and canonical base64url
			return replacePart(tok, 2, b64.EncodeToString(sig))
		}},
		{"alg_none", false, false, func() string {
			return b64.EncodeToString(Header("none", published.Kid, "at+jwt")) + "." + b64.EncodeToString(mustJSON(claims(true))) + "."
		}},
		// The classic key-confusion forgery: HMAC keyed with the public
		// key's PEM, which a verifier that lets the token pick the
		// algorithm would accept.
		{"hs256_public_key", false, false, func() string {
			der, err := x509.MarshalPKIXPublicKey(published.Signer.Public())
			if err != nil {
				panic(err)
			}
			secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
			in := b64.EncodeToString(Header("HS256", published.Kid, "at+jwt")) + "." + b64.EncodeToString(mustJSON(claims(true)))
			m := hmac.New(sha256.New, secret)
			m.Write([]byte(in))
			return in + "." + b64.EncodeToString(m.Sum(nil))
		}},
		{"unknown_kid", false, false, func() string { return stranger.Sign(claims(true)) }},
		{"missing_profile_complete", false, false, std(false, func(c map[string]any) { delete(c, "profile_complete") })},
		{"wrong_typ", false, false, func() string {
			return published.SignRaw(Header("ES256", published.Kid, "JWT"), mustJSON(claims(true)))
		}},

		// Validly signed by the published key but odd: the cases on which
		// verifiers built on different JWT libraries used to disagree.
		// Every one is judged by the rules in examples/README.md.
		{"missing_sid", false, false, std(true, func(c map[string]any) { delete(c, "sid") })},
		// A NumericDate is a JSON number: PyJWT would int() a string.
		{"exp_string", false, false, std(true, func(c map[string]any) { c["exp"] = strconv.FormatInt(now.Add(accessTTL).Unix(), 10) })},
		// Not a sane NumericDate: every date must be below 2^53.
		{"exp_huge", false, false, std(true, func(c map[string]any) { c["exp"] = 1e300 })},
		// Lanyard always sends nbf, but the contract only demands checking
		// it when present.
		{"missing_nbf", true, true, std(true, func(c map[string]any) { delete(c, "nbf") })},
		// Issued in the future (beyond the leeway): refused, as PyJWT does.
		{"iat_future", false, false, std(true, func(c map[string]any) {
			c["iat"] = now.Add(time.Hour).Unix()
			c["exp"] = now.Add(time.Hour + accessTTL).Unix()
		})},
		{"profile_true_without_profile", false, false, std(true, func(c map[string]any) { delete(c, "profile") })},
		// Member names equal ignoring case are duplicates, and duplicates
		// are refused: "Profile_Complete" after "profile_complete" is
		// what a case-insensitive, last-wins decoder (Go's encoding/json
		// into a struct) would read as profile_complete.
		{"case_variant_claim", false, false, appended(false, `"Profile_Complete":true`)},
		// RFC 7797 unencoded payload without crit: refused, whatever a
		// library would make of it.
		{"b64_false", false, false, func() string {
			return published.SignRaw([]byte(`{"alg":"ES256","kid":"`+published.Kid+`","typ":"at+jwt","b64":false}`), mustJSON(claims(true)))
		}},
		// A valid token plus one trailing space: not a compact JWS.
		{"trailing_whitespace", false, false, func() string { return std(true, nil)() + " " }},
		// Claim names are exact: a case variant alone is an unknown
		// claim, so this token has no profile_complete.
		{"case_variant_only", false, false, std(true, func(c map[string]any) {
			c["Profile_Complete"] = c["profile_complete"]
			delete(c, "profile_complete")
		})},
		// The same name twice: a last-wins reader sees another user.
		{"duplicate_claim", false, false, appended(true, `"sub":"`+uuid4()+`"`)},
		// sub and SUB: read as one user by a case-sensitive reader and as
		// another by a case-insensitive one.
		{"case_duplicate_claim", false, false, appended(true, `"SUB":"`+uuid4()+`"`)},
		// Duplicates are refused at any depth.
		{"duplicate_profile_member", false, false, std(true, func(c map[string]any) {
			c["profile"] = json.RawMessage(`{"python_proficiency":"none","developer_role":"student","developer_role":"researcher"}`)
		})},
		// And in the header: a last-wins reader finds the published key.
		{"duplicate_header_member", false, false, func() string {
			hdr := `{"alg":"ES256","kid":"` + stranger.Kid + `","typ":"at+jwt","kid":"` + published.Kid + `"}`
			return published.SignRaw([]byte(hdr), mustJSON(claims(true)))
		}},
		// aud is a string or an array of strings: null is neither, even
		// next to the right audience.
		{"aud_array_with_null", false, false, std(true, func(c map[string]any) { c["aud"] = []any{nil, audience} })},
		// Valid now, but exp - iat is a day: what a leaked signing key
		// mints to outlive its revocation. Every verifier bounds the
		// lifetime (by default Lanyard's access TTL plus 60 s).
		{"lifetime_too_long", false, false, std(true, func(c map[string]any) { c["exp"] = now.Add(24 * time.Hour).Unix() })},
	}

	corpus := &Corpus{
		Issuer:     issuer,
		Audience:   audience,
		Algorithms: []string{"ES256"},
		JWKS:       JWKS(published),
		Cases:      make([]Case, 0, len(specs)),
		Key:        published,
	}
	for _, s := range specs {
		corpus.Cases = append(corpus.Cases, Case{Name: s.name, Token: s.build(), Accept: s.accept, ProfileComplete: s.complete})
	}
	return corpus, nil
}

// part returns the i-th dot-separated segment of a compact JWS.
func part(tok string, i int) string {
	return strings.SplitN(tok, ".", 3)[i]
}

// replacePart returns tok with its i-th segment replaced by v.
func replacePart(tok string, i int, v string) string {
	p := strings.SplitN(tok, ".", 3)
	p[i] = v
	return strings.Join(p, ".")
}
