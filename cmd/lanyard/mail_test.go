package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/mail"
	"github.com/lanyard-id/lanyard/internal/mailtest"
	"github.com/lanyard-id/lanyard/internal/testdb"
)

const appURL = "https://learn.example.com"

// mailVars are the settings of a Lanyard that mails through smtp and sends
// due mail quickly (the tests wait on arrivals, not on the poll).
func mailVars(dbURL string, smtp *mailtest.Server, extra map[string]string) map[string]string {
	vars := map[string]string{
		"LANYARD_DATABASE_URL":         dbURL,
		"LANYARD_SECRET":               strings.Repeat("m", 40),
		"LANYARD_SMTP_URL":             fmt.Sprintf("smtp://%s", smtp.Addr()),
		"LANYARD_MAIL_FROM":            "Learn <no-reply@learn.example.com>",
		"LANYARD_APP_URL":              appURL,
		"LANYARD_MAIL_POLL_INTERVAL":   "200ms",
		"LANYARD_MAIL_RETRY_BASE":      "300ms",
		"LANYARD_RATE_LIMIT_SIGNUP_IP": "0",
	}
	for k, v := range extra {
		vars[k] = v
	}
	return vars
}

// claim reads one claim of an access token (already verified elsewhere).
func claim(t *testing.T, token, name string) any {
	t.Helper()
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var claims map[string]any
	require.NoError(t, json.Unmarshal(payload, &claims))
	return claims[name]
}

// awaitMail waits until addr has received n mails and returns them.
func awaitMail(t *testing.T, smtp *mailtest.Server, addr string, n int) []mailtest.Message {
	t.Helper()
	require.True(t, pollUntil(15*time.Second, 20*time.Millisecond, func() bool { return len(smtp.MessagesTo(addr)) >= n }),
		"%s received %d mails, want %d", addr, len(smtp.MessagesTo(addr)), n)
	return smtp.MessagesTo(addr)
}

// outboxIdle waits until no mail waits to be sent (sent or given up).
func outboxIdle(t *testing.T, db *pgx.Conn) {
	t.Helper()
	require.True(t, pollUntil(15*time.Second, 20*time.Millisecond, func() bool {
		return replicaCount(t, db, `SELECT count(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL`) == 0
	}), "the outbox did not drain")
}

// linkToken checks a mail's link points at the application path and
// returns its token.
func linkToken(t *testing.T, m mailtest.Message, path string) string {
	t.Helper()
	link := m.Link(path)
	require.NotEmpty(t, link, "no %s link in %q: %v", path, m.Subject, m.Links)
	u, err := url.Parse(link)
	require.NoError(t, err)
	assert.Equal(t, "learn.example.com", u.Host)
	token := u.Query().Get("token")
	require.NotEmpty(t, token)
	assert.Contains(t, m.HTML, link, "the HTML part carries the link too")
	return token
}

