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

// claimSet is the payload's members by exact name. Decoding through a map
// rather than a struct keeps claim names case-sensitive (RFC 7519 §4):
// encoding/json would take "Profile_Complete" for profile_complete, which
// PyJWT and jose do not. Duplicate names: the last wins, as in both.
type claimSet map[string]json.RawMessage

// present reports whether name is in the payload with a non-null value.
func (cs claimSet) present(name string) bool {
	raw, ok := cs[name]
	return ok && string(raw) != "null"
}

// str decodes the string claim name; absent is "", any other type
// (null included) is an error.
func (cs claimSet) str(name string) (string, error) {
	raw, ok := cs[name]
	if !ok {
		return "", nil
	}
	if len(raw) == 0 || raw[0] != '"' {
		return "", fmt.Errorf("%s is not a string", name)
	}
	// Lanyard's strings have no escapes: skip the second decode pass.
	if s := raw[1 : len(raw)-1]; bytes.IndexByte(s, '\\') < 0 {
		return string(s), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// date decodes the NumericDate claim name, if present.
func (cs claimSet) date(name string) (numericDate, error) {
	var d numericDate
	raw, ok := cs[name]
	if !ok {
		return d, nil
	}
	if err := d.UnmarshalJSON(raw); err != nil {
		return d, fmt.Errorf("%s: %w", name, err)
	}
	return d, nil
}

// parseProfile decodes the profile claim: an object whose
// python_proficiency and developer_role are strings.
func parseProfile(raw json.RawMessage) (*Profile, error) {
	var m claimSet
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, errors.New("profile is not an object")
	}
	if _, ok := m["python_proficiency"]; !ok {
		return nil, errors.New("profile.python_proficiency missing")
	}
	if _, ok := m["developer_role"]; !ok {
		return nil, errors.New("profile.developer_role missing")
	}
	var p Profile
	var err error
	if p.PythonProficiency, err = m.str("python_proficiency"); err != nil {
		return nil, fmt.Errorf("profile.%w", err)
	}
	if p.DeveloperRole, err = m.str("developer_role"); err != nil {
		return nil, fmt.Errorf("profile.%w", err)
	}
	return &p, nil
}

func (v *Verifier) checkClaims(payload []byte) (*Claims, error) {
	var cs claimSet
	if err := json.Unmarshal(payload, &cs); err != nil {
		return nil, invalid("claims: %v", err)
	}
	iss, err := cs.str("iss")
	if err != nil {
		return nil, invalid("claims: %v", err)
	}
	if iss != v.issuer {
		return nil, invalid("iss %q, want %q", iss, v.issuer)
	}
	var aud audience
	if raw, ok := cs["aud"]; ok {
		if err := aud.UnmarshalJSON(raw); err != nil {
			return nil, invalid("claims: aud: %v", err)
		}
	}
	if !slices.Contains(aud, v.audience) {
		return nil, invalid("aud %q does not contain %q", []string(aud), v.audience)
	}
	exp, err := cs.date("exp")
	if err != nil {
		return nil, invalid("claims: %v", err)
	}
	iat, err := cs.date("iat")
	if err != nil {
		return nil, invalid("claims: %v", err)
	}
	nbf, err := cs.date("nbf")
	if err != nil {
		return nil, invalid("claims: %v", err)
	}
	if !exp.set {
		return nil, invalid("exp missing")
	}
	if !iat.set {
		return nil, invalid("iat missing")
	}
	// Whole seconds and these exact comparisons are what PyJWT and jose
	// do, so the three verifiers Lanyard documents agree at the edges.
	now := float64(v.now().Unix())
	leeway := v.leeway.Seconds()
	if exp.v <= now-leeway {
		return nil, invalid("expired at %v", exp.time())
	}
	if nbf.set && nbf.v > now+leeway {
		return nil, invalid("not valid before %v", nbf.time())
	}
	// A token issued in the future is refused like one not yet valid
	// (PyJWT does; the jose example checks it explicitly).
	if iat.v > now+leeway {
		return nil, invalid("issued in the future, at %v", iat.time())
	}
	c := &Claims{
		Issuer:    iss,
		Audience:  v.audience,
		IssuedAt:  iat.time(),
		ExpiresAt: exp.time(),
	}
	if nbf.set {
		c.NotBefore = nbf.time()
	}
	for name, dst := range map[string]*string{"sub": &c.Subject, "sid": &c.SessionID, "email": &c.Email, "jti": &c.ID} {
		if *dst, err = cs.str(name); err != nil {
			return nil, invalid("claims: %v", err)
		}
	}
	if c.Subject == "" {
		return nil, invalid("sub missing")
	}
	if c.SessionID == "" {
		return nil, invalid("sid missing")
	}
	// A token without profile_complete is not a Lanyard access token (it
	// is always present); treating absent as false would make a
	// personalised route answer 403 "finish onboarding" to a foreign token.
	var complete strictBool
	if raw, ok := cs["profile_complete"]; ok {
		if err := complete.UnmarshalJSON(raw); err != nil {
			return nil, invalid("claims: profile_complete: %v", err)
		}
	}
	if !complete.set {
		return nil, invalid("profile_complete missing")
	}
	c.ProfileComplete = complete.v
	// A profile, when present, must be well formed whatever
	// profile_complete says. Lanyard puts it in every token that says
	// onboarding is done; requiring it lets handlers behind
	// RequireCompleteProfile use Claims.Profile without a nil check.
	if cs.present("profile") {
		if c.Profile, err = parseProfile(cs["profile"]); err != nil {
			return nil, invalid("claims: %v", err)
		}
	}
	if c.ProfileComplete && c.Profile == nil {
		return nil, invalid("profile_complete is true but profile is missing")
	}
	return c, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidToken}, args...)...)
}
