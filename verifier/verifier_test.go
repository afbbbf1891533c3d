package verifier

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/accesstoken"
	"github.com/lanyard-id/lanyard/internal/tokentest"
	"github.com/lanyard-id/lanyard/keys"
)

const (
	testIssuer   = "https://id.example.com"
	testAudience = "https://api.example.com"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

var enc = base64.RawURLEncoding.EncodeToString

// Key generation (RSA above all) is slow enough to share keys across tests.
var (
	keyOnce sync.Once
	keyPool map[string]*tokentest.Key
)

func sharedKey(alg string) *tokentest.Key {
	keyOnce.Do(func() {
		keyPool = map[string]*tokentest.Key{}
		for _, a := range []string{"ES256", "EdDSA", "RS256"} {
			keyPool[a] = tokentest.NewKey(a)
		}
	})
	return keyPool[alg]
}

// fixture is a verifier wired to a fake Lanyard that publishes key.
type fixture struct {
	key   *tokentest.Key
	srv   *tokentest.Server
	clock *tokentest.Clock
	v     *Verifier
}

func newFixture(t *testing.T, mutate func(*Config), keys ...*tokentest.Key) *fixture {
	t.Helper()
	if len(keys) == 0 {
		keys = []*tokentest.Key{tokentest.NewKey("ES256")}
	}
	f := &fixture{key: keys[0], srv: tokentest.NewServer(keys...), clock: tokentest.NewClock(t0)}
	t.Cleanup(f.srv.Close)
	cfg := Config{JWKSURL: f.srv.URL(), Issuer: testIssuer, Audience: testAudience, Now: f.clock.Now}
	if mutate != nil {
		mutate(&cfg)
	}
	v, err := New(context.Background(), cfg)
	require.NoError(t, err)
	f.v = v
	t.Cleanup(v.waitIdle)
	return f
}

// claims is a valid claim set at the fixture's current time.
func (f *fixture) claims() map[string]any {
	return tokentest.Claims(testIssuer, testAudience, f.clock.Now())
}

// token is a valid token with mut applied to its claims.
func (f *fixture) token(mut func(map[string]any)) string {
	c := f.claims()
	if mut != nil {
		mut(c)
	}
	return f.key.Sign(c)
}

func (f *fixture) verify(tok string) (*Claims, error) {
	return f.v.Verify(context.Background(), tok)
}

// waitIdle waits for a background fetch, if any, so a test can observe
// its outcome without sleeping.
func (v *Verifier) waitIdle() {
	v.mu.Lock()
	c := v.inflight
	v.mu.Unlock()
	if c != nil {
		<-c.done
	}
}

func TestNewValidatesConfig(t *testing.T) {
	ok := Config{JWKSURL: "http://127.0.0.1:1/jwks.json", Issuer: testIssuer, Audience: testAudience}
	for name, mut := range map[string]func(*Config){
		"empty URL":         func(c *Config) { c.JWKSURL = "" },
		"relative URL":      func(c *Config) { c.JWKSURL = "/.well-known/jwks.json" },
		"ftp URL":           func(c *Config) { c.JWKSURL = "ftp://id.example.com/jwks.json" },
		"URL without host":  func(c *Config) { c.JWKSURL = "https:///jwks.json" },
		"no issuer":         func(c *Config) { c.Issuer = "" },
		"no audience":       func(c *Config) { c.Audience = "" },
		"alg none":          func(c *Config) { c.Algorithms = []string{"none"} },
		"alg HS256":         func(c *Config) { c.Algorithms = []string{"ES256", "HS256"} },
		"alg wrong case":    func(c *Config) { c.Algorithms = []string{"es256"} },
		"alg ES384":         func(c *Config) { c.Algorithms = []string{"ES384"} },
		"leeway over 60s":   func(c *Config) { c.Leeway = 61 * time.Second },
		"negative leeway":   func(c *Config) { c.Leeway = -time.Second },
		"negative cooldown": func(c *Config) { c.RefetchCooldown = -time.Second },
		"negative TTL":      func(c *Config) { c.CacheTTL = -time.Second },
		"negative lifetime": func(c *Config) { c.MaxTokenLifetime = -time.Second },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := ok
			mut(&cfg)
			_, err := New(context.Background(), cfg)
			require.Error(t, err)
		})
	}

	v, err := newVerifier(ok)
	require.NoError(t, err)
	assert.Equal(t, []string{"ES256"}, v.algs)
	assert.Equal(t, 30*time.Second, v.policy.Leeway)
	assert.Equal(t, 16*time.Minute, v.policy.MaxLifetime)
	assert.Equal(t, 30*time.Second, v.cooldown)
	assert.Equal(t, 5*time.Minute, v.ttl)
	assert.Equal(t, 5*time.Second, v.client.Timeout)
	assert.Equal(t, 5*time.Second, v.fetchLimit)

	cfg := ok
	cfg.Algorithms = []string{"ES256", "EdDSA", "RS256"}
	cfg.Leeway = 60 * time.Second
	cfg.HTTPClient = &http.Client{} // no timeout of its own
	v, err = newVerifier(cfg)
	require.NoError(t, err)
	assert.Len(t, v.algs, 3)
	assert.Equal(t, DefaultFetchTimeout, v.fetchLimit, "a client without a timeout still gets one")
}

