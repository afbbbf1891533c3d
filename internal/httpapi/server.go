// Package httpapi is Lanyard's HTTP face: a gin engine serving the strict
// server generated from openapi.yaml by calling the identity use cases. The
// rules that differ per operation (accepted body media types, credentials,
// CORS policy, error format) are read from the spec into one table at
// start-up (operations.go) and applied by the middleware every request
// passes (request id, logging, metrics, panic recovery, request scope, CORS,
// bearer auth, body checks, spec validation). It maps domain error codes to
// problem+json in one place (problem.go).
package httpapi

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/gin-gonic/gin"

	"github.com/lanyard-id/lanyard/api"
	"github.com/lanyard-id/lanyard/internal/identity"
)

// Pinger reports whether the database answers a real query. Ping must
// return when ctx ends: readiness bounds it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Deps are what the HTTP layer needs.
type Deps struct {
	Service *identity.Service
	Keys    *identity.KeyRing
	DB      Pinger
	Log     *slog.Logger
	// Lifetime is the server's lifetime: when it ends, the database work of
	// requests still in flight is cancelled (their clients' disconnects never
	// cancel it). Required.
	Lifetime       context.Context
	Issuer         string
	CORSOrigins    []string
	TrustedProxies []string
	// ClientIPHeader is the one header the trusted proxies write the client's
	// address into: "X-Forwarded-For" (the default when empty) or "X-Real-IP".
	// The other is never read, so a client cannot smuggle an address past a
	// proxy that forwards it untouched.
	ClientIPHeader string
	HashesInFlight func() int
	// AdminToken is LANYARD_ADMIN_TOKEN, the operators' bearer token for
	// the admin API; nil turns the admin API off (404, like unknown paths).
	AdminToken []byte
}

// Server is the HTTP handler plus its readiness switch.
type Server struct {
	deps      Deps
	engine    *gin.Engine // the public listener's
	admin     *gin.Engine // the admin listener's: operator endpoints (/metrics)
	metrics   *metrics
	ready     atomic.Bool
	discovery *discoveryCache
	ops       map[routeKey]*operation
	// adminDigest is the SHA-256 of LANYARD_ADMIN_TOKEN, computed once;
	// nil when the admin API is off.
	adminDigest []byte
}

// New builds the engine with every route in one place.
func New(deps Deps) (*Server, error) {
	if deps.Lifetime == nil {
		return nil, errors.New("httpapi: Deps.Lifetime is required")
	}
	gin.SetMode(gin.ReleaseMode)
	s := &Server{deps: deps, metrics: newMetrics(deps.HashesInFlight)}
	if len(deps.AdminToken) > 0 {
		digest := sha256.Sum256(deps.AdminToken)
		s.adminDigest = digest[:]
	}
	s.discovery = &discoveryCache{issuer: deps.Issuer}

	doc, err := api.GetSwagger()
	if err != nil {
		return nil, fmt.Errorf("load embedded openapi spec: %w", err)
	}
	if s.ops, err = buildOperations(doc); err != nil {
		return nil, err
	}
	registerFormats()

	strict := api.NewStrictHandlerWithOptions(&handlers{s}, nil, api.StrictGinServerOptions{
		// Bodies were already checked by readBody and the validator, so a
		// failure to bind here is still the client's: say so without detail.
		RequestErrorHandlerFunc: func(c *gin.Context, err error) {
			code := identity.CodeValidation
			if op := s.op(c); op != nil {
				if format, ok := op.bodies[c.ContentType()]; ok {
					code = format.malformed
				}
			}
			s.fail(c, code, "the request body could not be decoded")
		},
		HandlerErrorFunc:         s.writeProblem,
		ResponseErrorHandlerFunc: s.writeProblem,
	})
	if s.engine, err = s.newEngine(strict, false); err != nil {
		return nil, err
	}
	if s.admin, err = s.newEngine(strict, true); err != nil {
		return nil, err
	}
	return s, nil
}

// newEngine builds the gin engine of one listener: the public one, or the
// admin one with the operations marked for operators only (they are no
// route at all on the other). Both run the same middleware.
func (s *Server) newEngine(strict api.ServerInterface, admin bool) (*gin.Engine, error) {
	e := gin.New()
	// Handlers get the *gin.Context as their context.Context; with the
	// fallback its Value reads Request.Context(), where the scope is.
	e.ContextWithFallback = true
	e.HandleMethodNotAllowed = true
	// Answer a wrong path with a 404 problem, not a redirect a JSON client
	// would follow without CORS headers.
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	if err := e.SetTrustedProxies(s.deps.TrustedProxies); err != nil {
		return nil, fmt.Errorf("LANYARD_TRUSTED_PROXIES: %w", err)
	}
	// The client IP (gin's ClientIP): the socket's peer, unless that peer is
	// a trusted proxy; then the hops of the one configured header, walked
	// from the right past trusted proxies, and the first untrusted hop is the
	// client (the one a trusted proxy vouched for). With a malformed header
	// or none, the peer. Whatever a client writes to the left of the hop its
	// proxy appended is never reached.
	e.RemoteIPHeaders = []string{cmp.Or(s.deps.ClientIPHeader, "X-Forwarded-For")}
	// Authentication comes before any body or parameter check, so an
	// anonymous caller learns nothing about what a valid request looks like.
	e.Use(requestID(), observe(s.deps.Log, s.metrics), s.recoverPanics, s.refuseAmbiguousFraming, s.scope, s.cors, s.tokenDelivery, s.requireBearer, s.readBody, s.validate)
	e.NoRoute(func(c *gin.Context) { s.fail(c, identity.CodeNotFound, "no such endpoint") })
	e.NoMethod(func(c *gin.Context) { s.fail(c, codeMethodNotAllowed, "this endpoint does not take that method") })

	api.RegisterHandlersWithOptions(listenerRoutes{IRouter: e, ops: s.ops, admin: admin, adminAPI: s.adminDigest != nil}, strict, api.GinServerOptions{
		// Only reachable if a parameter passed the validator but not the
		// generated binding; keep it a client error without detail.
		ErrorHandler: func(c *gin.Context, err error, status int) {
			s.fail(c, identity.CodeValidation, "the request parameters are invalid")
		},
	})
	if admin {
		return e, nil // no browser calls the admin listener: no preflights
	}
	preflighted := map[string]bool{}
	for key, op := range s.ops {
		if !op.admin && !preflighted[key.path] {
			preflighted[key.path] = true
			e.OPTIONS(key.path, s.preflight)
		}
	}
	return e, nil
}

