package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/testdb"
)

// betterAuthPeer is the real Better-Auth server of ../shared/peers/better-auth,
// on a database of its own.
type betterAuthPeer struct {
	base  string // http://127.0.0.1:PORT
	dbURL string
	db    *pgx.Conn
}

// betterAuthDir is the peer, beside the project.
var betterAuthDir = filepath.Join("..", "..", "..", "shared", "peers", "better-auth")

// startBetterAuth installs the peer's pinned packages when they are missing,
// gives it a fresh database, runs its own migration and starts its server,
// which is stopped at cleanup.
//
// The database is SQL_ASCII: Postgres then stores any bytes in text columns,
// as a Better-Auth database created long ago with the default template could,
// so the test can hold a name that is not UTF-8, which a UTF8 database
// refuses to store.
func startBetterAuth(t *testing.T) *betterAuthPeer {
	t.Helper()
	dir, err := filepath.Abs(betterAuthDir)
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); os.IsNotExist(err) {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "npm ci in %s: %s", dir, out)
	}

	base := testdb.PostgresURL(t)
	admin := testdb.Connect(t, base)
	u, err := url.Parse(base)
	require.NoError(t, err)
	name := strings.TrimPrefix(u.Path, "/") + "_ba"
	ctx := context.Background()
	_, err = admin.Exec(ctx, "CREATE DATABASE "+name+" ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
	require.NoError(t, err)
	t.Cleanup(func() {
		// Registered after testdb's own cleanup, so it runs first, while
		// the base database (and admin's connection to it) still exist.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		assert.NoError(t, err)
	})
	u.Path = "/" + name
	peer := &betterAuthPeer{dbURL: u.String()}

	nodeEnv := append(os.Environ(), "DATABASE_URL="+peer.dbURL, "ADMIN_DATABASE_URL="+base, "PEER_DB="+name)
	migrate := exec.Command("node", "migrate.mjs")
	migrate.Dir, migrate.Env = dir, nodeEnv
	out, err := migrate.CombinedOutput()
	require.NoError(t, err, "node migrate.mjs: %s", out)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	peer.base = fmt.Sprintf("http://127.0.0.1:%d", port)
	server := exec.Command("node", "server.mjs")
	var log replicaBuffer // written by the process's output copiers, read here
	server.Dir, server.Env, server.Stdout, server.Stderr = dir, append(nodeEnv, fmt.Sprintf("PORT=%d", port)), &log, &log
	require.NoError(t, server.Start())
	exited := make(chan error, 1)
	go func() { exited <- server.Wait() }()
	t.Cleanup(func() {
		_ = server.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = server.Process.Kill()
			<-exited
		}
	})
	up := pollUntil(30*time.Second, 100*time.Millisecond, func() bool {
		res, err := http.Get(peer.base + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	require.True(t, up, "the Better-Auth peer did not answer /healthz within 30s: %s", log.String())
	peer.db = testdb.Connect(t, peer.dbURL)
	return peer
}

// signUp creates a user through Better-Auth's own API and returns its id
// and session token.
func (p *betterAuthPeer) signUp(t *testing.T, name, email, password string) (id, token string) {
	t.Helper()
	body, err := json.Marshal(map[string]string{"name": name, "email": email, "password": password})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, p.base+"/api/auth/sign-up/email", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", p.base) // Better-Auth's CSRF check wants a trusted Origin
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	require.Equal(t, http.StatusOK, res.StatusCode, "sign-up %s: %s", email, raw)
	var out struct {
		Token string `json:"token"`
		User  struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	require.NoError(t, json.Unmarshal(raw, &out))
	require.NotEmpty(t, out.User.ID)
	require.NotEmpty(t, out.Token)
	return out.User.ID, out.Token
}

func (p *betterAuthPeer) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	_, err := p.db.Exec(context.Background(), sql, args...)
	require.NoError(t, err, sql)
}

// destinationState is a fingerprint of everything the import writes: row
// counts and a checksum of every row of each table.
func destinationState(t *testing.T, db *pgx.Conn) string {
	t.Helper()
	var state []string
	for _, table := range []string{"users", "profiles", "better_auth_sessions"} {
		var n int64
		var sum *string
		require.NoError(t, db.QueryRow(context.Background(),
			`SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM `+table+` t`).Scan(&n, &sum))
		state = append(state, fmt.Sprintf("%s=%d/%v", table, n, deref(sum)))
	}
	return strings.Join(state, " ")
}

func deref(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}

// runImport runs the real command and returns its report and its error.
func runImport(t *testing.T, vars map[string]string, args ...string) (string, error) {
	t.Helper()
	var out, progress bytes.Buffer
	err := run(context.Background(), append([]string{"import", "better-auth"}, args...), env(vars), &out, &progress)
	t.Logf("import %v:\n%s%s", args, progress.String(), out.String())
	return out.String(), err
}

// TestImportBetterAuth moves users created through the real Better-Auth
// server into Lanyard on Postgres, with the bad rows a real deployment can
// hold, and checks that the good users sign in to Lanyard with the same
// passwords, under the same ids, with their profiles; that the bad rows are
// reported and fail the command without stopping the others; that a
// re-run and a dry run write nothing; and that live sessions come along.
func TestImportBetterAuth(t *testing.T) {
	ba := startBetterAuth(t)

	type person struct{ id, email, password, token string }
	signUp := func(name, email, password string) person {
		id, token := ba.signUp(t, name, email, password)
		return person{id: id, email: email, password: password, token: token}
	}
	ada := signUp("Ada Lovelace", "ada@example.com", "correct-horse-battery")
	// NFKC turns the ligature and the fullwidth letters into "final passphrase";
	// Better-Auth hashed the NFKC form, and Lanyard must too.
	zoe := signUp("Zoë Ørsted 李小龍", "zoe@example.com", "ﬁnal ｐａｓｓｐｈｒａｓｅ ｎｏ 7")
	grace := signUp("Grace Hopper", "grace@example.com", "cobol-compiler-1959")
	linus := signUp("Linus", "linus@example.com", "penguin-kernel-1991")
	corrupt := signUp("Corrupt", "corrupt@example.com", "whatever-it-was-1")
	dup := signUp("Dup", "dup@example.com", "duplicate-address-1")

	ba.exec(t, `UPDATE account SET password = 'zz:not-a-scrypt-hash' WHERE "userId" = $1`, corrupt.id)
	// Rows Better-Auth's API does not make, written as a long-lived
	// deployment can hold them. badname reuses Ada's hash, so Ada's password.
	ba.exec(t, `INSERT INTO "user" (id, name, email, "emailVerified", "createdAt", "updatedAt") VALUES
 ('oauthonly', 'OAuth Only', 'oauth@example.com', true, now(), now()),
 ('noaccount', 'No Account', 'none@example.com', false, now(), now()),
 ('~dup-upper', 'Dup Upper', 'Dup@Example.com', false, now(), now()),
 ('badname', E'Bad \xff name', 'badname@example.com', true, '2024-03-01T12:00:00.123456Z', now()),
 ($1, 'Too Long', 'long@example.com', false, now(), now())`, strings.Repeat("x", 65))
	ba.exec(t, `INSERT INTO account (id, "accountId", "providerId", "userId", password, "createdAt", "updatedAt")
SELECT v.id, v.uid, v.provider, v.uid, v.pw, now(), now() FROM (VALUES
 ('acc-oauth', 'oauthonly', 'github', NULL),
 ('acc-dup', '~dup-upper', 'credential', (SELECT password FROM account WHERE "userId" = $1)),
 ('acc-bad', 'badname', 'credential', (SELECT password FROM account WHERE "userId" = $1))) AS v(id, uid, provider, pw)`, ada.id)
	// The platform's profile table, with enums of its own spellings.
	ba.exec(t, `CREATE TYPE python_level AS ENUM ('None', 'Beginner', 'Intermediate', 'Advanced')`)
	ba.exec(t, `CREATE TYPE dev_role AS ENUM ('student', 'software-engineer', 'Data Scientist', 'wizard')`)
	ba.exec(t, `CREATE TABLE user_profile (user_id text PRIMARY KEY REFERENCES "user" (id), python_proficiency python_level, developer_role dev_role)`)
	ba.exec(t, `INSERT INTO user_profile VALUES ($1, 'Intermediate', 'software-engineer'), ($2, 'None', 'Data Scientist'),
 ($3, 'Beginner', 'wizard'), ($4, 'Advanced', NULL)`, grace.id, zoe.id, linus.id, ada.id)
	// One session has expired: it is not carried over.
	ba.exec(t, `UPDATE session SET "expiresAt" = now() - interval '1 minute' WHERE "userId" = $1`, linus.id)

	lanyardURL := testdb.PostgresURL(t)
	vars := map[string]string{
		"LANYARD_DATABASE_URL": lanyardURL, "LANYARD_SECRET": strings.Repeat("import-", 6),
		"LANYARD_ISSUER": "http://lanyard.test", "LANYARD_DATA_DIR": t.TempDir(),
	}
	require.NoError(t, run(context.Background(), []string{"migrate"}, env(vars), io.Discard, io.Discard))
	db := testdb.Connect(t, lanyardURL)
	empty := destinationState(t, db)

	// A dry run does every check and writes nothing.
	report, err := runImport(t, vars, "--from", ba.dbURL, "--dry-run", "--sessions")
	require.Error(t, err, "rows fail even in a dry run")
	assert.Contains(t, report, "dry run: every batch is rolled back, nothing is written")
	assert.Contains(t, report, "dry run, would have: created 5, updated 0, unchanged 0, skipped 3, failed 3, warnings 2, sessions 3 (of 11 Better-Auth users)")
	assert.Equal(t, empty, destinationState(t, db), "a dry run writes nothing")

	report, err = runImport(t, vars, "--from", ba.dbURL, "--sessions", "--batch", "3")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "3 users failed")
	assert.Contains(t, report, "created 5, updated 0, unchanged 0, skipped 3, failed 3, warnings 2, sessions 3 (of 11 Better-Auth users)")
	assert.Contains(t, report, "user "+corrupt.id+": failed: corrupt password hash")
	assert.NotContains(t, report, "not-a-scrypt-hash", "the report never quotes a hash")
	assert.Contains(t, report, `user oauthonly: skipped: no password (credential) account; providers found: "github"`)
	assert.Contains(t, report, "user noaccount: skipped: no account row")
	assert.Contains(t, report, `user "`+strings.Repeat("x", 64)+`": skipped: id is not 1 to 64 characters`)
	assert.Contains(t, report, "user badname: warning: name is not valid UTF-8; imported without a name")
	assert.Contains(t, report, "user "+linus.id+`: warning: user_profile.developer_role "wizard" is not one of`)
	// Two addresses that differ only in case: both users fail, each naming
	// both ids ('~' sorts after the letters and digits of Better-Auth's ids).
	assert.Contains(t, report, "user ~dup-upper: failed: email address shared, ignoring case, by Better-Auth users "+dup.id+", ~dup-upper")
	assert.Contains(t, report, "user "+dup.id+": failed: email address shared, ignoring case, by Better-Auth users "+dup.id+", ~dup-upper")
	for _, line := range strings.Split(strings.TrimSpace(report), "\n") {
		assert.Regexp(t, `^(user \S+: (failed|skipped|warning): |created )`, line)
	}

	var hashes []string
	rows, err := db.Query(context.Background(), `SELECT password_hash FROM users ORDER BY id`)
	require.NoError(t, err)
	hashes, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Len(t, hashes, 5)
	for _, h := range hashes {
		assert.True(t, strings.HasPrefix(h, "$ba-scrypt$"), "imported hashes are kept as they are, marked")
	}
	var badName *string
	var verified *time.Time
	var created time.Time
	require.NoError(t, db.QueryRow(context.Background(), `SELECT name, email_verified_at, created_at FROM users WHERE id = 'badname'`).Scan(&badName, &verified, &created))
	assert.Nil(t, badName)
	assert.NotNil(t, verified, "emailVerified carries over")
	assert.Equal(t, time.Date(2024, 3, 1, 12, 0, 0, 123456000, time.UTC), created.UTC(), "createdAt carries over")

	// Sessions: the live ones of imported users, as SHA-256 of the token.
	var liveTokens []string
	rows, err = ba.db.Query(context.Background(), `SELECT token FROM session WHERE "expiresAt" > now() AND "userId" NOT IN ($1, $2)`, corrupt.id, dup.id)
	require.NoError(t, err)
	liveTokens, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Len(t, liveTokens, 3, "ada, zoe and grace from sign-up; linus's expired, dup not imported")
	for _, tok := range liveTokens {
		h := sha256.Sum256([]byte(tok))
		var userID string
		require.NoError(t, db.QueryRow(context.Background(), `SELECT user_id FROM better_auth_sessions WHERE token_hash = $1`, h[:]).Scan(&userID), "session of a live token")
	}

	// A re-run changes nothing, and says so.
	imported := destinationState(t, db)
	report, err = runImport(t, vars, "--from", ba.dbURL, "--sessions")
	require.Error(t, err)
	assert.Contains(t, report, "created 0, updated 0, unchanged 5, skipped 3, failed 3, warnings 2, sessions 0 (of 11 Better-Auth users)")
	assert.Equal(t, imported, destinationState(t, db), "a second import writes nothing")

	// Each good user signs in to Lanyard with the Better-Auth password, under
	// the Better-Auth id, and the first login replaces the hash by argon2id.
	l := start(t, vars)
	type check struct {
		who      person
		password string
		complete bool
		name     any
	}
	for _, c := range []check{
		{ada, ada.password, false, "Ada Lovelace"},
		{zoe, zoe.password, true, "Zoë Ørsted 李小龍"},
		{grace, grace.password, true, "Grace Hopper"},
		{linus, linus.password, false, "Linus"},
		{person{id: "badname", email: "badname@example.com"}, ada.password, false, nil},
	} {
		status, body := l.post(t, "/v1/auth/login", map[string]any{"email": c.who.email, "password": c.password})
		require.Equal(t, http.StatusOK, status, "%s: %v", c.who.email, body)
		status, me := l.get(t, "/v1/me", body["access_token"].(string))
		require.Equal(t, http.StatusOK, status)
		assert.Equal(t, c.who.id, me["id"], "the sub is the Better-Auth id")
		assert.Equal(t, c.complete, me["profile_complete"], c.who.email)
		assert.Equal(t, c.name, me["name"], c.who.email)
		var hash string
		require.NoError(t, db.QueryRow(context.Background(), `SELECT password_hash FROM users WHERE id = $1`, c.who.id).Scan(&hash))
		assert.True(t, strings.HasPrefix(hash, "$argon2id$"), "%s: the first login rehashes", c.who.email)
	}
	// The NFKC spelling of Zoë's passphrase is the same password, and still
	// is once the hash is argon2id.
	status, _ := l.post(t, "/v1/auth/login", map[string]any{"email": zoe.email, "password": "final passphrase no 7"})
	assert.Equal(t, http.StatusOK, status)
	status, _ = l.post(t, "/v1/auth/login", map[string]any{"email": ada.email, "password": "wrong-horse-battery"})
	assert.Equal(t, http.StatusUnauthorized, status)
	var profile struct{ Python, Role string }
	require.NoError(t, db.QueryRow(context.Background(), `SELECT python_proficiency, developer_role FROM profiles WHERE user_id = $1`, grace.id).Scan(&profile.Python, &profile.Role))
	assert.Equal(t, struct{ Python, Role string }{"intermediate", "software_engineer"}, profile)

	// A change in Better-Auth after the move is carried by a re-run; the
	// argon2id hashes that logins made are kept, not replaced by the old
	// Better-Auth ones.
	ba.exec(t, `UPDATE "user" SET name = 'Rear Admiral Grace Hopper' WHERE id = $1`, grace.id)
	report, err = runImport(t, vars, "--from", ba.dbURL, "--sessions")
	require.Error(t, err)
	assert.Contains(t, report, "created 0, updated 1, unchanged 4, skipped 3, failed 3, warnings 2, sessions 0")
	var name, hash string
	require.NoError(t, db.QueryRow(context.Background(), `SELECT name, password_hash FROM users WHERE id = $1`, grace.id).Scan(&name, &hash))
	assert.Equal(t, "Rear Admiral Grace Hopper", name)
	assert.True(t, strings.HasPrefix(hash, "$argon2id$"), "a hash the user's login made is never overwritten")
	status, _ = l.post(t, "/v1/auth/login", map[string]any{"email": grace.email, "password": grace.password})
	assert.Equal(t, http.StatusOK, status)

	// A dry run on an imported database writes nothing either.
	before := destinationState(t, db)
	ba.exec(t, `UPDATE "user" SET name = 'Linus T.' WHERE id = $1`, linus.id)
	report, err = runImport(t, vars, "--from", ba.dbURL, "--sessions", "--dry-run")
	require.Error(t, err)
	assert.Contains(t, report, "dry run, would have: created 0, updated 1, unchanged 4")
	assert.Equal(t, before, destinationState(t, db))

	// With the bad rows fixed in Better-Auth, the import succeeds.
	ba.exec(t, `DELETE FROM "user" WHERE id IN ($1, '~dup-upper')`, corrupt.id)
	report, err = runImport(t, vars, "--from", ba.dbURL)
	require.NoError(t, err)
	assert.Contains(t, report, "created 1, updated 1, unchanged 4, skipped 3, failed 0, warnings 2, sessions 0 (of 9 Better-Auth users)")

	// An address that already belongs to a user who signed up in Lanyard is
	// a conflict, reported with both ids; nothing is written for that row.
	status, body := l.post(t, "/v1/auth/signup", map[string]any{"email": "late@example.com", "password": "native sign-up came first"})
	require.Equal(t, http.StatusCreated, status, body)
	native := body["user"].(map[string]any)["id"].(string)
	late := signUp("Late", "Late@Example.com", "signed-up-in-better-auth")
	report, err = runImport(t, vars, "--from", ba.dbURL)
	require.Error(t, err)
	assert.Contains(t, report, "user "+late.id+": failed: email address conflict: it already belongs to Lanyard user "+native)
	assert.Contains(t, report, "created 0, updated 0, unchanged 6, skipped 3, failed 1")

	// The embedded database is a destination too.
	embedded := map[string]string{"LANYARD_DATA_DIR": t.TempDir(), "LANYARD_ISSUER": "http://lanyard.test"}
	for range 2 {
		report, err = runImport(t, embedded, "--from", ba.dbURL, "--sessions")
		require.NoError(t, err)
	}
	assert.Contains(t, report, "created 0, updated 0, unchanged 7, skipped 3, failed 0, warnings 2, sessions 0 (of 10 Better-Auth users)")
	l.stop(t)
	l = start(t, embedded)
	status, body = l.post(t, "/v1/auth/login", map[string]any{"email": zoe.email, "password": "final passphrase no 7"})
	require.Equal(t, http.StatusOK, status, body)
	status, me := l.get(t, "/v1/me", body["access_token"].(string))
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, zoe.id, me["id"])
	assert.Equal(t, true, me["profile_complete"])
}

