package ginverifier

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/tokentest"
	"github.com/lanyard-id/lanyard/verifier"
)

const (
	issuer   = "https://id.example.com"
	audience = "https://api.example.com"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

type wantProblem struct {
	status  int
	wwwAuth string
	code    string
	detail  string
}

var (
	missing    = &wantProblem{401, `Bearer error="invalid_token"`, "unauthorized", "missing bearer token"}
	badToken   = &wantProblem{401, `Bearer error="invalid_token"`, "unauthorized", "invalid or expired access token"}
	incomplete = &wantProblem{403, `Bearer error="insufficient_scope"`, "profile_incomplete", "complete your profile to use this resource"}
)

func TestGinMiddleware(t *testing.T) {
	gin.SetMode(gin.TestMode)
	key := tokentest.NewKey("ES256")
	srv := tokentest.NewServer(key)
	defer srv.Close()
	v, err := verifier.New(context.Background(), verifier.Config{
		JWKSURL: srv.URL(), Issuer: issuer, Audience: audience, Now: func() time.Time { return t0 },
	})
	require.NoError(t, err)

	sign := func(mut func(map[string]any)) string {
		c := tokentest.Claims(issuer, audience, t0)
		if mut != nil {
			mut(c)
		}
		return key.Sign(c)
	}
	complete := sign(nil)
	incompleteTok := sign(func(c map[string]any) { c["profile_complete"] = false; delete(c, "profile") })
	expired := sign(func(c map[string]any) { c["exp"] = t0.Add(-time.Hour).Unix() })
	wrongAud := sign(func(c map[string]any) { c["aud"] = "https://other.example.com" })

	var called bool
	handler := func(c *gin.Context) {
		called = true
		claims, ok := Claims(c)
		require.True(t, ok)
		// Plain net/http code below gin sees the same claims.
		fromCtx, ok := verifier.ClaimsFromContext(c.Request.Context())
		require.True(t, ok)
		assert.Same(t, claims, fromCtx)
		c.JSON(http.StatusOK, gin.H{"sub": claims.Subject, "email": claims.Email})
	}
	r := gin.New()
	r.GET("/auth", RequireAuth(v), handler)
	r.GET("/profile", RequireCompleteProfile(v), handler)

	for _, c := range []struct {
		name          string
		header        string
		auth, profile *wantProblem
	}{
		{"no header", "", missing, missing},
		{"Basic", "Basic dXNlcjpwYXNz", badToken, badToken},
		{"garbage", "Bearer x.y.z", badToken, badToken},
		{"expired", "Bearer " + expired, badToken, badToken},
		{"wrong audience", "Bearer " + wrongAud, badToken, badToken},
		{"complete", "Bearer " + complete, nil, nil},
		{"scheme lower case", "bearer " + complete, nil, nil},
		{"incomplete profile", "Bearer " + incompleteTok, nil, incomplete},
	} {
		for path, want := range map[string]*wantProblem{"/auth": c.auth, "/profile": c.profile} {
			t.Run(path+"/"+c.name, func(t *testing.T) {
				called = false
				req := httptest.NewRequest(http.MethodGet, path, nil)
				if c.header != "" {
					req.Header.Set("Authorization", c.header)
				}
				rec := httptest.NewRecorder()
				r.ServeHTTP(rec, req)
				var body map[string]any
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
				if want == nil {
					require.True(t, called)
					assert.Equal(t, http.StatusOK, rec.Code)
					assert.Equal(t, map[string]any{"sub": "0b6f1c9e-3d5a-4c1e-9f7a-2b8d6e4c1a30", "email": "ada@example.com"}, body)
					return
				}
				assert.False(t, called, "handler must not run")
				assert.Equal(t, want.status, rec.Code)
				assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
				assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
				assert.Equal(t, want.wwwAuth, rec.Header().Get("WWW-Authenticate"))
				assert.Equal(t, map[string]any{
					"type": "about:blank", "title": http.StatusText(want.status), "status": float64(want.status),
					"detail": want.detail, "code": want.code,
				}, body)
			})
		}
	}
}

func TestGinRejectsNilVerifier(t *testing.T) {
	assert.Panics(t, func() { RequireAuth(nil) })
	assert.Panics(t, func() { RequireCompleteProfile(nil) })
}

func TestClaimsWithoutMiddleware(t *testing.T) {
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = httptest.NewRequest(http.MethodGet, "/", nil)
	_, ok := Claims(c)
	assert.False(t, ok)
}