// listenerRoutes registers on one listener's engine only the generated
// routes of the operations that listener serves. Without an admin token the
// admin API's operations are no route at all: every method of their paths
// answers like an unknown path.
type listenerRoutes struct {
	gin.IRouter
	ops      map[routeKey]*operation
	admin    bool
	adminAPI bool
}

func (l listenerRoutes) Handle(method, path string, h ...gin.HandlerFunc) gin.IRoutes {
	op := l.ops[routeKey{method, path}]
	if (op != nil && op.admin) != l.admin || (op != nil && op.adminToken && !l.adminAPI) {
		return l.IRouter
	}
	return l.IRouter.Handle(method, path, h...)
}

func (l listenerRoutes) GET(path string, h ...gin.HandlerFunc) gin.IRoutes {
	return l.Handle(http.MethodGet, path, h...)
}

func (l listenerRoutes) POST(path string, h ...gin.HandlerFunc) gin.IRoutes {
	return l.Handle(http.MethodPost, path, h...)
}

func (l listenerRoutes) PUT(path string, h ...gin.HandlerFunc) gin.IRoutes {
	return l.Handle(http.MethodPut, path, h...)
}

func (l listenerRoutes) PATCH(path string, h ...gin.HandlerFunc) gin.IRoutes {
	return l.Handle(http.MethodPatch, path, h...)
}

func (l listenerRoutes) DELETE(path string, h ...gin.HandlerFunc) gin.IRoutes {
	return l.Handle(http.MethodDelete, path, h...)
}

// Handler returns the http.Handler of the public listener. HEAD is answered
// as GET (RFC 9110 §9.3.2 requires it of every GET resource); net/http drops
// the body.
//
// The JWKS, fetched by every verifier, skips gin: the prepared bytes are
// written directly, counted in the request metric but not logged per request
// (its middleware chain cost more than the response itself).
func (s *Server) Handler() http.Handler {
	jwksOK := s.metrics.requests.WithLabelValues(http.MethodGet, jwksPath, "200")
	jwksNotModified := s.metrics.requests.WithLabelValues(http.MethodGet, jwksPath, "304")
	var allowOrigin []string // the JWKS operation's CORS policy, from the spec
	if op := s.ops[routeKey{http.MethodGet, jwksPath}]; op != nil && op.cors == corsPublic {
		allowOrigin = anyOrigin
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, refused := front(w, r)
		if !refused && r.URL.Path == jwksPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			status, _ := writeJWKS(w, s.deps.Keys.Ring(), r.Header.Get("If-None-Match"), allowOrigin)
			if status == http.StatusOK {
				jwksOK.Inc()
			} else {
				jwksNotModified.Inc()
			}
			return
		}
		serveEngine(s.engine, w, r)
	})
}

// AdminHandler returns the http.Handler of the admin listener: the
// operations openapi.yaml marks `x-lanyard-listener: admin` (/metrics),
// which the public listener answers with 404.
func (s *Server) AdminHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, _ = front(w, r)
		serveEngine(s.admin, w, r)
	})
}

// Header values every answer of either listener carries (never modified):
// browsers must not guess a media type (a JSON body read as HTML) nor send
// the URL of a page that linked here.
var (
	nosniff    = []string{"nosniff"}
	noReferrer = []string{"no-referrer"}
)

// front is the first step of every request on either listener, before any
// path that answers: it sets the headers every answer carries, and marks a
// request with ambiguous framing (both Content-Length and Transfer-Encoding)
// for refuseAmbiguousFraming, reporting it.
func front(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	h := w.Header()
	h["X-Content-Type-Options"] = nosniff
	h["Referrer-Policy"] = noReferrer
	if !ambiguousFraming(r) {
		return r, false
	}
	return r.WithContext(context.WithValue(r.Context(), refusedKey{}, true)), true
}

// serveEngine hands r to a gin engine, HEAD as GET.
func serveEngine(e *gin.Engine, w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		r = r.Clone(r.Context())
		r.Method = http.MethodGet
	}
	e.ServeHTTP(w, r)
}

// CountPurged records sessions deleted by the cleanup job.
func (s *Server) CountPurged(n int64) { s.metrics.purged.Add(float64(n)) }

// SetReady flips readiness; shutdown turns it off before draining.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

const jwksPath = "/.well-known/jwks.json"
