package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/store"
)

const testAdminToken = "admin-token-for-tests-0123456789-abcdef"

// adminCall sends a request to the admin listener with the admin token
// token ("" for none).
func (s *testServer) adminCall(t testing.TB, method, path, token string) response {
	t.Helper()
	return s.adminDo(t, method, path, "Authorization", "Bearer "+token)
}

func (s *testServer) adminDo(t testing.TB, method, path string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, s.admin.URL+path, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := s.admin.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func (s *testServer) admin200(t testing.TB, path string) map[string]any {
	t.Helper()
	res := s.adminCall(t, http.MethodGet, path, testAdminToken)
	require.Equal(t, http.StatusOK, res.status, string(res.body))
	return res.json(t)
}

func (s *testServer) tryLogin(t testing.TB, email, password string) response {
	t.Helper()
	return s.post(t, "/v1/auth/login", map[string]any{"email": email, "password": password})
}

// TestAdminAuthentication: the admin token is checked before anything
// else, with one answer for every path and id; the API is not on the public
// listener, and with no token configured it is not there at all.
func TestAdminAuthentication(t *testing.T) {
	s := newTestServer(t, store.Postgres, withAdminToken(testAdminToken))
	known := s.signUp(t, "known-admin@example.com").User.ID

	paths := []struct{ method, path string }{
		{http.MethodGet, "/v1/admin/users"},
		{http.MethodGet, "/v1/admin/users?cursor=%25bad&limit=9999"},
		{http.MethodGet, "/v1/admin/users/" + known},
		{http.MethodGet, "/v1/admin/users/no-such-user"},
		{http.MethodGet, "/v1/admin/users/" + strings.Repeat("x", 100)},
		{http.MethodPost, "/v1/admin/users/" + known + "/disable"},
		{http.MethodPost, "/v1/admin/users/no-such-user/enable"},
		{http.MethodDelete, "/v1/admin/users/" + known + "/sessions"},
		{http.MethodDelete, "/v1/admin/users/" + known},
		{http.MethodDelete, "/v1/admin/users/no-such-user"},
		{http.MethodGet, "/v1/admin/audit?type=bogus"},
	}
	credentials := map[string][]string{
		"none":          nil,
		"empty bearer":  {"Authorization", "Bearer "},
		"wrong":         {"Authorization", "Bearer " + strings.Repeat("w", len(testAdminToken))},
		"short":         {"Authorization", "Bearer " + testAdminToken[:8]},
		"prefix":        {"Authorization", "Bearer " + testAdminToken[:len(testAdminToken)-1]},
		"longer":        {"Authorization", "Bearer " + testAdminToken + "x"},
		"other scheme":  {"Authorization", "Basic " + testAdminToken},
		"no scheme":     {"Authorization", testAdminToken},
		"access token":  {"Authorization", "Bearer " + s.signUp(t, "someone@example.com").Access},
		"in query only": nil,
	}
	var first []byte
	for name, header := range credentials {
		for _, p := range paths {
			path := p.path
			if name == "in query only" {
				sep := "?"
				if strings.Contains(path, "?") {
					sep = "&"
				}
				path += sep + "token=" + testAdminToken
			}
			res := s.adminDo(t, p.method, path, header...)
			require.Equal(t, http.StatusUnauthorized, res.status, "%s %s %s: %s", name, p.method, path, res.body)
			assert.True(t, strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer"), name)
			if first == nil {
				first = res.body
			}
			assert.Equal(t, string(first), string(res.body), "one answer for every path and credential (%s %s)", name, p.path)
		}
	}
	assert.Equal(t, "unauthorized", (response{body: first}).json(t)["code"])
	// The user survived every attempt.
	assert.Equal(t, known, s.admin200(t, "/v1/admin/users/"+known)["id"])

	t.Run("absent on the public listener", func(t *testing.T) {
		unknown := s.do(t, http.MethodGet, "/v1/no-such-route", nil)
		for _, p := range paths {
			res := s.do(t, p.method, p.path, nil, "Authorization", "Bearer "+testAdminToken)
			assert.Equal(t, http.StatusNotFound, res.status, p.path)
			assert.Equal(t, string(unknown.body), string(res.body), p.path)
		}
	})

	t.Run("off without a token", func(t *testing.T) {
		off := newTestServer(t, store.SQLite)
		unknown := off.adminDo(t, http.MethodGet, "/v1/admin/nothing-here")
		require.Equal(t, http.StatusNotFound, unknown.status)
		for _, p := range append(paths, struct{ method, path string }{http.MethodPut, "/v1/admin/users"}) {
			for _, header := range [][]string{nil, {"Authorization", "Bearer " + testAdminToken}, {"Authorization", "Bearer "}} {
				res := off.adminDo(t, p.method, p.path, header...)
				assert.Equal(t, http.StatusNotFound, res.status, p.path)
				assert.Equal(t, string(unknown.body), string(res.body), p.path)
			}
		}
	})
}

// TestAdminUsers drives the user operations on both databases.
func TestAdminUsers(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		s := newTestServer(t, d, withAdminToken(testAdminToken))
		emails := []string{"ab@example.com", "a_c@example.com", "a%d@example.com", "axe@example.com", "b@example.com", "a.e@example.com"}
		ids := map[string]string{}
		for _, e := range emails {
			ids[e] = s.signUp(t, e).User.ID
		}

		t.Run("search by prefix", func(t *testing.T) {
			list := func(prefix string) []string {
				body := s.admin200(t, "/v1/admin/users?email_prefix="+url.QueryEscape(prefix))
				var got []string
				for _, u := range body["users"].([]any) {
					got = append(got, u.(map[string]any)["email"].(string))
				}
				return got
			}
			assert.Equal(t, []string{"a_c@example.com"}, list("a_"), "_ is not a wildcard")
			assert.Equal(t, []string{"a%d@example.com"}, list("a%"), "% is not a wildcard")
			assert.Empty(t, list("a\\"), "nor is the escape character")
			assert.Equal(t, []string{"ab@example.com"}, list("  AB"), "trimmed and case-insensitive")
			assert.Empty(t, list("zz"))
			assert.Len(t, list(""), len(emails))
		})

		t.Run("pages", func(t *testing.T) {
			var seen []string
			cursor := ""
			for pages := 0; ; pages++ {
				require.Less(t, pages, 10)
				path := "/v1/admin/users?email_prefix=a&limit=2"
				if cursor != "" {
					path += "&cursor=" + url.QueryEscape(cursor)
				}
				body := s.admin200(t, path)
				users := body["users"].([]any)
				assert.LessOrEqual(t, len(users), 2)
				for _, u := range users {
					seen = append(seen, u.(map[string]any)["email"].(string))
				}
				next, _ := body["next_cursor"].(string)
				if next == "" {
					assert.Nil(t, body["next_cursor"])
					break
				}
				cursor = next
			}
			assert.Len(t, seen, 5)
			assert.Equal(t, []string{"a%d@example.com", "a.e@example.com", "a_c@example.com", "ab@example.com", "axe@example.com"}, seen)
		})

		t.Run("bad page parameters", func(t *testing.T) {
			for _, q := range []string{"cursor=%25%25", "cursor=bm90LWEtY3Vyc29y", "cursor=YTE6MTA", "cursor=dTE6"} {
				res := s.adminCall(t, http.MethodGet, "/v1/admin/users?"+q, testAdminToken)
				assert.Equal(t, http.StatusBadRequest, res.status, q)
				assert.Equal(t, "invalid_cursor", res.json(t)["code"], q)
			}
			for _, q := range []string{"limit=0", "limit=201", "limit=-1", "limit=x", "email_prefix=" + strings.Repeat("a", 300)} {
				res := s.adminCall(t, http.MethodGet, "/v1/admin/users?"+q, testAdminToken)
				assert.Equal(t, http.StatusBadRequest, res.status, q)
				assert.Equal(t, "validation_failed", res.json(t)["code"], q)
			}
		})

		// A NUL (or any control character) in the prefix or inside a
		// cursor's position is the client's mistake, answered 400 on every
		// database: PostgreSQL refuses a NUL in text outright, which must
		// not surface as a 500.
		t.Run("control characters", func(t *testing.T) {
			for _, q := range []string{"email_prefix=%00", "email_prefix=a%00", "email_prefix=a%00b", "email_prefix=%1F"} {
				res := s.adminCall(t, http.MethodGet, "/v1/admin/users?"+q, testAdminToken)
				assert.Equal(t, http.StatusBadRequest, res.status, "%s: %s", q, res.body)
				assert.Equal(t, "validation_failed", res.json(t)["code"], q)
			}
			for _, q := range []string{"cursor=dTE6AA", "cursor=dTE6YQA", "cursor=dTE6YQBi"} { // "u1:\x00", "u1:a\x00", "u1:a\x00b"
				res := s.adminCall(t, http.MethodGet, "/v1/admin/users?"+q, testAdminToken)
				assert.Equal(t, http.StatusBadRequest, res.status, "%s: %s", q, res.body)
				assert.Equal(t, "invalid_cursor", res.json(t)["code"], q)
			}
		})

		t.Run("one user", func(t *testing.T) {
			id := ids["ab@example.com"]
			body := s.admin200(t, "/v1/admin/users/"+url.PathEscape(id))
			assert.Equal(t, id, body["id"])
			assert.Equal(t, "ab@example.com", body["email"])
			assert.Equal(t, false, body["disabled"])
			assert.Nil(t, body["disabled_at"])
			assert.EqualValues(t, 1, body["live_sessions"])
			assert.NotNil(t, body["last_login_at"])
			assert.Equal(t, "no-store", s.adminCall(t, http.MethodGet, "/v1/admin/users/"+id, testAdminToken).header.Get("Cache-Control"))

			for _, bad := range []string{"no-such-user", "%00", "a%00b", "%E2%80%8B", "%C3%28", url.PathEscape(strings.Repeat("é", 64)), "00000000-0000-0000-0000-000000000000"} {
				for _, m := range []string{http.MethodGet, http.MethodDelete} {
					res := s.adminCall(t, m, "/v1/admin/users/"+bad, testAdminToken)
					assert.Contains(t, []int{http.StatusNotFound, http.StatusBadRequest}, res.status, "%s %s: %s", m, bad, res.body)
				}
				res := s.adminCall(t, http.MethodPost, "/v1/admin/users/"+bad+"/disable", testAdminToken)
				assert.Contains(t, []int{http.StatusNotFound, http.StatusBadRequest}, res.status, "%s: %s", bad, res.body)
			}
			res := s.adminCall(t, http.MethodGet, "/v1/admin/users/no-such-user", testAdminToken)
			assert.Equal(t, http.StatusNotFound, res.status)
			assert.Equal(t, "not_found", res.json(t)["code"])
			res = s.adminCall(t, http.MethodGet, "/v1/admin/users/"+strings.Repeat("x", 65), testAdminToken)
			assert.Equal(t, http.StatusBadRequest, res.status)
			for _, p := range []string{"/disable", "/enable", "/sessions"} {
				method := http.MethodPost
				if p == "/sessions" {
					method = http.MethodDelete
				}
				res := s.adminCall(t, method, "/v1/admin/users/no-such-user"+p, testAdminToken)
				assert.Equal(t, http.StatusNotFound, res.status, p)
			}
			assert.Empty(t, s.admin200(t, "/v1/admin/audit?user_id=no-such-user")["events"], "a refused admin action records nothing")
		})

		t.Run("disable and enable", func(t *testing.T) {
			email := "axe@example.com"
			id := ids[email]
			tk := s.tryLogin(t, email, goodPassword).tokens(t)
			require.Equal(t, http.StatusOK, s.do(t, http.MethodGet, "/v1/me", nil, "Authorization", "Bearer "+tk.Access).status)

			for range 2 { // idempotent
				res := s.adminCall(t, http.MethodPost, "/v1/admin/users/"+id+"/disable", testAdminToken)
				require.Equal(t, http.StatusNoContent, res.status, string(res.body))
			}
			body := s.admin200(t, "/v1/admin/users/"+id)
			assert.Equal(t, true, body["disabled"])
			assert.NotNil(t, body["disabled_at"])
			assert.EqualValues(t, 0, body["live_sessions"])

			right := s.tryLogin(t, email, goodPassword)
			assert.Equal(t, http.StatusForbidden, right.status)
			assert.Equal(t, "account_disabled", right.json(t)["code"])
			wrong := s.tryLogin(t, email, "not the right password")
			enabledWrong := s.tryLogin(t, "ab@example.com", "not the right password")
			assert.Equal(t, http.StatusUnauthorized, wrong.status)
			assert.Equal(t, string(enabledWrong.body), string(wrong.body), "a wrong password answers alike for a disabled account")

			res := s.refresh(t, tk.Refresh)
			assert.Equal(t, http.StatusForbidden, res.status)
			assert.Equal(t, "account_disabled", res.json(t)["code"])
			res = s.do(t, http.MethodGet, "/v1/me", nil, "Authorization", "Bearer "+tk.Access)
			assert.Equal(t, http.StatusUnauthorized, res.status, "Lanyard's bearer endpoints refuse the old access token")

			for range 2 {
				res := s.adminCall(t, http.MethodPost, "/v1/admin/users/"+id+"/enable", testAdminToken)
				require.Equal(t, http.StatusNoContent, res.status, string(res.body))
			}
			assert.Equal(t, false, s.admin200(t, "/v1/admin/users/"+id)["disabled"])
			assert.Equal(t, http.StatusOK, s.tryLogin(t, email, goodPassword).status, "enabled: logs in again")
			res = s.refresh(t, tk.Refresh)
			assert.Equal(t, http.StatusUnauthorized, res.status, "old sessions stay ended")
			assert.Equal(t, "invalid_refresh_token", res.json(t)["code"])
		})

		t.Run("end sessions", func(t *testing.T) {
			email := "b@example.com"
			id := ids[email]
			tk := s.tryLogin(t, email, goodPassword).tokens(t)
			res := s.adminCall(t, http.MethodDelete, "/v1/admin/users/"+id+"/sessions", testAdminToken)
			require.Equal(t, http.StatusNoContent, res.status, string(res.body))
			assert.EqualValues(t, 0, s.admin200(t, "/v1/admin/users/"+id)["live_sessions"])
			ended := func() []any {
				return s.admin200(t, "/v1/admin/audit?type=session_ended&user_id="+id)["events"].([]any)
			}
			require.Len(t, ended(), 1)
			assert.Equal(t, "2", ended()[0].(map[string]any)["details"].(map[string]any)["count"], "the sign-up's session and the login's")
			// Again: nothing is left to end. Still 204, and no event claims
			// that sessions ended.
			res = s.adminCall(t, http.MethodDelete, "/v1/admin/users/"+id+"/sessions", testAdminToken)
			require.Equal(t, http.StatusNoContent, res.status, string(res.body))
			assert.Len(t, ended(), 1, "ending nothing writes no session_ended")
			res = s.refresh(t, tk.Refresh)
			assert.Equal(t, http.StatusUnauthorized, res.status)
			assert.Equal(t, "invalid_refresh_token", res.json(t)["code"])
			assert.Equal(t, http.StatusOK, s.tryLogin(t, email, goodPassword).status, "not disabled: may log in again")
		})

		t.Run("audit trail", func(t *testing.T) {
			id := ids["axe@example.com"]
			body := s.admin200(t, "/v1/admin/audit?user_id="+id+"&limit=200")
			var types []string
			var last float64
			for i, raw := range body["events"].([]any) {
				e := raw.(map[string]any)
				assert.Equal(t, id, e["user_id"])
				if i > 0 {
					assert.Less(t, e["id"].(float64), last, "newest first")
				}
				last = e["id"].(float64)
				if e["actor"] == "admin" {
					types = append(types, e["type"].(string))
					details := e["details"].(map[string]any)
					assert.Equal(t, "api", details["via"])
					assert.NotEmpty(t, e["ip"])
				}
			}
			assert.Subset(t, types, []string{"user_disabled", "user_enabled", "user_viewed"})
			assert.Equal(t, 2, countOf(types, "user_disabled"), "each disable is recorded")

			ended := s.admin200(t, "/v1/admin/audit?type=session_ended&user_id="+ids["b@example.com"])["events"].([]any)
			require.NotEmpty(t, ended)
			assert.Equal(t, "admin", ended[0].(map[string]any)["details"].(map[string]any)["reason"])

			// Paging one by one visits the same events.
			var paged []float64
			cursor := ""
			for range 100 {
				path := "/v1/admin/audit?limit=1&user_id=" + id
				if cursor != "" {
					path += "&cursor=" + url.QueryEscape(cursor)
				}
				page := s.admin200(t, path)
				for _, e := range page["events"].([]any) {
					paged = append(paged, e.(map[string]any)["id"].(float64))
				}
				next, _ := page["next_cursor"].(string)
				if next == "" {
					break
				}
				cursor = next
			}
			assert.Len(t, paged, len(body["events"].([]any)))

			for _, q := range []string{"type=bogus", "type=USER_DISABLED", "limit=0", "limit=500"} {
				res := s.adminCall(t, http.MethodGet, "/v1/admin/audit?"+q, testAdminToken)
				assert.Equal(t, http.StatusBadRequest, res.status, q)
				assert.Equal(t, "validation_failed", res.json(t)["code"], q)
			}
			userCursor := s.admin200(t, "/v1/admin/users?limit=1")["next_cursor"].(string)
			for _, c := range []string{"garbage!", userCursor, "YTE6MA", "YTE6LTU", "YTE6eA"} {
				res := s.adminCall(t, http.MethodGet, "/v1/admin/audit?cursor="+url.QueryEscape(c), testAdminToken)
				assert.Equal(t, http.StatusBadRequest, res.status, c)
				assert.Equal(t, "invalid_cursor", res.json(t)["code"], c)
			}
		})

		t.Run("delete", func(t *testing.T) {
			email := "a_c@example.com"
			id := ids[email]
			s.tryLogin(t, email, goodPassword).tokens(t)
			res := s.adminCall(t, http.MethodDelete, "/v1/admin/users/"+id, testAdminToken)
			require.Equal(t, http.StatusNoContent, res.status, string(res.body))
			assert.Equal(t, http.StatusNotFound, s.adminCall(t, http.MethodGet, "/v1/admin/users/"+id, testAdminToken).status)
			assert.Equal(t, http.StatusNotFound, s.adminCall(t, http.MethodDelete, "/v1/admin/users/"+id, testAdminToken).status)
			login := s.tryLogin(t, email, goodPassword)
			assert.Equal(t, http.StatusUnauthorized, login.status)
			for _, table := range []string{"sessions", "profiles", "mail_tokens", "better_auth_sessions"} {
				var n int64
				require.NoError(t, s.sql(t).Table(table).Where("user_id = ?", id).Count(&n).Error)
				assert.Zero(t, n, table)
			}
			events := s.admin200(t, "/v1/admin/audit?user_id="+id)["events"].([]any)
			require.NotEmpty(t, events, "audit events stay")
			assert.Equal(t, "user_deleted", events[0].(map[string]any)["type"])
			raw, _ := json.Marshal(events)
			assert.False(t, bytes.Contains(raw, []byte(email)), "no event holds the address")
			// The address is free again.
			s.signUp(t, email)
		})
	})
}

