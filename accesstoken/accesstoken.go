// Package accesstoken holds the rules a Lanyard access token must meet,
// in one place: Lanyard's own bearer check, its key ring (package keys)
// and the public verifier package all apply them through this package,
// and Lanyard mints its tokens' claims through Claims.Payload, so what is
// written and what is read agree on every name.
//
// It checks structure, header and claims; it does no cryptography. A
// caller splits the token (Split), checks the header (ParseHeader), finds
// the key the header names and verifies the signature with it, then
// checks the payload (Policy.Check).
//
// # Rules
//
// The FastAPI and Node examples apply the same rules (examples/README.md,
// "Agreed rules"); internal/tokentest holds the corpus of cases all of
// them are held to.
//
//   - The token is a compact JWS of at most MaxLen bytes; its parts are
//     canonical unpadded base64url (checked by the caller's decoder).
//   - The header is a JSON object with alg in the caller's allow-list
//     (and, checked by the caller, equal to the key's), typ at+jwt or
//     application/at+jwt in any case, a non-empty string kid, and neither
//     crit nor b64.
//   - Header and claims are UTF-8 JSON objects in which no two member names,
//     at any depth, are equal ignoring case: "sub" twice is refused, and
//     so are "sub" and "SUB" together. Claims are then read by their
//     exact names: "Profile_Complete" alone is an unknown claim, not
//     profile_complete.
//   - iss equals Policy.Issuer; aud is a string equal to Policy.Audience
//     or an array of strings containing it.
//   - exp, iat and nbf are JSON numbers in [0, 2^53); exp and iat are
//     required, nbf is checked when present. A token is refused when
//     exp <= now-leeway, nbf > now+leeway or iat > now+leeway (issued in
//     the future), in whole seconds. A token whose lifetime, exp - iat,
//     exceeds Policy.MaxLifetime is refused: whoever holds a signing key
//     (a leaked one, say) cannot mint tokens that outlive its revocation
//     by days.
//   - sub and sid are non-empty strings; email and jti are strings when
//     present; email_verified is a boolean when present (Lanyard always
//     writes it; a token minted before it existed reads as false);
//     profile_complete is a required boolean; profile, when
//     present and not null, is an object with string python_proficiency
//     and developer_role, and it is required when profile_complete is
//     true.
package accesstoken

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Type is the JWS "typ" of access tokens (RFC 9068).
const Type = "at+jwt"

// MaxLen bounds the work a hostile token can cause. Lanyard's tokens are
// well under 1 KiB; 16 KiB leaves room for RS256 and future claims.
const MaxLen = 16 << 10

// Leeway bounds: the contract's cap is 60 s, since a verifier that
// tolerates more skew keeps expired tokens alive.
const (
	DefaultLeeway = 30 * time.Second
	MaxLeeway     = 60 * time.Second
)

// DefaultMaxLifetime is the longest exp - iat accepted when
// Policy.MaxLifetime is zero: Lanyard's default access-token lifetime
// (LANYARD_ACCESS_TTL, 15 min) plus MaxLeeway. A deployment with a longer
// access TTL must raise its verifiers' maximum to match.
const DefaultMaxLifetime = 15*time.Minute + MaxLeeway

// b64 is the JOSE base64url alphabet without padding. Strict rejects
// non-canonical trailing bits, so a token has exactly one spelling.
var b64 = base64.RawURLEncoding.Strict()

// Split returns the three base64url parts of a compact JWS. It checks the
// shape only: at most MaxLen bytes, exactly two dots.
func Split(token string) (header, payload, signature string, err error) {
	if len(token) > MaxLen {
		return "", "", "", fmt.Errorf("token is %d bytes, limit %d", len(token), MaxLen)
	}
	header, rest, ok := strings.Cut(token, ".")
	if !ok {
		return "", "", "", errors.New("not a compact JWS")
	}
	payload, signature, ok = strings.Cut(rest, ".")
	if !ok || strings.IndexByte(signature, '.') >= 0 {
		return "", "", "", errors.New("not a compact JWS")
	}
	return header, payload, signature, nil
}

// Header is a protected header that passed ParseHeader.
type Header struct {
	Alg string
	Kid string
}