// New must not fail when Lanyard is down; the verifier recovers once it is up.
func TestNewWhileLanyardDown(t *testing.T) {
	k := sharedKey("ES256")
	srv := tokentest.NewServer(k)
	defer srv.Close()
	srv.SetDown(true)
	clock := tokentest.NewClock(t0)
	v, err := New(context.Background(), Config{JWKSURL: srv.URL(), Issuer: testIssuer, Audience: testAudience, Now: clock.Now})
	require.NoError(t, err)
	tok := k.Sign(tokentest.Claims(testIssuer, testAudience, t0))

	_, err = v.Verify(context.Background(), tok)
	require.ErrorIs(t, err, ErrInvalidToken, "no keys yet")
	assert.EqualValues(t, 1, srv.Hits(), "cooldown holds the retry")
	require.Error(t, v.Refresh(context.Background()), "Refresh reports the outage")

	srv.SetDown(false)
	clock.Advance(DefaultRefetchCooldown)
	c, err := v.Verify(context.Background(), tok)
	require.NoError(t, err)
	assert.True(t, c.ProfileComplete)
}

func TestVerifyAccepts(t *testing.T) {
	f := newFixture(t, nil)
	c, err := f.verify(f.token(nil))
	require.NoError(t, err)
	assert.Equal(t, &Claims{
		Subject:         "0b6f1c9e-3d5a-4c1e-9f7a-2b8d6e4c1a30",
		SessionID:       "6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
		Email:           "ada@example.com",
		EmailVerified:   true,
		ProfileComplete: true,
		Profile:         &Profile{PythonProficiency: "advanced", DeveloperRole: "ml_engineer"},
		Issuer:          testIssuer,
		Audience:        testAudience,
		IssuedAt:        time.Unix(t0.Unix(), 0),
		ExpiresAt:       time.Unix(t0.Add(15*time.Minute).Unix(), 0),
		NotBefore:       time.Unix(t0.Unix(), 0),
		ID:              "Zm9vYmFyYmF6cXV1eDEyMw",
	}, c)

	now := t0.Unix()
	for name, mut := range map[string]func(map[string]any){
		"incomplete profile": func(c map[string]any) { c["profile_complete"] = false; delete(c, "profile") },
		"aud array":          func(c map[string]any) { c["aud"] = []string{"other", testAudience} },
		"exp within leeway":  func(c map[string]any) { c["exp"] = now - 29 },
		"nbf within leeway":  func(c map[string]any) { c["nbf"] = now + 30 },
		"no nbf":             func(c map[string]any) { delete(c, "nbf") },
		"fractional dates":   func(c map[string]any) { c["iat"] = float64(now) + 0.5; c["exp"] = float64(now) + 900.25 },
		"extra claims":       func(c map[string]any) { c["scope"] = "read" },
		"iat within leeway":  func(c map[string]any) { c["iat"] = now + 30 },
		"null profile incomplete": func(c map[string]any) {
			c["profile_complete"] = false
			c["profile"] = nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := f.verify(f.token(mut))
			require.NoError(t, err)
		})
	}

	for _, typ := range []string{"at+jwt", "AT+JWT", "application/at+jwt", "Application/At+JWT"} {
		t.Run("typ "+typ, func(t *testing.T) {
			tok := f.key.SignRaw(tokentest.Header("ES256", f.key.Kid, typ), mustJSON(f.claims()))
			_, err := f.verify(tok)
			require.NoError(t, err)
		})
	}

	c, err = f.verify(f.token(func(c map[string]any) { c["profile_complete"] = false; delete(c, "profile") }))
	require.NoError(t, err)
	assert.False(t, c.ProfileComplete)
	assert.Nil(t, c.Profile)

	// Claim names are exact: a case variant alone is an unknown claim.
	c, err = f.verify(f.token(func(c map[string]any) { c["Email"] = c["email"]; delete(c, "email") }))
	require.NoError(t, err)
	assert.Empty(t, c.Email)
}

// TestMaxTokenLifetime: exp - iat beyond Config.MaxTokenLifetime is
// refused however valid the token is otherwise; a deployment with a
// longer access TTL raises it.
func TestMaxTokenLifetime(t *testing.T) {
	now := t0.Unix()
	lifetime := func(seconds int64) func(map[string]any) {
		return func(c map[string]any) { c["exp"] = now + seconds }
	}
	f := newFixture(t, nil)
	_, err := f.verify(f.token(lifetime(16 * 60)))
	require.NoError(t, err, "the default maximum: 15 min access TTL + 60 s")
	_, err = f.verify(f.token(lifetime(16*60 + 1)))
	require.ErrorIs(t, err, ErrInvalidToken)
	require.ErrorContains(t, err, "exceeds the maximum")
	_, err = f.verify(f.token(lifetime(24 * 3600)))
	require.ErrorIs(t, err, ErrInvalidToken, "a forged day-long token")

	f = newFixture(t, func(c *Config) { c.MaxTokenLifetime = time.Hour + time.Minute })
	_, err = f.verify(f.token(lifetime(3600)))
	require.NoError(t, err)
	_, err = f.verify(f.token(lifetime(24 * 3600)))
	require.ErrorIs(t, err, ErrInvalidToken)
}

