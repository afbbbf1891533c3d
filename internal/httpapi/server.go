// Package httpapi is Lanyard's HTTP face: a gin engine serving the strict
// server generated from openapi.yaml by calling the identity use cases, with
// the middleware every request passes (request id, logging, metrics, panic
// recovery, CORS, body limits, strict JSON, spec validation, bearer auth). It
// maps domain error codes to problem+json in one place (problem.go).
package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"

	"github.com/lanyard-id/lanyard/api"
	"github.com/lanyard-id/lanyard/internal/identity"
)

// Pinger reports whether the database answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Deps are what the HTTP layer needs.
type Deps struct {
	Service        *identity.Service
	Keys           *identity.KeyRing
	DB             Pinger
	Log            *slog.Logger
	Issuer         string
	CORSOrigins    []string
	TrustedProxies []string
	HashesInFlight func() int
}

// Server is the HTTP handler plus its readiness switch.
type Server struct {
	deps      Deps
	engine    *gin.Engine
	metrics   *metrics
	ready     atomic.Bool
	discovery *discoveryCache
	bearer    map[routeKey]bool
}

// New builds the engine with every route in one place.
func New(deps Deps) (*Server, error) {
	gin.SetMode(gin.ReleaseMode)
	s := &Server{deps: deps, metrics: newMetrics(deps.HashesInFlight)}
	s.discovery = &discoveryCache{issuer: deps.Issuer}

	doc, err := api.GetSwagger()
	if err != nil {
		return nil, fmt.Errorf("load embedded openapi spec: %w", err)
	}
	s.bearer = bearerRoutes(doc)
	validator := newSpecValidator(doc)

	e := gin.New()
	e.HandleMethodNotAllowed = true
	// Answer a wrong path with a 404 problem, not a redirect a JSON client
	// would follow without CORS headers.
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	if err := e.SetTrustedProxies(deps.TrustedProxies); err != nil {
		return nil, fmt.Errorf("LANYARD_TRUSTED_PROXIES: %w", err)
	}
	// Authentication comes before any body or parameter check, so an
	// anonymous caller learns nothing about what a valid request looks like.
	e.Use(requestID(), observe(deps.Log, s.metrics), recoverPanics(deps.Log), cors(deps.CORSOrigins), s.requireBearer, strictBody(), validator.middleware())
	e.NoRoute(func(c *gin.Context) { fail(c, identity.CodeNotFound, "no such endpoint") })
	e.NoMethod(func(c *gin.Context) { fail(c, codeMethodNotAllowed, "this endpoint does not take that method") })

	strict := api.NewStrictHandlerWithOptions(&handlers{s}, nil, api.StrictGinServerOptions{
		// Bodies were already checked by strictBody and the validator, so a
		// failure to bind here is still the client's: say so without detail.
		RequestErrorHandlerFunc:  func(c *gin.Context, err error) { fail(c, codeInvalidJSON, "the request body could not be decoded") },
		HandlerErrorFunc:         writeProblem,
		ResponseErrorHandlerFunc: writeProblem,
	})
	api.RegisterHandlersWithOptions(e, strict, api.GinServerOptions{
		// Only reachable if a parameter passed the validator but not the
		// generated binding; keep it a client error without detail.
		ErrorHandler: func(c *gin.Context, err error, status int) {
			fail(c, identity.CodeValidation, "the request parameters are invalid")
		},
	})
	s.engine = e
	return s, nil
}

// Handler returns the http.Handler to serve. HEAD is answered as GET (RFC
// 9110 §9.3.2 requires it of every GET resource); net/http drops the body.
//
// The JWKS, fetched by every verifier, skips gin: the prepared bytes are
// written directly, counted in the request metric but not logged per request
// (its middleware chain cost more than the response itself).
func (s *Server) Handler() http.Handler {
	jwksOK := s.metrics.requests.WithLabelValues(http.MethodGet, jwksPath, "200")
	jwksNotModified := s.metrics.requests.WithLabelValues(http.MethodGet, jwksPath, "304")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == jwksPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			status, _ := writeJWKS(w, s.deps.Keys.Ring(), r.Header.Get("If-None-Match"))
			if status == http.StatusOK {
				jwksOK.Inc()
			} else {
				jwksNotModified.Inc()
			}
			return
		}
		if r.Method == http.MethodHead {
			r = r.Clone(r.Context())
			r.Method = http.MethodGet
		}
		s.engine.ServeHTTP(w, r)
	})
}

// CountPurged records sessions deleted by the cleanup job.
func (s *Server) CountPurged(n int64) { s.metrics.purged.Add(float64(n)) }

// SetReady flips readiness; shutdown turns it off before draining.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Routes lists "METHOD path" for every route served (for the spec test).
func (s *Server) Routes() []string {
	var out []string
	for _, r := range s.engine.Routes() {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

const jwksPath = "/.well-known/jwks.json"

// routeKey names an operation by method and gin path template. A struct key
// lets every request look its route up without building a string.
type routeKey struct{ method, path string }

func routeOf(c *gin.Context) routeKey { return routeKey{c.Request.Method, c.FullPath()} }

// bearerRoutes lists the operations whose spec requires a bearer token;
// requireBearer guards exactly those.
func bearerRoutes(doc *openapi3.T) map[routeKey]bool {
	out := map[routeKey]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			sec := op.Security
			if sec == nil {
				sec = &doc.Security
			}
			if len(*sec) > 0 {
				out[routeKey{method, ginPath(path)}] = true
			}
		}
	}
	return out
}
