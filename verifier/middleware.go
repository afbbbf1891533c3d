package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// ctxKey is unexported so only this package can set verified claims.
type ctxKey struct{}

// WithClaims returns a copy of ctx carrying c. The middleware uses it;
// handler tests can use it to fake an authenticated request.
func WithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// ClaimsFromContext returns the claims RequireAuth or
// RequireCompleteProfile verified for this request.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(ctxKey{}).(*Claims)
	return c, ok && c != nil
}

// VerifyRequest verifies the request's "Authorization: Bearer <token>"
// header (scheme matched case-insensitively, RFC 9110 §11.1). A request
// without one gets ErrMissingToken; every error wraps ErrInvalidToken.
func (v *Verifier) VerifyRequest(r *http.Request) (*Claims, error) {
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 || (len(vals) == 1 && strings.TrimSpace(vals[0]) == "") {
		return nil, ErrMissingToken
	}
	// Two Authorization headers are ambiguous; intermediaries may pick
	// a different one than we would, so refuse rather than guess.
	if len(vals) > 1 {
		return nil, invalid("more than one Authorization header")
	}
	scheme, token, _ := strings.Cut(vals[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return nil, invalid("Authorization scheme is not Bearer")
	}
	// RFC 6750 §2.1 allows one or more spaces after the scheme.
	token = strings.TrimLeft(token, " ")
	if token == "" {
		return nil, ErrMissingToken
	}
	return v.Verify(r.Context(), token)
}

// RequireAuth lets through only requests with a valid access token, whose
// claims next reads with ClaimsFromContext. Others get 401 problem+json
// with WWW-Authenticate: Bearer error="invalid_token".
func (v *Verifier) RequireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := v.VerifyRequest(r)
		if err != nil {
			WriteUnauthorized(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithClaims(r.Context(), c)))
	})
}

// RequireCompleteProfile is RequireAuth for routes that need onboarding
// done: it verifies the token itself (no need to stack RequireAuth), then
// answers 403 problem+json code "profile_incomplete" with
// WWW-Authenticate: Bearer error="insufficient_scope" when the token's
// profile_complete is false. After onboarding the client gets a fresh
// token from PUT /v1/me/profile and retries.
func (v *Verifier) RequireCompleteProfile(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := v.VerifyRequest(r)
		if err != nil {
			WriteUnauthorized(w, err)
			return
		}
		if !c.ProfileComplete {
			WriteProfileIncomplete(w)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithClaims(r.Context(), c)))
	})
}

// Problem codes, as in Lanyard's own API.
const (
	CodeUnauthorized      = "unauthorized"
	CodeProfileIncomplete = "profile_incomplete"
)

// Client-facing details. They never include why a token failed: that
// would tell a forger which check to work on.
const (
	detailMissing           = "missing bearer token"
	detailInvalid           = "invalid or expired access token"
	detailProfileIncomplete = "complete your profile to use this resource"
)

// WriteUnauthorized answers 401 for err (from Verify or VerifyRequest)
// with WWW-Authenticate: Bearer error="invalid_token". err only selects
// between two generic details; its text is never sent.
func WriteUnauthorized(w http.ResponseWriter, err error) {
	detail := detailInvalid
	if errors.Is(err, ErrMissingToken) {
		detail = detailMissing
	}
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	WriteProblem(w, http.StatusUnauthorized, CodeUnauthorized, detail)
}

// WriteProfileIncomplete answers 403 code "profile_incomplete" with
// WWW-Authenticate: Bearer error="insufficient_scope".
func WriteProfileIncomplete(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope"`)
	WriteProblem(w, http.StatusForbidden, CodeProfileIncomplete, detailProfileIncomplete)
}

// problem is an RFC 9457 body in Lanyard's shape. Field order is fixed so
// bodies are byte-stable.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
}

// WriteProblem writes an application/problem+json response
// {type:"about:blank", title, status, detail, code} with Cache-Control:
// no-store, the shape of every Lanyard error, so a backend's own errors
// can match it.
func WriteProblem(w http.ResponseWriter, status int, code, detail string) {
	body, _ := json.Marshal(problem{ // cannot fail: strings and an int
		Type: "about:blank", Title: http.StatusText(status), Status: status,
		Detail: detail, Code: code,
	})
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client went away; nothing to do
}