func TestVerifyOtherAlgorithms(t *testing.T) {
	all := func(c *Config) { c.Algorithms = []string{"ES256", "EdDSA", "RS256"} }
	keys := []*tokentest.Key{sharedKey("ES256"), sharedKey("EdDSA"), sharedKey("RS256")}
	f := newFixture(t, all, keys...)
	for _, k := range keys {
		t.Run(k.Alg, func(t *testing.T) {
			_, err := f.verify(k.Sign(f.claims()))
			require.NoError(t, err)
		})
	}

	// The default allow-list is ES256 only: Lanyard switched to EdDSA is a
	// config change in every backend, not something a token decides.
	f = newFixture(t, nil, keys...)
	for _, k := range keys[1:] {
		_, err := f.verify(k.Sign(f.claims()))
		require.ErrorIs(t, err, ErrInvalidToken, k.Alg)
	}
}

func TestVerifyRejects(t *testing.T) {
	es := sharedKey("ES256")
	rs := sharedKey("RS256")
	f := newFixture(t, func(c *Config) { c.Algorithms = []string{"ES256", "RS256"} }, es, rs)
	good := f.token(nil)
	parts := strings.Split(good, ".")
	claims := mustJSON(f.claims())
	now := t0.Unix()
	hdr := func(alg, kid, typ string) []byte { return tokentest.Header(alg, kid, typ) }
	stdHdr := hdr("ES256", es.Kid, "at+jwt")
	withClaims := func(mut func(map[string]any)) string { return f.token(mut) }

	pubDER, err := x509.MarshalPKIXPublicKey(es.Signer.Public())
	require.NoError(t, err)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hs256 := func(secret []byte) string {
		in := enc(hdr("HS256", es.Kid, "at+jwt")) + "." + enc(claims)
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(in))
		return in + "." + enc(m.Sum(nil))
	}
	sigBytes, err := base64.RawURLEncoding.DecodeString(parts[2])
	require.NoError(t, err)
	flipped := append([]byte(nil), sigBytes...)
	flipped[10] ^= 1
	// The last character of a 64-byte signature carries 4 unused bits.
	lastChar := parts[2][len(parts[2])-1]
	nonCanonical := parts[2][:len(parts[2])-1] + string(lastChar^1)

	cases := map[string]string{
		// Structure.
		"empty":                         "",
		"one segment":                   "abc",
		"two segments":                  parts[0] + "." + parts[1],
		"four segments":                 good + ".x",
		"too long":                      parts[0] + "." + strings.Repeat("A", accesstoken.MaxLen) + "." + parts[2],
		"header not base64":             "!!." + parts[1] + "." + parts[2],
		"header not JSON":               es.SignRaw([]byte("alg=ES256"), claims),
		"header an array":               es.SignRaw([]byte(`["ES256"]`), claims),
		"header padded b64":             parts[0] + "=." + parts[1] + "." + parts[2],
		"payload not base64":            parts[0] + ".!!." + parts[2],
		"payload not JSON":              es.SignRaw(stdHdr, []byte("sub=me")),
		"payload not base64 but signed": es.SignInput(enc(stdHdr) + ".!!"),
		"payload padded but signed":     es.SignInput(enc(stdHdr) + "." + enc(claims) + "="),
		"payload an array":              es.SignRaw(stdHdr, []byte(`[1,2]`)),

		// Header.
		"alg none":                 enc(hdr("none", es.Kid, "at+jwt")) + "." + enc(claims) + ".",
		"alg none with signature":  enc(hdr("none", es.Kid, "at+jwt")) + "." + enc(claims) + "." + parts[2],
		"alg HS256 public PEM":     hs256(pubPEM),
		"alg HS256 public DER":     hs256(pubDER),
		"alg ES384":                es.SignRaw(hdr("ES384", es.Kid, "at+jwt"), claims),
		"alg EdDSA not allowed":    sharedKey("EdDSA").Sign(f.claims()),
		"alg RS256 on an EC kid":   rs.SignRaw(hdr("RS256", es.Kid, "at+jwt"), claims),
		"alg ES256 on an RSA kid":  es.SignRaw(hdr("ES256", rs.Kid, "at+jwt"), claims),
		"alg lower case":           es.SignRaw(hdr("es256", es.Kid, "at+jwt"), claims),
		"alg not a string":         es.SignRaw([]byte(`{"alg":1,"kid":"`+es.Kid+`","typ":"at+jwt"}`), claims),
		"alg missing":              es.SignRaw(hdr("", es.Kid, "at+jwt"), claims),
		"typ missing":              es.SignRaw(hdr("ES256", es.Kid, ""), claims),
		"typ JWT":                  es.SignRaw(hdr("ES256", es.Kid, "JWT"), claims),
		"typ at+jwt suffix":        es.SignRaw(hdr("ES256", es.Kid, "at+jwt2"), claims),
		"typ not a string":         es.SignRaw([]byte(`{"alg":"ES256","kid":"`+es.Kid+`","typ":true}`), claims),
		"kid missing":              es.SignRaw(hdr("ES256", "", "at+jwt"), claims),
		"kid not a string":         es.SignRaw([]byte(`{"alg":"ES256","kid":7,"typ":"at+jwt"}`), claims),
		"unknown kid":              tokentest.NewKey("ES256").Sign(f.claims()),
		"crit":                     es.SignRaw([]byte(`{"alg":"ES256","kid":"`+es.Kid+`","typ":"at+jwt","crit":["exp"],"exp":1}`), claims),
		"crit empty":               es.SignRaw([]byte(`{"alg":"ES256","kid":"`+es.Kid+`","typ":"at+jwt","crit":[]}`), claims),
		"b64 false":                es.SignRaw([]byte(`{"alg":"ES256","kid":"`+es.Kid+`","typ":"at+jwt","b64":false,"crit":["b64"]}`), claims),
		"b64 without crit":         es.SignRaw([]byte(`{"alg":"ES256","kid":"`+es.Kid+`","typ":"at+jwt","b64":true}`), claims),
		"other key under our kid":  tokentest.NewKey("ES256").SignRaw(stdHdr, claims),
		"tampered header":          enc(hdr("ES256", es.Kid, "application/at+jwt")) + "." + parts[1] + "." + parts[2],
		"tampered payload":         parts[0] + "." + enc([]byte(strings.Replace(string(claims), "ada@", "eve@", 1))) + "." + parts[2],
		"tampered signature":       parts[0] + "." + parts[1] + "." + enc(flipped),
		"signature too short":      parts[0] + "." + parts[1] + "." + enc(sigBytes[:63]),
		"signature too long":       parts[0] + "." + parts[1] + "." + enc(append(sigBytes, 0)),
		"signature empty":          parts[0] + "." + parts[1] + ".",
		"signature non-canonical":  parts[0] + "." + parts[1] + "." + nonCanonical,
		"signature ASN.1 DER form": parts[0] + "." + parts[1] + "." + enc(append([]byte{0x30, 0x44, 0x02, 0x20}, sigBytes...)),

		// Claims.
		"iss wrong":                  withClaims(func(c map[string]any) { c["iss"] = "https://evil.example.com" }),
		"iss trailing slash":         withClaims(func(c map[string]any) { c["iss"] = testIssuer + "/" }),
		"iss missing":                withClaims(func(c map[string]any) { delete(c, "iss") }),
		"iss not a string":           withClaims(func(c map[string]any) { c["iss"] = []string{testIssuer} }),
		"aud wrong":                  withClaims(func(c map[string]any) { c["aud"] = "https://other.example.com" }),
		"aud missing":                withClaims(func(c map[string]any) { delete(c, "aud") }),
		"aud empty array":            withClaims(func(c map[string]any) { c["aud"] = []string{} }),
		"aud array without ours":     withClaims(func(c map[string]any) { c["aud"] = []string{"a", "b"} }),
		"aud number":                 withClaims(func(c map[string]any) { c["aud"] = 1 }),
		"expired":                    withClaims(func(c map[string]any) { c["exp"] = now - 3600 }),
		"expired at leeway edge":     withClaims(func(c map[string]any) { c["exp"] = now - 30 }),
		"exp missing":                withClaims(func(c map[string]any) { delete(c, "exp") }),
		"exp a string":               withClaims(func(c map[string]any) { c["exp"] = "2099-01-01" }),
		"exp negative":               withClaims(func(c map[string]any) { c["exp"] = -1 }),
		"exp absurd":                 withClaims(func(c map[string]any) { c["exp"] = 1e300 }),
		"nbf in the future":          withClaims(func(c map[string]any) { c["nbf"] = now + 3600 }),
		"nbf past leeway":            withClaims(func(c map[string]any) { c["nbf"] = now + 31 }),
		"nbf a string":               withClaims(func(c map[string]any) { c["nbf"] = "now" }),
		"nbf null":                   withClaims(func(c map[string]any) { c["nbf"] = nil }),
		"exp null":                   withClaims(func(c map[string]any) { c["exp"] = nil }),
		"iat null":                   withClaims(func(c map[string]any) { c["iat"] = nil }),
		"iat boolean":                withClaims(func(c map[string]any) { c["iat"] = true }),
		"exp an array":               withClaims(func(c map[string]any) { c["exp"] = []int64{now + 60} }),
		"profile_complete an object": withClaims(func(c map[string]any) { c["profile_complete"] = map[string]bool{"v": true} }),
		"iat missing":                withClaims(func(c map[string]any) { delete(c, "iat") }),
		"iat in the future":          withClaims(func(c map[string]any) { c["iat"] = now + 31; c["exp"] = now + 931 }),
		"email null":                 withClaims(func(c map[string]any) { c["email"] = nil }),
		"sid not a string":           withClaims(func(c map[string]any) { c["sid"] = 7 }),
		"profile member missing":     withClaims(func(c map[string]any) { c["profile"] = map[string]string{"developer_role": "student"} }),
		"profile member case variant": withClaims(func(c map[string]any) {
			c["profile"] = map[string]string{"Python_Proficiency": "advanced", "developer_role": "student"}
		}),
		"malformed profile, incomplete": withClaims(func(c map[string]any) { c["profile_complete"] = false; c["profile"] = 3 }),
		"profile_complete case variant only": withClaims(func(c map[string]any) {
			delete(c, "profile_complete")
			c["Profile_Complete"] = true
		}),
		"iat a string":               withClaims(func(c map[string]any) { c["iat"] = "yesterday" }),
		"sub missing":                withClaims(func(c map[string]any) { delete(c, "sub") }),
		"sub empty":                  withClaims(func(c map[string]any) { c["sub"] = "" }),
		"sid missing":                withClaims(func(c map[string]any) { delete(c, "sid") }),
		"profile_complete missing":   withClaims(func(c map[string]any) { delete(c, "profile_complete"); delete(c, "profile") }),
		"profile_complete null":      withClaims(func(c map[string]any) { c["profile_complete"] = nil }),
		"profile_complete a string":  withClaims(func(c map[string]any) { c["profile_complete"] = "true" }),
		"profile_complete a number":  withClaims(func(c map[string]any) { c["profile_complete"] = 1 }),
		"profile not an object":      withClaims(func(c map[string]any) { c["profile"] = "advanced" }),
		"complete without profile":   withClaims(func(c map[string]any) { delete(c, "profile") }),
		"complete with null profile": withClaims(func(c map[string]any) { c["profile"] = nil }),
		"email not a string":         withClaims(func(c map[string]any) { c["email"] = 5 }),
		"payload JSON null":          es.SignRaw(stdHdr, []byte("null")),
		"payload trailing garbage":   es.SignRaw(stdHdr, append(append([]byte(nil), claims...), '}')),
		"payload empty object":       es.SignRaw(stdHdr, []byte(`{}`)),

		"sub only as SUB":         withClaims(func(c map[string]any) { c["SUB"] = c["sub"]; delete(c, "sub") }),
		"aud array with null":     withClaims(func(c map[string]any) { c["aud"] = []any{nil, testAudience} }),
		"aud array with a number": withClaims(func(c map[string]any) { c["aud"] = []any{testAudience, 7} }),
		"jti not a string":        withClaims(func(c map[string]any) { c["jti"] = 7 }),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := f.verify(tok)
			require.ErrorIs(t, err, ErrInvalidToken)
			assert.Nil(t, c)
			t.Log(err)
		})
	}
	// Sanity: the base of every case does verify.
	_, err = f.verify(good)
	require.NoError(t, err)
}

