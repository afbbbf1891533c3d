package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/lanyard-id/lanyard/internal/identity"
)

// Codes the HTTP layer produces itself, beside identity's.
const (
	codeInvalidJSON          identity.Code = "invalid_json"
	codeUnsupportedMediaType identity.Code = "unsupported_media_type"
	codePayloadTooLarge      identity.Code = "payload_too_large"
	codeMethodNotAllowed     identity.Code = "method_not_allowed"
	codeCSRFRejected         identity.Code = "csrf_rejected"
)

// statusByCode is the one table from error codes to HTTP statuses.
var statusByCode = map[identity.Code]int{
	identity.CodeValidation:          http.StatusBadRequest,
	codeInvalidJSON:                  http.StatusBadRequest,
	codeUnsupportedMediaType:         http.StatusUnsupportedMediaType,
	codePayloadTooLarge:              http.StatusRequestEntityTooLarge,
	identity.CodeNotFound:            http.StatusNotFound,
	codeMethodNotAllowed:             http.StatusMethodNotAllowed,
	identity.CodeInvalidCredentials:  http.StatusUnauthorized,
	identity.CodeInvalidRefreshToken: http.StatusUnauthorized,
	identity.CodeRefreshTokenReused:  http.StatusUnauthorized,
	identity.CodeSessionExpired:      http.StatusUnauthorized,
	identity.CodeUnauthorized:        http.StatusUnauthorized,
	codeCSRFRejected:                 http.StatusForbidden,
	identity.CodeEmailUnverified:     http.StatusForbidden,
	identity.CodeAccountDisabled:     http.StatusForbidden,
	identity.CodeInvalidCursor:       http.StatusBadRequest,
	identity.CodeInvalidToken:        http.StatusBadRequest,
	identity.CodeEmailTaken:          http.StatusConflict,
	identity.CodeRateLimited:         http.StatusTooManyRequests,
	identity.CodeUnavailable:         http.StatusServiceUnavailable,
	identity.CodeInternal:            http.StatusInternalServerError,
}

// retryAfterSeconds is sent with every 503: a hashing slot, a database that
// missed its deadline or a replica that is draining usually recovers (or the
// load balancer moves on) within a second or two.
const retryAfterSeconds = 2

// problem is an RFC 9457 body. Field order is fixed, so equal problems are
// byte-identical (a wrong password and an unknown email must be).
type problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail"`
	Code   string       `json:"code"`
	Errors []fieldError `json:"errors,omitempty"`
}

type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// writeProblem answers with the problem for err, in the error format of the
// matched operation, and aborts the chain. Errors that are not
// *identity.Error become a bare 500: internals never reach a client. Causes
// of 500s and 503s are recorded for the access log.
func (s *Server) writeProblem(c *gin.Context, err error) {
	var e *identity.Error
	if !errors.As(err, &e) {
		e = &identity.Error{Code: identity.CodeInternal}
	}
	if e.Code == identity.CodeInternal && interrupted(err) {
		e = &identity.Error{Code: identity.CodeUnavailable, Message: "the request could not finish in time; retry shortly"}
	}
	switch e.Code {
	case identity.CodeInternal:
		c.Error(err) //nolint:errcheck // recorded for the access log
		e = &identity.Error{Code: identity.CodeInternal, Message: "an internal error occurred"}
	case identity.CodeUnavailable:
		c.Error(err) //nolint:errcheck // the cause, logged at WARN
	}
	status, known := statusByCode[e.Code]
	if !known {
		status = http.StatusInternalServerError
	}
	p := problem{
		Type: "about:blank", Title: http.StatusText(status), Status: status,
		Detail: e.Message, Code: string(e.Code),
	}
	for _, f := range e.Fields {
		p.Errors = append(p.Errors, fieldError(f))
	}
	h := c.Writer.Header()
	switch status {
	case http.StatusUnauthorized:
		if e.Code == identity.CodeUnauthorized {
			h.Set("WWW-Authenticate", `Bearer realm="lanyard", error="invalid_token"`)
		}
	case http.StatusServiceUnavailable:
		h.Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	case http.StatusTooManyRequests:
		// The seconds until the attempt could pass, rounded up so a client
		// that waits exactly that long is not refused again.
		var t *identity.Throttled
		if errors.As(err, &t) {
			h.Set("Retry-After", strconv.FormatInt(int64(math.Ceil(t.RetryAfter.Seconds())), 10))
			s.metrics.throttled.WithLabelValues(t.Scope).Inc()
		}
	}
	h.Set("Cache-Control", "no-store")
	format := errorFormats[problemJSON] // unknown routes and methods
	if op := s.op(c); op != nil {
		format = op.errors
	}
	format(c, p)
	c.Abort()
}

// interrupted reports an error that is not a fault of the request or of the
// server's code: the work context ended (the server's lifetime is over) or
// the database missed its deadline or is unreachable. Such a request is worth
// retrying, so it is a 503, never a 500.
func interrupted(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, identity.ErrUnavailable)
}

func writeProblemJSON(c *gin.Context, p problem) {
	body, _ := json.Marshal(p)
	c.Data(p.Status, problemJSON, body)
}

// fail builds an identity error for problems the HTTP layer finds itself.
func (s *Server) fail(c *gin.Context, code identity.Code, message string, fields ...identity.FieldError) {
	s.writeProblem(c, &identity.Error{Code: code, Message: message, Fields: fields})
}
