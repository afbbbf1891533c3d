package api_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/lanyard-id/lanyard/api"
)

func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := api.GetSwagger()
	if err != nil {
		t.Fatalf("GetSwagger: %v", err)
	}
	return doc
}

// The embedded spec is a valid OpenAPI document, examples included.
func TestSpecIsValid(t *testing.T) {
	doc := loadSpec(t)
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation(), openapi3.EnableMultiError()); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi = %q, want 3.0.3", doc.OpenAPI)
	}
}

// House rules for request bodies: required except where cookie mode lets
// a browser send none (refresh and logout, whose one member the cookie
// replaces), JSON only (until another media type gets a body parser in
// internal/httpapi, which refuses to start otherwise), closed objects with
// an example that the schema accepts.
func TestRequestBodiesAreStrict(t *testing.T) {
	doc := loadSpec(t)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.RequestBody == nil {
				continue
			}
			name := method + " " + path
			body := op.RequestBody.Value
			optional := name == "POST /v1/auth/refresh" || name == "POST /v1/auth/logout"
			if body.Required == optional {
				t.Errorf("%s: request body required is %v, want %v", name, body.Required, !optional)
			}
			if got := slices.Sorted(maps.Keys(body.Content)); !slices.Equal(got, []string{"application/json"}) {
				t.Errorf("%s: request media types %v, want only application/json", name, got)
				continue
			}
			s := body.Content["application/json"].Schema.Value
			if ap := s.AdditionalProperties.Has; ap == nil || *ap {
				t.Errorf("%s: request schema must set additionalProperties: false", name)
			}
			for _, r := range s.Required {
				if _, ok := s.Properties[r]; !ok {
					t.Errorf("%s: required member %q is not a property", name, r)
				}
			}
			if s.Example == nil {
				t.Errorf("%s: request schema has no example", name)
			} else if err := s.VisitJSON(s.Example); err != nil {
				t.Errorf("%s: example rejected by its schema: %v", name, err)
			}
		}
	}
}

// Every error answer is a Problem, sent as application/problem+json.
func TestErrorsAreProblems(t *testing.T) {
	doc := loadSpec(t)
	problem := doc.Components.Schemas["Problem"].Value
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status, resp := range op.Responses.Map() {
				if status < "400" {
					continue
				}
				content := resp.Value.Content
				mt := content.Get("application/problem+json")
				if len(content) != 1 || mt == nil || mt.Schema.Value != problem {
					t.Errorf("%s %s %s: want only application/problem+json with the Problem schema", method, path, status)
				}
			}
		}
	}
}

// The generated response objects write what the contract promises: status,
// media type, headers, and a body the spec's schema accepts (null profile and
// name included).
func TestGeneratedResponsesMatchContract(t *testing.T) {
	doc := loadSpec(t)
	schema := func(name string) *openapi3.Schema { return doc.Components.Schemas[name].Value }
	user := api.User{
		Id:        "0b9d6a2e-3c1f-4f7a-9e2d-5c8b1a7f4e60",
		Email:     "ada@example.com",
		CreatedAt: time.Date(2025, 1, 15, 9, 30, 0, 0, time.UTC),
	}
	tokens := api.TokenIssuedJSONResponse{
		Body: api.TokenResponse{
			AccessToken: "a.b.c", TokenType: api.TokenResponseTokenTypeBearer, ExpiresIn: 900,
			RefreshToken: ptr("r"), RefreshExpiresIn: 604800, User: user,
		},
		Headers: api.TokenIssuedResponseHeaders{CacheControl: "no-store"},
	}
	problem := func(status int, code string) api.Problem {
		return api.Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: "d", Code: code}
	}
	challenge := `Bearer error="invalid_token"`
	type visit = func(http.ResponseWriter) error
	tests := []struct {
		name        string
		visit       visit
		status      int
		contentType string
		headers     map[string]string // "" means: must be absent
		schema      string
	}{
		{"signup 201", api.SignUp201JSONResponse{tokens}.VisitSignUpResponse,
			201, "application/json", map[string]string{"Cache-Control": "no-store"}, "TokenResponse"},
		{"login 200", api.LogIn200JSONResponse{tokens}.VisitLogInResponse,
			200, "application/json", map[string]string{"Cache-Control": "no-store"}, "TokenResponse"},
		{"signup 409", api.SignUp409ApplicationProblemPlusJSONResponse{api.ConflictApplicationProblemPlusJSONResponse(problem(409, "email_taken"))}.VisitSignUpResponse,
			409, "application/problem+json", nil, "Problem"},
		{"signup 400", api.SignUp400ApplicationProblemPlusJSONResponse{api.BadRequestApplicationProblemPlusJSONResponse(problem(400, "validation_failed"))}.VisitSignUpResponse,
			400, "application/problem+json", nil, "Problem"},
		{"login 401 has no challenge", api.LogIn401ApplicationProblemPlusJSONResponse{api.UnauthorizedApplicationProblemPlusJSONResponse{Body: problem(401, "invalid_credentials")}}.VisitLogInResponse,
			401, "application/problem+json", map[string]string{"WWW-Authenticate": ""}, "Problem"},
		{"me 401 has a challenge", api.GetMe401ApplicationProblemPlusJSONResponse{api.UnauthorizedApplicationProblemPlusJSONResponse{Body: problem(401, "unauthorized"), Headers: api.UnauthorizedResponseHeaders{WWWAuthenticate: &challenge}}}.VisitGetMeResponse,
			401, "application/problem+json", map[string]string{"WWW-Authenticate": challenge}, "Problem"},
		{"login 503", api.LogIn503ApplicationProblemPlusJSONResponse{api.UnavailableApplicationProblemPlusJSONResponse{Body: problem(503, "unavailable"), Headers: api.UnavailableResponseHeaders{RetryAfter: 1}}}.VisitLogInResponse,
			503, "application/problem+json", map[string]string{"Retry-After": "1"}, "Problem"},
		{"me 200", api.GetMe200JSONResponse{Body: user, Headers: api.GetMe200ResponseHeaders{CacheControl: "no-store"}}.VisitGetMeResponse,
			200, "application/json", map[string]string{"Cache-Control": "no-store"}, "User"},
		{"logout 204", api.LogOut204Response{}.VisitLogOutResponse,
			204, "", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			if err := tt.visit(rec); err != nil {
				t.Fatal(err)
			}
			if rec.Code != tt.status {
				t.Errorf("status %d, want %d", rec.Code, tt.status)
			}
			if got := rec.Header().Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type %q, want %q", got, tt.contentType)
			}
			for k, want := range tt.headers {
				if got, ok := rec.Header()[http.CanonicalHeaderKey(k)]; (want == "") != !ok || (ok && strings.Join(got, ",") != want) {
					t.Errorf("%s = %q (present %v), want %q", k, got, ok, want)
				}
			}
			if tt.schema == "" {
				if rec.Body.Len() != 0 {
					t.Errorf("body %q, want none", rec.Body)
				}
				return
			}
			var body any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			if err := schema(tt.schema).VisitJSON(body); err != nil {
				t.Errorf("body %s rejected by %s: %v", rec.Body, tt.schema, err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