// Member names that are equal, or equal ignoring case, are refused
// wherever they are, whichever copy a reader would keep: a token that a
// case-sensitive and a case-insensitive reader would read differently
// (sub and SUB: two users) is no token.
func TestVerifyRejectsDuplicateNames(t *testing.T) {
	f := newFixture(t, nil)
	claims := mustJSON(f.claims())
	hdr := func(members string) []byte {
		return []byte(`{"alg":"ES256","kid":"` + f.key.Kid + `","typ":"at+jwt",` + members + `}`)
	}
	for name, tok := range map[string]string{
		"sub twice":             f.key.SignRaw(tokentest.Header("ES256", f.key.Kid, "at+jwt"), withMembers(claims, `"sub":"someone-else"`)),
		"sub and SUB":           f.key.SignRaw(tokentest.Header("ES256", f.key.Kid, "at+jwt"), withMembers(claims, `"SUB":"someone-else"`)),
		"sub escaped":           f.key.SignRaw(tokentest.Header("ES256", f.key.Kid, "at+jwt"), withMembers(claims, `"s\u0075b":"someone-else"`)),
		"unknown claim twice":   f.key.SignRaw(tokentest.Header("ES256", f.key.Kid, "at+jwt"), withMembers(claims, `"x":1,"X":2`)),
		"duplicate deep inside": f.key.SignRaw(tokentest.Header("ES256", f.key.Kid, "at+jwt"), withMembers(claims, `"x":[{"a":{"b":1,"b":2}}]`)),
		"profile member twice": f.token(func(c map[string]any) {
			c["profile"] = json.RawMessage(`{"python_proficiency":"none","developer_role":"student","Developer_Role":"other"}`)
		}),
		"header alg twice":   f.key.SignRaw(hdr(`"alg":"none"`), claims),
		"header kid and KID": f.key.SignRaw(hdr(`"KID":"other"`), claims),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := f.verify(tok)
			require.ErrorIs(t, err, ErrInvalidToken)
			assert.ErrorContains(t, err, "duplicate member names")
		})
	}
}

