package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/store"
)

func (s *testServer) putProfile(t *testing.T, access, body string) response {
	t.Helper()
	return s.do(t, http.MethodPut, "/v1/me/profile", []byte(body), "Authorization", "Bearer "+access)
}

// TestOnboarding: sign up → PUT profile → a fresh token for the same session
// with the profile in its claims; GET /v1/me and GET /v1/me/profile agree;
// a later refresh re-reads completeness.
func TestOnboarding(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		s := newTestServer(t, d)
		tk := s.signUp(t, "onboard@example.com")

		res := s.do(t, http.MethodGet, "/v1/me/profile", nil, "Authorization", "Bearer "+tk.Access)
		require.Equal(t, http.StatusOK, res.status, string(res.body))
		assert.JSONEq(t, `{"profile":null,"profile_complete":false}`, string(res.body))
		assert.Equal(t, "no-store", res.header.Get("Cache-Control"))

		s.clock.Advance(time.Minute)
		res = s.putProfile(t, tk.Access, `{"python_proficiency":"intermediate","developer_role":"robotics_engineer"}`)
		require.Equal(t, http.StatusOK, res.status, string(res.body))
		assert.Equal(t, "no-store", res.header.Get("Cache-Control"))
		var updated struct {
			Profile struct {
				PythonProficiency string    `json:"python_proficiency"`
				DeveloperRole     string    `json:"developer_role"`
				CompletedAt       time.Time `json:"completed_at"`
			} `json:"profile"`
			AccessToken string `json:"access_token"`
			TokenType   string `json:"token_type"`
			ExpiresIn   int    `json:"expires_in"`
		}
		require.NoError(t, json.Unmarshal(res.body, &updated))
		assert.Equal(t, "intermediate", updated.Profile.PythonProficiency)
		assert.Equal(t, "robotics_engineer", updated.Profile.DeveloperRole)
		assert.True(t, s.clock.Now().Equal(updated.Profile.CompletedAt))
		assert.Equal(t, "Bearer", updated.TokenType)
		assert.Equal(t, 900, updated.ExpiresIn)

		before, after := decodeClaims(t, tk.Access), decodeClaims(t, updated.AccessToken)
		assert.Equal(t, before["sid"], after["sid"], "same session")
		assert.Equal(t, before["sub"], after["sub"])
		assert.NotEqual(t, before["jti"], after["jti"])
		assert.Equal(t, true, after["profile_complete"])
		assert.Equal(t, map[string]any{"python_proficiency": "intermediate", "developer_role": "robotics_engineer"}, after["profile"])

		me := s.do(t, http.MethodGet, "/v1/me", nil, "Authorization", "Bearer "+updated.AccessToken).json(t)
		assert.Equal(t, true, me["profile_complete"])
		assert.Equal(t, "intermediate", me["profile"].(map[string]any)["python_proficiency"])

		// Changing an answer keeps the completion time.
		s.clock.Advance(5 * time.Minute)
		res = s.putProfile(t, updated.AccessToken, `{"python_proficiency":"advanced","developer_role":"robotics_engineer"}`)
		require.Equal(t, http.StatusOK, res.status)
		got := s.do(t, http.MethodGet, "/v1/me/profile", nil, "Authorization", "Bearer "+tk.Access).json(t)
		profile := got["profile"].(map[string]any)
		assert.Equal(t, "advanced", profile["python_proficiency"])
		assert.Equal(t, updated.Profile.CompletedAt.Format(time.RFC3339Nano), profile["completed_at"])

		// The old refresh token's session re-reads the profile on refresh.
		ref := s.refresh(t, tk.Refresh)
		require.Equal(t, http.StatusOK, ref.status)
		claims := decodeClaims(t, ref.tokens(t).Access)
		assert.Equal(t, true, claims["profile_complete"])
		assert.Equal(t, "advanced", claims["profile"].(map[string]any)["python_proficiency"])
		assert.Equal(t, true, ref.json(t)["user"].(map[string]any)["profile_complete"])
	})
}

func TestProfileBadInput(t *testing.T) {
	s := newTestServer(t, store.Postgres)
	tk := s.signUp(t, "badprofile@example.com")
	cases := []struct {
		name, body, code, field, mention string
	}{
		{"bad python enum", `{"python_proficiency":"guru<script>","developer_role":"student"}`, "validation_failed", "python_proficiency", `"advanced"`},
		{"bad role enum", `{"python_proficiency":"none","developer_role":"wizard"}`, "validation_failed", "developer_role", `"robotics_engineer"`},
		{"case matters", `{"python_proficiency":"None","developer_role":"student"}`, "validation_failed", "python_proficiency", `"none"`},
		{"missing role", `{"python_proficiency":"none"}`, "validation_failed", "developer_role", ""},
		{"wrong type", `{"python_proficiency":3,"developer_role":"student"}`, "validation_failed", "python_proficiency", ""},
		{"null", `{"python_proficiency":null,"developer_role":"student"}`, "validation_failed", "python_proficiency", ""},
		{"unknown field", `{"python_proficiency":"none","developer_role":"student","admin":true}`, "validation_failed", "", ""},
		{"not json", `python=none`, "invalid_json", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := s.putProfile(t, tk.Access, c.body)
			require.Equal(t, http.StatusBadRequest, res.status, string(res.body))
			p := res.json(t)
			assert.Equal(t, c.code, p["code"])
			assert.NotContains(t, string(res.body), "guru")
			assert.NotContains(t, string(res.body), "wizard")
			if c.field != "" {
				errs, _ := json.Marshal(p["errors"])
				assert.Contains(t, string(errs), `"field":"`+c.field+`"`)
				if c.mention != "" {
					assert.Contains(t, strings.ReplaceAll(string(errs), `\"`, `"`), c.mention, "names the allowed values")
				}
			}
		})
	}
	assert.Zero(t, s.count(t, "profiles"), "no bad request wrote a profile")

	// Bearer failures: missing, forged, expired.
	parts := strings.Split(tk.Access, ".")
	forged := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
	good := `{"python_proficiency":"none","developer_role":"student"}`
	for name, header := range map[string]string{"missing": "", "forged": "Bearer " + forged} {
		res := s.do(t, http.MethodPut, "/v1/me/profile", []byte(good), "Authorization", header)
		assert.Equal(t, http.StatusUnauthorized, res.status, name)
		assert.Equal(t, `Bearer realm="lanyard", error="invalid_token"`, res.header.Get("WWW-Authenticate"), name)
	}
	s.clock.Advance(16 * time.Minute)
	res := s.putProfile(t, tk.Access, good)
	assert.Equal(t, http.StatusUnauthorized, res.status, "expired")
	assert.Zero(t, s.count(t, "profiles"))
}
