package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/glebarez/sqlite"
	"gorm.io/gorm"

	"github.com/lanyard-id/lanyard/internal/config"
	"github.com/lanyard-id/lanyard/internal/testdb"
)

// lanyard is one run() of the real program on a free port.
type lanyard struct {
	url    string
	admin  string // the admin listener (/metrics)
	cancel context.CancelFunc
	done   chan error
	logBook
}

// logBook keeps the JSON log records a server printed.
type logBook struct {
	mu   sync.Mutex
	logs []map[string]any
}

func (b *logBook) record(rec map[string]any) {
	b.mu.Lock()
	b.logs = append(b.logs, rec)
	b.mu.Unlock()
}

// first returns the first record with this msg, or nil.
func (b *logBook) first(msg string) map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, rec := range b.logs {
		if rec["msg"] == msg {
			return rec
		}
	}
	return nil
}

// count returns how many records have this msg.
func (b *logBook) count(msg string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, rec := range b.logs {
		if rec["msg"] == msg {
			n++
		}
	}
	return n
}

// listeningField reads a field of the "listening" log record.
func (b *logBook) listeningField(name string) string {
	v, _ := b.first("listening")[name].(string)
	return v
}

// metricsContain reports whether the server's /metrics has this line.
func metricsContain(url, line string) bool {
	res, err := http.Get(url + "/metrics")
	if err != nil {
		return false
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return strings.Contains(string(b), line)
}

// pollUntil checks cond every interval, in the calling goroutine, until it
// holds or within passes, and reports whether it held. Unlike
// require.Eventually and assert.Never, it never runs cond beside the caller
// or leaves a check running when it returns, so cond may use the test's
// single database connection and call require.
func pollUntil(within, every time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			return false
		case <-tick.C:
		}
	}
	return true
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// programDatabases are the databases the program's own tests run on.
var programDatabases = []string{"sqlite", "postgres"}

// onDatabase points vars at the database name and returns them: a fresh
// LANYARD_DATA_DIR (the embedded default lives there) unless vars names
// one, and on "postgres" a fresh database with secret as LANYARD_SECRET
// ("" sets none).
func onDatabase(t *testing.T, name, secret string, vars map[string]string) map[string]string {
	t.Helper()
	if _, ok := vars["LANYARD_DATA_DIR"]; !ok {
		vars["LANYARD_DATA_DIR"] = t.TempDir()
	}
	if name == "postgres" {
		vars["LANYARD_DATABASE_URL"] = testdb.PostgresURL(t)
		if secret != "" {
			vars["LANYARD_SECRET"] = secret
		}
	}
	return vars
}

// start runs `lanyard serve` and waits for its "listening" log line.
func start(t *testing.T, vars map[string]string) *lanyard {
	t.Helper()
	vars["LANYARD_ADDR"] = "127.0.0.1:0"
	if _, ok := vars["LANYARD_ADMIN_ADDR"]; !ok {
		vars["LANYARD_ADMIN_ADDR"] = "127.0.0.1:0"
	}
	if vars["LANYARD_DATA_DIR"] == "" {
		vars["LANYARD_DATA_DIR"] = t.TempDir()
	}
	// Nothing polls readiness here, so stopping skips the drain unless the
	// test names one; an empty value keeps the 5s default.
	if _, ok := vars["LANYARD_SHUTDOWN_DRAIN"]; !ok {
		vars["LANYARD_SHUTDOWN_DRAIN"] = "0s"
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	l := &lanyard{cancel: cancel, done: make(chan error, 1)}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) != nil {
				continue
			}
			l.record(rec)
			if rec["msg"] == "listening" {
				l.admin, _ = rec["admin"].(string)
				listening <- rec["addr"].(string)
			}
		}
	}()
	go func() {
		err := run(ctx, []string{"serve"}, env(vars), pw, io.Discard)
		pw.Close()
		l.done <- err
	}()
	select {
	case l.url = <-listening:
	case err := <-l.done:
		t.Fatalf("lanyard exited before listening: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("lanyard did not start listening within 60s")
	}
	t.Cleanup(func() { l.stop(t) })
	return l
}

// stop cancels run (as SIGTERM does) and waits for a clean return.
func (l *lanyard) stop(t *testing.T) {
	t.Helper()
	if l.cancel == nil {
		return
	}
	l.cancel()
	l.cancel = nil
	select {
	case err := <-l.done:
		require.NoError(t, err)
	case <-time.After(60 * time.Second):
		t.Fatal("lanyard did not stop within 60s")
	}
}