// A key rotated in after the first fetch verifies once the cooldown allows
// a refetch; the old key keeps verifying meanwhile.
func TestRefetchOnUnknownKid(t *testing.T) {
	f := newFixture(t, nil)
	require.EqualValues(t, 1, f.srv.Hits())
	next := tokentest.NewKey("ES256")
	f.srv.SetKeys(f.key, next)

	f.clock.Advance(DefaultRefetchCooldown)
	c, err := f.verify(next.Sign(f.claims()))
	require.NoError(t, err)
	assert.Equal(t, "ada@example.com", c.Email)
	assert.EqualValues(t, 2, f.srv.Hits())

	_, err = f.verify(f.token(nil))
	require.NoError(t, err)
	assert.EqualValues(t, 2, f.srv.Hits(), "known kids never fetch")
}

// A burst of unknown kids costs Lanyard at most one request per cooldown.
func TestRefetchCooldown(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.RefetchCooldown = 10 * time.Second })
	burst := func(n int) {
		for range n {
			_, err := f.verify(tokentest.NewKey("ES256").Sign(f.claims()))
			require.ErrorIs(t, err, ErrInvalidToken)
		}
	}
	burst(20)
	assert.EqualValues(t, 1, f.srv.Hits(), "the initial fetch started the cooldown")

	f.clock.Advance(10 * time.Second)
	burst(20)
	assert.EqualValues(t, 2, f.srv.Hits())

	f.clock.Advance(9 * time.Second)
	burst(20)
	assert.EqualValues(t, 2, f.srv.Hits())

	f.clock.Advance(time.Second)
	burst(20)
	assert.EqualValues(t, 3, f.srv.Hits())

	// A kid published meanwhile is found as soon as the cooldown allows.
	next := tokentest.NewKey("ES256")
	f.srv.SetKeys(f.key, next)
	_, err := f.verify(next.Sign(f.claims()))
	require.ErrorIs(t, err, ErrInvalidToken, "still cooling down")
	f.clock.Advance(10 * time.Second)
	_, err = f.verify(next.Sign(f.claims()))
	require.NoError(t, err)
	assert.EqualValues(t, 4, f.srv.Hits())
}

