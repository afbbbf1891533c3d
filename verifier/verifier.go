package verifier

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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
	DefaultLeeway          = 30 * time.Second
	MaxLeeway              = 60 * time.Second
	DefaultRefetchCooldown = 30 * time.Second
	DefaultCacheTTL        = 5 * time.Minute
	DefaultFetchTimeout    = 5 * time.Second
)

// tokenType is the access-token "typ" (RFC 9068).
const tokenType = "at+jwt"

// maxTokenLen bounds the work a hostile Authorization header can cause.
// Lanyard's tokens are well under 1 KiB; 16 KiB leaves room for RS256 and
// future claims.
const maxTokenLen = 16 << 10

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
	// Leeway is the clock skew tolerated on exp and nbf. Default 30s, at
	// most 60s.
	Leeway time.Duration
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
	issuer     string
	audience   string
	algs       map[string]bool
	leeway     time.Duration
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
	if cfg.Issuer == "" {
		return nil, errors.New("verifier: Issuer is required")
	}
	if cfg.Audience == "" {
		return nil, errors.New("verifier: Audience is required")
	}
	v := &Verifier{
		jwksURL:  cfg.JWKSURL,
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		algs:     map[string]bool{},
		leeway:   orDefault(cfg.Leeway, DefaultLeeway),
		cooldown: orDefault(cfg.RefetchCooldown, DefaultRefetchCooldown),
		ttl:      orDefault(cfg.CacheTTL, DefaultCacheTTL),
		client:   cfg.HTTPClient,
		now:      cfg.Now,
	}
	switch {
	case v.leeway < 0 || v.leeway > MaxLeeway:
		return nil, fmt.Errorf("verifier: Leeway %v must be between 0 and %v", cfg.Leeway, MaxLeeway)
	case v.cooldown < 0:
		return nil, fmt.Errorf("verifier: RefetchCooldown %v is negative", cfg.RefetchCooldown)
	case v.ttl < 0:
		return nil, fmt.Errorf("verifier: CacheTTL %v is negative", cfg.CacheTTL)
	}
	algs := cfg.Algorithms
	if len(algs) == 0 {
		algs = []string{"ES256"}
	}
	for _, a := range algs {
		if _, ok := algSpecs[a]; !ok {
			return nil, fmt.Errorf("verifier: algorithm %q is not allowed (use ES256, EdDSA or RS256)", a)
		}
		v.algs[a] = true
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
type Claims struct {
	Subject         string // sub: the user id (a UUID)
	SessionID       string // sid: the login session
	Email           string
	ProfileComplete bool     // onboarding done; see RequireCompleteProfile
	Profile         *Profile // never nil when ProfileComplete; may be nil otherwise
	Issuer          string
	Audience        string // the configured audience the token was accepted for
	IssuedAt        time.Time
	ExpiresAt       time.Time
	NotBefore       time.Time // zero if the token has no nbf
	ID              string    // jti: unique per token
}

// Profile is the onboarding profile carried in the token, so a backend can
// personalise without a lookup.
type Profile struct {
	PythonProficiency string `json:"python_proficiency"` // none, beginner, intermediate, advanced
	DeveloperRole     string `json:"developer_role"`     // student, software_engineer, …
}

// Verify checks token (a compact JWS, without "Bearer ") and returns its
// claims. Every failure wraps ErrInvalidToken. ctx bounds only the wait
// for a JWKS refetch that an unknown kid triggers.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if len(token) > maxTokenLen {
		return nil, invalid("token is %d bytes, limit %d", len(token), maxTokenLen)
	}
	h := strings.IndexByte(token, '.')
	p := -1
	if h >= 0 {
		if p = strings.IndexByte(token[h+1:], '.'); p >= 0 {
			p += h + 1
		}
	}
	if p < 0 || strings.IndexByte(token[p+1:], '.') >= 0 {
		return nil, invalid("not a compact JWS")
	}
	k, set, err := v.keyForHeader(ctx, token[:h])
	if err != nil {
		return nil, err
	}

	// One copy of the token serves as signing input and decode source.
	buf := []byte(token)
	sigEnc := buf[p+1:]
	// Length is checked on the encoded form first, so a hostile token
	// cannot make us decode a large signature.
	if len(sigEnc) != b64.EncodedLen(k.sigLen) {
		return nil, invalid("signature length %d, want %d", len(sigEnc), b64.EncodedLen(k.sigLen))
	}
	// Exactly sigLen: a fixed stack buffer would escape to the heap
	// anyway, through the indirect call to k.verify.
	sig := make([]byte, k.sigLen)
	if _, err := b64.Decode(sig, sigEnc); err != nil {
		return nil, invalid("signature encoding: %v", err)
	}
	if err := k.verify(buf[:p], sig); err != nil {
		return nil, invalid("bad signature")
	}
	v.remember(token[:h], set, k)

	payloadEnc := buf[h+1 : p]
	payload := make([]byte, b64.DecodedLen(len(payloadEnc)))
	n, err := b64.Decode(payload, payloadEnc)
	if err != nil {
		return nil, invalid("payload encoding: %v", err)
	}
	return v.checkClaims(payload[:n])
}