func (l *lanyard) post(t *testing.T, path string, body any) (int, map[string]any) {
	t.Helper()
	return l.call(t, http.MethodPost, path, "", body)
}

func (l *lanyard) get(t *testing.T, path, bearer string) (int, map[string]any) {
	t.Helper()
	return l.call(t, http.MethodGet, path, bearer, nil)
}

// call sends a request, with body as JSON unless it is nil and with the
// bearer token when one is given, and decodes the JSON answer.
func (l *lanyard) call(t *testing.T, method, path, bearer string, body any) (int, map[string]any) {
	t.Helper()
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		reader = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, l.url+path, reader)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

// TestFullFlow drives the real program on each database: sign up, /v1/me,
// refresh, logout, restart (the key and secret persist), and offline
// verification by Debian's PyJWT against the served JWKS.
func TestFullFlow(t *testing.T) {
	for _, name := range programDatabases {
		t.Run(name, func(t *testing.T) {
			vars := onDatabase(t, name, strings.Repeat("s3cr3t-", 6), map[string]string{"LANYARD_ISSUER": "http://lanyard.test"})
			l := start(t, vars)
			status, body := l.post(t, "/v1/auth/signup", map[string]any{"email": "flow@example.com", "password": "correct horse battery staple"})
			require.Equal(t, http.StatusCreated, status, body)
			access, refresh := body["access_token"].(string), body["refresh_token"].(string)
			userID := body["user"].(map[string]any)["id"].(string)

			status, me := l.get(t, "/v1/me", access)
			require.Equal(t, http.StatusOK, status)
			assert.Equal(t, userID, me["id"])

			out := pyjwtVerify(t, l.url, access, "http://lanyard.test")
			assert.Equal(t, userID, out["sub"])
			assert.Equal(t, false, out["profile_complete"])
			assert.NotEmpty(t, out["sid"])

			status, body = l.post(t, "/v1/auth/refresh", map[string]any{"refresh_token": refresh})
			require.Equal(t, http.StatusOK, status, body)
			refresh = body["refresh_token"].(string)
			assert.Equal(t, out["sid"], pyjwtVerify(t, l.url, body["access_token"].(string), "http://lanyard.test")["sid"])

			if name == "sqlite" {
				for _, f := range []string{"secret", "lanyard.db", "lanyard.db-wal"} {
					info, err := os.Stat(filepath.Join(vars["LANYARD_DATA_DIR"], f))
					require.NoError(t, err)
					assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "%s is private", f)
				}
			}

			// A restart keeps the signing key: the old token still verifies.
			l.stop(t)
			l = start(t, vars)
			status, _ = l.get(t, "/v1/me", access)
			assert.Equal(t, http.StatusOK, status, "a token from before the restart is still valid")
			assert.Equal(t, out["kid"], pyjwtVerify(t, l.url, access, "http://lanyard.test")["kid"])

			status, _ = l.post(t, "/v1/auth/logout", map[string]any{"refresh_token": refresh})
			assert.Equal(t, http.StatusNoContent, status)
			status, body = l.post(t, "/v1/auth/refresh", map[string]any{"refresh_token": refresh})
			assert.Equal(t, http.StatusUnauthorized, status)
			assert.Equal(t, "invalid_refresh_token", body["code"])

			// PyJWT refuses a tampered token and a wrong audience.
			parts := strings.Split(access, ".")
			tampered := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
			assert.Error(t, pyjwtRun(t, l.url, tampered, "http://lanyard.test", "http://lanyard.test"))
			assert.Error(t, pyjwtRun(t, l.url, access, "http://lanyard.test", "https://other.example"))
		})
	}
}

const python = "/usr/bin/python3"

func pyjwtRun(t *testing.T, base, token, issuer, audience string) error {
	t.Helper()
	_, err := pyjwtOutput(t, base, token, issuer, audience, "ES256")
	return err
}

func pyjwtOutput(t *testing.T, base, token, issuer, audience, alg string) ([]byte, error) {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("%s with python3-jwt is required (apt-get install python3-jwt; .ci/run does): %v", python, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "testdata/verify_pyjwt.py", base+"/.well-known/jwks.json", token, issuer, audience, alg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, errors.New(stderr.String())
	}
	return out, nil
}