// 50 concurrent verifications with a new kid share one fetch and all
// succeed. The server holds the fetch until every caller is waiting, so
// none can find the key by arriving late.
func TestRefetchSingleFlight(t *testing.T) {
	f := newFixture(t, nil)
	next := tokentest.NewKey("ES256")
	f.srv.SetKeys(f.key, next)
	tok := next.Sign(f.claims())
	f.clock.Advance(DefaultRefetchCooldown)

	const n = 50
	var waiting sync.WaitGroup
	waiting.Add(n)
	f.v.onWait = waiting.Done
	_, release := f.srv.Hold()
	defer release()

	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := f.verify(tok)
			errs <- err
		}()
	}
	waiting.Wait()
	release()
	for range n {
		require.NoError(t, <-errs)
	}
	assert.EqualValues(t, 2, f.srv.Hits(), "initial fetch + exactly one refetch")
}

// After the first fetch Lanyard goes away: cached keys keep verifying
// (stale or not), unknown kids fail, and no failure clears the cache.
func TestLanyardDown(t *testing.T) {
	for name, breakIt := range map[string]func(*tokentest.Server){
		"unreachable":    func(s *tokentest.Server) { s.SetDown(true) },
		"503":            func(s *tokentest.Server) { s.SetStatus(http.StatusServiceUnavailable) },
		"not JSON":       func(s *tokentest.Server) { s.SetRaw([]byte("<html>maintenance</html>")) },
		"no keys":        func(s *tokentest.Server) { s.SetRaw([]byte(`{"keys":[]}`)) },
		"no usable keys": func(s *tokentest.Server) { s.SetRaw([]byte(`{"keys":[{"kty":"EC","kid":"x","alg":"ES256"}]}`)) },
		"too large":      func(s *tokentest.Server) { s.SetRaw([]byte(`{"keys":[` + strings.Repeat(" ", maxJWKSBytes) + `]}`)) },
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, nil)
			breakIt(f.srv)

			// Stale: served from cache while a background refetch fails.
			f.clock.Advance(DefaultCacheTTL)
			_, err := f.verify(f.token(nil))
			require.NoError(t, err)
			f.v.waitIdle()
			assert.EqualValues(t, 2, f.srv.Hits())
			_, err = f.verify(f.token(nil))
			require.NoError(t, err, "the failed fetch kept the cache")
			assert.EqualValues(t, 2, f.srv.Hits(), "cooling down")

			// Unknown kid: rejected, with the outage in the error.
			f.clock.Advance(DefaultRefetchCooldown)
			_, err = f.verify(tokentest.NewKey("ES256").Sign(f.claims()))
			require.ErrorIs(t, err, ErrInvalidToken)
			assert.Contains(t, err.Error(), "JWKS fetch failed")
			assert.EqualValues(t, 3, f.srv.Hits())
			_, err = f.verify(f.token(nil))
			require.NoError(t, err, "known key still verifies")
		})
	}
}