// TestMailFlows: verification, password reset and email change end to end,
// through a real SMTP server, on Postgres.
func TestMailFlows(t *testing.T) {
	smtp := mailtest.Start(t, mailtest.Options{})
	dbURL := testdb.PostgresURL(t)
	db := testdb.Connect(t, dbURL)
	l := start(t, mailVars(dbURL, smtp, nil))
	const email, pw = "ada@example.com", "correct horse battery staple"

	// Sign-up (optional verification): signed in at once, not verified.
	status, body := l.post(t, "/v1/auth/signup", map[string]any{"email": email, "password": pw})
	require.Equal(t, http.StatusCreated, status, "%v", body)
	assert.Equal(t, false, claim(t, body["access_token"].(string), "email_verified"))
	assert.Equal(t, false, body["user"].(map[string]any)["email_verified"])
	userID := body["user"].(map[string]any)["id"].(string)
	refresh := body["refresh_token"].(string)

	verify := awaitMail(t, smtp, email, 1)[0]
	assert.Equal(t, "no-reply@learn.example.com", verify.From)
	token := linkToken(t, verify, "/verify-email")
	assert.True(t, strings.HasPrefix(token, "lmt_"))
	assert.Equal(t, 1, replicaCount(t, db, `SELECT count(*) FROM mail_tokens WHERE token_hash = sha256(convert_to($1, 'UTF8'))`, token),
		"the token is stored as its hash")
	assert.Equal(t, 0, replicaCount(t, db, `SELECT count(*) FROM outbox WHERE position(convert_to($1, 'UTF8') in coalesce(payload, ''::bytea)) > 0`, token),
		"the outbox never holds a token in clear")

	// Bad tokens on every token endpoint, while the account is still
	// unverified: 4xx, and nothing changes.
	for _, path := range []string{"/v1/auth/email/verify", "/v1/auth/password/reset", "/v1/auth/email/confirm"} {
		for _, bad := range []any{"lmt_" + strings.Repeat("A", 43), "not-a-token", strings.Repeat("x", 600), 42, "", strings.Repeat("x", 1<<20)} {
			status, _ := l.post(t, path, map[string]any{"token": bad, "new_password": "another long passphrase 2026"})
			assert.True(t, status >= 400 && status < 500, "%s %.20v: %d", path, bad, status)
		}
	}
	status, body = l.get(t, "/v1/me", body["access_token"].(string))
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, false, body["email_verified"], "no bad token verified the address")
	status, _ = l.post(t, "/v1/auth/login", map[string]any{"email": email, "password": pw})
	require.Equal(t, http.StatusOK, status, "no bad token changed the password")

	// A token is good for its purpose only, and once.
	status, body = l.post(t, "/v1/auth/password/reset", map[string]any{"token": token, "new_password": "another long passphrase 2026"})
	require.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "invalid_token", body["code"])
	status, _ = l.post(t, "/v1/auth/email/verify", map[string]any{"token": token})
	require.Equal(t, http.StatusNoContent, status)
	status, body = l.post(t, "/v1/auth/email/verify", map[string]any{"token": token})
	require.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "invalid_token", body["code"])
	status, body = l.post(t, "/v1/auth/refresh", map[string]any{"refresh_token": refresh})
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, true, claim(t, body["access_token"].(string), "email_verified"), "the next token says verified")
	access := body["access_token"].(string)
	status, _ = l.call(t, http.MethodPost, "/v1/me/email/verification", access, nil)
	assert.Equal(t, http.StatusAccepted, status, "resend when verified: accepted, nothing sent")

	// Bad tokens: 4xx, never 500, nothing changes.
	for _, bad := range []any{"lmt_" + strings.Repeat("A", 43), "not-a-token", strings.Repeat("x", 600), 42, ""} {
		status, _ = l.post(t, "/v1/auth/email/verify", map[string]any{"token": bad})
		assert.Equal(t, http.StatusBadRequest, status, "%v", bad)
	}
	status, _ = l.post(t, "/v1/auth/email/verify", map[string]any{"token": strings.Repeat("x", 1<<20)})
	assert.Equal(t, http.StatusRequestEntityTooLarge, status)

	// Password reset: the unknown address answers alike and gets nothing.
	status, known := l.post(t, "/v1/auth/password/forgot", map[string]any{"email": "ADA@example.com"})
	require.Equal(t, http.StatusAccepted, status)
	status, unknown := l.post(t, "/v1/auth/password/forgot", map[string]any{"email": "nobody@example.com"})
	require.Equal(t, http.StatusAccepted, status)
	assert.Equal(t, known, unknown)
	reset := awaitMail(t, smtp, email, 2)[1]
	resetToken := linkToken(t, reset, "/reset-password")
	outboxIdle(t, db)
	assert.Empty(t, smtp.MessagesTo("nobody@example.com"))

	// The password rules apply, and a refused password leaves the token usable.
	status, body = l.post(t, "/v1/auth/password/reset", map[string]any{"token": resetToken, "new_password": "aaaaaaaaaaaaaaaa"})
	require.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "validation_failed", body["code"])
	const newPW = "a brand new passphrase for ada"
	status, _ = l.post(t, "/v1/auth/password/reset", map[string]any{"token": resetToken, "new_password": newPW})
	require.Equal(t, http.StatusNoContent, status)
	status, _ = l.post(t, "/v1/auth/password/reset", map[string]any{"token": resetToken, "new_password": "yet another passphrase here"})
	assert.Equal(t, http.StatusBadRequest, status, "used once")
	status, _ = l.get(t, "/v1/me", access)
	assert.Equal(t, http.StatusUnauthorized, status, "every session ended")
	notice := awaitMail(t, smtp, email, 3)[2]
	assert.Empty(t, notice.Links, "a notice carries no token")
	status, _ = l.post(t, "/v1/auth/login", map[string]any{"email": email, "password": pw})
	assert.Equal(t, http.StatusUnauthorized, status)
	status, body = l.post(t, "/v1/auth/login", map[string]any{"email": email, "password": newPW})
	require.Equal(t, http.StatusOK, status)
	access = body["access_token"].(string)

	// Email change: confirmation to the new address, notice to the old.
	const newEmail = "ada.lovelace@example.org"
	status, body = l.call(t, http.MethodPost, "/v1/me/email", access, map[string]any{"new_email": newEmail, "current_password": "wrong password entirely"})
	require.Equal(t, http.StatusUnauthorized, status, "%v", body)
	status, _ = l.call(t, http.MethodPost, "/v1/me/email", access, map[string]any{"new_email": newEmail, "current_password": newPW})
	require.Equal(t, http.StatusAccepted, status)
	confirm := awaitMail(t, smtp, newEmail, 1)[0]
	changeToken := linkToken(t, confirm, "/confirm-email")
	awaitMail(t, smtp, email, 4)
	status, _ = l.post(t, "/v1/auth/email/confirm", map[string]any{"token": changeToken})
	require.Equal(t, http.StatusNoContent, status)
	status, _ = l.post(t, "/v1/auth/email/confirm", map[string]any{"token": changeToken})
	assert.Equal(t, http.StatusBadRequest, status)
	awaitMail(t, smtp, email, 5) // "your address was changed", to the old one
	status, body = l.post(t, "/v1/auth/login", map[string]any{"email": newEmail, "password": newPW})
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, userID, body["user"].(map[string]any)["id"], "the same user")
	assert.Equal(t, true, claim(t, body["access_token"].(string), "email_verified"))
	status, _ = l.post(t, "/v1/auth/login", map[string]any{"email": email, "password": newPW})
	assert.Equal(t, http.StatusUnauthorized, status)

	// Every mail went out exactly once.
	outboxIdle(t, db)
	assert.Equal(t, 5, len(smtp.MessagesTo(email)))
	assert.Equal(t, 1, len(smtp.MessagesTo(newEmail)))
	ids := map[string]bool{}
	for _, m := range smtp.Messages() {
		id := m.Header.Get("Message-Id")
		assert.False(t, ids[id], "mail %s sent twice", id)
		ids[id] = true
	}
}

