// Package keys is Lanyard's signing key ring: it generates access-token
// signing keys, seals their private parts for storage at rest, signs and
// verifies access tokens, and renders the public JWKS. It knows no
// database: callers store and load the sealed bytes themselves.
package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"

	"github.com/lanyard-id/lanyard/accesstoken"
)

// Algorithm is a JWS signature algorithm the ring can sign with.
type Algorithm string

// The supported algorithms. Anything else (notably "none" and HS*) is
// refused everywhere, so it can never be selected by a token header.
const (
	ES256 Algorithm = "ES256"
	EdDSA Algorithm = "EdDSA"
	RS256 Algorithm = "RS256"
)

// rsaBits is the modulus size for generated RS256 keys. 2048 rather than
// 3072: a 3072-bit private-key operation costs ~3x as much, and RS256
// signing sits on the token-minting hot path; 2048 meets the >=2048 floor.
const rsaBits = 2048

// b64 is the JOSE base64url alphabet without padding. Strict rejects
// non-canonical encodings so a token has exactly one valid spelling.
var b64 = base64.RawURLEncoding.Strict()

var errUnsupportedAlg = errors.New("keys: unsupported algorithm")

// ParseAlgorithm returns the Algorithm named exactly s.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch a := Algorithm(s); a {
	case ES256, EdDSA, RS256:
		return a, nil
	}
	return "", fmt.Errorf("%w: %q", errUnsupportedAlg, s)
}

func (a Algorithm) jwa() jwa.SignatureAlgorithm {
	switch a {
	case ES256:
		return jwa.ES256()
	case EdDSA:
		return jwa.EdDSA()
	default:
		return jwa.RS256()
	}
}

// SigningKey is a private signing key with its id.
type SigningKey struct {
	kid     string
	alg     Algorithm
	signer  crypto.Signer
	pubJSON []byte

	// hdrPrefix is base64url(protected header) + ".". The header depends
	// only on alg and kid, so it is encoded once here and every Sign just
	// copies it.
	hdrPrefix string

	// sign and verify are bound to the concrete key type at construction
	// so the hot path skips jwx's any-typed algorithm dispatch.
	sign   func(signingInput []byte) ([]byte, error)
	verify func(signingInput, sig []byte) error
	sigLen int // exact signature length for alg, checked before any crypto
}

// Generate creates a new random signing key for alg: P-256 for ES256,
// Ed25519 for EdDSA, 2048-bit RSA for RS256.
func Generate(alg Algorithm) (*SigningKey, error) {
	var (
		signer crypto.Signer
		err    error
	)
	switch alg {
	case ES256:
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	case RS256:
		signer, err = rsa.GenerateKey(rand.Reader, rsaBits)
	default:
		return nil, fmt.Errorf("%w: %q", errUnsupportedAlg, alg)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: generate %s key: %w", alg, err)
	}
	return NewSigningKey(alg, signer)
}

// NewSigningKey wraps an existing private key: a P-256 ECDSA key for
// ES256, Ed25519 for EdDSA, RSA of at least 2048 bits for RS256. It
// checks the key type and precomputes everything Sign, Verify and the
// JWKS need from it.
func NewSigningKey(alg Algorithm, signer crypto.Signer) (*SigningKey, error) {
	k := &SigningKey{alg: alg, signer: signer}
	switch alg {
	case ES256:
		priv, ok := signer.(*ecdsa.PrivateKey)
		if !ok || priv.Curve != elliptic.P256() {
			return nil, fmt.Errorf("keys: ES256 needs a P-256 ECDSA key, got %T", signer)
		}
		pub := &priv.PublicKey
		k.sigLen = 64 // JOSE r||s, not ASN.1
		k.sign = func(in []byte) ([]byte, error) { return jwsbb.SignECDSA(priv, in, crypto.SHA256, nil) }
		k.verify = func(in, sig []byte) error { return jwsbb.VerifyECDSA(pub, in, sig, crypto.SHA256) }
	case EdDSA:
		priv, ok := signer.(ed25519.PrivateKey)
		if !ok || len(priv) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("keys: EdDSA needs an Ed25519 key, got %T", signer)
		}
		pub := priv.Public().(ed25519.PublicKey)
		k.sigLen = ed25519.SignatureSize
		k.sign = func(in []byte) ([]byte, error) { return jwsbb.SignEdDSA(priv, in) }
		k.verify = func(in, sig []byte) error { return jwsbb.VerifyEdDSA(pub, in, sig) }
	case RS256:
		priv, ok := signer.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("keys: RS256 needs an RSA key, got %T", signer)
		}
		if priv.N.BitLen() < 2048 {
			return nil, fmt.Errorf("keys: RS256 key is %d bits, need >= 2048", priv.N.BitLen())
		}
		pub := &priv.PublicKey
		k.sigLen = priv.Size()
		k.sign = func(in []byte) ([]byte, error) { return jwsbb.SignRSA(priv, in, crypto.SHA256, false, nil) }
		k.verify = func(in, sig []byte) error { return jwsbb.VerifyRSA(pub, in, sig, crypto.SHA256, false) }
	default:
		return nil, fmt.Errorf("%w: %q", errUnsupportedAlg, alg)
	}

	pub, err := jwk.Import(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("keys: import public key: %w", err)
	}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("keys: thumbprint: %w", err)
	}
	k.kid = base64.RawURLEncoding.EncodeToString(tp)
	for _, m := range []struct {
		name string
		v    any
	}{
		{jwk.KeyIDKey, k.kid},
		{jwk.AlgorithmKey, alg.jwa()},
		{jwk.KeyUsageKey, jwk.ForSignature},
	} {
		if err := pub.Set(m.name, m.v); err != nil {
			return nil, fmt.Errorf("keys: set jwk %s: %w", m.name, err)
		}
	}
	if k.pubJSON, err = json.Marshal(pub); err != nil {
		return nil, fmt.Errorf("keys: marshal jwk: %w", err)
	}

	// Field order is fixed by the struct, so the header bytes (and thus
	// the Verify fast-path lookup key) are deterministic.
	hdr, err := json.Marshal(struct {
		Alg Algorithm `json:"alg"`
		Kid string    `json:"kid"`
		Typ string    `json:"typ"`
	}{alg, k.kid, accesstoken.Type})
	if err != nil {
		return nil, fmt.Errorf("keys: marshal header: %w", err)
	}
	k.hdrPrefix = b64.EncodeToString(hdr) + "."
	return k, nil
}

// ID returns the key id: the RFC 7638 SHA-256 JWK thumbprint, base64url.
func (k *SigningKey) ID() string { return k.kid }

// Algorithm returns the algorithm this key signs with.
func (k *SigningKey) Algorithm() Algorithm { return k.alg }

// PublicJWKJSON returns the public JWK: the key's public members plus kid,
// alg and use "sig". The result is a fresh copy the caller may keep.
func (k *SigningKey) PublicJWKJSON() ([]byte, error) {
	return bytes.Clone(k.pubJSON), nil
}