// A stale cache is refreshed in the background: a key Lanyard stopped
// publishing stops verifying after the refresh.
func TestStaleCacheRefresh(t *testing.T) {
	f := newFixture(t, nil)
	next := tokentest.NewKey("ES256")
	f.srv.SetKeys(next) // the old key is withdrawn

	f.clock.Advance(DefaultCacheTTL - time.Second)
	_, err := f.verify(f.token(nil))
	require.NoError(t, err)
	f.v.waitIdle()
	assert.EqualValues(t, 1, f.srv.Hits(), "fresh: no fetch")

	f.clock.Advance(time.Second)
	_, err = f.verify(f.token(nil))
	require.NoError(t, err, "stale: served from cache while refreshing")
	f.v.waitIdle()
	assert.EqualValues(t, 2, f.srv.Hits())

	_, err = f.verify(f.token(nil))
	require.ErrorIs(t, err, ErrInvalidToken, "withdrawn key")
	_, err = f.verify(next.Sign(f.claims()))
	require.NoError(t, err)
	assert.EqualValues(t, 2, f.srv.Hits())
}

// A caller whose context ends stops waiting; the shared fetch goes on.
func TestVerifyContextCancelled(t *testing.T) {
	f := newFixture(t, nil)
	next := tokentest.NewKey("ES256")
	f.srv.SetKeys(f.key, next)
	f.clock.Advance(DefaultRefetchCooldown)
	arrived, release := f.srv.Hold()
	defer release()

	ctx, cancel := context.WithCancel(context.Background())
	f.v.onWait = cancel // cancel as soon as the caller waits
	_, err := f.v.Verify(ctx, next.Sign(f.claims()))
	require.ErrorIs(t, err, ErrInvalidToken)
	require.ErrorIs(t, err, context.Canceled)

	f.v.onWait = nil
	<-arrived
	release()
	f.v.waitIdle()
	_, err = f.verify(next.Sign(f.claims()))
	require.NoError(t, err, "the abandoned fetch still filled the cache")
	assert.EqualValues(t, 2, f.srv.Hits())
}

func TestRefresh(t *testing.T) {
	f := newFixture(t, nil)
	next := tokentest.NewKey("ES256")
	f.srv.SetKeys(next)
	require.NoError(t, f.v.Refresh(context.Background()), "ignores the cooldown")
	assert.EqualValues(t, 2, f.srv.Hits())
	_, err := f.verify(next.Sign(f.claims()))
	require.NoError(t, err)

	f.srv.SetStatus(http.StatusInternalServerError)
	require.Error(t, f.v.Refresh(context.Background()))
	_, err = f.verify(next.Sign(f.claims()))
	require.NoError(t, err)
}

// The default client does not follow redirects: key discovery must not
// move to another host (or to plain http) behind the operator's back.
func TestJWKSRedirectNotFollowed(t *testing.T) {
	k := sharedKey("ES256")
	srv := tokentest.NewServer(k)
	defer srv.Close()
	redirect := httptest.NewServer(http.RedirectHandler(srv.URL(), http.StatusFound))
	defer redirect.Close()
	v, err := New(context.Background(), Config{JWKSURL: redirect.URL, Issuer: testIssuer, Audience: testAudience, Now: func() time.Time { return t0 }})
	require.NoError(t, err)
	require.ErrorContains(t, v.Refresh(context.Background()), "302")
	assert.EqualValues(t, 0, srv.Hits())
}

func TestParseJWKS(t *testing.T) {
	v, err := newVerifier(Config{JWKSURL: "https://id.example.com/jwks", Issuer: testIssuer, Audience: testAudience,
		Algorithms: []string{"ES256", "EdDSA", "RS256"}})
	require.NoError(t, err)
	es, ed, rs := sharedKey("ES256"), sharedKey("EdDSA"), sharedKey("RS256")
	jwk := func(k *tokentest.Key, mut func(map[string]any)) map[string]any {
		m := k.JWK()
		if mut != nil {
			mut(m)
		}
		return m
	}
	set := map[string]map[string]any{
		"es":           jwk(es, nil),
		"ed":           jwk(ed, nil),
		"rs":           jwk(rs, nil),
		"padded":       jwk(es, func(m map[string]any) { m["x"] = m["x"].(string) + "=" }),
		"use-enc":      jwk(es, func(m map[string]any) { m["use"] = "enc" }),
		"no-use":       jwk(es, func(m map[string]any) { delete(m, "use") }),
		"ops-sign":     jwk(es, func(m map[string]any) { m["key_ops"] = []string{"sign"} }),
		"ops-verify":   jwk(es, func(m map[string]any) { m["key_ops"] = []string{"verify"} }),
		"no-alg":       jwk(es, func(m map[string]any) { delete(m, "alg") }),
		"alg-hs256":    jwk(es, func(m map[string]any) { m["alg"] = "HS256"; m["kty"] = "oct"; m["k"] = "c2VjcmV0" }),
		"alg-mismatch": jwk(es, func(m map[string]any) { m["alg"] = "RS256" }),
		"p384":         jwk(es, func(m map[string]any) { m["crv"] = "P-384" }),
		"off-curve":    jwk(es, func(m map[string]any) { m["y"] = m["x"] }),
		"short-x":      jwk(es, func(m map[string]any) { m["x"] = "AAAA" }),
		"ed-short":     jwk(ed, func(m map[string]any) { m["x"] = "AAAA" }),
		"rsa-1024":     jwk(rs, func(m map[string]any) { m["n"] = enc(make([]byte, 128)) }),
		"rsa-e-even":   jwk(rs, func(m map[string]any) { m["e"] = "AAE" }),
		"kty-not-str":  jwk(es, func(m map[string]any) { m["kty"] = 1 }),
	}
	var keys []map[string]any
	for kid, m := range set {
		m["kid"] = kid
		keys = append(keys, m)
	}
	keys = append(keys, jwk(es, func(m map[string]any) { delete(m, "kid") }))
	dup := jwk(ed, nil)
	dup["kid"] = "es" // a later duplicate kid never replaces the first
	keys = append(keys, dup)

	got, err := v.parseJWKS(mustJSON(map[string]any{"keys": keys}))
	require.NoError(t, err)
	var kids []string
	for kid := range got {
		kids = append(kids, kid)
	}
	assert.ElementsMatch(t, []string{"es", "ed", "rs", "padded", "no-use", "ops-verify"}, kids)
	assert.Equal(t, "ES256", got["es"].alg)
	assert.Equal(t, 256, got["rs"].sigLen)

	_, err = v.parseJWKS([]byte(`{"keys":{}}`))
	require.Error(t, err)
}

