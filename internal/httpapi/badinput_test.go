package httpapi_test

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/store"
)

// TestBadInput: every malformed request is a 4xx problem+json with a stable
// code, writes nothing, and never echoes what was sent.
func TestBadInput(t *testing.T) {
	const secret = "hunter2, but a good deal longer"
	long := strings.Repeat("a", 250) + "@example.com"
	cases := []struct {
		name        string
		path        string
		contentType string
		body        string
		status      int
		code        string
		field       string
	}{
		{"empty body", "/v1/auth/signup", "application/json", ``, 400, "invalid_json", ""},
		{"malformed", "/v1/auth/signup", "application/json", `{"email":`, 400, "invalid_json", ""},
		{"trailing data", "/v1/auth/signup", "application/json", `{"email":"t@example.com","password":"` + secret + `"} {}`, 400, "invalid_json", ""},
		{"array", "/v1/auth/signup", "application/json", `[]`, 400, "invalid_json", ""},
		{"duplicate key", "/v1/auth/signup", "application/json", `{"email":"a@example.com","email":"b@example.com","password":"` + secret + `"}`, 400, "invalid_json", ""},
		{"invalid utf8", "/v1/auth/signup", "application/json", "{\"email\":\"t@example.com\",\"password\":\"\xc3\x28" + secret + "\"}", 400, "invalid_json", ""},
		{"lone surrogate", "/v1/auth/signup", "application/json", `{"email":"t@example.com","password":"` + strings.Repeat(`\ud800`, 15) + `"}`, 400, "invalid_json", ""},
		{"encoded path", "/v1/auth/%73ignup", "application/json", `{"Email":"t@example.com","password":"` + secret + `","is_admin":true}`, 400, "validation_failed", ""},
		{"bidi override in name", "/v1/auth/signup", "application/json", `{"email":"t@example.com","password":"` + secret + `","name":"\u202eadmin"}`, 400, "validation_failed", "name"},
		{"nul byte", "/v1/auth/signup", "application/json", `{"email":"t@example.com","password":"` + secret + `\u0000"}`, 400, "invalid_json", ""},
		{"wrong type", "/v1/auth/signup", "application/json", `{"email":"t@example.com","password":12345678901234567}`, 400, "validation_failed", "password"},
		{"null", "/v1/auth/signup", "application/json", `{"email":null,"password":"` + secret + `"}`, 400, "validation_failed", "email"},
		{"unknown field", "/v1/auth/signup", "application/json", `{"email":"t@example.com","password":"` + secret + `","admin":true}`, 400, "validation_failed", ""},
		{"case-folded field", "/v1/auth/signup", "application/json", `{"EMAIL":"t@example.com","password":"` + secret + `"}`, 400, "validation_failed", ""},
		{"missing password", "/v1/auth/signup", "application/json", `{"email":"t@example.com"}`, 400, "validation_failed", "password"},
		{"over-long email", "/v1/auth/signup", "application/json", `{"email":"` + long + `","password":"` + secret + `"}`, 400, "validation_failed", "email"},
		{"not an email", "/v1/auth/signup", "application/json", `{"email":"Ada <t@example.com>","password":"` + secret + `"}`, 400, "validation_failed", "email"},
		{"sql in email", "/v1/auth/signup", "application/json", `{"email":"x'; DROP TABLE users; --@example.com","password":"` + secret + `"}`, 400, "validation_failed", "email"},
		{"short password", "/v1/auth/signup", "application/json", `{"email":"t@example.com","password":"short pass"}`, 400, "validation_failed", "password"},
		{"over-long password", "/v1/auth/signup", "application/json", `{"email":"t@example.com","password":"` + strings.Repeat("p", 1025) + `"}`, 400, "validation_failed", "password"},
		{"control char in name", "/v1/auth/signup", "application/json", `{"email":"t@example.com","password":"` + secret + `","name":"a\u0007b"}`, 400, "validation_failed", "name"},
		{"form encoded", "/v1/auth/signup", "application/x-www-form-urlencoded", `email=t@example.com&password=` + secret, 415, "unsupported_media_type", ""},
		{"no content type", "/v1/auth/signup", "", `{"email":"t@example.com","password":"` + secret + `"}`, 415, "unsupported_media_type", ""},
		{"latin1 charset", "/v1/auth/signup", "application/json; charset=latin1", `{"email":"t@example.com","password":"` + secret + `"}`, 415, "unsupported_media_type", ""},
		{"1 MiB body", "/v1/auth/signup", "application/json", `{"email":"t@example.com","password":"` + strings.Repeat("x", 1<<20) + `"}`, 413, "payload_too_large", ""},
		{"login wrong type", "/v1/auth/login", "application/json", `{"email":["t@example.com"],"password":"` + secret + `"}`, 400, "validation_failed", "email"},
		{"refresh empty token", "/v1/auth/refresh", "application/json", `{"refresh_token":""}`, 400, "validation_failed", "refresh_token"},
		{"refresh number", "/v1/auth/refresh", "application/json", `{"refresh_token":5}`, 400, "validation_failed", "refresh_token"},
		{"logout unknown field", "/v1/auth/logout", "application/json", `{"refresh_token":"x","all":true}`, 400, "validation_failed", ""},
	}
	for _, d := range []store.Dialect{store.Postgres, store.SQLite} {
		s := newTestServer(t, d)
		for _, c := range cases {
			t.Run(string(d)+"/"+c.name, func(t *testing.T) {
				req, err := http.NewRequest(http.MethodPost, s.URL+c.path, bytes.NewBufferString(c.body))
				require.NoError(t, err)
				if c.contentType != "" {
					req.Header.Set("Content-Type", c.contentType)
				}
				res, err := s.Client().Do(req)
				require.NoError(t, err)
				defer res.Body.Close()
				var buf bytes.Buffer
				_, _ = buf.ReadFrom(res.Body)
				r := response{status: res.StatusCode, header: res.Header, body: buf.Bytes()}
				require.Equal(t, c.status, r.status, r.body)
				assert.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
				p := r.json(t)
				assert.Equal(t, c.code, p["code"])
				assert.EqualValues(t, c.status, p["status"])
				assert.NotEmpty(t, p["title"])
				assert.NotEmpty(t, p["detail"])
				if c.field != "" {
					require.Contains(t, p, "errors")
					var fields []string
					for _, e := range p["errors"].([]any) {
						fields = append(fields, e.(map[string]any)["field"].(string))
					}
					assert.Contains(t, fields, c.field)
				}
				assert.NotContains(t, string(r.body), secret, "never echoes the password")
				assert.NotContains(t, string(r.body), "DROP TABLE")
				assert.NotContains(t, string(r.body), "t@example.com")
			})
		}
		assert.Zero(t, s.count(t, "users"), "no bad request wrote a user")
		assert.Zero(t, s.count(t, "sessions"), "no bad request wrote a session")
	}
}

