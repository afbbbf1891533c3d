package verifier

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wantProblem is what a rejected request must get, byte for byte in the
// headers and field for field in the body.
type wantProblem struct {
	status  int
	wwwAuth string
	code    string
	detail  string
}

var (
	missing    = wantProblem{401, `Bearer error="invalid_token"`, "unauthorized", "missing bearer token"}
	badToken   = wantProblem{401, `Bearer error="invalid_token"`, "unauthorized", "invalid or expired access token"}
	incomplete = wantProblem{403, `Bearer error="insufficient_scope"`, "profile_incomplete", "complete your profile to use this resource"}
)

// assertProblem checks a problem+json response.
func assertProblem(t *testing.T, res *http.Response, want wantProblem) {
	t.Helper()
	assert.Equal(t, want.status, res.StatusCode)
	assert.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	assert.Equal(t, want.wwwAuth, res.Header.Get("WWW-Authenticate"))
	var body map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
	assert.Equal(t, map[string]any{
		"type": "about:blank", "title": http.StatusText(want.status), "status": float64(want.status),
		"detail": want.detail, "code": want.code,
	}, body)
}

func TestMiddleware(t *testing.T) {
	f := newFixture(t, nil)
	complete := f.token(nil)
	incompleteTok := f.token(func(c map[string]any) { c["profile_complete"] = false; delete(c, "profile") })
	expired := f.token(func(c map[string]any) { c["exp"] = t0.Add(-time.Hour).Unix() })
	forged := f.key.SignRaw([]byte(`{"alg":"none","kid":"`+f.key.Kid+`","typ":"at+jwt"}`), mustJSON(f.claims()))
	noPC := f.token(func(c map[string]any) { delete(c, "profile_complete") })

	// The handler echoes what it got from the context, proving claims
	// reach it.
	var called bool
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called = true
		c, ok := ClaimsFromContext(r.Context())
		require.True(t, ok)
		_ = json.NewEncoder(w).Encode(map[string]any{"sub": c.Subject, "complete": c.ProfileComplete})
	})
	auth, profile := f.v.RequireAuth(next), f.v.RequireCompleteProfile(next)

	type tc struct {
		name    string
		headers []string // Authorization values
		auth    *wantProblem
		profile *wantProblem
	}
	ok := (*wantProblem)(nil)
	for _, c := range []tc{
		{"no header", nil, &missing, &missing},
		{"empty header", []string{""}, &missing, &missing},
		{"Bearer without token", []string{"Bearer"}, &missing, &missing},
		{"Bearer and spaces", []string{"Bearer   "}, &missing, &missing},
		{"Basic", []string{"Basic dXNlcjpwYXNz"}, &badToken, &badToken},
		{"token without scheme", []string{complete}, &badToken, &badToken},
		{"garbage", []string{"Bearer abc.def.ghi"}, &badToken, &badToken},
		{"forged", []string{"Bearer " + forged}, &badToken, &badToken},
		{"expired", []string{"Bearer " + expired}, &badToken, &badToken},
		{"no profile_complete", []string{"Bearer " + noPC}, &badToken, &badToken},
		{"two headers", []string{"Bearer " + complete, "Bearer " + complete}, &badToken, &badToken},
		{"complete", []string{"Bearer " + complete}, ok, ok},
		{"scheme lower case", []string{"bearer " + complete}, ok, ok},
		{"scheme upper case", []string{"BEARER " + complete}, ok, ok},
		{"two spaces", []string{"Bearer  " + complete}, ok, ok},
		{"incomplete profile", []string{"Bearer " + incompleteTok}, ok, &incomplete},
	} {
		for _, m := range []struct {
			name string
			h    http.Handler
			want *wantProblem
		}{{"RequireAuth", auth, c.auth}, {"RequireCompleteProfile", profile, c.profile}} {
			t.Run(m.name+"/"+c.name, func(t *testing.T) {
				called = false
				req := httptest.NewRequest(http.MethodGet, "/lessons", nil)
				for _, h := range c.headers {
					req.Header.Add("Authorization", h)
				}
				rec := httptest.NewRecorder()
				m.h.ServeHTTP(rec, req)
				res := rec.Result()
				if m.want != nil {
					assert.False(t, called, "handler must not run")
					assertProblem(t, res, *m.want)
					return
				}
				require.True(t, called)
				assert.Equal(t, http.StatusOK, res.StatusCode)
				var got map[string]any
				require.NoError(t, json.NewDecoder(res.Body).Decode(&got))
				assert.Equal(t, "0b6f1c9e-3d5a-4c1e-9f7a-2b8d6e4c1a30", got["sub"])
			})
		}
	}
}

func TestContextHelpers(t *testing.T) {
	_, ok := ClaimsFromContext(context.Background())
	assert.False(t, ok)
	_, ok = ClaimsFromContext(WithClaims(context.Background(), nil))
	assert.False(t, ok, "nil claims are not claims")
	c := &Claims{Subject: "u"}
	got, ok := ClaimsFromContext(WithClaims(context.Background(), c))
	require.True(t, ok)
	assert.Same(t, c, got)
}

func TestWriteProblem(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteProblem(rec, http.StatusTooManyRequests, "rate_limited", "slow down")
	assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
	assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	assert.JSONEq(t, `{"type":"about:blank","title":"Too Many Requests","status":429,"detail":"slow down","code":"rate_limited"}`, rec.Body.String())
}
