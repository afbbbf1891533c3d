package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/api"
	"github.com/lanyard-id/lanyard/internal/identity"
)

// TestOperationsFromSpec: the per-operation rules come from openapi.yaml.
func TestOperationsFromSpec(t *testing.T) {
	doc, err := api.GetSwagger()
	require.NoError(t, err)
	ops, err := buildOperations(doc)
	require.NoError(t, err)
	require.Len(t, ops, countOperations(doc))

	for key, want := range map[routeKey]struct {
		bearer  bool
		cors    corsPolicy
		accepts string
	}{
		{http.MethodPost, "/v1/auth/signup"}:                  {accepts: "application/json"},
		{http.MethodPost, "/v1/auth/refresh"}:                 {accepts: "application/json"},
		{http.MethodGet, "/v1/me"}:                            {bearer: true},
		{http.MethodPut, "/v1/me/profile"}:                    {bearer: true, accepts: "application/json"},
		{http.MethodDelete, "/v1/me/sessions/:id"}:            {bearer: true},
		{http.MethodGet, "/.well-known/jwks.json"}:            {cors: corsPublic},
		{http.MethodGet, "/.well-known/openid-configuration"}: {cors: corsPublic},
		{http.MethodGet, "/readyz"}:                           {},
	} {
		op := ops[key]
		require.NotNil(t, op, key)
		assert.Equal(t, want.bearer, op.bearer, key)
		assert.Equal(t, want.cors, op.cors, key)
		assert.Equal(t, want.accepts, op.accepts, key)
		assert.Equal(t, want.accepts != "", op.bodies != nil, key)
	}
	assert.NotNil(t, ops[routeKey{http.MethodDelete, "/v1/me/sessions/:id"}].route, "a path parameter to validate")
	for _, key := range []routeKey{
		{http.MethodGet, "/v1/admin/users"}, {http.MethodGet, "/v1/admin/users/:id"}, {http.MethodDelete, "/v1/admin/users/:id"},
		{http.MethodPost, "/v1/admin/users/:id/disable"}, {http.MethodPost, "/v1/admin/users/:id/enable"},
		{http.MethodDelete, "/v1/admin/users/:id/sessions"}, {http.MethodGet, "/v1/admin/audit"},
	} {
		op := ops[key]
		require.NotNil(t, op, key)
		assert.True(t, op.admin && op.adminToken && !op.bearer, "%v: the admin token, on the admin listener", key)
	}
	for key, op := range ops {
		assert.Equal(t, op.adminToken, strings.HasPrefix(key.path, "/v1/admin/"), "%v: every admin operation and only they take the admin token", key)
	}
	assert.Nil(t, ops[routeKey{http.MethodGet, "/v1/me"}].route, "nothing to validate")
}

func countOperations(doc *openapi3.T) int {
	n := 0
	for _, item := range doc.Paths.Map() {
		n += len(item.Operations())
	}
	return n
}

