package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/api"
)

// specChecker holds openapi.yaml for checking responses with kin-openapi.
type specChecker struct {
	router  routers.Router
	problem *openapi3.Schema
}

var loadSpecChecker = sync.OnceValues(func() (*specChecker, error) {
	doc, err := api.GetSwagger()
	if err != nil {
		return nil, err
	}
	// Match any host: test servers listen on 127.0.0.1:<port>, not on the
	// spec's server URL.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	return &specChecker{router: router, problem: doc.Components.Schemas["Problem"].Value}, nil
})

func newSpecChecker(t testing.TB) *specChecker {
	t.Helper()
	c, err := loadSpecChecker()
	require.NoError(t, err)
	return c
}

// check validates one response to req against the operation the spec
// routes req to: the status must be declared, and the headers, media type
// and body must match what is declared for it. Answers from no operation
// (unknown paths and methods, CORS preflights) must be the generic ones the
// spec's conventions describe.
func (c *specChecker) check(req *http.Request, status int, header http.Header, body []byte) error {
	r := req.Clone(context.Background())
	head := r.Method == http.MethodHead
	if head {
		r.Method = http.MethodGet // HEAD is answered as GET, without the body
	}
	if err := c.checkProblem(status, header, body); err != nil {
		return err
	}
	route, params, err := c.router.FindRoute(r)
	if err != nil || !matchesExactly(route.Path, r.URL.Path) {
		return c.checkUnrouted(req, status, header, body)
	}
	declared := route.Operation.Responses.Status(status)
	if declared == nil {
		return fmt.Errorf("status %d is not declared for %s %s", status, route.Method, route.Path)
	}
	if len(declared.Value.Content) == 0 && len(body) > 0 {
		return fmt.Errorf("a body on a response declared without one")
	}
	if status == http.StatusNotModified { // kin-openapi skips 304s: check its declared headers here
		for name, h := range declared.Value.Headers {
			if h.Value.Required && header.Get(name) == "" {
				return fmt.Errorf("required header %s missing", name)
			}
		}
		return nil
	}
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			MultiError:            true,
			ExcludeResponseBody:   head,
		},
	})
}

// matchesExactly reports whether path is template with each {param} filled
// in. kin-openapi's router also matches a trailing slash, which Lanyard
// answers with 404.
func matchesExactly(template, path string) bool {
	want, got := strings.Split(template, "/"), strings.Split(path, "/")
	if len(want) != len(got) {
		return false
	}
	for i, w := range want {
		if !strings.HasPrefix(w, "{") && w != got[i] {
			return false
		}
	}
	return true
}

// checkProblem: a problem body repeats the HTTP status it came with.
func (c *specChecker) checkProblem(status int, header http.Header, body []byte) error {
	if header.Get("Content-Type") != "application/problem+json" || len(body) == 0 {
		return nil
	}
	var p struct {
		Status int `json:"status"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return fmt.Errorf("problem body: %w", err)
	}
	if p.Status != status {
		return fmt.Errorf("problem status %d on a %d response", p.Status, status)
	}
	return nil
}

func (c *specChecker) checkUnrouted(req *http.Request, status int, header http.Header, body []byte) error {
	switch {
	case req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != "" && status == http.StatusNoContent:
		if len(body) > 0 {
			return fmt.Errorf("a preflight answer with a body")
		}
		return nil
	case status == http.StatusNotFound || status == http.StatusMethodNotAllowed:
		if ct := header.Get("Content-Type"); ct != "application/problem+json" {
			return fmt.Errorf("Content-Type %q, want application/problem+json", ct)
		}
		if req.Method == http.MethodHead {
			return nil
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			return err
		}
		return c.problem.VisitJSON(v)
	}
	return fmt.Errorf("%d from %s %s, which is no operation in openapi.yaml", status, req.Method, req.URL.Path)
}

// checkedTransport checks every response a test server's client receives.
type checkedTransport struct {
	base http.RoundTripper
	s    *testServer
}

func (c checkedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := c.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	c.s.checkResponse(c.s.t, req, res.StatusCode, res.Header, body)
	return res, nil
}

func (s *testServer) checkResponse(t testing.TB, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	if err := s.spec.check(req, status, header, body); err != nil {
		t.Errorf("%s %s → %d does not match openapi.yaml: %v\nbody: %s", req.Method, req.URL.Path, status, err, body)
	}
}

// TestSpecCheckerCatchesMismatches: the response check every HTTP test
// relies on rejects answers the spec does not describe.
func TestSpecCheckerCatchesMismatches(t *testing.T) {
	c := newSpecChecker(t)
	problem := func(status int) string {
		return fmt.Sprintf(`{"type":"about:blank","title":"t","status":%d,"detail":"d","code":"c"}`, status)
	}
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	const jsonCT, problemCT = "application/json", "application/problem+json"
	cases := []struct {
		name, method, path string
		status             int
		header             http.Header
		body               string
		ok                 bool
	}{
		{"declared", "GET", "/healthz", 200, h("Content-Type", jsonCT), `{"status":"ok"}`, true},
		{"HEAD as GET", "HEAD", "/healthz", 200, h("Content-Type", jsonCT), ``, true},
		{"undeclared status", "GET", "/healthz", 418, h("Content-Type", jsonCT), `{"status":"ok"}`, false},
		{"body off schema", "GET", "/healthz", 200, h("Content-Type", jsonCT), `{"status":"fine"}`, false},
		{"undeclared media type", "GET", "/healthz", 200, h("Content-Type", "text/plain"), `ok`, false},
		{"required header missing", "GET", "/v1/me/profile", 200, h("Content-Type", jsonCT), `{"profile":null,"profile_complete":false}`, false},
		{"503 without Retry-After", "POST", "/v1/auth/login", 503, h("Content-Type", problemCT), problem(503), false},
		{"503 with Retry-After", "POST", "/v1/auth/login", 503, h("Content-Type", problemCT, "Retry-After", "2"), problem(503), true},
		{"problem repeats another status", "POST", "/v1/auth/login", 401, h("Content-Type", problemCT), problem(400), false},
		{"body on a 204", "POST", "/v1/auth/logout", 204, h(), `{}`, false},
		{"discovery missing a required member", "GET", "/.well-known/openid-configuration", 200, h("Content-Type", jsonCT, "Cache-Control", "public, max-age=300"),
			`{"issuer":"https://id.example.test","subject_types_supported":["public"],"id_token_signing_alg_values_supported":["ES256"]}`, false},
		{"304 without its headers", "GET", "/.well-known/jwks.json", 304, h(), ``, false},
		{"no operation answers 200", "GET", "/nope", 200, h("Content-Type", jsonCT), `{}`, false},
		{"unknown path as a problem", "GET", "/v1/me/", 404, h("Content-Type", problemCT), problem(404), true},
		{"unknown path not a problem", "GET", "/nope", 404, h("Content-Type", "text/plain"), `404 page not found`, false},
		{"preflight", "OPTIONS", "/v1/auth/login", 204, h(), ``, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.method == http.MethodOptions {
				req.Header.Set("Access-Control-Request-Method", http.MethodPost)
			}
			err := c.check(req, tc.status, tc.header, []byte(tc.body))
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}