func countOf(list []string, v string) int {
	n := 0
	for _, x := range list {
		if x == v {
			n++
		}
	}
	return n
}

// TestDisabledAccount: a disabled account costs a login the same hash work
// as any other, learns it is disabled only with the right password, and
// cannot trade an imported Better-Auth session (one imported again after
// it was disabled included); enabled again, it can.
func TestDisabledAccount(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		h := &countingHasher{Hasher: fastHasher(t)}
		s := newTestServer(t, d, withAdminToken(testAdminToken), withHasher(h),
			withConfig(func(c *identity.Config) { c.BetterAuthSecret = []byte(betterAuthSecret) }))
		user := s.signUp(t, "disabled@example.com")
		now := s.clock.Now()
		s.importSession(t, "importedBeforeDisable0123456789ab", user.User.ID, now.Add(time.Hour))
		require.Equal(t, http.StatusNoContent, s.adminCall(t, http.MethodPost, "/v1/admin/users/"+user.User.ID+"/disable", testAdminToken).status)
		s.importSession(t, "importedAfterDisable0123456789abc", user.User.ID, now.Add(time.Hour))

		for _, tc := range []struct {
			password string
			status   int
			code     string
		}{
			{"not the right password", http.StatusUnauthorized, "invalid_credentials"},
			{goodPassword, http.StatusForbidden, "account_disabled"},
		} {
			verified := func() int { h.mu.Lock(); defer h.mu.Unlock(); return h.verify }
			before := verified()
			res := s.tryLogin(t, "disabled@example.com", tc.password)
			assert.Equal(t, tc.status, res.status, string(res.body))
			assert.Equal(t, tc.code, res.json(t)["code"])
			assert.Equal(t, before+1, verified(), "the hash is verified exactly once, as for any account")
		}
		// Both refusals are in the trail: the wrong password as such, the
		// right one as a failed login of a disabled account.
		var reasons []string
		for _, raw := range s.admin200(t, "/v1/admin/audit?type=login_failed&user_id="+user.User.ID)["events"].([]any) {
			e := raw.(map[string]any)
			assert.Equal(t, "user", e["actor"])
			reasons = append(reasons, e["details"].(map[string]any)["reason"].(string))
		}
		assert.Equal(t, []string{"account_disabled", "wrong_password"}, reasons, "newest first")

		exchange := func(token string) response {
			return s.do(t, http.MethodPost, "/v1/auth/exchange/better-auth",
				jsonBody(t, map[string]string{"token": signBetterAuth(token, betterAuthSecret)}))
		}
		res := exchange("importedBeforeDisable0123456789ab")
		assert.Equal(t, http.StatusBadRequest, res.status, "disabling ended it: %s", res.body)
		res = exchange("importedAfterDisable0123456789abc")
		assert.Equal(t, http.StatusForbidden, res.status, string(res.body))
		assert.Equal(t, "account_disabled", res.json(t)["code"])

		require.Equal(t, http.StatusNoContent, s.adminCall(t, http.MethodPost, "/v1/admin/users/"+user.User.ID+"/enable", testAdminToken).status)
		res = exchange("importedAfterDisable0123456789abc")
		assert.Equal(t, http.StatusOK, res.status, "the refused exchange did not spend the session: %s", res.body)
	})
}
