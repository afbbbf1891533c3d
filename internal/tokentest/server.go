package tokentest

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"
)

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
	s.SetRaw(JWKS(keys...))
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

// JWKS is the JSON Web Key Set publishing keys.
func JWKS(keys ...*Key) []byte {
	jwks := make([]map[string]any, len(keys))
	for i, k := range keys {
		jwks[i] = k.JWK()
	}
	return mustJSON(map[string]any{"keys": jwks})
}

// Clock is a settable clock for a Now field, safe for concurrent use.
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
