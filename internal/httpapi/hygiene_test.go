package httpapi_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/store"
)

// TestSecurityHeadersEverywhere: every answer of either listener, whichever
// path produces it (gin, the JWKS fast path, 404, 405, preflights, 401, 503),
// tells browsers not to sniff and not to send a referrer.
func TestSecurityHeadersEverywhere(t *testing.T) {
	s := newTestServer(t, store.SQLite, withCORS("https://app.example.com"))
	tk := s.signUp(t, "headers@example.com")
	jwks := s.do(t, http.MethodGet, "/.well-known/jwks.json", nil)
	require.Equal(t, http.StatusOK, jwks.status)
	type call struct {
		srv          string
		method, path string
		body         string
		header       []string
		status       int
		notReady     bool
	}
	calls := []call{
		{s.URL, "GET", "/healthz", "", nil, 200, false},
		{s.URL, "HEAD", "/healthz", "", nil, 200, false},
		{s.URL, "GET", "/readyz", "", nil, 200, false},
		{s.URL, "GET", "/readyz", "", nil, 503, true},
		{s.URL, "GET", "/.well-known/jwks.json", "", nil, 200, false},
		{s.URL, "HEAD", "/.well-known/jwks.json", "", nil, 200, false},
		{s.URL, "GET", "/.well-known/jwks.json", "", []string{"If-None-Match", jwks.header.Get("ETag")}, 304, false},
		{s.URL, "GET", "/.well-known/openid-configuration", "", nil, 200, false},
		{s.URL, "POST", "/v1/auth/login", `{"email":"headers@example.com","password":"` + goodPassword + `"}`, nil, 200, false},
		{s.URL, "POST", "/v1/auth/login", `{"email":`, nil, 400, false},
		{s.URL, "POST", "/v1/auth/login", `{}`, []string{"Content-Type", "text/plain"}, 415, false},
		{s.URL, "GET", "/v1/me", "", nil, 401, false},
		{s.URL, "GET", "/v1/me", "", []string{"Authorization", "Bearer " + tk.Access}, 200, false},
		{s.URL, "GET", "/nope", "", nil, 404, false},
		{s.URL, "GET", "/metrics", "", nil, 404, false},
		{s.URL, "DELETE", "/healthz", "", nil, 405, false},
		{s.URL, "OPTIONS", "/v1/auth/login", "", []string{"Origin", "https://app.example.com", "Access-Control-Request-Method", "POST"}, 204, false},
		{s.URL, "OPTIONS", "/v1/auth/login", "", nil, 405, false},
		{s.admin.URL, "GET", "/metrics", "", nil, 200, false},
		{s.admin.URL, "HEAD", "/metrics", "", nil, 200, false},
		{s.admin.URL, "POST", "/metrics", "", nil, 405, false},
		{s.admin.URL, "GET", "/nope", "", nil, 404, false},
		{s.admin.URL, "OPTIONS", "/metrics", "", []string{"Access-Control-Request-Method", "GET"}, 405, false},
	}
	for _, c := range calls {
		name := c.method + " " + c.path
		if c.srv == s.admin.URL {
			name = "admin " + name
		}
		s.api.SetReady(!c.notReady)
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		req, err := http.NewRequest(c.method, c.srv+c.path, body)
		require.NoError(t, err)
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(c.header); i += 2 {
			req.Header.Set(c.header[i], c.header[i+1])
		}
		res, err := s.Client().Do(req)
		require.NoError(t, err, name)
		res.Body.Close()
		assert.Equal(t, c.status, res.StatusCode, name)
		assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"), name)
		assert.Equal(t, "no-referrer", res.Header.Get("Referrer-Policy"), name)
	}
	s.api.SetReady(true)
}

// TestReadinessSaysNoWhy: /readyz is on the public listener, so a 503 says
// "not ready" and nothing about the cause.
func TestReadinessSaysNoWhy(t *testing.T) {
	s := newTestServer(t, store.SQLite, withPinger(failingPinger{}))
	failing := s.do(t, http.MethodGet, "/readyz", nil)
	s.api.SetReady(false)
	draining := s.do(t, http.MethodGet, "/readyz", nil)
	for _, res := range []response{failing, draining} {
		assert.Equal(t, http.StatusServiceUnavailable, res.status)
		assert.Equal(t, "not ready", res.json(t)["detail"])
	}
	assert.Equal(t, failing.body, draining.body, "the two causes look the same")
}

type failingPinger struct{}

func (failingPinger) Ping(context.Context) error {
	return errors.New("connection refused by 10.0.0.5:5432")
}

// TestMetricsOnlyOnAdmin: /metrics answers on the admin handler only; the
// public one answers 404 like any unknown path.
func TestMetricsOnlyOnAdmin(t *testing.T) {
	s := newTestServer(t, store.SQLite)
	s.signUp(t, "admin@example.com")
	assert.Contains(t, s.metrics(t), `lanyard_http_requests_total{method="POST",route="/v1/auth/signup",status="201"} 1`)
	public := s.do(t, http.MethodGet, "/metrics", nil)
	assert.Equal(t, http.StatusNotFound, public.status)
	assert.Equal(t, "not_found", public.json(t)["code"])
	assert.NotContains(t, string(public.body), "lanyard_")
	assert.Equal(t, http.StatusNotFound, s.do(t, http.MethodHead, "/metrics", nil).status)
}

// TestAmbiguousFramingRefused: on a raw connection, a request with both
// Content-Length and Transfer-Encoding gets 400 with Connection: close and
// the connection ends; the requests before it on the same connection are
// answered normally, and the bytes behind it (a smuggled request) never are.
func TestAmbiguousFramingRefused(t *testing.T) {
	s := newTestServer(t, store.SQLite)
	conn, err := net.Dial("tcp", s.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	// OPTIONS * first: net/http's own answer to it would not pass the
	// handler, which must count every request of the connection.
	_, err = io.WriteString(conn, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"+
		"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"+
		"POST /v1/auth/logout HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"+
		// A well-formed chunked body: without the guard, net/http would
		// answer this request and then the one behind it.
		"15\r\n{\"refresh_token\":\"x\"}\r\n0\r\n\r\n"+
		"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	r := bufio.NewReader(conn)

	for _, want := range []int{http.StatusNotFound, http.StatusOK} {
		res, err := http.ReadResponse(r, nil)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, res.Body)
		assert.Equal(t, want, res.StatusCode)
	}

	refused, err := http.ReadResponse(r, nil)
	require.NoError(t, err)
	body, err := io.ReadAll(refused.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, refused.StatusCode, string(body))
	assert.Equal(t, "application/problem+json", refused.Header.Get("Content-Type"))
	assert.Contains(t, string(body), `"code":"validation_failed"`)
	assert.True(t, refused.Close, "Connection: close")
	assert.Equal(t, "nosniff", refused.Header.Get("X-Content-Type-Options"))

	rest, err := io.ReadAll(r)
	assert.NoError(t, err, "the server closes the connection (EOF), not the test's deadline")
	assert.Empty(t, rest, "nothing behind the ambiguous request is answered")
}