// rawClaims is the payload as JSON. encoding/json matches names
// case-insensitively; that is harmless here because the payload is
// covered by the issuer's signature, so only Lanyard chooses its spelling.
type rawClaims struct {
	Iss             string      `json:"iss"`
	Sub             string      `json:"sub"`
	Aud             audience    `json:"aud"`
	Iat             numericDate `json:"iat"`
	Nbf             numericDate `json:"nbf"`
	Exp             numericDate `json:"exp"`
	Jti             string      `json:"jti"`
	Sid             string      `json:"sid"`
	Email           string      `json:"email"`
	ProfileComplete strictBool  `json:"profile_complete"`
	Profile         *Profile    `json:"profile"`
}

// audience is aud, which RFC 7519 lets be a string or an array of them.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) > 1 && b[0] == '"' {
		// Lanyard's form, a plain string, without a second decode pass.
		// b is already validated JSON, so without escapes its content is
		// the string itself.
		if s := b[1 : len(b)-1]; bytes.IndexByte(s, '\\') < 0 {
			*a = audience{string(s)}
			return nil
		}
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return err
	}
	*a = ss
	return nil
}

// numericDate is a JWT NumericDate that records whether it was present.
// Its own decoder saves a heap pointer per date on the hot path.
type numericDate struct {
	v   float64
	set bool
}

func (d *numericDate) UnmarshalJSON(b []byte) error {
	// b is one validated JSON value, so anything ParseFloat accepts is a
	// JSON number; strings, null, booleans and containers all fail, as
	// they do in PyJWT and jose.
	f, err := strconv.ParseFloat(string(b), 64)
	// 0 to 2^53 s covers every real date and keeps conversions exact.
	if err != nil || f < 0 || f >= 1<<53 {
		return fmt.Errorf("NumericDate %.20s is not a number in range", b)
	}
	d.v, d.set = f, true
	return nil
}

func (d numericDate) time() time.Time {
	sec, frac := math.Modf(d.v)
	return time.Unix(int64(sec), int64(frac*1e9))
}

// strictBool is a JSON boolean that records whether it was present; null
// or any other type is an error, never false.
type strictBool struct {
	v, set bool
}

func (p *strictBool) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true":
		p.v, p.set = true, true
	case "false":
		p.v, p.set = false, true
	default:
		return fmt.Errorf("%.20s is not a boolean", b)
	}
	return nil
}

func (v *Verifier) checkClaims(payload []byte) (*Claims, error) {
	var rc rawClaims
	if err := json.Unmarshal(payload, &rc); err != nil {
		return nil, invalid("claims: %v", err)
	}
	if rc.Iss != v.issuer {
		return nil, invalid("iss %q, want %q", rc.Iss, v.issuer)
	}
	if !slices.Contains(rc.Aud, v.audience) {
		return nil, invalid("aud %q does not contain %q", []string(rc.Aud), v.audience)
	}
	if !rc.Exp.set {
		return nil, invalid("exp missing")
	}
	if !rc.Iat.set {
		return nil, invalid("iat missing")
	}
	// Whole seconds and these exact comparisons are what PyJWT and jose
	// do, so the three verifiers Lanyard documents agree at the edges.
	now := float64(v.now().Unix())
	leeway := v.leeway.Seconds()
	if rc.Exp.v <= now-leeway {
		return nil, invalid("expired at %v", rc.Exp.time())
	}
	if rc.Nbf.set && rc.Nbf.v > now+leeway {
		return nil, invalid("not valid before %v", rc.Nbf.time())
	}
	if rc.Sub == "" {
		return nil, invalid("sub missing")
	}
	if rc.Sid == "" {
		return nil, invalid("sid missing")
	}
	// A token without profile_complete is not a Lanyard access token (it
	// is always present); treating absent as false would make a
	// personalised route answer 403 "finish onboarding" to a foreign token.
	if !rc.ProfileComplete.set {
		return nil, invalid("profile_complete missing")
	}
	// Lanyard puts the profile in every token that says onboarding is
	// done; requiring it lets handlers behind RequireCompleteProfile use
	// Claims.Profile without a nil check.
	if rc.ProfileComplete.v && rc.Profile == nil {
		return nil, invalid("profile_complete is true but profile is missing")
	}
	c := &Claims{
		Subject:         rc.Sub,
		SessionID:       rc.Sid,
		Email:           rc.Email,
		ProfileComplete: rc.ProfileComplete.v,
		Profile:         rc.Profile,
		Issuer:          rc.Iss,
		Audience:        v.audience,
		IssuedAt:        rc.Iat.time(),
		ExpiresAt:       rc.Exp.time(),
		ID:              rc.Jti,
	}
	if rc.Nbf.set {
		c.NotBefore = rc.Nbf.time()
	}
	return c, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidToken}, args...)...)
}