// ParseHeader decodes the base64url protected header enc and checks it.
// allowed is the caller's algorithm allow-list; the caller must still
// check that alg is the algorithm of the key kid names, since the key,
// not the token, decides the algorithm (that is what stops alg "none",
// HS256 keyed with a public key, and cross-algorithm confusion).
func ParseHeader(enc string, allowed []string) (Header, error) {
	raw, err := b64.DecodeString(enc)
	if err != nil {
		return Header{}, fmt.Errorf("header encoding: %w", err)
	}
	var buf [8]member
	ms, err := objectMembers(raw, buf[:0])
	if err != nil {
		return Header{}, fmt.Errorf("header: %w", err)
	}
	var alg, typ, kid []byte
	for _, m := range ms {
		switch string(m.name) {
		case "alg":
			alg = m.value
		case "typ":
			typ = m.value
		case "kid":
			kid = m.value
		case "crit", "b64":
			// No critical extension is implemented, so RFC 7515 §4.1.11
			// says any crit must be refused; b64=false (RFC 7797) would
			// change what was signed. Refuse both rather than
			// misinterpret them.
			return Header{}, fmt.Errorf("header parameter %s is not supported", string(m.name))
		}
	}
	var h Header
	var ok bool
	if h.Alg, ok = stringValue(alg); !ok {
		return Header{}, errors.New("header alg missing or not a string")
	}
	if !slices.Contains(allowed, h.Alg) {
		return Header{}, fmt.Errorf("alg %q not allowed", h.Alg)
	}
	// RFC 9068 §4: at+jwt, optionally with the "application/" prefix;
	// media types compare case-insensitively. Checking typ keeps ID tokens
	// or other JWTs signed by the same keys from passing as access tokens.
	t, ok := stringValue(typ)
	if !ok || !strings.EqualFold(t, Type) && !strings.EqualFold(t, "application/"+Type) {
		return Header{}, fmt.Errorf("typ %.40s is not %s", orMissing(typ), Type)
	}
	if h.Kid, ok = stringValue(kid); !ok || h.Kid == "" {
		return Header{}, errors.New("header kid missing or not a non-empty string")
	}
	return h, nil
}

// Policy is what a valid token's claims must say. The zero Leeway means
// no leeway; DefaultLeeway is the usual choice. The zero MaxLifetime means
// DefaultMaxLifetime: there is no way to accept tokens of any lifetime.
type Policy struct {
	Issuer   string // iss must equal it exactly
	Audience string // aud must equal it, or contain it when an array
	Leeway   time.Duration
	// MaxLifetime bounds exp - iat (whole seconds, no leeway).
	MaxLifetime time.Duration
}

// Validate reports whether p can accept any token.
func (p Policy) Validate() error {
	switch {
	case p.Issuer == "":
		return errors.New("Issuer is required")
	case p.Audience == "":
		return errors.New("Audience is required")
	case p.Leeway < 0 || p.Leeway > MaxLeeway:
		return fmt.Errorf("Leeway %v must be between 0 and %v", p.Leeway, MaxLeeway)
	case p.MaxLifetime < 0:
		return fmt.Errorf("MaxLifetime %v is negative", p.MaxLifetime)
	}
	return nil
}

