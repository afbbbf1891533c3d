package httpapi

import (
	"encoding/json"
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
	identity.CodeEmailTaken:          http.StatusConflict,
	identity.CodeUnavailable:         http.StatusServiceUnavailable,
	identity.CodeInternal:            http.StatusInternalServerError,
}

// retryAfterSeconds is sent with every 503: a hashing slot or readiness
// usually returns within a second or two.
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

// writeProblem answers with the problem for err and aborts the chain. Errors
// that are not *identity.Error become a bare 500: internals never reach a client.
func writeProblem(c *gin.Context, err error) {
	e, ok := err.(*identity.Error)
	if !ok || e.Code == identity.CodeInternal {
		c.Error(err) //nolint:errcheck // recorded for the access log
		e = &identity.Error{Code: identity.CodeInternal, Message: "an internal error occurred"}
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
	body, _ := json.Marshal(p)
	h := c.Writer.Header()
	switch status {
	case http.StatusUnauthorized:
		if e.Code == identity.CodeUnauthorized {
			h.Set("WWW-Authenticate", `Bearer realm="lanyard", error="invalid_token"`)
		}
	case http.StatusServiceUnavailable:
		h.Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	h.Set("Cache-Control", "no-store")
	c.Data(status, "application/problem+json", body)
	c.Abort()
}

// fail builds an identity error for problems the HTTP layer finds itself.
func fail(c *gin.Context, code identity.Code, message string, fields ...identity.FieldError) {
	writeProblem(c, &identity.Error{Code: code, Message: message, Fields: fields})
}
