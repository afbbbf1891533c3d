package verifier

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lanyard-id/lanyard/accesstoken"
)

// ErrInvalidToken is wrapped by every error Verify returns. Treat all such
// errors alike (401); the wrapped text says why, for logs only.
var ErrInvalidToken = errors.New("verifier: invalid token")

// ErrMissingToken is returned by VerifyRequest when the request carries no
// bearer token at all. It wraps ErrInvalidToken.
var ErrMissingToken = fmt.Errorf("%w: missing bearer token", ErrInvalidToken)

// Defaults and limits for Config. The leeway cap is the contract's: a
// verifier that tolerates more skew than that keeps expired tokens alive.
const (
	DefaultLeeway = accesstoken.DefaultLeeway
	MaxLeeway     = accesstoken.MaxLeeway
	// DefaultMaxTokenLifetime is Lanyard's default access TTL (15 min)
	// plus MaxLeeway.
	DefaultMaxTokenLifetime = accesstoken.DefaultMaxLifetime
	DefaultRefetchCooldown  = 30 * time.Second
	DefaultCacheTTL         = 5 * time.Minute
	DefaultFetchTimeout     = 5 * time.Second
)

// b64 is the JOSE base64url alphabet without padding. Strict rejects
// non-canonical trailing bits, so a token has exactly one spelling and a
// flipped trailing bit is not silently ignored.
var b64 = base64.RawURLEncoding.Strict()

// Config says where Lanyard's keys are and what a valid token looks like.
// Zero durations take the defaults.
type Config struct {
	// JWKSURL is Lanyard's key set, <issuer>/.well-known/jwks.json. It
	// must be an absolute http or https URL.
	JWKSURL string
	// Issuer must equal the token's iss exactly (LANYARD_ISSUER).
	Issuer string
	// Audience must equal the token's aud, or be one of its entries when
	// aud is an array (LANYARD_AUDIENCE, which defaults to the issuer).
	Audience string
	// Algorithms is the allow-list of JWS algorithms, from ES256, EdDSA
	// and RS256. Default ["ES256"], Lanyard's default. "none" and HS* are
	// refused: "none" needs no key at all, and HS* keyed with the
	// published public key is the classic forgery.
	Algorithms []string
	// Leeway is the clock skew tolerated on exp, nbf and iat. Default 30s, at
	// most 60s.
	Leeway time.Duration
	// MaxTokenLifetime is the longest exp - iat accepted, so a leaked
	// signing key cannot mint tokens valid for days. A verifier cannot
	// know Lanyard's LANYARD_ACCESS_TTL, so the default is Lanyard's
	// default TTL plus the maximum leeway, 16m: set it to your access TTL
	// plus 60s if you raised the TTL.
	MaxTokenLifetime time.Duration
	// RefetchCooldown is the minimum gap between JWKS fetches that a
	// token can trigger (an unknown kid, or a stale cache). Default 30s.
	RefetchCooldown time.Duration
	// CacheTTL is how long a fetched key set is fresh. After it, the
	// cached keys keep working while one background refetch runs.
	// Default 5m.
	CacheTTL time.Duration
	// HTTPClient fetches the JWKS. Default: a client with a 5s timeout
	// that does not follow redirects (a redirect could silently move key
	// discovery to another host or to plain http).
	HTTPClient *http.Client
	// Now is the clock, for tests. Default time.Now.
	Now func() time.Time
}

// Verifier checks Lanyard access tokens. It is safe for concurrent use;
// create one per issuer and share it.
type Verifier struct {
	jwksURL    string
	policy     accesstoken.Policy
	algs       []string // the allow-list, as configured
	cooldown   time.Duration
	ttl        time.Duration
	client     *http.Client
	fetchLimit time.Duration
	now        func() time.Time

	// keys is the current key set. Verify only loads it, so the hot path
	// takes no lock; a completed fetch swaps in a whole new set.
	keys atomic.Pointer[keySet]
	// memo is the header of the last token that verified; see keyForHeader.
	memo atomic.Pointer[headerMemo]
	// nextFetch (Unix nanoseconds) is when the cooldown allows the next
	// token-triggered fetch. It is atomic so a stale-cache check need not
	// take mu on every request while Lanyard is down.
	nextFetch atomic.Int64

	mu       sync.Mutex // guards inflight
	inflight *fetchCall // the fetch every waiting caller shares, or nil

	// onWait, if set (tests only), is called when a caller starts waiting
	// for a shared fetch, so a test can release the fake JWKS server only
	// once every caller is provably waiting.
	onWait func()
}