// Claims are the claims of a Lanyard access token.
type Claims struct {
	Subject         string // sub: the user id
	SessionID       string // sid: the login session
	Email           string
	EmailVerified   bool     // the user proved the address
	ProfileComplete bool     // onboarding done
	Profile         *Profile // never nil when ProfileComplete; may be nil otherwise
	Issuer          string
	Audience        string // the policy's audience the token was accepted for
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

// Check checks the payload (the decoded JSON claims set) of a token whose
// signature the caller has verified, at time now, and returns its claims.
func (p Policy) Check(payload []byte, now time.Time) (*Claims, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	var buf [16]member
	ms, err := objectMembers(payload, buf[:0])
	if err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	// Names are unique ignoring case, so each of these is set at most once.
	var iss, aud, exp, iat, nbf, sub, sid, email, verified, jti, complete, profile []byte
	for _, m := range ms {
		switch string(m.name) {
		case "iss":
			iss = m.value
		case "aud":
			aud = m.value
		case "exp":
			exp = m.value
		case "iat":
			iat = m.value
		case "nbf":
			nbf = m.value
		case "sub":
			sub = m.value
		case "sid":
			sid = m.value
		case "email":
			email = m.value
		case "email_verified":
			verified = m.value
		case "jti":
			jti = m.value
		case "profile_complete":
			complete = m.value
		case "profile":
			profile = m.value
		}
	}

	if s, ok := stringBytes(iss); !ok || string(s) != p.Issuer {
		return nil, fmt.Errorf("iss %.100s, want %q", orMissing(iss), p.Issuer)
	}
	if err := checkAudience(aud, p.Audience); err != nil {
		return nil, err
	}
	expAt, err := numericDate("exp", exp, true)
	if err != nil {
		return nil, err
	}
	iatAt, err := numericDate("iat", iat, true)
	if err != nil {
		return nil, err
	}
	nbfAt, err := numericDate("nbf", nbf, false)
	if err != nil {
		return nil, err
	}
	// Whole seconds and these exact comparisons are what PyJWT and jose
	// do, so the verifiers Lanyard documents agree at the edges.
	sec := float64(now.Unix())
	leeway := p.Leeway.Seconds()
	if expAt <= sec-leeway {
		return nil, fmt.Errorf("expired at %v", dateTime(expAt))
	}
	if nbf != nil && nbfAt > sec+leeway {
		return nil, fmt.Errorf("not valid before %v", dateTime(nbfAt))
	}
	// A token issued in the future is refused like one not yet valid.
	if iatAt > sec+leeway {
		return nil, fmt.Errorf("issued in the future, at %v", dateTime(iatAt))
	}
	maxLifetime := p.MaxLifetime
	if maxLifetime == 0 {
		maxLifetime = DefaultMaxLifetime
	}
	if expAt-iatAt > maxLifetime.Seconds() {
		return nil, fmt.Errorf("lifetime %v exceeds the maximum %v", dateTime(expAt).Sub(dateTime(iatAt)), maxLifetime)
	}

	c := &Claims{
		Issuer:    p.Issuer,
		Audience:  p.Audience,
		IssuedAt:  dateTime(iatAt),
		ExpiresAt: dateTime(expAt),
	}
	if nbf != nil {
		c.NotBefore = dateTime(nbfAt)
	}
	var ok bool
	if c.Subject, ok = stringValue(sub); !ok || c.Subject == "" {
		return nil, errors.New("sub missing or not a non-empty string")
	}
	if c.SessionID, ok = stringValue(sid); !ok || c.SessionID == "" {
		return nil, errors.New("sid missing or not a non-empty string")
	}
	if c.Email, ok = stringValue(email); !ok && email != nil {
		return nil, errors.New("email is not a string")
	}
	switch string(verified) {
	case "true":
		c.EmailVerified = true
	case "false", "":
	default:
		return nil, errors.New("email_verified is not a boolean")
	}
	if c.ID, ok = stringValue(jti); !ok && jti != nil {
		return nil, errors.New("jti is not a string")
	}
	// A token without profile_complete is not a Lanyard access token (it
	// is always present); treating absent as false would make a
	// personalised route answer 403 "finish onboarding" to a foreign token.
	switch string(complete) {
	case "true":
		c.ProfileComplete = true
	case "false":
	default:
		return nil, errors.New("profile_complete missing or not a boolean")
	}
	// A profile, when present, must be well formed whatever
	// profile_complete says. Lanyard puts it in every token that says
	// onboarding is done; requiring it lets handlers behind a
	// complete-profile check use Claims.Profile without a nil check.
	if profile != nil && string(profile) != "null" {
		if c.Profile, err = parseProfile(profile); err != nil {
			return nil, err
		}
	}
	if c.ProfileComplete && c.Profile == nil {
		return nil, errors.New("profile_complete is true but profile is missing")
	}
	return c, nil
}

func orMissing(raw []byte) []byte {
	if raw == nil {
		return []byte("missing")
	}
	return raw
}

// checkAudience checks aud, which RFC 7519 lets be a string or an array
// of strings.
func checkAudience(raw []byte, want string) error {
	if s, ok := stringValue(raw); ok {
		if s != want {
			return fmt.Errorf("aud %q, want %q", s, want)
		}
		return nil
	}
	if len(raw) == 0 || raw[0] != '[' {
		return fmt.Errorf("aud %.100s is not a string or an array of strings", orMissing(raw))
	}
	// Every entry must be a string, as PyJWT and the jose example require;
	// decoding into []string would silently turn null into "".
	var entries []json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil {
		return fmt.Errorf("aud: %w", err)
	}
	found := false
	for _, e := range entries {
		a, ok := stringBytes(e)
		if !ok {
			return fmt.Errorf("aud entry %.40s is not a string", e)
		}
		found = found || string(a) == want
	}
	if !found {
		return fmt.Errorf("aud %.100s does not contain %q", raw, want)
	}
	return nil
}

// numericDate decodes a JWT NumericDate: a JSON number (not a string,
// boolean or null, which PyJWT would otherwise int()) in [0, 2^53), which
// covers every real date and keeps conversions exact.
func numericDate(name string, raw []byte, required bool) (float64, error) {
	if raw == nil {
		if required {
			return 0, fmt.Errorf("%s missing", name)
		}
		return 0, nil
	}
	// raw is one JSON value, so anything ParseFloat accepts is a number.
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f < 0 || f >= 1<<53 {
		return 0, fmt.Errorf("%s %.20s is not a NumericDate in range", name, raw)
	}
	return f, nil
}

func dateTime(d float64) time.Time {
	sec, frac := math.Modf(d)
	return time.Unix(int64(sec), int64(frac*1e9))
}

// parseProfile decodes the profile claim: an object whose
// python_proficiency and developer_role are strings, by exact name.
func parseProfile(raw []byte) (*Profile, error) {
	if raw[0] != '{' {
		return nil, errors.New("profile is not an object")
	}
	var buf [8]member
	ms, err := members(raw, buf[:0]) // raw is part of JSON already checked
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	var level, role []byte
	for _, m := range ms {
		switch string(m.name) {
		case "python_proficiency":
			level = m.value
		case "developer_role":
			role = m.value
		}
	}
	var p Profile
	var ok bool
	if p.PythonProficiency, ok = stringValue(level); !ok {
		return nil, errors.New("profile.python_proficiency missing or not a string")
	}
	if p.DeveloperRole, ok = stringValue(role); !ok {
		return nil, errors.New("profile.developer_role missing or not a string")
	}
	return &p, nil
}

// Payload returns the JSON claims set Lanyard signs for c: dates in whole
// seconds, nbf only when NotBefore is set, profile only when Profile is.
func (c *Claims) Payload() ([]byte, error) {
	w := wireClaims{
		Issuer:          c.Issuer,
		Subject:         c.Subject,
		Audience:        c.Audience,
		IssuedAt:        c.IssuedAt.Unix(),
		ExpiresAt:       c.ExpiresAt.Unix(),
		ID:              c.ID,
		SessionID:       c.SessionID,
		Email:           c.Email,
		EmailVerified:   c.EmailVerified,
		ProfileComplete: c.ProfileComplete,
		Profile:         c.Profile,
	}
	if !c.NotBefore.IsZero() {
		w.NotBefore = c.NotBefore.Unix()
	}
	return json.Marshal(&w)
}

// wireClaims is the claims set as Lanyard writes it; the field order is
// the order of the JSON members.
type wireClaims struct {
	Issuer          string   `json:"iss"`
	Subject         string   `json:"sub"`
	Audience        string   `json:"aud"`
	IssuedAt        int64    `json:"iat"`
	NotBefore       int64    `json:"nbf,omitzero"` // 0 never blocks a token anyway
	ExpiresAt       int64    `json:"exp"`
	ID              string   `json:"jti"`
	SessionID       string   `json:"sid"`
	Email           string   `json:"email"`
	EmailVerified   bool     `json:"email_verified"`
	ProfileComplete bool     `json:"profile_complete"`
	Profile         *Profile `json:"profile,omitempty"`
}
