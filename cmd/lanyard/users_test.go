package main

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/api"
	"github.com/lanyard-id/lanyard/internal/testdb"
)

const cliAdminToken = "an-admin-token-for-the-cmd-tests-0123456789"

// adminRequest calls the admin API at base with token ("" for none) and
// returns the status and the raw body.
func adminRequest(t *testing.T, base, method, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := replicaClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

func problemCode(t *testing.T, body string) string {
	t.Helper()
	var p struct{ Code string }
	require.NoError(t, json.Unmarshal([]byte(body), &p), body)
	return p.Code
}

// throttleKey computes a throttle counter's key as the server does
// (identity/throttle.go), from LANYARD_SECRET.
func throttleKey(t *testing.T, secret string, parts ...string) []byte {
	t.Helper()
	key, err := hkdf.Key(sha256.New, []byte(secret), nil, "lanyard throttle key v1", sha256.Size)
	require.NoError(t, err)
	mac := hmac.New(sha256.New, key)
	for _, p := range parts {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		mac.Write(n[:])
		mac.Write([]byte(p))
	}
	return mac.Sum(nil)
}

// references lists every column of every table in the schema holding a
// value that contains the user id or the email address (as text, or as
// bytes in a bytea column). It reads the catalogue, so a table added later
// is covered without changing this test.
func references(t *testing.T, db *pgx.Conn, schema, userID, email string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := db.Query(ctx, `SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c
JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
WHERE c.table_schema = $1 AND t.table_type = 'BASE TABLE' ORDER BY 1, 2`, schema)
	require.NoError(t, err)
	type column struct{ table, name, typ string }
	var columns []column
	for rows.Next() {
		var c column
		require.NoError(t, rows.Scan(&c.table, &c.name, &c.typ))
		columns = append(columns, c)
	}
	require.NoError(t, rows.Err())
	require.NotEmpty(t, columns)
	var found []string
	for _, c := range columns {
		ident := pgx.Identifier{schema, c.table}.Sanitize()
		col := pgx.Identifier{c.name}.Sanitize()
		var where string
		switch c.typ {
		case "bytea":
			where = fmt.Sprintf(`position(convert_to($1, 'UTF8') in %s) > 0 OR position(convert_to($2, 'UTF8') in %s) > 0`, col, col)
		case "integer", "bigint", "smallint", "boolean", "timestamp with time zone", "timestamp without time zone", "numeric", "double precision":
			continue // cannot hold either
		default:
			where = fmt.Sprintf(`position($1 in %s::text) > 0 OR position($2 in lower(%s::text)) > 0`, col, col)
		}
		var n int64
		require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM `+ident+` WHERE `+where, userID, strings.ToLower(email)).Scan(&n), c)
		if n > 0 {
			found = append(found, c.table+"."+c.name)
		}
	}
	return found
}

// TestAdminAcrossReplicas: two replicas on one PostgreSQL database. What an
// operator does on one holds on the other at once: a user disabled on A
// cannot log in or refresh on B, and B's bearer endpoints refuse its access
// token; deleting it leaves nothing that names it but its audit events.
func TestAdminAcrossReplicas(t *testing.T) {
	bin := replicaBuild(t)
	dbURL := testdb.PostgresURL(t)
	secret := strings.Repeat("admin-replica-", 3)
	shared := map[string]string{
		"LANYARD_DATABASE_URL": dbURL, "LANYARD_SECRET": secret, "LANYARD_ISSUER": "http://lanyard.test",
		"LANYARD_ADMIN_TOKEN": cliAdminToken,
	}
	a := replicaLaunch(t, bin, "A", shared, nil)
	b := replicaLaunch(t, bin, "B", shared, nil)
	a.awaitReady(t)
	b.awaitReady(t)
	adminA, adminB := a.listeningField("admin"), b.listeningField("admin")
	require.True(t, strings.HasPrefix(adminA, "http://"), adminA)
	require.True(t, strings.HasPrefix(adminB, "http://"), adminB)
	db := testdb.Connect(t, dbURL)
	ctx := context.Background()

	const email, password = "operated@example.com", "correct horse battery staple"
	status, body := a.post(t, "/v1/auth/signup", map[string]any{"email": email, "password": password})
	require.Equal(t, http.StatusCreated, status, body)
	userID := body["user"].(map[string]any)["id"].(string)
	status, body = b.post(t, "/v1/auth/login", map[string]any{"email": email, "password": password})
	require.Equal(t, http.StatusOK, status, body)
	access, refresh := body["access_token"].(string), body["refresh_token"].(string)
	baToken := make([]byte, 32)
	_, _ = rand.Read(baToken)
	_, err := db.Exec(ctx, `INSERT INTO lanyard.better_auth_sessions (user_id, token_hash, expires_at) VALUES ($1, $2, now() + interval '1 day')`, userID, baToken)
	require.NoError(t, err)

	t.Run("the admin token guards every path alike", func(t *testing.T) {
		var first string
		for _, token := range []string{"", "wrong", cliAdminToken[:31], cliAdminToken + "x"} {
			for _, path := range []string{"/v1/admin/users/" + userID, "/v1/admin/users/nobody", "/v1/admin/users?cursor=%21", "/v1/admin/audit"} {
				status, body := adminRequest(t, adminA, http.MethodGet, path, token)
				require.Equal(t, http.StatusUnauthorized, status, body)
				if first == "" {
					first = body
				}
				assert.Equal(t, first, body, "%q %s", token, path)
			}
		}
		status, body := adminRequest(t, a.url, http.MethodGet, "/v1/admin/users/"+userID, cliAdminToken)
		assert.Equal(t, http.StatusNotFound, status, "not on the public listener: %s", body)
		status, _ = adminRequest(t, adminA, http.MethodGet, "/v1/admin/users/nobody", cliAdminToken)
		assert.Equal(t, http.StatusNotFound, status)
		status, body = adminRequest(t, adminA, http.MethodGet, "/v1/admin/audit?cursor=bm9wZQ", cliAdminToken)
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "invalid_cursor", problemCode(t, body))
	})

	require.True(t, t.Run("disabled on A, refused on B", func(t *testing.T) {
		status, body := adminRequest(t, adminA, http.MethodPost, "/v1/admin/users/"+userID+"/disable", cliAdminToken)
		require.Equal(t, http.StatusNoContent, status, body)

		status, out := b.post(t, "/v1/auth/login", map[string]any{"email": email, "password": password})
		assert.Equal(t, http.StatusForbidden, status)
		assert.Equal(t, "account_disabled", out["code"])
		status, out = b.post(t, "/v1/auth/login", map[string]any{"email": email, "password": "not the password at all"})
		assert.Equal(t, http.StatusUnauthorized, status)
		assert.Equal(t, "invalid_credentials", out["code"], "a wrong password tells nothing")
		status, out = b.post(t, "/v1/auth/refresh", map[string]any{"refresh_token": refresh})
		assert.Equal(t, http.StatusForbidden, status)
		assert.Equal(t, "account_disabled", out["code"])
		status, _ = b.get(t, "/v1/me", access)
		assert.Equal(t, http.StatusUnauthorized, status, "B's bearer endpoint refuses the old access token")

		assert.Zero(t, replicaCount(t, db, `SELECT count(*) FROM lanyard.sessions WHERE user_id = $1 AND revoked_at IS NULL`, userID))
		assert.Equal(t, 2, replicaCount(t, db, `SELECT count(*) FROM lanyard.sessions WHERE user_id = $1 AND revoke_reason = 'disabled'`, userID))
		assert.Equal(t, 1, replicaCount(t, db, `SELECT count(*) FROM lanyard.better_auth_sessions WHERE user_id = $1 AND exchanged_at IS NOT NULL`, userID),
			"the imported Better-Auth session ended too")

		status, body = adminRequest(t, adminB, http.MethodPost, "/v1/admin/users/"+userID+"/enable", cliAdminToken)
		require.Equal(t, http.StatusNoContent, status, body)
		status, out = a.post(t, "/v1/auth/login", map[string]any{"email": email, "password": password})
		assert.Equal(t, http.StatusOK, status, out)
		access = out["access_token"].(string)
	}), "deletion builds on the user being enabled")

	t.Run("deletion leaves nothing naming the user", func(t *testing.T) {
		status, out, err := a.do(http.MethodPut, "/v1/me/profile", access, map[string]any{"python_proficiency": "advanced", "developer_role": "researcher"})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status, out)
		status, _ = b.post(t, "/v1/auth/login", map[string]any{"email": email, "password": "a wrong password for throttles"})
		require.Equal(t, http.StatusUnauthorized, status)
		status, _ = a.post(t, "/v1/auth/password/forgot", map[string]any{"email": email})
		require.Equal(t, http.StatusAccepted, status)
		// An email change in flight: its confirmation to the new address
		// waits in the outbox when the user is deleted.
		const newEmail = "operated-new@example.com"
		status, out, err = a.do(http.MethodPost, "/v1/me/email", access, map[string]any{"new_email": newEmail, "current_password": password})
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, status, out)
		mails := `SELECT count(*) FROM lanyard.outbox WHERE lower(recipient) IN ($1, $2)`
		require.Equal(t, 1, replicaCount(t, db, `SELECT count(*) FROM lanyard.outbox WHERE recipient = $1 AND kind = 'confirm_email_change'`, newEmail))
		require.Equal(t, 1, replicaCount(t, db, `SELECT count(*) FROM lanyard.mail_tokens WHERE user_id = $1 AND purpose = 'change_email' AND email = $2`, userID, newEmail))
		mailToKey := throttleKey(t, secret, "mail_to", newEmail)
		mailTo := `SELECT count(*) FROM lanyard.throttles WHERE scope = 'mail_to' AND key = $1`
		require.Equal(t, 1, replicaCount(t, db, mailTo, mailToKey), "the new address's mail counter exists before")

		loginKey := throttleKey(t, secret, "login_account", "user:"+userID)
		forgotKey := throttleKey(t, secret, "forgot_email", email)
		throttles := `SELECT count(*) FROM lanyard.throttles WHERE (scope = 'login_account' AND key = $1) OR (scope = 'forgot_email' AND key = $2)`
		require.Equal(t, 2, replicaCount(t, db, throttles, loginKey, forgotKey), "the account's counters exist before")
		// The account's per-client counters begin with the account's own prefix.
		perClientPrefix := throttleKey(t, secret, "login_account_ip", "user:"+userID)[:16]
		perClient := `SELECT count(*) FROM lanyard.throttles WHERE scope = 'login_account_ip' AND substring(key from 1 for 16) = $1`
		require.Positive(t, replicaCount(t, db, perClient, perClientPrefix), "the account's per-client counters exist before")
		before := references(t, db, "lanyard", userID, email)
		for _, col := range []string{"users.id", "users.email", "sessions.user_id", "profiles.user_id", "mail_tokens.user_id",
			"outbox.recipient", "better_auth_sessions.user_id", "audit_events.user_id"} {
			assert.Contains(t, before, col, "the scan finds the user where it is")
		}

		status, body := adminRequest(t, adminB, http.MethodDelete, "/v1/admin/users/"+userID, cliAdminToken)
		require.Equal(t, http.StatusNoContent, status, body)

		assert.Equal(t, []string{"audit_events.user_id"}, references(t, db, "lanyard", userID, email))
		assert.Zero(t, replicaCount(t, db, throttles, loginKey, forgotKey), "the account's throttle counters are gone")
		assert.Zero(t, replicaCount(t, db, perClient, perClientPrefix), "the account's per-client counters are gone")
		assert.Zero(t, replicaCount(t, db, mails, email, newEmail), "no mail to either address remains: the pending confirmation is gone too")
		assert.Zero(t, replicaCount(t, db, mailTo, mailToKey), "the new address's mail counter is gone")
		assert.Positive(t, replicaCount(t, db, `SELECT count(*) FROM lanyard.audit_events WHERE user_id = $1 AND type = 'user_deleted' AND actor = 'admin'`, userID))

		status, _ = adminRequest(t, adminA, http.MethodGet, "/v1/admin/users/"+userID, cliAdminToken)
		assert.Equal(t, http.StatusNotFound, status)
		status, _ = a.get(t, "/v1/me", access)
		assert.Equal(t, http.StatusUnauthorized, status)
		status, out = b.post(t, "/v1/auth/login", map[string]any{"email": email, "password": password})
		assert.Equal(t, http.StatusUnauthorized, status, out)
	})
}

// TestUsersCommands runs every `lanyard users` subcommand and `lanyard
// audit` against a running server's database, embedded and PostgreSQL.
func TestUsersCommands(t *testing.T) {
	for _, name := range programDatabases {
		t.Run(name, func(t *testing.T) {
			vars := onDatabase(t, name, strings.Repeat("cli-secret-", 4), map[string]string{"LANYARD_ISSUER": "http://lanyard.test"})
			l := start(t, vars)
			const password = "correct horse battery staple"
			ids := map[string]string{}
			for _, email := range []string{"cli-a@example.com", "cli-b@example.com"} {
				status, body := l.post(t, "/v1/auth/signup", map[string]any{"email": email, "password": password})
				require.Equal(t, http.StatusCreated, status, body)
				ids[email] = body["user"].(map[string]any)["id"].(string)
			}
			id := ids["cli-a@example.com"]
			cli := func(args ...string) (string, error) {
				t.Helper()
				err, out := runAdmin(t, args, vars)
				return out, err
			}
			login := func() (int, map[string]any) {
				return l.post(t, "/v1/auth/login", map[string]any{"email": "cli-a@example.com", "password": password})
			}

			t.Run("list", func(t *testing.T) {
				out, err := cli("users", "list")
				require.NoError(t, err)
				assert.Regexp(t, `(?m)^ID\s+EMAIL\s+VERIFIED\s+DISABLED\s+CREATED$`, out)
				assert.Contains(t, out, "cli-a@example.com")
				assert.Contains(t, out, "cli-b@example.com")
				assert.NotContains(t, out, "more:")

				out, err = cli("users", "list", "--email-prefix", "CLI-B")
				require.NoError(t, err)
				assert.Contains(t, out, ids["cli-b@example.com"])
				assert.NotContains(t, out, "cli-a@example.com")

				out, err = cli("users", "list", "--limit", "1")
				require.NoError(t, err)
				assert.Contains(t, out, "cli-a@example.com")
				m := regexp.MustCompile(`more: --cursor (\S+)`).FindStringSubmatch(out)
				require.Len(t, m, 2, out)
				out, err = cli("users", "list", "--limit", "1", "--cursor", m[1])
				require.NoError(t, err)
				assert.Contains(t, out, "cli-b@example.com")
				assert.NotContains(t, out, "cli-a@example.com")

				out, err = cli("users", "list", "--json")
				require.NoError(t, err)
				var list api.AdminUserList
				require.NoError(t, json.Unmarshal([]byte(out), &list), out)
				require.Len(t, list.Users, 2)
				assert.Nil(t, list.NextCursor)

				_, err = cli("users", "list", "--cursor", "not-a-cursor")
				assert.ErrorContains(t, err, "invalid_cursor")
				_, err = cli("users", "list", "--limit", "0")
				assert.ErrorContains(t, err, "--limit must be between 1 and 200")
				_, err = cli("users", "list", "extra")
				assert.Error(t, err)
			})

			t.Run("show", func(t *testing.T) {
				out, err := cli("users", "show", id)
				require.NoError(t, err)
				assert.Regexp(t, `(?m)^email:\s+cli-a@example.com$`, out)
				assert.Regexp(t, `(?m)^live sessions:\s+1$`, out)
				assert.Regexp(t, `(?m)^disabled:\s+-$`, out)
				out, err = cli("users", "show", "--json", id)
				require.NoError(t, err)
				var u api.AdminUserDetail
				require.NoError(t, json.Unmarshal([]byte(out), &u), out)
				assert.Equal(t, id, u.Id)
				assert.Equal(t, 1, u.LiveSessions)
				assert.NotNil(t, u.LastLoginAt)
				_, err = cli("users", "show", "nobody")
				assert.EqualError(t, err, `no user with id "nobody"`)
				_, err = cli("users", "show")
				assert.Error(t, err)
			})

			t.Run("disable and enable", func(t *testing.T) {
				status, body := login()
				require.Equal(t, http.StatusOK, status, body)
				refresh := body["refresh_token"].(string)
				out, err := cli("users", "disable", id)
				require.NoError(t, err)
				assert.Contains(t, out, "disabled")
				status, body = login()
				assert.Equal(t, http.StatusForbidden, status)
				assert.Equal(t, "account_disabled", body["code"])
				status, body = l.post(t, "/v1/auth/refresh", map[string]any{"refresh_token": refresh})
				assert.Equal(t, http.StatusForbidden, status)
				assert.Equal(t, "account_disabled", body["code"])
				out, err = cli("users", "show", id)
				require.NoError(t, err)
				assert.Regexp(t, `(?m)^disabled:\s+\d{4}-`, out)

				_, err = cli("users", "enable", id)
				require.NoError(t, err)
				status, body = login()
				assert.Equal(t, http.StatusOK, status, body)
				_, err = cli("users", "disable", "nobody")
				assert.EqualError(t, err, `no user with id "nobody"`)
			})

			t.Run("end-sessions", func(t *testing.T) {
				status, body := login()
				require.Equal(t, http.StatusOK, status, body)
				refresh := body["refresh_token"].(string)
				_, err := cli("users", "end-sessions", id)
				require.NoError(t, err)
				status, body = l.post(t, "/v1/auth/refresh", map[string]any{"refresh_token": refresh})
				assert.Equal(t, http.StatusUnauthorized, status)
				assert.Equal(t, "invalid_refresh_token", body["code"])
				out, err := cli("users", "show", id)
				require.NoError(t, err)
				assert.Regexp(t, `(?m)^live sessions:\s+0$`, out)
			})

			t.Run("audit", func(t *testing.T) {
				out, err := cli("audit", "--user", id)
				require.NoError(t, err)
				assert.Regexp(t, `(?m)^ID\s+AT\s+TYPE\s+USER\s+ACTOR\s+IP\s+DETAILS$`, out)
				for _, typ := range []string{"user_disabled", "user_enabled", "session_ended", "user_viewed"} {
					assert.Contains(t, out, typ)
				}
				out, err = cli("audit", "--user", id, "--type", "user_disabled", "--json")
				require.NoError(t, err)
				var list api.AuditEventList
				require.NoError(t, json.Unmarshal([]byte(out), &list), out)
				require.Len(t, list.Events, 1)
				e := list.Events[0]
				assert.Equal(t, api.AuditEventActor("admin"), e.Actor)
				assert.Equal(t, "lanyard-cli", e.UserAgent)
				assert.Empty(t, e.Ip)
				assert.Equal(t, map[string]string{"via": "cli"}, e.Details)
				require.NotNil(t, e.UserId)
				assert.Equal(t, id, *e.UserId)

				out, err = cli("audit", "--user", id, "--limit", "1")
				require.NoError(t, err)
				m := regexp.MustCompile(`more: --cursor (\S+)`).FindStringSubmatch(out)
				require.Len(t, m, 2, out)
				page := func(args ...string) api.AuditEventList {
					out, err := cli(append([]string{"audit", "--user", id, "--limit", "1", "--json"}, args...)...)
					require.NoError(t, err)
					var list api.AuditEventList
					require.NoError(t, json.Unmarshal([]byte(out), &list), out)
					require.Len(t, list.Events, 1, out)
					return list
				}
				first, second := page(), page("--cursor", m[1])
				assert.Greater(t, first.Events[0].Id, second.Events[0].Id, "the next page holds the next (older) event")

				_, err = cli("audit", "--type", "bogus")
				assert.ErrorContains(t, err, "validation_failed")
				_, err = cli("audit", "--cursor", "bm9wZQ")
				assert.ErrorContains(t, err, "invalid_cursor")
			})

			t.Run("delete", func(t *testing.T) {
				_, err := cli("users", "delete", id)
				assert.ErrorContains(t, err, "without --yes")
				_, err = cli("users", "show", id)
				require.NoError(t, err, "not deleted without --yes")

				out, err := cli("users", "delete", id, "--yes")
				require.NoError(t, err)
				assert.Contains(t, out, "deleted")
				_, err = cli("users", "show", id)
				assert.EqualError(t, err, fmt.Sprintf("no user with id %q", id))
				_, err = cli("users", "delete", "--yes", id)
				assert.EqualError(t, err, fmt.Sprintf("no user with id %q", id))
				status, _ := login()
				assert.Equal(t, http.StatusUnauthorized, status)
				out, err = cli("audit", "--user", id, "--type", "user_deleted")
				require.NoError(t, err)
				assert.Contains(t, out, "user_deleted")
			})

			t.Run("usage", func(t *testing.T) {
				_, err := cli("users")
				assert.ErrorContains(t, err, "lanyard users list")
				_, err = cli("users", "frobnicate", id)
				assert.ErrorContains(t, err, `unknown users command "frobnicate"`)
				out, err := cli("help")
				require.NoError(t, err)
				for _, c := range []string{"lanyard users list", "lanyard users show", "lanyard users disable", "lanyard users delete --yes", "lanyard audit"} {
					assert.Contains(t, out, c)
				}
			})
		})
	}
}

// TestUsersCommandsProveTheSecret: with a LANYARD_SECRET that is not the
// server's, every users/audit command refuses in one line and writes
// nothing. Throttle counters are keyed by an HMAC under the secret: a
// delete with another secret would otherwise report success and leave them.
func TestUsersCommandsProveTheSecret(t *testing.T) {
	for _, name := range programDatabases {
		t.Run(name, func(t *testing.T) {
			vars := onDatabase(t, name, strings.Repeat("cli-secret-", 4), map[string]string{"LANYARD_ISSUER": "http://lanyard.test"})
			l := start(t, vars)
			status, body := l.post(t, "/v1/auth/signup", map[string]any{"email": "proved@example.com", "password": "correct horse battery staple"})
			require.Equal(t, http.StatusCreated, status, body)
			id := body["user"].(map[string]any)["id"].(string)

			wrong := maps.Clone(vars)
			wrong["LANYARD_SECRET"] = strings.Repeat("not-the-servers-secret-", 3)
			for _, args := range [][]string{
				{"users", "delete", "--yes", id}, {"users", "disable", id}, {"users", "end-sessions", id},
				{"users", "show", id}, {"users", "list"}, {"audit", "--user", id},
			} {
				err, out := runAdmin(t, args, wrong)
				require.Error(t, err, "%v", args)
				assert.Equal(t, "LANYARD_SECRET does not open the stored signing keys: it is not the server's secret", err.Error(), "%v", args)
				assert.NotContains(t, out, "deleted", "%v", args)
			}
			// Nothing was written: the user is there, enabled, with its
			// session, and no operator's event names it.
			err, out := runAdmin(t, []string{"users", "show", "--json", id}, vars)
			require.NoError(t, err, "the server's secret still works")
			var u api.AdminUserDetail
			require.NoError(t, json.Unmarshal([]byte(out), &u), out)
			assert.Equal(t, id, u.Id)
			assert.False(t, u.Disabled)
			assert.Equal(t, 1, u.LiveSessions, "no session was ended")
			err, out = runAdmin(t, []string{"audit", "--user", id, "--json"}, vars)
			require.NoError(t, err)
			var list api.AuditEventList
			require.NoError(t, json.Unmarshal([]byte(out), &list), out)
			var adminTypes []string
			for _, e := range list.Events {
				if e.Actor == "admin" {
					adminTypes = append(adminTypes, e.Type)
				}
			}
			assert.Equal(t, []string{"user_viewed"}, adminTypes, "only the show above, with the right secret")
		})
	}
}
