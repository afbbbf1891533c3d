// Package fakeissuer stands in for Lanyard in the verifier's tests: it
// mints tokens with any header or claims and serves a JWKS whose
// availability and timing the test controls.
package fakeissuer

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
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"
)

var b64 = base64.RawURLEncoding

// Key is a signing key with the JWK Lanyard would publish for it.
type Key struct {
	Kid    string
	Alg    string
	Signer crypto.Signer
}

var kidSeq atomic.Int64

// NewKey generates a key for alg (ES256, EdDSA or RS256). It panics on
// failure: it is test support and randomness does not fail.
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
	return &Key{Kid: fmt.Sprintf("kid-%s-%d", alg, kidSeq.Add(1)), Alg: alg, Signer: s}
}

// JWK is the public JWK with kid, alg and use "sig", as Lanyard serves it.
func (k *Key) JWK() map[string]any {
	m := map[string]any{"kid": k.Kid, "alg": k.Alg, "use": "sig"}
	switch pub := k.Signer.Public().(type) {
	case *ecdsa.PublicKey:
		b, err := pub.Bytes()
		if err != nil {
			panic(err)
		}
		m["kty"], m["crv"], m["x"], m["y"] = "EC", "P-256", b64.EncodeToString(b[1:33]), b64.EncodeToString(b[33:])
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64.EncodeToString(pub)
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", b64.EncodeToString(pub.N.Bytes()), b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes())
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

// Header is the JSON of {"alg","kid","typ"}; empty values are omitted.
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
		"exp":              now.Add(15 * time.Minute).Unix(),
		"jti":              "Zm9vYmFyYmF6cXV1eDEyMw",
		"sid":              "6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
		"email":            "ada@example.com",
		"profile_complete": true,
		"profile":          map[string]any{"python_proficiency": "advanced", "developer_role": "ml_engineer"},
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// Server serves a JWKS the test controls and counts the requests.
type Server struct {
	srv  *httptest.Server
	hits atomic.Int64

	mu      sync.Mutex
	jwks    []byte
	down    bool
	status  int
	held    chan struct{} // closed when a held request arrives
	release chan struct{} // a request waits for this when non-nil
}

// NewServer serves a JWKS of keys at URL().
func NewServer(keys ...*Key) *Server {
	s := &Server{}
	s.SetKeys(keys...)
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	// One request per connection: net/http's client transparently
	// retries a GET that fails on a reused connection, which would make
	// a dropped connection count twice.
	s.srv.Config.SetKeepAlivesEnabled(false)
	s.srv.Start()
	return s
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	s.mu.Lock()
	jwks, down, status, release, held := s.jwks, s.down, s.status, s.release, s.held
	if held != nil {
		close(held)
		s.held = nil
	}
	s.mu.Unlock()
	if release != nil {
		<-release
	}
	if down {
		// Drop the connection without a response: what a client sees
		// when Lanyard is unreachable mid-request.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(jwks)
}

// URL is the JWKS URL.
func (s *Server) URL() string { return s.srv.URL + "/.well-known/jwks.json" }

// Hits is the number of JWKS requests received so far.
func (s *Server) Hits() int64 { return s.hits.Load() }

// SetKeys replaces the published keys.
func (s *Server) SetKeys(keys ...*Key) {
	jwks := make([]map[string]any, len(keys))
	for i, k := range keys {
		jwks[i] = k.JWK()
	}
	s.SetRaw(mustJSON(map[string]any{"keys": jwks}))
}

// SetRaw replaces the response body.
func (s *Server) SetRaw(body []byte) {
	s.mu.Lock()
	s.jwks = body
	s.mu.Unlock()
}

// SetDown makes requests fail (connection dropped) or succeed again.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// SetStatus makes requests answer status with no body; 0 restores normal
// service.
func (s *Server) SetStatus(status int) {
	s.mu.Lock()
	s.status = status
	s.mu.Unlock()
}

// Hold makes requests wait until release is called. arrived is closed
// when the first held request reaches the server.
func (s *Server) Hold() (arrived <-chan struct{}, release func()) {
	held, rel := make(chan struct{}), make(chan struct{})
	s.mu.Lock()
	s.held, s.release = held, rel
	s.mu.Unlock()
	var once sync.Once
	return held, func() {
		once.Do(func() {
			s.mu.Lock()
			s.release = nil
			s.mu.Unlock()
			close(rel)
		})
	}
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// Clock is a settable clock for Config.Now, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now is the current fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