func pyjwtVerify(t *testing.T, base, token, issuer string) map[string]any {
	t.Helper()
	return pyjwtVerifyAlg(t, base, token, issuer, "ES256")
}

func pyjwtVerifyAlg(t *testing.T, base, token, issuer, alg string) map[string]any {
	t.Helper()
	out, err := pyjwtOutput(t, base, token, issuer, issuer, alg)
	require.NoError(t, err, "PyJWT rejected the token")
	var claims map[string]any
	require.NoError(t, json.Unmarshal(out, &claims))
	return claims
}

// TestConfigErrors: a bad value stops start-up with one line naming the variable.
func TestConfigErrors(t *testing.T) {
	cases := map[string]map[string]string{
		"LANYARD_ACCESS_TTL":          {"LANYARD_ACCESS_TTL": "fifteen minutes"},
		"LANYARD_SIGNING_ALG":         {"LANYARD_SIGNING_ALG": "HS256"},
		"LANYARD_SECRET":              {"LANYARD_DATABASE_URL": "postgres://127.0.0.1/x"},
		"LANYARD_DATABASE_URL":        {"LANYARD_DATABASE_URL": "mysql://x"},
		"LANYARD_PASSWORD_MIN_LENGTH": {"LANYARD_PASSWORD_MIN_LENGTH": "4"},
		"LANYARD_CORS_ORIGINS":        {"LANYARD_CORS_ORIGINS": "https://ok.example, *"},
		"LANYARD_ISSUER":              {"LANYARD_ISSUER": "localhost:8080"},
		"LANYARD_DB_TIMEOUT":          {"LANYARD_REFRESH_REUSE_GRACE": "2s"}, // the 3s default does not fit
	}
	for variable, vars := range cases {
		t.Run(variable, func(t *testing.T) {
			vars["LANYARD_DATA_DIR"] = t.TempDir()
			err := run(context.Background(), []string{"serve"}, env(vars), io.Discard, io.Discard)
			var cfgErr *config.Error
			require.ErrorAs(t, err, &cfgErr)
			assert.Equal(t, variable, cfgErr.Variable)
			assert.NotContains(t, err.Error(), "\n")
		})
	}
	short := map[string]string{"LANYARD_SECRET": "too-short", "LANYARD_DATA_DIR": t.TempDir()}
	err := run(context.Background(), []string{"serve"}, env(short), io.Discard, io.Discard)
	assert.ErrorContains(t, err, "LANYARD_SECRET: must be at least 32 bytes")
}

// TestCommands covers migrate, keys list, version and help on both databases.
func TestCommands(t *testing.T) {
	for _, name := range programDatabases {
		t.Run(name, func(t *testing.T) {
			vars := onDatabase(t, name, strings.Repeat("k", 32), map[string]string{})
			var out bytes.Buffer
			require.NoError(t, run(context.Background(), []string{"migrate"}, env(vars), &out, io.Discard))
			assert.Contains(t, out.String(), "applied 00001_init.sql")
			out.Reset()
			require.NoError(t, run(context.Background(), []string{"migrate"}, env(vars), &out, io.Discard))
			assert.Equal(t, "database is up to date\n", out.String())

			l := start(t, vars)
			kid := l.listeningField("kid")
			port := l.url[strings.LastIndex(l.url, ":")+1:]
			require.NoError(t, run(context.Background(), []string{"healthcheck"}, env(map[string]string{"LANYARD_ADDR": "0.0.0.0:" + port}), io.Discard, io.Discard))
			l.stop(t)
			assert.Error(t, run(context.Background(), []string{"healthcheck"}, env(map[string]string{"LANYARD_ADDR": "127.0.0.1:" + port}), io.Discard, io.Discard), "nothing listens any more")
			out.Reset()
			require.NoError(t, run(context.Background(), []string{"keys", "list"}, env(vars), &out, io.Discard))
			assert.Contains(t, out.String(), "KID")
			assert.Regexp(t, kid+`\s+ES256\s+current`, out.String())
		})
	}
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"--help"}, env(map[string]string{}), &out, io.Discard))
	for _, cmd := range []string{"serve", "migrate", "keys list", "version"} {
		assert.Contains(t, out.String(), cmd)
	}
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"version"}, env(map[string]string{}), &out, io.Discard))
	assert.True(t, strings.HasPrefix(out.String(), "lanyard "))
	assert.Error(t, run(context.Background(), []string{"frobnicate"}, env(map[string]string{}), io.Discard, io.Discard))
}