// TestImportBetterAuthArguments: what the command refuses before touching
// any database.
func TestImportBetterAuthArguments(t *testing.T) {
	vars := map[string]string{"LANYARD_DATA_DIR": t.TempDir()}
	for _, args := range [][]string{
		{"import"},
		{"import", "supabase"},
		{"import", "better-auth"},
		{"import", "better-auth", "--from", "postgres://x", "--batch", "0"},
		{"import", "better-auth", "--from", "postgres://x", "--bogus"},
		{"import", "better-auth", "--from", "postgres://x", "extra"},
	} {
		assert.Error(t, run(context.Background(), args, env(vars), io.Discard, io.Discard), "%v", args)
	}
	err := run(context.Background(), []string{"import", "better-auth", "--from", "postgres://127.0.0.1:1/x", "--schema", `public"; DROP TABLE x; --`}, env(vars), io.Discard, io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--schema must be a plain Postgres identifier")
	// A database without Better-Auth's tables is refused before anything
	// is read or written.
	err = run(context.Background(), []string{"import", "better-auth", "--from", testdb.PostgresURL(t)}, env(vars), io.Discard, io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `schema "public" has no table "user"`)
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"import", "--help"}, env(vars), &out, io.Discard))
	assert.Contains(t, out.String(), "--dry-run")
}