// TestUnusualButValidInput: emoji, long passphrases, international text.
func TestUnusualButValidInput(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		s := newTestServer(t, d)
		var long strings.Builder // 1024 characters, the maximum, that repeat nothing
		for i := 0; long.Len() < 1024; i++ {
			long.WriteString(strconv.Itoa(i) + " lengthy passphrase ")
		}
		for i, pw := range []string{
			"🔐🔑🗝️🔒🔓 horse battery staple 😀",
			long.String()[:1024],
			"пароль-очень-длинный-и-надёжный",
			"ｆｕｌｌｗｉｄｔｈ　ｐａｓｓｗｏｒｄ",
		} {
			// No local part is in its password (the rule against personal words).
			email := []string{"emoji@example.com", "long@example.com", "cyrillic@example.com", "zenkaku@example.com"}[i]
			res := s.post(t, "/v1/auth/signup", map[string]any{"email": email, "password": pw, "name": "Zoë 🚀 O'Brien"})
			require.Equal(t, http.StatusCreated, res.status, string(res.body))
			login := s.post(t, "/v1/auth/login", map[string]any{"email": email, "password": pw})
			assert.Equal(t, http.StatusOK, login.status, string(login.body))
		}
		// NFKC: the fullwidth password also logs in typed in ASCII.
		login := s.post(t, "/v1/auth/login", map[string]any{"email": "zenkaku@example.com", "password": "fullwidth password"})
		assert.Equal(t, http.StatusOK, login.status)

		dup := s.post(t, "/v1/auth/signup", map[string]any{"email": "EMOJI@example.com", "password": goodPassword})
		assert.Equal(t, http.StatusConflict, dup.status)
		assert.Equal(t, "email_taken", dup.json(t)["code"])
		assert.EqualValues(t, 4, s.count(t, "users"))
	})
}