// TestGracefulShutdown: SIGTERM while a login is hashing, with the default
// drain. Readiness answers 503 at once while the listener still serves, so a
// load balancer polling /readyz stops sending traffic before connections are
// refused; requests in flight or arriving during the drain complete with
// tokens; the listener closes after the drain and run returns cleanly.
func TestGracefulShutdown(t *testing.T) {
	vars := map[string]string{
		// A deliberately slow hash keeps the logins in flight while we stop.
		"LANYARD_ARGON2_MEMORY_KIB": "131072", "LANYARD_ARGON2_TIME": "4",
		"LANYARD_SHUTDOWN_DRAIN": "", // the default
	}
	l := start(t, vars)
	credentials := map[string]any{"email": "drain@example.com", "password": "correct horse battery staple"}
	status, _ := l.post(t, "/v1/auth/signup", credentials)
	require.Equal(t, http.StatusCreated, status)

	type result struct {
		status int
		body   map[string]any
	}
	login := func() chan result {
		done := make(chan result, 1)
		go func() {
			s, b := l.post(t, "/v1/auth/login", credentials)
			done <- result{s, b}
		}()
		return done
	}
	before := login()
	require.Eventually(t, func() bool { return metricsContain(l.admin, "lanyard_password_hashes_in_flight 1") },
		30*time.Second, 5*time.Millisecond, "the login never started hashing")

	signalled := time.Now()
	l.cancel() // what SIGTERM does through signal.NotifyContext
	require.Eventually(t, func() bool {
		res, err := http.Get(l.url + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusServiceUnavailable
	}, 30*time.Second, 5*time.Millisecond, "readiness never went false during the drain")
	// The listener still takes new requests while readiness says 503.
	during := login()
	status, _ = l.get(t, "/healthz", "")
	assert.Equal(t, http.StatusOK, status, "liveness still answers during the drain")
	for name, done := range map[string]chan result{"in flight at the signal": before, "sent during the drain": during} {
		r := <-done
		assert.Equal(t, http.StatusOK, r.status, "the login %s finished", name)
		assert.NotEmpty(t, r.body["refresh_token"], "the login %s got tokens", name)
	}
	select {
	case err := <-l.done:
		require.NoError(t, err)
	case <-time.After(60 * time.Second):
		t.Fatal("run did not return after shutdown")
	}
	l.cancel = nil
	assert.GreaterOrEqual(t, time.Since(signalled), 5*time.Second, "the listener stayed open for the default drain")
	_, err := http.Get(l.url + "/healthz")
	assert.Error(t, err, "no longer accepting connections")
	assert.Equal(t, "5s", l.first("shutting down")["drain"])
	assert.NotNil(t, l.first("stopped"))
}

// TestSigningAlgorithms: EdDSA and RS256 are selectable; PyJWT verifies both,
// and the JWKS and discovery name the algorithm.
func TestSigningAlgorithms(t *testing.T) {
	for _, alg := range []string{"EdDSA", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			l := start(t, map[string]string{"LANYARD_SIGNING_ALG": alg, "LANYARD_ISSUER": "http://lanyard.test"})
			status, body := l.post(t, "/v1/auth/signup", map[string]any{"email": "alg@example.com", "password": "correct horse battery staple"})
			require.Equal(t, http.StatusCreated, status)
			claims := pyjwtVerifyAlg(t, l.url, body["access_token"].(string), "http://lanyard.test", alg)
			assert.Equal(t, body["user"].(map[string]any)["id"], claims["sub"])
			_, jwks := l.get(t, "/.well-known/jwks.json", "")
			key := jwks["keys"].([]any)[0].(map[string]any)
			assert.Equal(t, alg, key["alg"])
			_, discovery := l.get(t, "/.well-known/openid-configuration", "")
			assert.Equal(t, []any{alg}, discovery["id_token_signing_alg_values_supported"])
			// Verifiers pinned to ES256 refuse these tokens: the allow-list matters.
			_, err := pyjwtOutput(t, l.url, body["access_token"].(string), "http://lanyard.test", "http://lanyard.test", "ES256")
			assert.Error(t, err)
		})
	}
}