// New validates cfg and returns a Verifier.
//
// New makes one JWKS fetch, waiting for it until it ends or ctx is done,
// so the first requests do not pay for it. A failed fetch does not fail
// New: a backend that starts while Lanyard is down should come up and
// start verifying once Lanyard is back, not crash-loop. Until keys arrive
// every token is rejected, and (by the cooldown) the next fetch happens
// on the first request after RefetchCooldown. Call Refresh after New to
// fail fast instead.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	v, err := newVerifier(cfg)
	if err != nil {
		return nil, err
	}
	c := v.startFetch(v.now(), true)
	select {
	case <-c.done:
	case <-ctx.Done():
	}
	return v, nil
}

// newVerifier applies defaults and validates cfg without fetching.
func newVerifier(cfg Config) (*Verifier, error) {
	u, err := url.Parse(cfg.JWKSURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("verifier: JWKSURL %q must be an absolute http or https URL", cfg.JWKSURL)
	}
	v := &Verifier{
		jwksURL: cfg.JWKSURL,
		policy: accesstoken.Policy{
			Issuer:      cfg.Issuer,
			Audience:    cfg.Audience,
			Leeway:      orDefault(cfg.Leeway, DefaultLeeway),
			MaxLifetime: orDefault(cfg.MaxTokenLifetime, DefaultMaxTokenLifetime),
		},
		algs:     cfg.Algorithms,
		cooldown: orDefault(cfg.RefetchCooldown, DefaultRefetchCooldown),
		ttl:      orDefault(cfg.CacheTTL, DefaultCacheTTL),
		client:   cfg.HTTPClient,
		now:      cfg.Now,
	}
	if err := v.policy.Validate(); err != nil {
		return nil, fmt.Errorf("verifier: %w", err)
	}
	switch {
	case v.cooldown < 0:
		return nil, fmt.Errorf("verifier: RefetchCooldown %v is negative", cfg.RefetchCooldown)
	case v.ttl < 0:
		return nil, fmt.Errorf("verifier: CacheTTL %v is negative", cfg.CacheTTL)
	}
	if len(v.algs) == 0 {
		v.algs = []string{"ES256"}
	}
	// A copy, so the caller's slice can change without changing us.
	v.algs = slices.Clone(v.algs)
	for _, a := range v.algs {
		if _, ok := algSpecs[a]; !ok {
			return nil, fmt.Errorf("verifier: algorithm %q is not allowed (use ES256, EdDSA or RS256)", a)
		}
	}
	if v.client == nil {
		v.client = &http.Client{
			Timeout: DefaultFetchTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	// A caller's client may have no timeout; a fetch that hangs forever
	// would hold every unknown-kid request and block all later fetches.
	v.fetchLimit = v.client.Timeout
	if v.fetchLimit <= 0 {
		v.fetchLimit = DefaultFetchTimeout
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Claims are the verified claims of a Lanyard access token.
type Claims = accesstoken.Claims

// Profile is the onboarding profile carried in the token, so a backend can
// personalise without a lookup.
type Profile = accesstoken.Profile

// Verify checks token (a compact JWS, without "Bearer ") and returns its
// claims. Every failure wraps ErrInvalidToken. ctx bounds only the wait
// for a JWKS refetch that an unknown kid triggers.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	hdr, payloadEnc, sigEnc, err := accesstoken.Split(token)
	if err != nil {
		return nil, invalid("%v", err)
	}
	k, set, err := v.keyForHeader(ctx, hdr)
	if err != nil {
		return nil, err
	}

	// Length is checked on the encoded form first, so a hostile token
	// cannot make us decode a large signature.
	if len(sigEnc) != b64.EncodedLen(k.sigLen) {
		return nil, invalid("signature length %d, want %d", len(sigEnc), b64.EncodedLen(k.sigLen))
	}
	// One copy of the token serves as signing input and decode source.
	buf := []byte(token)
	signed := len(hdr) + 1 + len(payloadEnc)
	// Exactly sigLen: a fixed stack buffer would escape to the heap
	// anyway, through the indirect call to k.verify.
	sig := make([]byte, k.sigLen)
	if _, err := b64.Decode(sig, buf[signed+1:]); err != nil {
		return nil, invalid("signature encoding: %v", err)
	}
	if err := k.verify(buf[:signed], sig); err != nil {
		return nil, invalid("bad signature")
	}
	v.remember(hdr, set, k)

	payload := make([]byte, b64.DecodedLen(len(payloadEnc)))
	n, err := b64.Decode(payload, buf[len(hdr)+1:signed])
	if err != nil {
		return nil, invalid("payload encoding: %v", err)
	}
	c, err := v.policy.Check(payload[:n], v.now())
	if err != nil {
		return nil, invalid("%v", err)
	}
	return c, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidToken}, args...)...)
}
