package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/password"
	"github.com/lanyard-id/lanyard/internal/store"
)

// problemFields is the errors member of a validation_failed problem.
func problemFields(t *testing.T, res response) []map[string]string {
	t.Helper()
	require.Equal(t, http.StatusBadRequest, res.status, string(res.body))
	assert.Equal(t, "application/problem+json", res.header.Get("Content-Type"))
	var p struct {
		Code   string              `json:"code"`
		Errors []map[string]string `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(res.body, &p))
	assert.Equal(t, "validation_failed", p.Code)
	return p.Errors
}

// TestWeakPasswordsRefused: sign-up and password change answer 400
// validation_failed naming the field and the rule, never the password, and
// write nothing.
func TestWeakPasswordsRefused(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		s := newTestServer(t, d)
		const email = "grace.hopper@example.com"
		weak := []struct {
			password string
			reason   password.Weakness
		}{
			{"               ", password.Repetitive},
			{"aaaaaaaaaaaaaaa", password.Repetitive},
			{"passwordpassword", password.Repetitive},
			{"123456789012345", password.Repetitive},
			{"lanyard lanyard 2026!", password.ContainsService},
			{"Hopper's COBOL compiler", password.ContainsEmail},
			{"qwertyuiopasdfghjkl", password.Common},
		}
		for _, w := range weak {
			res := s.post(t, "/v1/auth/signup", map[string]any{"email": email, "password": w.password})
			assert.Equal(t, []map[string]string{{"field": "password", "message": string(w.reason)}}, problemFields(t, res), "%q", w.password)
			assert.NotContains(t, string(res.body), w.password)
		}
		assert.Zero(t, s.count(t, "users"))

		tk := s.post(t, "/v1/auth/signup", map[string]any{"email": email, "password": goodPassword}).tokens(t)
		for _, w := range weak {
			body, err := json.Marshal(map[string]string{"current_password": goodPassword, "new_password": w.password})
			require.NoError(t, err)
			res := s.bearer(t, http.MethodPost, "/v1/me/password", tk.Access, body)
			assert.Equal(t, []map[string]string{{"field": "new_password", "message": string(w.reason)}}, problemFields(t, res), "%q", w.password)
			assert.NotContains(t, string(res.body), w.password)
		}
		s.login(t, email, goodPassword, "Test/1.0") // unchanged
	})
}

// TestInvisibleCharacters: a name with control, direction or invisible
// characters is refused (400 naming the field), an emoji sequence is kept,
// and a user agent keeps only what is visible.
func TestInvisibleCharacters(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		s := newTestServer(t, d)
		for i, name := range []string{"\u202Eadmin", "Ada\u200BLovelace", "\u3164", "\u2800", "Ada\U000E0041\U000E0042", "Ada\u2066x\u2069", "\uFEFFAda"} {
			res := s.post(t, "/v1/auth/signup", map[string]any{"email": "name@example.com", "password": goodPassword, "name": name})
			fields := problemFields(t, res)
			require.Len(t, fields, 1, "case %d", i)
			assert.Equal(t, "name", fields[0]["field"], "case %d", i)
		}
		assert.Zero(t, s.count(t, "users"))

		res := s.post(t, "/v1/auth/signup", map[string]any{"email": "name@example.com", "password": goodPassword, "name": "👩\u200D💻 Ada"})
		require.Equal(t, http.StatusCreated, res.status, string(res.body))
		var signed struct {
			User struct {
				Name string `json:"name"`
			} `json:"user"`
		}
		require.NoError(t, json.Unmarshal(res.body, &signed))
		assert.Equal(t, "👩\u200D💻 Ada", signed.User.Name)

		s.clock.Advance(time.Minute) // the login's session is listed first
		tk := s.login(t, "name@example.com", goodPassword, "Evil\u202E/1.0\u200B\u2066 (X11\U000E0041)\u3164")
		var list struct {
			Sessions []struct {
				UserAgent string `json:"user_agent"`
			} `json:"sessions"`
		}
		require.NoError(t, json.Unmarshal(s.bearer(t, http.MethodGet, "/v1/me/sessions", tk.Access, nil).body, &list))
		require.Len(t, list.Sessions, 2)
		assert.Equal(t, "Evil/1.0 (X11)", list.Sessions[0].UserAgent)
	})
}