// TestHeaderLimit: an oversized header block is refused before any handler.
func TestHeaderLimit(t *testing.T) {
	l := start(t, map[string]string{})
	req, _ := http.NewRequest(http.MethodGet, l.url+"/healthz", nil)
	req.Header.Set("X-Padding", strings.Repeat("a", 64<<10))
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, res.StatusCode)
}

// TestCleanupJob: the background job of a running server deletes a session
// that can never be used again and counts it in lanyard_sessions_purged_total.
func TestCleanupJob(t *testing.T) {
	dataDir := t.TempDir()
	l := start(t, map[string]string{"LANYARD_DATA_DIR": dataDir, "LANYARD_CLEANUP_INTERVAL": "20ms"})
	credentials := map[string]any{"email": "purge@example.com", "password": "correct horse battery staple"}
	status, body := l.post(t, "/v1/auth/signup", credentials)
	require.Equal(t, http.StatusCreated, status)
	live := replicaClaim(t, body["access_token"].(string), "sid")
	status, body = l.post(t, "/v1/auth/login", credentials)
	require.Equal(t, http.StatusOK, status)
	aged := replicaClaim(t, body["access_token"].(string), "sid")

	// Age the second session as if it had expired two months ago, through a
	// second connection to the same embedded database.
	db, err := gorm.Open(sqlite.Open("file:"+filepath.Join(dataDir, "lanyard.db")+"?_pragma=busy_timeout(10000)"), &gorm.Config{})
	require.NoError(t, err)
	conn, err := db.DB()
	require.NoError(t, err)
	defer conn.Close()
	old := time.Now().UTC().Add(-60 * 24 * time.Hour)
	res := db.Exec(`UPDATE sessions SET created_at = ?, rotated_at = ?, last_used_at = ?, expires_at = ? WHERE id = ?`,
		old, old, old, old.Add(720*time.Hour), aged)
	require.NoError(t, res.Error)
	require.EqualValues(t, 1, res.RowsAffected)

	require.Eventually(t, func() bool { return metricsContain(l.admin, "lanyard_sessions_purged_total 1") },
		30*time.Second, 10*time.Millisecond, "the cleanup job never purged the expired session")
	var left []string
	require.NoError(t, db.Raw(`SELECT id FROM sessions`).Scan(&left).Error)
	assert.Equal(t, []string{live}, left, "only the live session is left")
}

// TestKeyRotationCLI: `keys rotate` publishes a next key, `keys rotate --now`
// swaps at once; a running server picks the change up by itself, and a token
// signed before the rotation still verifies in PyJWT against the served JWKS.
func TestKeyRotationCLI(t *testing.T) {
	for _, name := range programDatabases {
		t.Run(name, func(t *testing.T) {
			vars := onDatabase(t, name, strings.Repeat("r", 40), map[string]string{"LANYARD_ISSUER": "http://lanyard.test", "LANYARD_KEY_CHECK_INTERVAL": "1s"})
			l := start(t, vars)
			first := l.listeningField("kid")
			status, body := l.post(t, "/v1/auth/signup", map[string]any{"email": "rotate@example.com", "password": "correct horse battery staple"})
			require.Equal(t, http.StatusCreated, status)
			oldToken := body["access_token"].(string)

			var out bytes.Buffer
			cli := func(args ...string) string {
				out.Reset()
				require.NoError(t, run(context.Background(), args, env(vars), &out, io.Discard))
				return out.String()
			}
			printed := cli("keys", "rotate")
			assert.Contains(t, printed, "next key published")
			assert.Regexp(t, first+`\s+ES256\s+current`, printed)
			assert.Regexp(t, `\s+ES256\s+next`, printed)
			assert.Contains(t, cli("keys", "rotate", "--help"), "verifiers that cached the old JWKS reject new tokens")

			printed = cli("keys", "rotate", "--now")
			assert.Regexp(t, first+`\s+ES256\s+retired`, printed)

			// The running server switches within LANYARD_KEY_CHECK_INTERVAL.
			require.Eventually(t, func() bool {
				res, err := http.Get(l.url + "/.well-known/jwks.json")
				if err != nil {
					return false
				}
				defer res.Body.Close()
				var set struct {
					Keys []map[string]any `json:"keys"`
				}
				_ = json.NewDecoder(res.Body).Decode(&set)
				return len(set.Keys) == 2 && set.Keys[0]["kid"] != first
			}, 30*time.Second, 20*time.Millisecond, "the server never picked up the rotation")
			status, body = l.post(t, "/v1/auth/login", map[string]any{"email": "rotate@example.com", "password": "correct horse battery staple"})
			require.Equal(t, http.StatusOK, status)
			newToken := body["access_token"].(string)

			old := pyjwtVerify(t, l.url, oldToken, "http://lanyard.test")
			assert.Equal(t, first, old["kid"], "a token signed before the rotation still verifies")
			assert.NotEqual(t, first, pyjwtVerify(t, l.url, newToken, "http://lanyard.test")["kid"])
			status, _ = l.get(t, "/v1/me", oldToken)
			assert.Equal(t, http.StatusOK, status)
		})
	}
}

