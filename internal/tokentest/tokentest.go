// Package tokentest is the one test minter for Lanyard access tokens. It
// mints tokens with any header and claims under keys the test controls,
// serves them as a JWKS whose availability and timing the test controls,
// provides a settable clock, and builds the corpus of good and bad tokens
// every verifier Lanyard ships or documents must judge identically
// (NewCorpus).
//
// Keys are keys.SigningKey underneath, so a test can put one in a
// keys.Ring and check tokens exactly as Lanyard's own bearer check does.
// Everything panics instead of returning errors it cannot have: it is
// test support, and key generation and randomness do not fail.
package tokentest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"

	"github.com/lanyard-id/lanyard/keys"
)

var b64 = base64.RawURLEncoding

// Key is a signing key with the kid and JWK Lanyard would publish for it.
type Key struct {
	Kid    string // the RFC 7638 thumbprint, as Lanyard's own kids
	Alg    string
	Signer crypto.Signer
	key    *keys.SigningKey
}

// NewKey generates a key for alg: ES256, EdDSA or RS256.
func NewKey(alg string) *Key {
	var (
		s   crypto.Signer
		err error
	)
	switch alg {
	case "ES256":
		s, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, s, err = ed25519.GenerateKey(rand.Reader)
	case "RS256":
		s, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		err = fmt.Errorf("unknown alg %q", alg)
	}
	if err != nil {
		panic(err)
	}
	k, err := keys.NewSigningKey(keys.Algorithm(alg), s)
	if err != nil {
		panic(err)
	}
	return &Key{Kid: k.ID(), Alg: alg, Signer: s, key: k}
}

// SigningKey is k for a keys.Ring, so Lanyard's own code can verify (and
// sign) with it.
func (k *Key) SigningKey() *keys.SigningKey { return k.key }

// JWK is the public JWK with kid, alg and use "sig", as Lanyard serves it.
// The map is the caller's to change.
func (k *Key) JWK() map[string]any {
	b, err := k.key.PublicJWKJSON()
	if err != nil {
		panic(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	return m
}

// SignRaw returns header.payload.signature for the exact header JSON and
// payload bytes given, signed with k's own algorithm whatever the header
// says, so a test can change one thing about a valid token.
func (k *Key) SignRaw(header, payload []byte) string {
	return k.SignInput(b64.EncodeToString(header) + "." + b64.EncodeToString(payload))
}

// SignInput appends "." and k's signature to the signing input in, which
// need not be valid base64url: for tokens that are validly signed garbage.
func (k *Key) SignInput(in string) string {
	var (
		sig []byte
		err error
	)
	switch s := k.Signer.(type) {
	case *ecdsa.PrivateKey:
		sig, err = jwsbb.SignECDSA(s, []byte(in), crypto.SHA256, nil)
	case ed25519.PrivateKey:
		sig, err = jwsbb.SignEdDSA(s, []byte(in))
	case *rsa.PrivateKey:
		sig, err = jwsbb.SignRSA(s, []byte(in), crypto.SHA256, false, nil)
	}
	if err != nil {
		panic(err)
	}
	return in + "." + b64.EncodeToString(sig)
}

// Sign signs claims (marshalled as JSON) under Lanyard's header
// {"alg","kid","typ":"at+jwt"}.
func (k *Key) Sign(claims any) string {
	return k.SignRaw(Header(k.Alg, k.Kid, "at+jwt"), mustJSON(claims))
}

// Header is the JSON of {"alg","kid","typ"}, byte for byte as Lanyard
// emits it (a map marshals in that order); empty values are omitted.
func Header(alg, kid, typ string) []byte {
	m := map[string]string{}
	for name, v := range map[string]string{"alg": alg, "kid": kid, "typ": typ} {
		if v != "" {
			m[name] = v
		}
	}
	return mustJSON(m)
}

// Claims returns a complete, valid claim set for a token issued at now,
// with profile_complete true and a profile. Tests delete or change
// entries to make exactly one thing wrong.
func Claims(issuer, audience string, now time.Time) map[string]any {
	return map[string]any{
		"iss":              issuer,
		"sub":              "0b6f1c9e-3d5a-4c1e-9f7a-2b8d6e4c1a30",
		"aud":              audience,
		"iat":              now.Unix(),
		"nbf":              now.Unix(),
		"exp":              now.Add(accessTTL).Unix(),
		"jti":              "Zm9vYmFyYmF6cXV1eDEyMw",
		"sid":              "6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
		"email":            "ada@example.com",
		"email_verified":   true,
		"profile_complete": true,
		"profile":          map[string]any{"python_proficiency": "advanced", "developer_role": "ml_engineer"},
	}
}

// accessTTL is Lanyard's default access-token lifetime.
const accessTTL = 15 * time.Minute

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
