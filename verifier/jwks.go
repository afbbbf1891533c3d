package verifier

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"

	"github.com/lanyard-id/lanyard/accesstoken"
)

// maxJWKSBytes caps the key-set response; a real one is a few KiB, and a
// misbehaving endpoint must not make every backend buffer megabytes.
const maxJWKSBytes = 1 << 20

// algSpec is what verifying one algorithm needs from a JWK.
type algSpec struct {
	kty, crv string
}

// algSpecs are the algorithms Lanyard can sign with and the only ones a
// Config may allow.
var algSpecs = map[string]algSpec{
	"ES256": {kty: "EC", crv: "P-256"},
	"EdDSA": {kty: "OKP", crv: "Ed25519"},
	"RS256": {kty: "RSA"},
}

// publicKey is one JWKS entry, parsed once when the set is fetched so
// Verify does no key decoding.
type publicKey struct {
	alg    string
	sigLen int // exact signature length, checked before any crypto
	verify func(signingInput, sig []byte) error
}

// keySet is an immutable snapshot of the JWKS.
type keySet struct {
	keys      map[string]*publicKey // by kid
	fetchedAt time.Time
}

// fetchCall is one JWKS fetch that any number of callers wait on.
type fetchCall struct {
	done chan struct{}
	err  error // set before done is closed
}

// headerMemo is a protected header (still base64url) that passed every
// header check and then carried a valid signature, with the key it named
// in the key set it was checked against.
type headerMemo struct {
	hdr string
	set *keySet
	key *publicKey
}

// keyForHeader checks the encoded protected header and returns the key
// that must verify the token, and the key set it came from.
//
// The header checks depend only on the header bytes, the config and the
// key set, so a header byte-identical to one that already passed them
// against the current set passes again. Lanyard signs with one key at a
// time, so almost every token carries the same header: the memo skips
// its base64 and JSON work. Only verified tokens update the memo, so a
// forger cannot plant a header in it.
func (v *Verifier) keyForHeader(ctx context.Context, enc string) (*publicKey, *keySet, error) {
	now := v.now()
	set := v.keys.Load()
	if m := v.memo.Load(); m != nil && m.set == set && m.hdr == enc {
		v.refreshIfStale(now, set)
		return m.key, set, nil
	}
	h, err := accesstoken.ParseHeader(enc, v.algs)
	if err != nil {
		return nil, nil, invalid("%v", err)
	}
	k, set, err := v.key(ctx, now, h.Kid)
	if err != nil {
		return nil, nil, err
	}
	// The key, not the token, decides the algorithm: together with the
	// allow-list this is what stops alg confusion (HS256 keyed with the
	// public key, or an RS256 header on an EC key).
	if h.Alg != k.alg {
		return nil, nil, invalid("alg %q does not match key %q alg %s", h.Alg, h.Kid, k.alg)
	}
	return k, set, nil
}

// remember records a header whose token verified under k from set.
func (v *Verifier) remember(enc string, set *keySet, k *publicKey) {
	if m := v.memo.Load(); m != nil && m.set == set && m.hdr == enc {
		return
	}
	// Clone: enc is a slice of the caller's token, which would otherwise
	// stay alive as long as the memo does.
	v.memo.Store(&headerMemo{hdr: strings.Clone(enc), set: set, key: k})
}

// refreshIfStale starts a background fetch when set has outlived the TTL
// and the cooldown allows. Requests keep using the cached key meanwhile,
// so none waits on Lanyard (or on its timeout while it is down) for a key
// it already has.
func (v *Verifier) refreshIfStale(now time.Time, set *keySet) {
	if now.Sub(set.fetchedAt) >= v.ttl && now.UnixNano() >= v.nextFetch.Load() {
		v.startFetch(now, false)
	}
}

// key returns the cached key for kid and the set holding it, refetching
// the JWKS if kid is unknown and the cooldown allows.
func (v *Verifier) key(ctx context.Context, now time.Time, kid string) (*publicKey, *keySet, error) {
	if set := v.keys.Load(); set != nil {
		if k, ok := set.keys[kid]; ok {
			v.refreshIfStale(now, set)
			return k, set, nil
		}
	}
	c := v.startFetch(now, false)
	if c != nil {
		if v.onWait != nil {
			v.onWait()
		}
		select {
		case <-c.done:
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("%w: unknown kid %q: waiting for JWKS: %w", ErrInvalidToken, kid, ctx.Err())
		}
	}
	// Look again even when cooling down: a fetch that finished since our
	// first look may have brought the kid.
	if set := v.keys.Load(); set != nil {
		if k, ok := set.keys[kid]; ok {
			return k, set, nil
		}
	}
	if c != nil && c.err != nil {
		return nil, nil, invalid("unknown kid %q (JWKS fetch failed: %v)", kid, c.err)
	}
	return nil, nil, invalid("unknown kid %q", kid)
}

// startFetch joins the fetch in flight or starts one. Unless force is
// set it returns nil when the cooldown has not yet passed. The fetch runs
// in its own goroutine so a caller whose context ends can stop waiting
// without cancelling the fetch for everyone else.
func (v *Verifier) startFetch(now time.Time, force bool) *fetchCall {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.inflight != nil {
		return v.inflight
	}
	if !force && now.UnixNano() < v.nextFetch.Load() {
		return nil
	}
	// The cooldown runs from the start of every attempt, successful or
	// not: while Lanyard is down it is what keeps each backend to one
	// request per cooldown.
	v.nextFetch.Store(now.Add(v.cooldown).UnixNano())
	c := &fetchCall{done: make(chan struct{})}
	v.inflight = c
	go v.runFetch(c, now)
	return c
}