// BenchmarkImportBetterAuth measures the import's throughput on 100,000
// users generated in SQL into Better-Auth's own schema (schema.sql of the
// peer), each with a credential account holding a hash of the right form,
// a user_profile row and a live session, imported with --sessions into a
// freshly migrated Lanyard database on Postgres (users/s), then imported
// again, which compares every user and writes nothing (rerun-users/s):
//
//	go test ./cmd/lanyard -run '^$' -bench ImportBetterAuth -benchtime 1x
func BenchmarkImportBetterAuth(b *testing.B) {
	const users = 100_000
	srcURL := testdb.PostgresURL(b)
	src := testdb.Connect(b, srcURL)
	ctx := context.Background()
	ddl, err := os.ReadFile(filepath.Join(betterAuthDir, "schema.sql"))
	require.NoError(b, err)
	var statements []string
	for _, line := range strings.Split(string(ddl), "\n") {
		if !strings.HasPrefix(line, `\`) { // psql meta-commands (\restrict) are not SQL
			statements = append(statements, line)
		}
	}
	for _, sql := range []string{
		strings.Join(statements, "\n"),
		`INSERT INTO "user" (id, name, email, "emailVerified", "createdAt", "updatedAt")
SELECT 'u' || lpad(i::text, 8, '0'), 'User ' || i, 'user' || i || '@example.com', i % 2 = 0, now() - i * interval '1 minute', now()
FROM generate_series(1, ` + fmt.Sprint(users) + `) i`,
		`INSERT INTO account (id, "accountId", "providerId", "userId", password, "createdAt", "updatedAt")
SELECT 'a' || i, id, 'credential', id, md5(id) || ':' || md5('a' || id) || md5('b' || id) || md5('c' || id) || md5('d' || id), now(), now()
FROM (SELECT row_number() OVER () AS i, id FROM "user") u`,
		`CREATE TABLE user_profile (user_id text PRIMARY KEY REFERENCES "user" (id), python_proficiency text, developer_role text)`,
		`INSERT INTO user_profile SELECT id, 'Intermediate', 'software-engineer' FROM "user"`,
		`INSERT INTO session (id, "expiresAt", token, "createdAt", "updatedAt", "userId")
SELECT 's' || id, now() + interval '7 days', md5('token' || id), now(), now(), id FROM "user"`,
		`ANALYZE`,
	} {
		_, err := src.Exec(ctx, sql)
		require.NoError(b, err)
	}
	var elapsed, rerun time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		vars := map[string]string{
			"LANYARD_DATABASE_URL": testdb.PostgresURL(b), "LANYARD_SECRET": strings.Repeat("import-", 6),
			"LANYARD_DATA_DIR": b.TempDir(),
		}
		require.NoError(b, run(ctx, []string{"migrate"}, env(vars), io.Discard, io.Discard))
		var out bytes.Buffer
		b.StartTimer()
		began := time.Now()
		err := run(ctx, []string{"import", "better-auth", "--from", srcURL, "--sessions"}, env(vars), &out, io.Discard)
		elapsed += time.Since(began)
		require.NoError(b, err, out.String())
		require.Contains(b, out.String(), fmt.Sprintf("created %d, updated 0, unchanged 0, skipped 0, failed 0, warnings 0, sessions %d", users, users))

		// The re-run during the switch: every user compared, nothing written.
		b.StopTimer()
		out.Reset()
		began = time.Now()
		err = run(ctx, []string{"import", "better-auth", "--from", srcURL, "--sessions"}, env(vars), &out, io.Discard)
		rerun += time.Since(began)
		require.NoError(b, err, out.String())
		require.Contains(b, out.String(), fmt.Sprintf("created 0, updated 0, unchanged %d", users))
		b.StartTimer()
	}
	b.ReportMetric(float64(users*b.N)/elapsed.Seconds(), "users/s")
	b.ReportMetric(float64(users*b.N)/rerun.Seconds(), "rerun-users/s")
}

// TestImportDryRunWritesNoSchema: a dry run into a database that was never
// migrated refuses, and leaves it without a single table.
func TestImportDryRunWritesNoSchema(t *testing.T) {
	ba := startBetterAuth(t)
	dbURL := testdb.PostgresURL(t)
	vars := map[string]string{"LANYARD_DATABASE_URL": dbURL, "LANYARD_SECRET": strings.Repeat("d", 40)}
	_, err := runImport(t, vars, "--from", ba.dbURL, "--dry-run")
	require.ErrorContains(t, err, "run lanyard migrate first")
	db := testdb.Connect(t, dbURL)
	var tables int
	require.NoError(t, db.QueryRow(context.Background(), `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'`).Scan(&tables))
	assert.Zero(t, tables)

	dir := t.TempDir()
	_, err = runImport(t, map[string]string{"LANYARD_DATA_DIR": dir}, "--from", ba.dbURL, "--dry-run")
	require.ErrorContains(t, err, "run lanyard migrate first")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "no embedded database created")
}
