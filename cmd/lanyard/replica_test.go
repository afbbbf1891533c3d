package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/testdb"
)

// TestReplicas runs two real lanyard processes (A and B) on one PostgreSQL
// database, as two replicas behind a load balancer would, plus a short-lived
// third one (C) configured without a reuse grace window. Everything that
// makes replicas agree lives in the database; this test checks that:
// one signing key between replicas that start together on an empty
// database, tokens from one honoured by the other, one successor for racing
// refreshes spread over both, logout and reuse detection seen everywhere at
// once.
//
// It runs twice: on PostgreSQL directly, and through Debian's PgBouncer
// 1.18 in transaction mode (as on Neon's pooled endpoint; it has no
// prepared statements in that mode), where the replicas also migrate
// through the pooler and rotate keys through it.
func TestReplicas(t *testing.T) {
	bin := replicaBuild(t)
	for _, pooled := range []bool{false, true} {
		name := "direct"
		if pooled {
			name = "pgbouncer"
		}
		t.Run(name, func(t *testing.T) {
			dbURL := testdb.PostgresURL(t)
			serveURL := dbURL
			if pooled {
				// The URL as an operator would first write it, without
				// default_query_exec_mode: Lanyard sees the pooler refuse
				// its startup parameters and stops naming statements.
				serveURL = testdb.StartPgBouncer(t, dbURL)
			}
			testReplicas(t, bin, dbURL, serveURL)
		})
	}
}