// TestMailRequiredVerification: with LANYARD_EMAIL_VERIFICATION=required,
// sign-up gives no tokens (the same answer for a taken address) and login
// waits for the verification; on the embedded database.
func TestMailRequiredVerification(t *testing.T) {
	smtp := mailtest.Start(t, mailtest.Options{})
	vars := mailVars("", smtp, map[string]string{"LANYARD_EMAIL_VERIFICATION": "required"})
	delete(vars, "LANYARD_DATABASE_URL")
	l := start(t, vars)
	creds := map[string]any{"email": "grace@example.com", "password": "correct horse battery staple"}

	status, first := l.post(t, "/v1/auth/signup", creds)
	require.Equal(t, http.StatusAccepted, status, "%v", first)
	assert.NotContains(t, first, "access_token")
	status, again := l.post(t, "/v1/auth/signup", map[string]any{"email": "GRACE@example.com", "password": "some other long passphrase"})
	require.Equal(t, http.StatusAccepted, status)
	assert.Equal(t, first, again, "a taken address answers alike")

	mails := awaitMail(t, smtp, "grace@example.com", 2)
	kinds := []string{mails[0].Subject, mails[1].Subject}
	var verify mailtest.Message
	for _, m := range mails {
		if m.Link("/verify-email") != "" {
			verify = m
		}
	}
	require.NotEmpty(t, verify.Links, "one of them verifies: %v", kinds)

	status, body := l.post(t, "/v1/auth/login", creds)
	require.Equal(t, http.StatusForbidden, status)
	assert.Equal(t, "email_unverified", body["code"])
	status, body = l.post(t, "/v1/auth/login", map[string]any{"email": "grace@example.com", "password": "not the password at all"})
	assert.Equal(t, http.StatusUnauthorized, status, "a wrong password learns nothing about verification: %v", body)

	status, _ = l.post(t, "/v1/auth/email/verify", map[string]any{"token": linkToken(t, verify, "/verify-email")})
	require.Equal(t, http.StatusNoContent, status)
	status, body = l.post(t, "/v1/auth/login", creds)
	require.Equal(t, http.StatusOK, status, "%v", body)
	assert.Equal(t, true, claim(t, body["access_token"].(string), "email_verified"))
}