// TestOperationsRefuseWhatTheServerCannotApply: an operation the server
// could only serve other than as described stops the start-up.
func TestOperationsRefuseWhatTheServerCannotApply(t *testing.T) {
	const base = `
openapi: 3.0.3
info: {title: t, version: "1"}
components:
  securitySchemes:
    bearerAuth: {type: http, scheme: bearer}
    cookieAuth: {type: apiKey, in: cookie, name: sid}
    adminToken: {type: http, scheme: bearer, x-lanyard-credential: admin-token}
    oddToken: {type: http, scheme: bearer, x-lanyard-credential: session-cookie}
paths:
  /x:
    post:
%s
      responses:
        '204': {description: ok}
%s
`
	problem := `        '400': {description: bad, content: {application/problem+json: {schema: {type: object}}}}`
	cases := map[string]struct{ op, errors, want string }{
		"fine": {op: `      security: [{bearerAuth: []}]
      requestBody: {required: true, content: {application/json: {schema: {type: object}}}}`, errors: problem},
		"media type without a parser": {op: `      requestBody: {required: true, content: {application/xml: {schema: {type: object}}}}`,
			errors: problem, want: `request media type "application/xml" has no body parser`},
		"security scheme not checked": {op: `      security: [{cookieAuth: []}]`,
			errors: problem, want: `security scheme "cookieAuth" is not one the server checks`},
		"alternative credentials": {op: `      security: [{bearerAuth: []}, {}]`,
			errors: problem, want: "alternative security requirements are not supported"},
		"admin token off the admin listener": {op: `      security: [{adminToken: []}]`,
			errors: problem, want: "the admin token is taken only on the admin listener (x-lanyard-listener: admin)"},
		"unknown credential": {op: `      security: [{oddToken: []}]`,
			errors: problem, want: `security scheme "oddToken": unknown x-lanyard-credential session-cookie`},
		"two credentials at once": {op: `      security: [{bearerAuth: [], adminToken: []}]`,
			errors: problem, want: "several credentials at once are not supported"},
		"unknown CORS policy": {op: `      x-lanyard-cors: everyone`,
			errors: problem, want: "x-lanyard-cors: unknown policy everyone"},
		"error format without a writer": {errors: `        '400': {description: bad, content: {text/html: {schema: {type: string}}}}`,
			want: `error media type "text/html" has no writer`},
		"two error formats": {errors: problem + "\n" + `        '500': {description: bad, content: {application/json: {schema: {type: object}}}}`,
			want: "error responses in several media types [application/json application/problem+json]"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			doc, err := openapi3.NewLoader().LoadFromData(fmt.Appendf(nil, base, c.op, c.errors))
			require.NoError(t, err)
			require.NoError(t, doc.Validate(context.Background()))
			ops, err := buildOperations(doc)
			if c.want == "" {
				require.NoError(t, err)
				op := ops[routeKey{http.MethodPost, "/x"}]
				assert.True(t, op.bearer)
				assert.Equal(t, "application/json", op.accepts)
				return
			}
			require.Error(t, err)
			assert.Equal(t, "openapi.yaml: POST /x: "+c.want, err.Error())
		})
	}
}

// TestProblemStatus: the one mapping from errors to problems. An error
// caused by an interrupted context or an unavailable database is a 503 with
// Retry-After whatever wraps it; other unexpected errors are a bare 500.
func TestProblemStatus(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	s := &Server{}
	for name, c := range map[string]struct {
		err    error
		status int
		code   identity.Code
		detail string
	}{
		"domain error":          {&identity.Error{Code: identity.CodeEmailTaken, Message: "taken"}, 409, identity.CodeEmailTaken, "taken"},
		"wrapped domain error":  {fmt.Errorf("x: %w", &identity.Error{Code: identity.CodeNotFound, Message: "gone"}), 404, identity.CodeNotFound, "gone"},
		"unexpected":            {errors.New("pq: relation does not exist"), 500, identity.CodeInternal, "an internal error occurred"},
		"internal with details": {&identity.Error{Code: identity.CodeInternal, Message: "secret detail"}, 500, identity.CodeInternal, "an internal error occurred"},
		"cancelled":             {fmt.Errorf("query: %w", context.Canceled), 503, identity.CodeUnavailable, "the request could not finish in time; retry shortly"},
		"deadline":              {fmt.Errorf("query: %w", context.DeadlineExceeded), 503, identity.CodeUnavailable, "the request could not finish in time; retry shortly"},
		"database unavailable":  {fmt.Errorf("store: %w", identity.ErrUnavailable), 503, identity.CodeUnavailable, "the request could not finish in time; retry shortly"},
		"unavailable":           {&identity.Error{Code: identity.CodeUnavailable, Message: "busy"}, 503, identity.CodeUnavailable, "busy"},
	} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			ctx, _ := gin.CreateTestContext(rec)
			ctx.Request = httptest.NewRequest(http.MethodGet, "/", nil)
			s.writeProblem(ctx, c.err)
			assert.Equal(t, c.status, rec.Code)
			assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
			var p problem
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
			assert.Equal(t, problem{Type: "about:blank", Title: http.StatusText(c.status), Status: c.status, Code: string(c.code), Detail: c.detail}, p)
			if c.status == http.StatusServiceUnavailable {
				assert.Equal(t, "2", rec.Header().Get("Retry-After"))
			} else {
				assert.Empty(t, rec.Header().Get("Retry-After"))
			}
			if c.status >= 500 {
				require.Len(t, ctx.Errors, 1, "the cause goes to the access log")
				assert.Equal(t, c.err, ctx.Errors.Last().Err)
			} else {
				assert.Empty(t, ctx.Errors)
			}
			assert.True(t, ctx.IsAborted())
		})
	}
}