func (v *Verifier) runFetch(c *fetchCall, started time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), v.fetchLimit)
	defer cancel()
	set, err := v.fetch(ctx, started)
	// Only a good set replaces the cache: a failed fetch never clears it.
	if err == nil {
		v.keys.Store(set)
	}
	v.mu.Lock()
	v.inflight = nil
	v.mu.Unlock()
	c.err = err
	close(c.done)
}

// Refresh fetches the JWKS now, ignoring the cooldown (but joining a
// fetch already in flight), and returns the fetch's error. Call it after
// New to fail at startup when Lanyard is unreachable, or after a key
// rotation you know about. Do not call it per request.
func (v *Verifier) Refresh(ctx context.Context) error {
	c := v.startFetch(v.now(), true)
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (v *Verifier) fetch(ctx context.Context, started time.Time) (*keySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.jwksURL, nil)
	if err != nil {
		return nil, fmt.Errorf("verifier: jwks request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	res, err := v.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("verifier: fetch jwks: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("verifier: fetch jwks: %s", res.Status)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("verifier: read jwks: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("verifier: jwks larger than %d bytes", maxJWKSBytes)
	}
	keys, err := v.parseJWKS(body)
	if err != nil {
		return nil, err
	}
	return &keySet{keys: keys, fetchedAt: started}, nil
}

// jwkJSON holds the JWK members we use; anything else is ignored.
type jwkJSON struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Alg    string   `json:"alg"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Crv    string   `json:"crv"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
	N      string   `json:"n"`
	E      string   `json:"e"`
}

// parseJWKS keeps the keys this verifier can use and skips the rest, so
// one odd entry (a new key type, an encryption key) does not take the
// whole set down. A set with no usable key is an error: it is more likely
// a broken endpoint than a real rotation to nothing, and the cache should
// survive it.
func (v *Verifier) parseJWKS(body []byte) (map[string]*publicKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("verifier: parse jwks: %w", err)
	}
	keys := make(map[string]*publicKey, len(set.Keys))
	var skipped []string
	for i, raw := range set.Keys {
		var j jwkJSON
		if err := json.Unmarshal(raw, &j); err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d: %v", i, err))
			continue
		}
		// The first key wins a duplicate kid, so which key verifies a
		// token never depends on map order.
		if _, dup := keys[j.Kid]; dup {
			continue
		}
		k, err := v.parseJWK(&j)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d (kid %q): %v", i, j.Kid, err))
			continue
		}
		keys[j.Kid] = k
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("verifier: jwks has no usable key for %v (%s)", v.algs, strings.Join(skipped, "; "))
	}
	return keys, nil
}

func (v *Verifier) parseJWK(j *jwkJSON) (*publicKey, error) {
	if j.Kid == "" {
		return nil, errors.New("no kid")
	}
	// The JWK must name its algorithm: the token's alg is only trusted
	// when it equals the key's.
	if !slices.Contains(v.algs, j.Alg) {
		return nil, fmt.Errorf("alg %q not allowed", j.Alg)
	}
	if j.Use != "" && j.Use != "sig" {
		return nil, fmt.Errorf("use %q", j.Use)
	}
	if j.KeyOps != nil && !slices.Contains(j.KeyOps, "verify") {
		return nil, errors.New("key_ops lacks verify")
	}
	spec := algSpecs[j.Alg]
	if j.Kty != spec.kty || j.Crv != spec.crv {
		return nil, fmt.Errorf("kty %q crv %q cannot be %s", j.Kty, j.Crv, j.Alg)
	}
	switch j.Alg {
	case "ES256":
		x, errX := decodeMember(j.X)
		y, errY := decodeMember(j.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return nil, errors.New("bad P-256 coordinates")
		}
		// ParseUncompressedPublicKey rejects points not on the curve,
		// which an invalid-curve attack would rely on.
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, err
		}
		return &publicKey{alg: j.Alg, sigLen: 64, verify: func(in, sig []byte) error {
			return jwsbb.VerifyECDSA(pub, in, sig, crypto.SHA256)
		}}, nil
	case "EdDSA":
		x, err := decodeMember(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("bad Ed25519 key")
		}
		pub := ed25519.PublicKey(x)
		return &publicKey{alg: j.Alg, sigLen: ed25519.SignatureSize, verify: func(in, sig []byte) error {
			return jwsbb.VerifyEdDSA(pub, in, sig)
		}}, nil
	default: // RS256
		n, errN := decodeMember(j.N)
		e, errE := decodeMember(j.E)
		if errN != nil || errE != nil || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("bad RSA modulus or exponent")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		// 2048 is the floor for RSA signatures; 8192 bounds the cost of
		// a verification an attacker can make us do.
		if bits := pub.N.BitLen(); bits < 2048 || bits > 8192 || pub.E < 3 || pub.E%2 == 0 {
			return nil, fmt.Errorf("unacceptable RSA key (%d bits, e=%d)", bits, pub.E)
		}
		return &publicKey{alg: j.Alg, sigLen: pub.Size(), verify: func(in, sig []byte) error {
			return jwsbb.VerifyRSA(pub, in, sig, crypto.SHA256, false)
		}}, nil
	}
}

// decodeMember decodes a base64url JWK member. Padding is tolerated here
// (unlike in tokens): some JWKS publishers emit it, and a key's spelling
// carries no security meaning.
func decodeMember(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