// TestMailOutageTwoReplicas: mail written while the SMTP server is down is
// delivered once it is back, exactly once, with two replicas sending; a
// reset ends the user's sessions on both replicas.
func TestMailOutageTwoReplicas(t *testing.T) {
	smtp := mailtest.Start(t, mailtest.Options{})
	dbURL := testdb.PostgresURL(t)
	db := testdb.Connect(t, dbURL)
	a := start(t, mailVars(dbURL, smtp, nil))
	b := start(t, mailVars(dbURL, smtp, nil))
	const pw = "correct horse battery staple"
	users := []string{"u1@example.com", "u2@example.com", "u3@example.com"}
	access := map[string][2]string{}
	for _, u := range users {
		status, body := a.post(t, "/v1/auth/signup", map[string]any{"email": u, "password": pw})
		require.Equal(t, http.StatusCreated, status)
		status, onB := b.post(t, "/v1/auth/login", map[string]any{"email": u, "password": pw})
		require.Equal(t, http.StatusOK, status)
		access[u] = [2]string{body["access_token"].(string), onB["access_token"].(string)}
		awaitMail(t, smtp, u, 1)
	}

	smtp.Stop()
	for i, u := range users {
		replica := []*lanyard{a, b}[i%2]
		status, _ := replica.post(t, "/v1/auth/password/forgot", map[string]any{"email": u})
		require.Equal(t, http.StatusAccepted, status, "accepted while the SMTP server is down")
	}
	require.True(t, pollUntil(15*time.Second, 20*time.Millisecond, func() bool {
		return replicaCount(t, db, `SELECT count(*) FROM outbox WHERE kind = 'reset_password' AND attempts >= 2 AND sent_at IS NULL`) == len(users)
	}), "each reset mail was tried (and failed) at least twice")
	smtp.Restart()
	for _, u := range users {
		awaitMail(t, smtp, u, 2)
	}
	outboxIdle(t, db)
	// Both replicas keep polling; nothing more may arrive.
	assert.Never(t, func() bool {
		for _, u := range users {
			if len(smtp.MessagesTo(u)) != 2 {
				return true
			}
		}
		return false
	}, time.Second, 50*time.Millisecond, "a mail was delivered twice")

	// A reset through replica A ends the sessions opened on both.
	u := users[0]
	token := linkToken(t, smtp.MessagesTo(u)[1], "/reset-password")
	status, _ := a.post(t, "/v1/auth/password/reset", map[string]any{"token": token, "new_password": "a brand new passphrase for u1"})
	require.Equal(t, http.StatusNoContent, status)
	for i, l := range []*lanyard{a, b} {
		for j, tok := range access[u] {
			status, _ := l.get(t, "/v1/me", tok)
			assert.Equal(t, http.StatusUnauthorized, status, "replica %d, session %d", i, j)
		}
	}
	assert.Equal(t, 0, replicaCount(t, db, `SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = $1 AND s.revoked_at IS NULL`, u))
}