// TestSecretRotation: the documented way to rotate LANYARD_SECRET. Run with
// the new secret and the old one in LANYARD_SECRET_PREVIOUS, reseal, then
// drop the old one; sessions and the signing key survive throughout.
func TestSecretRotation(t *testing.T) {
	for _, name := range programDatabases {
		t.Run(name, func(t *testing.T) {
			oldSecret, newSecret := strings.Repeat("o", 40), strings.Repeat("n", 40)
			vars := onDatabase(t, name, "", map[string]string{"LANYARD_SECRET": oldSecret})
			l := start(t, vars)
			kid := l.listeningField("kid")
			status, body := l.post(t, "/v1/auth/signup", map[string]any{"email": "secret@example.com", "password": "correct horse battery staple"})
			require.Equal(t, http.StatusCreated, status)
			refresh := body["refresh_token"].(string)
			l.stop(t)

			vars["LANYARD_SECRET"] = newSecret
			err := run(context.Background(), []string{"serve"}, env(vars), io.Discard, io.Discard)
			require.ErrorContains(t, err, "LANYARD_SECRET", "the new secret alone cannot open the old key: start-up says why")

			vars["LANYARD_SECRET_PREVIOUS"] = oldSecret
			l = start(t, vars)
			assert.Equal(t, kid, l.listeningField("kid"), "the same signing key")
			status, body = l.post(t, "/v1/auth/refresh", map[string]any{"refresh_token": refresh})
			require.Equal(t, http.StatusOK, status, "a refresh token made under the old secret still works: %v", body)
			refresh = body["refresh_token"].(string)
			var out bytes.Buffer
			require.NoError(t, run(context.Background(), []string{"keys", "reseal"}, env(vars), &out, io.Discard))
			assert.Equal(t, "resealed 1 signing keys under LANYARD_SECRET\n", out.String())
			l.stop(t)

			delete(vars, "LANYARD_SECRET_PREVIOUS")
			l = start(t, vars)
			assert.Equal(t, kid, l.listeningField("kid"))
			status, _ = l.post(t, "/v1/auth/refresh", map[string]any{"refresh_token": refresh})
			assert.Equal(t, http.StatusOK, status, "the rotated refresh token is under the new secret")
		})
	}
}

// TestAuditRetentionJob: the server purges audit events older than
// LANYARD_AUDIT_RETENTION in its cleanup loop and keeps younger ones.
func TestAuditRetentionJob(t *testing.T) {
	dbURL := testdb.PostgresURL(t)
	start(t, map[string]string{
		"LANYARD_DATABASE_URL": dbURL, "LANYARD_SECRET": strings.Repeat("a", 40),
		"LANYARD_CLEANUP_INTERVAL": "20ms", "LANYARD_AUDIT_RETENTION": "24h",
	})
	conn := testdb.Connect(t, dbURL)
	ctx := context.Background()
	var old, young int64
	insert := `INSERT INTO audit_events (at, type, actor, details) VALUES (now() - $1::interval, 'login_failed', 'user', '{}') RETURNING id`
	require.NoError(t, conn.QueryRow(ctx, insert, "25 hours").Scan(&old))
	require.NoError(t, conn.QueryRow(ctx, insert, "23 hours").Scan(&young))
	exists := func(id int64) bool {
		var n int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE id = $1`, id).Scan(&n))
		return n == 1
	}
	require.True(t, pollUntil(30*time.Second, 10*time.Millisecond, func() bool { return !exists(old) }),
		"the cleanup loop never purged the event past retention")
	assert.True(t, exists(young), "an event within retention stays")
}
