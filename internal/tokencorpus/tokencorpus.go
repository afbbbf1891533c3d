// Package tokencorpus builds the one set of good and bad Lanyard access
// tokens that every verifier Lanyard ships or documents (the Go verifier
// package, the FastAPI/PyJWT dependency, the Node jose example) must judge
// identically. Each verifier's test serves Corpus.JWKS at its JWKS URL,
// configures Issuer, Audience and Algorithms, and checks every Case.
package tokencorpus

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
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
type Corpus struct {
	Issuer     string          `json:"issuer"`
	Audience   string          `json:"audience"`
	Algorithms []string        `json:"algorithms"` // ["ES256"]
	JWKS       json.RawMessage `json:"jwks"`       // serve this at the JWKS URL
	Cases      []Case          `json:"cases"`
}

// accessTTL is Lanyard's default access-token lifetime.
const accessTTL = 15 * time.Minute

var b64 = base64.RawURLEncoding

// key is a P-256 signing key with its published kid.
type key struct {
	priv *ecdsa.PrivateKey
	kid  string
	jwk  map[string]string
}

func newKey() (*key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	pt, err := priv.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		return nil, err
	}
	x, y := b64.EncodeToString(pt[1:33]), b64.EncodeToString(pt[33:])
	// kid is the RFC 7638 thumbprint, as Lanyard's own keys have: the
	// required members in lexicographic order, no whitespace.
	tp := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`))
	kid := b64.EncodeToString(tp[:])
	return &key{priv: priv, kid: kid, jwk: map[string]string{
		"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": "ES256", "use": "sig",
	}}, nil
}

// sign returns the compact JWS of header and payload (both JSON) with an
// ES256 signature in JOSE r||s form.
func (k *key) sign(header, payload []byte) (string, error) {
	in := b64.EncodeToString(header) + "." + b64.EncodeToString(payload)
	d := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, k.priv, d[:])
	if err != nil {
		return "", err
	}
	var sig [64]byte
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return in + "." + b64.EncodeToString(sig[:]), nil
}

func header(alg, kid, typ string) []byte {
	// Field order as Lanyard emits it; marshalling a struct cannot fail.
	b, _ := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{alg, kid, typ})
	return b
}

// randomID returns n random bytes, base64url.
func randomID(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return b64.EncodeToString(b), nil
}

// uuid4 returns a random RFC 9562 version 4 UUID, the form of sub and sid.
func uuid4() (string, error) {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", err
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:]), nil
}

// Build generates a fresh ES256 key and returns the corpus for a verifier
// configured with issuer and audience and running at about now: every
// token that should be valid is valid from now for 15 minutes.
func Build(issuer, audience string, now time.Time) (*Corpus, error) {
	if issuer == "" || audience == "" {
		return nil, errors.New("tokencorpus: issuer and audience are required")
	}
	published, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("tokencorpus: %w", err)
	}
	// Signs unknown_kid; never published.
	stranger, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("tokencorpus: %w", err)
	}
	jwks, err := json.Marshal(map[string]any{"keys": []map[string]string{published.jwk}})
	if err != nil {
		return nil, fmt.Errorf("tokencorpus: %w", err)
	}

	// claims returns a full contract claim set, each call with its own
	// sub, sid and jti so no two tokens are alike.
	claims := func(complete bool) (map[string]any, error) {
		sub, err := uuid4()
		if err != nil {
			return nil, err
		}
		sid, err := uuid4()
		if err != nil {
			return nil, err
		}
		jti, err := randomID(16) // 128 bits, as the contract requires
		if err != nil {
			return nil, err
		}
		c := map[string]any{
			"iss":              issuer,
			"sub":              sub,
			"aud":              audience,
			"iat":              now.Unix(),
			"nbf":              now.Unix(),
			"exp":              now.Add(accessTTL).Unix(),
			"jti":              jti,
			"sid":              sid,
			"email":            "corpus-" + sub[:8] + "@example.com",
			"profile_complete": complete,
		}
		if complete {
			c["profile"] = map[string]string{"python_proficiency": "intermediate", "developer_role": "software_engineer"}
		}
		return c, nil
	}
	lanyardHeader := header("ES256", published.kid, "at+jwt")

	type spec struct {
		name     string
		accept   bool
		complete bool
		build    func() (string, error)
	}
	// signed returns a builder for a token signed by k under hdr with the
	// claims mut leaves.
	signed := func(k *key, hdr []byte, complete bool, mut func(map[string]any)) func() (string, error) {
		return func() (string, error) {
			c, err := claims(complete)
			if err != nil {
				return "", err
			}
			if mut != nil {
				mut(c)
			}
			payload, err := json.Marshal(c)
			if err != nil {
				return "", err
			}
			return k.sign(hdr, payload)
		}
	}
	std := func(complete bool, mut func(map[string]any)) func() (string, error) {
		return signed(published, lanyardHeader, complete, mut)
	}

	specs := []spec{
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
		{"tampered_payload", false, false, func() (string, error) {
			c, err := claims(false)
			if err != nil {
				return "", err
			}
			payload, err := json.Marshal(c)
			if err != nil {
				return "", err
			}
			tok, err := published.sign(lanyardHeader, payload)
			if err != nil {
				return "", err
			}
			c["profile_complete"] = true
			c["profile"] = map[string]string{"python_proficiency": "advanced", "developer_role": "researcher"}
			forged, err := json.Marshal(c)
			if err != nil {
				return "", err
			}
			return replacePart(tok, 1, b64.EncodeToString(forged)), nil
		}},
		{"tampered_signature", false, false, func() (string, error) {
			tok, err := std(true, nil)()
			if err != nil {
				return "", err
			}
			sig, err := b64.DecodeString(part(tok, 2))
			if err != nil {
				return "", err
			}
			sig[10] ^= 0x01 // inside r; still 64 bytes and canonical base64url
			return replacePart(tok, 2, b64.EncodeToString(sig)), nil
		}},
		{"alg_none", false, false, func() (string, error) {
			c, err := claims(true)
			if err != nil {
				return "", err
			}
			payload, err := json.Marshal(c)
			if err != nil {
				return "", err
			}
			return b64.EncodeToString(header("none", published.kid, "at+jwt")) + "." + b64.EncodeToString(payload) + ".", nil
		}},
		// The classic key-confusion forgery: HMAC keyed with the public
		// key's PEM, which a verifier that lets the token pick the
		// algorithm would accept.
		{"hs256_public_key", false, false, func() (string, error) {
			c, err := claims(true)
			if err != nil {
				return "", err
			}
			payload, err := json.Marshal(c)
			if err != nil {
				return "", err
			}
			der, err := x509.MarshalPKIXPublicKey(&published.priv.PublicKey)
			if err != nil {
				return "", err
			}
			secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
			in := b64.EncodeToString(header("HS256", published.kid, "at+jwt")) + "." + b64.EncodeToString(payload)
			m := hmac.New(sha256.New, secret)
			m.Write([]byte(in))
			return in + "." + b64.EncodeToString(m.Sum(nil)), nil
		}},
		{"unknown_kid", false, false, signed(stranger, header("ES256", stranger.kid, "at+jwt"), true, nil)},
		{"missing_profile_complete", false, false, std(false, func(c map[string]any) { delete(c, "profile_complete") })},
		{"wrong_typ", false, false, signed(published, header("ES256", published.kid, "JWT"), true, nil)},

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
		// Claim names are case-sensitive (RFC 7519 §4): "Profile_Complete"
		// is an unknown claim, not profile_complete. It comes last, so a
		// case-insensitive decoder would let it win.
		{"case_variant_claim", true, false, func() (string, error) {
			c, err := claims(false)
			if err != nil {
				return "", err
			}
			payload, err := json.Marshal(c)
			if err != nil {
				return "", err
			}
			payload = append(payload[:len(payload)-1], `,"Profile_Complete":true}`...)
			return published.sign(lanyardHeader, payload)
		}},
		// RFC 7797 unencoded payload without crit: refused, whatever a
		// library would make of it.
		{"b64_false", false, false, signed(published,
			[]byte(`{"alg":"ES256","kid":"`+published.kid+`","typ":"at+jwt","b64":false}`), true, nil)},
		// A valid token plus one trailing space: not a compact JWS.
		{"trailing_whitespace", false, false, func() (string, error) {
			tok, err := std(true, nil)()
			return tok + " ", err
		}},
	}

	corpus := &Corpus{
		Issuer:     issuer,
		Audience:   audience,
		Algorithms: []string{"ES256"},
		JWKS:       jwks,
		Cases:      make([]Case, 0, len(specs)),
	}
	for _, s := range specs {
		tok, err := s.build()
		if err != nil {
			return nil, fmt.Errorf("tokencorpus: %s: %w", s.name, err)
		}
		corpus.Cases = append(corpus.Cases, Case{Name: s.name, Token: tok, Accept: s.accept, ProfileComplete: s.complete})
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