func testReplicas(t *testing.T, bin, dbURL, serveURL string) {
	shared := map[string]string{
		"LANYARD_DATABASE_URL": serveURL,
		"LANYARD_SECRET":       strings.Repeat("replica-secret-", 3), // 45 bytes
		"LANYARD_ISSUER":       "http://lanyard.test",
		// The key rotation step waits for both replicas' key check.
		"LANYARD_KEY_CHECK_INTERVAL": "1s",
	}

	db := testdb.Connect(t, dbURL)

	// 1. Both start at once against the empty database: they race to migrate
	// and to create the first signing key.
	a := replicaLaunch(t, bin, "A", shared, nil)
	b := replicaLaunch(t, bin, "B", shared, nil)
	a.awaitReady(t)
	b.awaitReady(t)
	require.NotEqual(t, a.url, b.url)

	require.True(t, t.Run("one signing key for both", func(t *testing.T) {
		jwksA, jwksB := a.jwks(t), b.jwks(t)
		assert.Equal(t, jwksA, jwksB, "both replicas serve the same JWKS")
		keys, _ := jwksA["keys"].([]any)
		require.Len(t, keys, 1, "exactly one signing key was created between them")
		kid := keys[0].(map[string]any)["kid"]
		assert.Equal(t, kid, a.listeningField("kid"))
		assert.Equal(t, kid, b.listeningField("kid"))
		assert.Equal(t, 1, replicaCount(t, db, `SELECT count(*) FROM signing_keys`))
		// The migration lock (a lease row) serialised the migrations: one
		// replica applied them all, the other found the database up to date.
		migratedA, migratedB := a.count("migration applied"), b.count("migration applied")
		assert.True(t, (migratedA == 0) != (migratedB == 0), "migrations applied by A: %d, by B: %d", migratedA, migratedB)
	}), "later steps build on this one")

	const email, password = "replica@example.com", "correct horse battery staple"

	// 2. Signed up on A, served by B.
	status, body := a.post(t, "/v1/auth/signup", map[string]any{"email": email, "password": password, "name": "Rep Lica"})
	require.Equal(t, http.StatusCreated, status, body)
	userID := body["user"].(map[string]any)["id"].(string)
	accessA, refresh := body["access_token"].(string), body["refresh_token"].(string)

	require.True(t, t.Run("tokens from A work on B", func(t *testing.T) {
		status, me := b.get(t, "/v1/me", accessA)
		require.Equal(t, http.StatusOK, status, me)
		assert.Equal(t, userID, me["id"])
		assert.Equal(t, email, me["email"])

		status, body := b.post(t, "/v1/auth/refresh", map[string]any{"refresh_token": refresh})
		require.Equal(t, http.StatusOK, status, body)
		assert.NotEqual(t, refresh, body["refresh_token"])
		accessB := body["access_token"].(string)
		assert.Equal(t, replicaClaim(t, accessA, "sid"), replicaClaim(t, accessB, "sid"), "the same session")
		refresh = body["refresh_token"].(string)

		// And the other way round: B's access token on A.
		status, me = a.get(t, "/v1/me", accessB)
		require.Equal(t, http.StatusOK, status, me)
		assert.Equal(t, userID, me["id"])
	}), "later steps build on this one")
	sid := replicaClaim(t, accessA, "sid")

	// 3. Twenty racing refreshes of one token, alternating A and B.
	require.True(t, t.Run("racing refreshes share one successor", func(t *testing.T) {
		genBefore := replicaCount(t, db, `SELECT generation FROM sessions WHERE id = $1`, sid)
		const n = 20
		type result struct {
			replica string
			status  int
			body    map[string]any
			err     error
		}
		results := make([]result, n)
		gate := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			p := a
			if i%2 == 1 {
				p = b
			}
			wg.Go(func() {
				<-gate
				status, body, err := p.do(http.MethodPost, "/v1/auth/refresh", "", map[string]any{"refresh_token": refresh})
				results[i] = result{p.name, status, body, err}
			})
		}
		close(gate)
		wg.Wait()

		successors := map[string]int{}
		for i, r := range results {
			require.NoError(t, r.err, "refresh %d on %s", i, r.replica)
			require.Equal(t, http.StatusOK, r.status, "refresh %d on %s: %v", i, r.replica, r.body)
			successors[r.body["refresh_token"].(string)]++
		}
		require.Len(t, successors, 1, "every racing refresh got the same successor")
		var successor string
		for s := range successors {
			successor = s
		}
		assert.NotEqual(t, refresh, successor)
		genAfter := replicaCount(t, db, `SELECT generation FROM sessions WHERE id = $1`, sid)
		assert.Equal(t, genBefore+1, genAfter, "one advance, nineteen grace answers")
		assert.Equal(t, 0, replicaCount(t, db, `SELECT count(*) FROM sessions WHERE id = $1 AND revoked_at IS NOT NULL`, sid), "not revoked")

		// The successor is live, on either replica: rotated on B, and its
		// duplicate presentation on A (within grace) gets the same next token.
		status, onB := b.post(t, "/v1/auth/refresh", map[string]any{"refresh_token": successor})
		require.Equal(t, http.StatusOK, status, onB)
		next := onB["refresh_token"].(string)
		assert.NotEqual(t, successor, next)
		status, onA := a.post(t, "/v1/auth/refresh", map[string]any{"refresh_token": successor})
		require.Equal(t, http.StatusOK, status, onA)
		assert.Equal(t, next, onA["refresh_token"])
		status, me := a.get(t, "/v1/me", onB["access_token"].(string))
		assert.Equal(t, http.StatusOK, status, me)
		refresh = next
	}), "later steps build on this one")

	// 4. Logout on A is seen by B at once.
	t.Run("logout on A ends the session on B", func(t *testing.T) {
		status, body := a.post(t, "/v1/auth/logout", map[string]any{"refresh_token": refresh})
		require.Equal(t, http.StatusNoContent, status, body)
		status, body = b.post(t, "/v1/auth/refresh", map[string]any{"refresh_token": refresh})
		assert.Equal(t, http.StatusUnauthorized, status)
		assert.Equal(t, "invalid_refresh_token", body["code"])
		status, body = a.post(t, "/v1/auth/refresh", map[string]any{"refresh_token": refresh})
		assert.Equal(t, http.StatusUnauthorized, status)
		assert.Equal(t, "invalid_refresh_token", body["code"])
		status, _ = b.post(t, "/v1/auth/logout", map[string]any{"refresh_token": refresh})
		assert.Equal(t, http.StatusNoContent, status, "logout is idempotent across replicas")
		// README: Lanyard's own bearer endpoints check the session on every
		// request, so the session's access token is refused at once too.
		status, body = b.get(t, "/v1/me", accessA)
		assert.Equal(t, http.StatusUnauthorized, status, "access token of the ended session on B: %v", body)
	})

	login := func(t *testing.T, on *replicaProc) (access, refresh string) {
		t.Helper()
		status, body := on.post(t, "/v1/auth/login", map[string]any{"email": email, "password": password})
		require.Equal(t, http.StatusOK, status, body)
		return body["access_token"].(string), body["refresh_token"].(string)
	}
	rotate := func(t *testing.T, on *replicaProc, token string) string {
		t.Helper()
		status, body := on.post(t, "/v1/auth/refresh", map[string]any{"refresh_token": token})
		require.Equal(t, http.StatusOK, status, body)
		return body["refresh_token"].(string)
	}

	// 5. Reuse on one replica revokes the session for all of them.
	t.Run("reuse on B revokes the session on A", func(t *testing.T) {
		access, g0 := login(t, b)
		g1 := rotate(t, a, g0)
		g2 := rotate(t, b, g1)
		// g0 is two generations old: reuse whatever the grace window.
		status, body := b.post(t, "/v1/auth/refresh", map[string]any{"refresh_token": g0})
		assert.Equal(t, http.StatusUnauthorized, status)
		assert.Equal(t, "refresh_token_reused", body["code"])
		// The live token is dead on every replica.
		for _, p := range []*replicaProc{a, b} {
			status, body = p.post(t, "/v1/auth/refresh", map[string]any{"refresh_token": g2})
			assert.Equal(t, http.StatusUnauthorized, status, "g2 on %s", p.name)
			// README "Reuse detection": every later refresh of that session
			// fails with refresh_token_reused too. (The README's error table
			// and openapi.yaml say invalid_refresh_token for a session ended
			// by an earlier reuse; the server and that section disagree.)
			assert.Equal(t, "refresh_token_reused", body["code"], "g2 on %s", p.name)
		}
		assert.Equal(t, "reuse", replicaString(t, db, `SELECT revoke_reason FROM sessions WHERE id = $1`, replicaClaim(t, access, "sid")))
	})

	// C has no grace window: the immediate parent, which A and B answer with
	// the live token, is reuse there, and it kills the session everywhere.
	t.Run("no-grace replica C", func(t *testing.T) {
		c := replicaLaunch(t, bin, "C", shared, map[string]string{"LANYARD_REFRESH_REUSE_GRACE": "0s"})
		c.awaitReady(t)
		assert.Equal(t, a.jwks(t), c.jwks(t))

		access, p0 := login(t, a)
		p1 := rotate(t, a, p0)
		// On B (10 s grace) the parent is a duplicate: same live token.
		assert.Equal(t, p1, rotate(t, b, p0))
		// On C it is reuse.
		status, body := c.post(t, "/v1/auth/refresh", map[string]any{"refresh_token": p0})
		assert.Equal(t, http.StatusUnauthorized, status)
		assert.Equal(t, "refresh_token_reused", body["code"])
		for _, p := range []*replicaProc{a, b} {
			status, body = p.post(t, "/v1/auth/refresh", map[string]any{"refresh_token": p1})
			assert.Equal(t, http.StatusUnauthorized, status, "p1 on %s", p.name)
			assert.Equal(t, "refresh_token_reused", body["code"], "p1 on %s", p.name)
		}
		assert.Equal(t, "reuse", replicaString(t, db, `SELECT revoke_reason FROM sessions WHERE id = $1`, replicaClaim(t, access, "sid")))
		c.stop(t)
	})

	// Key rotation and revocation from the CLI, through the same URL the
	// replicas use, reach both at their next key check.
	t.Run("keys rotated and revoked reach both replicas", func(t *testing.T) {
		kids := func(p *replicaProc) []string {
			var out []string
			for _, k := range p.jwks(t)["keys"].([]any) {
				out = append(out, k.(map[string]any)["kid"].(string))
			}
			return out
		}
		first := kids(a)[0]
		oldAccess, _ := login(t, b)
		cliVars := maps.Clone(shared)
		cliVars["LANYARD_DATA_DIR"] = t.TempDir()
		cli := func(args ...string) {
			t.Helper()
			require.NoError(t, run(context.Background(), args, env(cliVars), io.Discard, io.Discard), args)
		}
		cli("keys", "rotate", "--now")
		for _, p := range []*replicaProc{a, b} {
			require.True(t, pollUntil(30*time.Second, 20*time.Millisecond, func() bool {
				k := kids(p)
				return len(k) == 2 && k[0] != first
			}), "%s never published the new key", p.name)
		}
		second := kids(a)[0]
		access, _ := login(t, b)
		assert.Equal(t, second, tokenKid(t, access), "B signs with the new key")
		status, me := a.get(t, "/v1/me", oldAccess)
		assert.Equal(t, http.StatusOK, status, "a token of the retired key still works until revoked: %v", me)

		cli("keys", "revoke", first)
		for _, p := range []*replicaProc{a, b} {
			require.True(t, pollUntil(30*time.Second, 20*time.Millisecond, func() bool {
				return !slices.Contains(kids(p), first)
			}), "%s still publishes the revoked key", p.name)
			require.True(t, pollUntil(30*time.Second, 20*time.Millisecond, func() bool {
				status, _ := p.get(t, "/v1/me", oldAccess)
				return status == http.StatusUnauthorized
			}), "%s still honours a token of the revoked key", p.name)
			status, _ := p.get(t, "/v1/me", access)
			assert.Equal(t, http.StatusOK, status, "%s honours the new key's token", p.name)
		}
	})

	// A and B are still healthy after all that.
	for _, p := range []*replicaProc{a, b} {
		status, _ := p.get(t, "/readyz", "")
		assert.Equal(t, http.StatusOK, status, "%s ready", p.name)
	}
}

