package keys

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/lanyard-id/lanyard/accesstoken"
)

// ErrInvalidToken is returned (wrapped with details) for every token Verify
// rejects. Callers should treat all such errors alike; the details are
// for logs only.
var ErrInvalidToken = errors.New("keys: invalid token")

// Ring is an immutable snapshot: the key that signs now plus every key
// whose public part is published. It is safe for concurrent use.
type Ring struct {
	signing *SigningKey
	byKid   map[string]*SigningKey
	// byHeader maps the exact base64url protected header this package
	// emits for each key to that key, so verifying our own tokens needs
	// no base64 decode or JSON parse of the header.
	byHeader map[string]*SigningKey
	jwks     []byte
	jwksETag string
	algs     []Algorithm
	// algNames is algs as strings: the header allow-list.
	algNames []string
}

// NewRing builds a ring that signs with signing and publishes signing plus
// every key in published. Keys with the same kid collapse to one.
func NewRing(signing *SigningKey, published ...*SigningKey) (*Ring, error) {
	if signing == nil {
		return nil, errors.New("keys: ring needs a signing key")
	}
	r := &Ring{
		signing:  signing,
		byKid:    make(map[string]*SigningKey, 1+len(published)),
		byHeader: make(map[string]*SigningKey, 1+len(published)),
	}
	// The signing key comes first so it leads the JWKS.
	all := append([]*SigningKey{signing}, published...)
	pubs := make([]json.RawMessage, 0, len(all))
	for _, k := range all {
		if k == nil {
			return nil, errors.New("keys: nil published key")
		}
		if _, dup := r.byKid[k.kid]; dup {
			continue
		}
		r.byKid[k.kid] = k
		if !slices.Contains(r.algs, k.alg) {
			r.algs = append(r.algs, k.alg)
			r.algNames = append(r.algNames, string(k.alg))
		}
		r.byHeader[strings.TrimSuffix(k.hdrPrefix, ".")] = k
		pubs = append(pubs, k.pubJSON)
	}
	jwks, err := json.Marshal(struct {
		Keys []json.RawMessage `json:"keys"`
	}{pubs})
	if err != nil {
		return nil, fmt.Errorf("keys: marshal jwks: %w", err)
	}
	r.jwks = jwks
	sum := sha256.Sum256(jwks)
	r.jwksETag = `"` + b64.EncodeToString(sum[:16]) + `"`
	return r, nil
}

// SigningKeyID returns the kid of the key that signs new tokens.
func (r *Ring) SigningKeyID() string { return r.signing.kid }

// Algorithm returns the algorithm of the signing key.
func (r *Ring) Algorithm() Algorithm { return r.signing.alg }

// JWKS returns the JSON Web Key Set of the published keys, public members
// only, each with kid, alg and use "sig". The bytes are prepared once in
// NewRing and shared by every call: callers must not modify them.
func (r *Ring) JWKS() []byte { return r.jwks }

// Algorithms lists the algorithms of the published keys, the signing key's
// first (discovery advertises them).
func (r *Ring) Algorithms() []Algorithm { return slices.Clone(r.algs) }

// JWKSETag is a strong entity tag for JWKS(): a digest of the bytes, so
// every replica serving the same key set sends the same tag.
func (r *Ring) JWKSETag() string { return r.jwksETag }

// Sign signs payload (marshalled JWT claims) as a compact JWS with the
// protected header {"alg":...,"kid":...,"typ":"at+jwt"}.
func (r *Ring) Sign(payload []byte) (string, error) {
	k := r.signing
	// One allocation sized for the whole token: header, payload and
	// signature are appended in place and the signing input is its prefix.
	n := len(k.hdrPrefix) + b64.EncodedLen(len(payload)) + 1 + b64.EncodedLen(k.sigLen)
	buf := make([]byte, 0, n)
	buf = append(buf, k.hdrPrefix...)
	buf = b64.AppendEncode(buf, payload)
	sig, err := k.sign(buf)
	if err != nil {
		return "", fmt.Errorf("keys: sign: %w", err)
	}
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, sig)
	return string(buf), nil
}

// Verify checks a compact JWS minted for this ring and returns its
// payload. The header must pass accesstoken.ParseHeader with the ring's
// algorithms as the allow-list, kid must name a published key, alg must
// equal that key's algorithm (so "none" and HS* never verify), and the
// signature must be valid. The claims are the caller's to check, with
// accesstoken.Policy. Every failure wraps ErrInvalidToken.
func (r *Ring) Verify(token string) ([]byte, error) {
	hdr, payload, sig, err := accesstoken.Split(token)
	if err != nil {
		return nil, invalid("%v", err)
	}
	k, ok := r.byHeader[hdr]
	if !ok {
		if k, err = r.keyForHeader(hdr); err != nil {
			return nil, err
		}
	}

	// Length is checked on the encoded form first so a hostile token
	// cannot make us decode a large signature.
	if len(sig) != b64.EncodedLen(k.sigLen) {
		return nil, invalid("bad signature length")
	}
	var sigBuf [512]byte // covers RSA up to 4096 bits without allocating
	var sigBytes []byte
	if k.sigLen <= len(sigBuf) {
		sigBytes = sigBuf[:k.sigLen]
	} else {
		sigBytes = make([]byte, k.sigLen)
	}
	if _, err := b64.Decode(sigBytes, []byte(sig)); err != nil {
		return nil, invalid("bad signature encoding")
	}
	if err := k.verify([]byte(token[:len(hdr)+1+len(payload)]), sigBytes); err != nil {
		return nil, invalid("bad signature")
	}
	out, err := b64.DecodeString(payload)
	if err != nil {
		return nil, invalid("bad payload encoding")
	}
	return out, nil
}

// keyForHeader is the slow path for a header that is not byte-identical
// to one this package emits (e.g. another serializer, or a forgery). It
// applies the same rules in full.
func (r *Ring) keyForHeader(enc string) (*SigningKey, error) {
	h, err := accesstoken.ParseHeader(enc, r.algNames)
	if err != nil {
		return nil, invalid("%v", err)
	}
	k, ok := r.byKid[h.Kid]
	if !ok {
		return nil, invalid("unknown kid %q", h.Kid)
	}
	// The key, not the token, decides the algorithm: this is what stops
	// alg=none, HS256-with-the-public-key and cross-algorithm confusion.
	if h.Alg != string(k.alg) {
		return nil, invalid("alg %q does not match key alg %s", h.Alg, k.alg)
	}
	return k, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidToken}, args...)...)
}