// TestForgotPasswordTiming: a reset asked for an unknown address takes
// the same time as one for a known account (medians of 150 samples each,
// interleaved, within 5 ms).
func TestForgotPasswordTiming(t *testing.T) {
	smtp := mailtest.Start(t, mailtest.Options{})
	dbURL := testdb.PostgresURL(t)
	l := start(t, mailVars(dbURL, smtp, map[string]string{
		"LANYARD_RATE_LIMIT_FORGOT_EMAIL": "0", "LANYARD_RATE_LIMIT_FORGOT_IP": "0",
	}))
	status, _ := l.post(t, "/v1/auth/signup", map[string]any{"email": "known@example.com", "password": "correct horse battery staple"})
	require.Equal(t, http.StatusCreated, status)
	client := &http.Client{}
	timeOne := func(email string) time.Duration {
		b, _ := json.Marshal(map[string]string{"email": email})
		began := time.Now()
		res, err := client.Post(l.url+"/v1/auth/password/forgot", "application/json", bytes.NewReader(b))
		took := time.Since(began)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusAccepted, res.StatusCode)
		return took
	}
	for range 20 { // warm up connections and caches
		timeOne("known@example.com")
		timeOne("unknown@example.com")
	}
	var known, unknown []time.Duration
	for i := range 150 {
		if i%2 == 0 {
			known = append(known, timeOne("known@example.com"))
			unknown = append(unknown, timeOne(fmt.Sprintf("unknown%d@example.com", i)))
		} else {
			unknown = append(unknown, timeOne(fmt.Sprintf("unknown%d@example.com", i)))
			known = append(known, timeOne("known@example.com"))
		}
	}
	median := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	mk, mu := median(known), median(unknown)
	t.Logf("forgot-password medians: known %v, unknown %v", mk, mu)
	assert.InDelta(t, float64(mk), float64(mu), float64(5*time.Millisecond), "known %v vs unknown %v", mk, mu)
}

// TestStoredEmailCheck: addresses stored before the stricter rules are
// reported, never rewritten.
func TestStoredEmailCheck(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(string(d), func(t *testing.T) {
			st := testdb.Open(t, d)
			db := testdb.SQL(t, st)
			rows := map[string]string{
				"8a6d9a7e-0000-4000-8000-000000000001": "carol@example.com",
				"8a6d9a7e-0000-4000-8000-000000000002": "c\u0430rol@example.com",  // Cyrillic а
				"8a6d9a7e-0000-4000-8000-000000000003": "\uff43arol@example.com",  // fullwidth c
				"8a6d9a7e-0000-4000-8000-000000000004": "carol@xn--bcher-kva.de",  // an A-label: stored in another form
				"8a6d9a7e-0000-4000-8000-000000000005": "car\u3164ol@example.com", // Hangul filler
				"8a6d9a7e-0000-4000-8000-000000000006": "dave@example.com",
			}
			for id, email := range rows {
				require.NoError(t, db.Exec(`INSERT INTO users (id, email, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
					id, email, "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA", time.Now(), time.Now()).Error)
			}
			findings, err := checkStoredEmails(context.Background(), st)
			require.NoError(t, err)
			var flagged []string
			for _, f := range findings {
				flagged = append(flagged, f.UserID)
				assert.NotContains(t, f.Reason, "arol", "the reason never quotes the address")
			}
			slices.Sort(flagged)
			assert.Equal(t, []string{
				"8a6d9a7e-0000-4000-8000-000000000002", "8a6d9a7e-0000-4000-8000-000000000003",
				"8a6d9a7e-0000-4000-8000-000000000004", "8a6d9a7e-0000-4000-8000-000000000005",
			}, flagged)
			var stored string
			require.NoError(t, db.Raw(`SELECT email FROM users WHERE id = ?`, "8a6d9a7e-0000-4000-8000-000000000002").Scan(&stored).Error)
			assert.Equal(t, rows["8a6d9a7e-0000-4000-8000-000000000002"], stored, "reported, not rewritten")
		})
	}
}

// TestEveryMailKindRenders: each kind of mail the use cases write has
// templates, so none is given up for want of one.
func TestEveryMailKindRenders(t *testing.T) {
	templates, err := mail.LoadTemplates("")
	require.NoError(t, err)
	for _, kind := range []mail.Kind{identity.KindVerifyEmail, identity.KindResetPassword, identity.KindConfirmEmailChange,
		identity.KindEmailChangeRequested, identity.KindEmailChangedNotice, identity.KindPasswordChangedNotice, identity.KindSignUpAttemptNotice} {
		subject, text, html, err := templates.Render(kind, mail.Data{AppName: "Learn",
			Email: "ada@example.com", NewEmail: "ada@example.org", Link: appURL + "/x?token=lmt_abc", ExpiresIn: time.Hour})
		require.NoError(t, err, kind)
		assert.NotEmpty(t, subject, kind)
		assert.Contains(t, text, "ada@example", kind)
		assert.NotEmpty(t, html, kind)
	}
}