// replicaBuild compiles this command once for the test.
func replicaBuild(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "lanyard")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// replicaProc is one lanyard process.
type replicaProc struct {
	name      string
	url       string
	cmd       *exec.Cmd
	listening chan string
	exited    chan struct{} // closed once Wait has returned
	waitErr   error
	stderr    replicaBuffer
	stopOnce  sync.Once
	logBook
}

// replicaClient bounds every request so a wedged replica fails the test
// instead of hanging it.
var replicaClient = &http.Client{Timeout: 10 * time.Second}

// replicaLaunch starts `lanyard serve` on a free loopback port with its own
// data directory and registers its shutdown. It does not wait for it.
func replicaLaunch(t *testing.T, bin, name string, shared, extra map[string]string) *replicaProc {
	t.Helper()
	vars := map[string]string{
		"LANYARD_ADDR": "127.0.0.1:0", "LANYARD_ADMIN_ADDR": "127.0.0.1:0", "LANYARD_DATA_DIR": t.TempDir(),
		// No load balancer polls readiness here: stop without the drain.
		"LANYARD_SHUTDOWN_DRAIN": "0s",
	}
	for k, v := range shared {
		vars[k] = v
	}
	for k, v := range extra {
		vars[k] = v
	}
	cmd := exec.Command(bin, "serve")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LANYARD_") { // nothing from the caller's shell leaks in
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &replicaProc{name: name, cmd: cmd, listening: make(chan string, 1), exited: make(chan struct{})}
	r, w, err := os.Pipe()
	require.NoError(t, err)
	cmd.Stdout = w
	cmd.Stderr = &p.stderr
	cmd.WaitDelay = 5 * time.Second // bounds the stderr copy after exit
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		require.NoError(t, err, "start %s", name)
	}
	t.Cleanup(func() { p.stop(t) })
	go p.readLogs(r)
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p
}

