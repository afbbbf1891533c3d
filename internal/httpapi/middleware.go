package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lanyard-id/lanyard/internal/identity"
)

// MaxBodyBytes caps every request body; Lanyard's largest request is well under it.
const MaxBodyBytes = 16 << 10

const requestIDHeader = "X-Request-Id"

// requestID takes a caller's id when it is short and plain (so it can be
// logged safely), otherwise makes one, and echoes it on the response.
func requestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(requestIDHeader)
		if len(id) == 0 || len(id) > 64 || strings.ContainsFunc(id, func(r rune) bool {
			return !(r == '-' || r == '_' || r == '.' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z'))
		}) {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		c.Set(requestIDHeader, id)
		c.Header(requestIDHeader, id)
		c.Next()
	}
}

// observe logs each request and records its metrics, labelled by route
// template so unknown paths cannot grow the label set. A request whose client
// went away before the answer is logged at INFO as cancelled by the client,
// with the status the server chose: a hang-up is not a server fault. 503s
// (load shedding, draining, a database past its deadline) are WARN with
// their cause; other 5xx are ERROR.
func observe(log *slog.Logger, m *metrics) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		elapsed := time.Since(start)
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		status := c.Writer.Status()
		method := methodLabel(c.Request.Method)
		m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
		m.duration.WithLabelValues(method, route).Observe(elapsed.Seconds())
		level, msg := slog.LevelInfo, "request"
		switch {
		case c.Request.Context().Err() != nil:
			// net/http cancels the request's context while the handler runs
			// only when the client closed the connection or reset the stream.
			msg = "request cancelled by client"
		case status == http.StatusServiceUnavailable:
			level = slog.LevelWarn
		case status >= 500:
			level = slog.LevelError
		}
		attrs := []slog.Attr{
			slog.String("request_id", c.GetString(requestIDHeader)),
			slog.String("method", method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Duration("duration", elapsed),
			slog.String("ip", c.ClientIP()),
		}
		if len(c.Errors) > 0 {
			attrs = append(attrs, slog.String("error", c.Errors.Last().Error()))
		}
		log.LogAttrs(c.Request.Context(), level, msg, attrs...)
	}
}

// methodLabel keeps metric labels bounded: net/http accepts any token as a
// method, and each new label value would be a new time series forever.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// recoverPanics turns a panic into a logged 500 problem without internals.
func (s *Server) recoverPanics(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			s.deps.Log.ErrorContext(c.Request.Context(), "panic", "request_id", c.GetString(requestIDHeader), "panic", r)
			s.fail(c, identity.CodeInternal, "an internal error occurred")
		}
	}()
	c.Next()
}

// scope is what a request carries for its handler, in Request.Context()
// (handlers read it with ctx.Value, whatever wraps the context).
type scope struct {
	// work is the context for use cases: the request's values, not cancelled
	// when the client disconnects (a hang-up must not abort a statement
	// half-way or cost the pool its connection), but cancelled when the
	// server's lifetime ends, so no database work outlives the process.
	// Never the *gin.Context: gin recycles it for the next request while
	// database/sql may still watch a query's context after it returns.
	work    context.Context
	client  identity.Client
	claims  identity.AccessClaims // set by requireBearer
	request *http.Request         // for answers that negotiate on request headers (metrics)
	// cookieMode: the request asked for the refresh token in the cookie and
	// passed the origin check (set by tokenDelivery).
	cookieMode bool
	// header is the response's header map, for headers of error answers,
	// which have no typed response object (a refused refresh cookie's
	// clearing Set-Cookie).
	header http.Header
}

type scopeKey struct{}

// scopeOf returns the request's scope; the scope middleware runs before
// every handler.
func scopeOf(ctx context.Context) *scope { return ctx.Value(scopeKey{}).(*scope) }

// errServerStopping is the cause of a work context cancelled by the end of
// the server's lifetime.
var errServerStopping = errors.New("the server is shutting down")

// scope puts the request's scope, with its work context, in Request.Context().
func (s *Server) scope(c *gin.Context) {
	sc := &scope{client: identity.Client{UserAgent: c.Request.UserAgent(), IP: c.ClientIP()}, header: c.Writer.Header()}
	ctx := context.WithValue(c.Request.Context(), scopeKey{}, sc)
	work, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	stop := context.AfterFunc(s.deps.Lifetime, func() { cancel(errServerStopping) })
	if s.deps.Lifetime.Err() != nil {
		// Over already: AfterFunc cancels from another goroutine, which the
		// request's first statement could beat.
		cancel(errServerStopping)
	}
	defer func() {
		stop()
		cancel(nil)
	}()
	sc.work = work
	c.Request = c.Request.WithContext(ctx)
	sc.request = c.Request
	c.Next()
}

// exposedHeaders may be read by allowed origins' scripts.
const exposedHeaders = "WWW-Authenticate, Retry-After, X-Request-Id"

// allowedRequestHeaders may be sent by allowed origins' scripts. The same
// for every operation: a client that attaches its bearer token to every
// call (to refresh too) must not be blocked by the preflight.
const allowedRequestHeaders = "Authorization, Content-Type, Lanyard-Token-Delivery, X-Request-Id"