// withMembers returns the JSON object obj with the members extra (JSON
// text) added at the end: the only way to build duplicate names.
func withMembers(obj []byte, extra string) []byte {
	return append(append(bytes.Clone(obj[:len(obj)-1]), ","+extra...), '}')
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// Tokens and JWKS from Lanyard's own key ring (the code the server signs
// with) verify for every algorithm Lanyard offers.
func TestLanyardKeyRingInterop(t *testing.T) {
	for _, alg := range []keys.Algorithm{keys.ES256, keys.EdDSA, keys.RS256} {
		t.Run(string(alg), func(t *testing.T) {
			signing, err := keys.Generate(alg)
			require.NoError(t, err)
			old, err := keys.Generate(keys.ES256)
			require.NoError(t, err)
			ring, err := keys.NewRing(signing, old)
			require.NoError(t, err)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write(ring.JWKS())
			}))
			defer srv.Close()
			v, err := New(context.Background(), Config{
				JWKSURL: srv.URL, Issuer: testIssuer, Audience: testAudience,
				Algorithms: []string{string(alg)}, Now: func() time.Time { return t0 },
			})
			require.NoError(t, err)
			tok, err := ring.Sign(mustJSON(tokentest.Claims(testIssuer, testAudience, t0)))
			require.NoError(t, err)
			c, err := v.Verify(context.Background(), tok)
			require.NoError(t, err)
			assert.Equal(t, "ada@example.com", c.Email)
		})
	}
}

// The package is public: of Lanyard it may import only the public token
// rules (which themselves import nothing of Lanyard), never its internals
// or the server, and it must not make net/http users compile gin.
func TestImports(t *testing.T) {
	const module = "github.com/lanyard-id/lanyard/"
	for dir, rule := range map[string]struct {
		lanyard []string // the only Lanyard packages it may import
		banned  []string
	}{
		".":              {lanyard: []string{module + "accesstoken"}, banned: []string{"github.com/gin-gonic/"}},
		"../accesstoken": {banned: []string{"github.com/gin-gonic/"}},
		"ginverifier":    {lanyard: []string{module + "verifier"}},
	} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		require.NoError(t, err)
		require.NotEmpty(t, files)
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
			require.NoError(t, err)
			for _, imp := range f.Imports {
				path := strings.Trim(imp.Path.Value, `"`)
				if strings.HasPrefix(path, module) {
					assert.Contains(t, rule.lanyard, path, "%s imports %s", name, path)
				}
				for _, b := range rule.banned {
					assert.False(t, strings.HasPrefix(path, b), "%s imports %s", name, path)
				}
			}
		}
	}
}

// The header memo only ever holds a header whose token verified, and only
// for the key set it was checked against.
func TestHeaderMemo(t *testing.T) {
	f := newFixture(t, nil)
	assert.Nil(t, f.v.memo.Load())
	good := f.token(nil)
	_, err := f.verify(good)
	require.NoError(t, err)
	m := f.v.memo.Load()
	require.NotNil(t, m)
	assert.Equal(t, strings.Split(good, ".")[0], m.hdr)

	// Valid-looking headers on forged tokens do not displace it.
	other := tokentest.NewKey("ES256")
	for _, typ := range []string{"application/at+jwt", "AT+JWT"} {
		forged := other.SignRaw(tokentest.Header("ES256", f.key.Kid, typ), mustJSON(f.claims()))
		_, err = f.verify(forged)
		require.ErrorIs(t, err, ErrInvalidToken)
		assert.Same(t, m, f.v.memo.Load())
	}

	// The same header verifies again without a new memo.
	_, err = f.verify(f.token(nil))
	require.NoError(t, err)
	assert.Same(t, m, f.v.memo.Load())

	// A new key set (here with the same key) does not trust the old memo.
	require.NoError(t, f.v.Refresh(context.Background()))
	_, err = f.verify(good)
	require.NoError(t, err)
	assert.NotSame(t, m, f.v.memo.Load())
	assert.Same(t, f.v.keys.Load(), f.v.memo.Load().set)
}