func (p *replicaProc) readLogs(r *os.File) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		p.record(rec)
		if addr, ok := rec["addr"].(string); ok && rec["msg"] == "listening" {
			select {
			case p.listening <- addr:
			default:
			}
		}
	}
}

// awaitReady waits for the "listening" line, then for /readyz to answer 200.
func (p *replicaProc) awaitReady(t *testing.T) {
	t.Helper()
	select {
	case p.url = <-p.listening:
	case <-p.exited:
		t.Fatalf("%s exited before listening: %v\nstderr: %s", p.name, p.waitErr, p.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not log \"listening\" within 30s\nstderr: %s", p.name, p.stderr.String())
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last string
	for range 250 { // at most ~5 s
		status, _, err := p.do(http.MethodGet, "/readyz", "", nil)
		if err == nil && status == http.StatusOK {
			return
		}
		last = fmt.Sprintf("status %d, error %v", status, err)
		select {
		case <-tick.C:
		case <-p.exited:
			t.Fatalf("%s exited while waiting for /readyz: %v\nstderr: %s", p.name, p.waitErr, p.stderr.String())
		}
	}
	t.Fatalf("%s never became ready (%s)", p.name, last)
}

// stop sends SIGTERM, waits for a clean exit, and kills as a last resort.
func (p *replicaProc) stop(t *testing.T) {
	t.Helper()
	p.stopOnce.Do(func() {
		select {
		case <-p.exited:
			t.Errorf("%s had exited before it was stopped: %v\nstderr: %s", p.name, p.waitErr, p.stderr.String())
			return
		default:
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("SIGTERM %s: %v", p.name, err)
		}
		select {
		case <-p.exited:
			if p.waitErr != nil {
				t.Errorf("%s did not exit cleanly on SIGTERM: %v\nstderr: %s", p.name, p.waitErr, p.stderr.String())
			}
		case <-time.After(15 * time.Second):
			t.Errorf("%s still running 15s after SIGTERM; killing it", p.name)
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
}

// do sends one request; it never fails the test, so goroutines may call it.
func (p *replicaProc) do(method, path, bearer string, body any) (int, map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, p.url+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := replicaClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, nil, err
	}
	var out map[string]any
	if len(raw) > 0 && json.Unmarshal(raw, &out) != nil {
		return res.StatusCode, nil, fmt.Errorf("%s %s on %s: not a JSON object: %q", method, path, p.name, raw)
	}
	return res.StatusCode, out, nil
}

func (p *replicaProc) post(t *testing.T, path string, body any) (int, map[string]any) {
	t.Helper()
	status, out, err := p.do(http.MethodPost, path, "", body)
	require.NoError(t, err, "POST %s on %s", path, p.name)
	return status, out
}

func (p *replicaProc) get(t *testing.T, path, bearer string) (int, map[string]any) {
	t.Helper()
	status, out, err := p.do(http.MethodGet, path, bearer, nil)
	require.NoError(t, err, "GET %s on %s", path, p.name)
	return status, out
}

func (p *replicaProc) jwks(t *testing.T) map[string]any {
	t.Helper()
	status, out := p.get(t, "/.well-known/jwks.json", "")
	require.Equal(t, http.StatusOK, status, "JWKS on %s", p.name)
	return out
}

// replicaBuffer is a bytes.Buffer safe to read while the process writes.
type replicaBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *replicaBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *replicaBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func replicaCount(t *testing.T, db *pgx.Conn, query string, args ...any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int64
	require.NoError(t, db.QueryRow(ctx, query, args...).Scan(&n), query)
	return int(n)
}

func replicaString(t *testing.T, db *pgx.Conn, query string, args ...any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var s *string
	err := db.QueryRow(ctx, query, args...).Scan(&s)
	if errors.Is(err, pgx.ErrNoRows) {
		t.Fatalf("no row for %s", query)
	}
	require.NoError(t, err, query)
	if s == nil {
		return ""
	}
	return *s
}

// replicaClaim reads one string claim of a JWT without verifying it (the
// replicas verify; this only names the session).
func replicaClaim(t *testing.T, token, name string) string {
	t.Helper()
	v, _ := claim(t, token, name).(string)
	require.NotEmpty(t, v, "claim %s", name)
	return v
}