// cors applies the matched operation's CORS policy to an actual request
// (unknown routes get the allow-list policy, so allowed origins can read the
// 404). Preflights of known paths are answered by preflight.
func (s *Server) cors(c *gin.Context) {
	if c.Request.Method == http.MethodOptions && c.FullPath() != "" {
		return
	}
	policy := corsAllowlist
	if op := s.op(c); op != nil {
		policy = op.cors
	}
	s.allowOrigin(c, policy)
}

// allowOrigin sets the headers that let the request's origin read the answer
// under policy, and reports whether it may. Allowed origins may send
// credentials (the refresh cookie of cookie mode); public operations never.
func (s *Server) allowOrigin(c *gin.Context, policy corsPolicy) bool {
	h := c.Writer.Header()
	if policy == corsPublic {
		h.Set("Access-Control-Allow-Origin", "*")
		return true
	}
	h.Add("Vary", "Origin")
	origin := c.GetHeader("Origin")
	if !s.originAllowed(origin) {
		return false
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Set("Access-Control-Expose-Headers", exposedHeaders)
	return true
}

// originAllowed reports whether origin is one of LANYARD_CORS_ORIGINS
// (exact match; a request without an Origin header never is).
func (s *Server) originAllowed(origin string) bool {
	return origin != "" && slices.Contains(s.deps.CORSOrigins, origin)
}

// preflight answers OPTIONS on every path of the spec: a CORS preflight gets
// the policy of the operation it asks about (no CORS headers, so the browser
// blocks the real request, when that operation does not exist or the origin
// is not allowed); any other OPTIONS request is a method the path lacks.
func (s *Server) preflight(c *gin.Context) {
	requested := c.GetHeader("Access-Control-Request-Method")
	if requested == "" {
		s.fail(c, codeMethodNotAllowed, "this endpoint does not take that method")
		return
	}
	method := requested
	if method == http.MethodHead {
		method = http.MethodGet // HEAD is answered as GET
	}
	h := c.Writer.Header()
	h.Add("Vary", "Access-Control-Request-Method")
	if op := s.ops[routeKey{method, c.FullPath()}]; op != nil && s.allowOrigin(c, op.cors) {
		h.Set("Access-Control-Allow-Methods", requested)
		h.Set("Access-Control-Allow-Headers", allowedRequestHeaders)
		h.Set("Access-Control-Max-Age", "600")
	}
	c.AbortWithStatus(http.StatusNoContent)
}

// bearerToken is the token of an `Authorization: Bearer <token>` header;
// ok is false when the header is missing or names another scheme.
func bearerToken(c *gin.Context) (token string, ok bool) {
	scheme, token, ok := strings.Cut(c.GetHeader("Authorization"), " ")
	return strings.TrimSpace(token), ok && strings.EqualFold(scheme, "Bearer")
}

// requireBearer authenticates the operations whose spec requires a bearer
// token and leaves the claims in the request's scope.
func (s *Server) requireBearer(c *gin.Context) {
	op := s.op(c)
	if op != nil && op.adminToken {
		s.requireAdminToken(c)
		return
	}
	if op == nil || !op.bearer {
		return
	}
	token, ok := bearerToken(c)
	if !ok || token == "" {
		s.fail(c, identity.CodeUnauthorized, "a valid access token is required")
		return
	}
	sc := scopeOf(c.Request.Context())
	claims, err := s.deps.Service.AuthenticateSession(sc.work, token)
	if err != nil {
		s.writeProblem(c, err)
		return
	}
	sc.claims = claims
}

// utf8Charset accepts no charset (JSON is UTF-8 by definition, RFC 8259) or
// any common spelling of UTF-8.
func utf8Charset(charset string) bool {
	switch strings.ToLower(charset) {
	case "", "utf-8", "utf8":
		return true
	}
	return false
}

// readBody enforces the body rules of operations that take one: a media
// type the operation lists (415), the size cap (413), and that media type's
// own checks (400). The checked bytes replace the body for the validator
// and the handler.
func (s *Server) readBody(c *gin.Context) {
	op := s.op(c)
	if op == nil || op.bodies == nil {
		return
	}
	if op.bodyOptional && c.Request.ContentLength == 0 && c.GetHeader("Content-Type") == "" {
		return // no body where none is needed: nothing to check
	}
	if c.Request.ContentLength > MaxBodyBytes {
		s.fail(c, codePayloadTooLarge, "the request body is larger than 16 KiB")
		return
	}
	mediaType, params, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	format, accepted := op.bodies[mediaType]
	if err != nil || !accepted || !format.charset(params["charset"]) {
		s.fail(c, codeUnsupportedMediaType, "send the request body as "+op.accepts)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		s.fail(c, codePayloadTooLarge, "the request body is larger than 16 KiB")
		return
	case err != nil:
		s.fail(c, format.malformed, "the request body could not be read")
		return
	}
	if err := format.check(body); err != nil {
		s.fail(c, format.malformed, err.Error())
		return
	}
	c.Request.Body = io.NopCloser(bytes.NewReader(body))
}
