package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/testdb"
)

// The fault tests run with a short database deadline so a fault is seen
// quickly; the reuse grace stays at its 10 s default.
const (
	faultDBTimeout = time.Second
	// Every database-backed answer comes within the deadline plus this much
	// for the HTTP round trip and a busy box.
	answerBound = faultDBTimeout + time.Second
	// /readyz answers within this, whatever the database does.
	readyBound = time.Second
	// After the database returns, the service is whole again within this.
	recoveryBound = 5 * time.Second
	// A fault lasts at least this long, so the service meets it in a steady
	// state (pooled connections broken, reconnections failing, work timing
	// out), not only as a blip.
	faultHold  = 2 * faultDBTimeout
	faultUsers = 8
	// A user sends a refresh and a /v1/me at most this often: steady load
	// that leaves the box's two cores to the server and the database.
	userPace = 10 * time.Millisecond
)

// faultClient bounds every request far above the service's own bounds: a
// hang shows up as a measured failure, not as a stuck test.
var faultClient = &http.Client{
	Timeout:   15 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 2 * faultUsers},
}

// A fault breaks the database and returns what mends it.
type fault struct {
	name   string
	inject func(t *testing.T, c *testdb.Cluster) (restore func())
	// readyDown: /readyz must say 503 while the fault lasts. A locked table
	// leaves the database answering SELECT 1, so readiness stays 200 there.
	readyDown bool
}

// TestDatabaseFaults runs the real program on a throwaway PostgreSQL cluster
// with eight users each refreshing in a loop (and calling /v1/me), while the
// database is stopped, killed, frozen or has its sessions table locked.
// Throughout: every database-backed answer is a success or 503 `unavailable`
// with Retry-After, within the deadline plus one second; the JWKS is always
// served; /readyz tells the truth within a second. Afterwards the service
// recovers within five seconds and every refresh chain continues where it
// was, with no session revoked.
func TestDatabaseFaults(t *testing.T) {
	faults := []fault{
		{name: "stopped", readyDown: true, inject: func(t *testing.T, c *testdb.Cluster) func() {
			c.Stop()
			return c.Start
		}},
		{name: "killed", readyDown: true, inject: func(t *testing.T, c *testdb.Cluster) func() {
			c.Kill()
			return c.Start
		}},
		// Statements sent just before or during the freeze wait unread in the
		// backends' sockets and run when the database wakes, after their
		// requests answered 503. The freeze stays well inside the grace
		// window: one that catches a backend between its update and its
		// commit is an answer lost for as long as the freeze, and a retry is
		// only promised within the grace window. That such late statements
		// never commit is TestLateStatementNeverCommits's job.
		{name: "frozen", readyDown: true, inject: func(t *testing.T, c *testdb.Cluster) func() {
			c.Freeze()
			return c.Thaw
		}},
		{name: "sessions locked", inject: lockSessions},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) { runFault(t, f) })
	}
}

// lockSessions holds ACCESS EXCLUSIVE on sessions in an open transaction of
// its own connection, and returns once Lanyard's queries wait on it.
func lockSessions(t *testing.T, c *testdb.Cluster) func() {
	ctx := context.Background()
	holder := testdb.Connect(t, c.URL())
	tx, err := holder.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE`)
	require.NoError(t, err)
	// Statistics are read from another connection: inside a transaction
	// pg_stat_activity is a snapshot taken once.
	monitor := testdb.Connect(t, c.URL())
	awaitLockWaiter(t, monitor)
	return func() { require.NoError(t, tx.Commit(ctx)) }
}

// awaitLockWaiter polls until another statement waits on a lock in this
// database.
func awaitLockWaiter(t *testing.T, monitor *pgx.Conn) {
	t.Helper()
	require.True(t, pollUntil(10*time.Second, 5*time.Millisecond, func() bool {
		var waiting bool
		require.NoError(t, monitor.QueryRow(context.Background(), `
			SELECT EXISTS (SELECT FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid())`).Scan(&waiting))
		return waiting
	}), "after 10s no statement waits on the lock")
}

// chainUser is one user's refresh chain: the token to present next is the
// last one it received, or, after a 503 or no answer, the one it sent (the
// refresh may have committed with its answer lost; within the grace window
// the same token must then give the same successor).
type chainUser struct {
	refresh, access string
}

// answer is one request the test sent and what came back.
type answer struct {
	user        int    // -1 for the pollers
	what        string // refresh, me, jwks, readyz
	start, end  time.Time
	status      int
	code        string // problem code
	contentType string
	retryAfter  string
	requestID   string        // X-Request-Id, to find the server's log record
	served      time.Duration // the duration the server logged, when known
	err         error
	body        string
}

func (a answer) latency() time.Duration { return a.end.Sub(a.start) }

func (a answer) String() string {
	s := fmt.Sprintf("%s (user %d) sent %s took %s: ", a.what, a.user, a.start.Format("15:04:05.000"), a.latency().Round(time.Millisecond))
	if a.err != nil {
		return s + "error " + a.err.Error()
	}
	if a.served > 0 {
		s += fmt.Sprintf("(server: %s) ", a.served.Round(time.Millisecond))
	}
	return s + fmt.Sprintf("%d %s Retry-After=%q %s", a.status, a.contentType, a.retryAfter, a.body)
}

// faultRun records every answer of one fault run.
type faultRun struct {
	url     string
	mu      sync.Mutex
	answers []answer
}

func (r *faultRun) send(user int, what, method, path, bearer string, body any) (answer, map[string]any) {
	a := answer{user: user, what: what}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, r.url+path, rd)
	if err != nil {
		panic(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	var out map[string]any
	a.start = time.Now()
	res, err := faultClient.Do(req)
	if err == nil {
		raw, readErr := io.ReadAll(res.Body)
		res.Body.Close()
		err = readErr
		a.status = res.StatusCode
		a.contentType = res.Header.Get("Content-Type")
		a.retryAfter = res.Header.Get("Retry-After")
		a.requestID = res.Header.Get("X-Request-Id")
		_ = json.Unmarshal(raw, &out)
		a.code, _ = out["code"].(string)
		if res.StatusCode != http.StatusOK {
			a.body = string(raw)
		}
	}
	a.end = time.Now()
	a.err = err
	r.mu.Lock()
	r.answers = append(r.answers, a)
	r.mu.Unlock()
	return a, out
}

// chain refreshes and reads /v1/me in a loop until stop closes.
func (r *faultRun) chain(i int, u *chainUser, stop <-chan struct{}) {
	tick := time.NewTicker(userPace)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		a, out := r.send(i, "refresh", http.MethodPost, "/v1/auth/refresh", "", map[string]any{"refresh_token": u.refresh})
		switch {
		case a.err == nil && a.status == http.StatusOK:
			u.refresh, u.access = out["refresh_token"].(string), out["access_token"].(string)
		case a.err == nil && a.status == http.StatusUnauthorized:
			return // the chain is broken; the analysis reports it
		}
		r.send(i, "me", http.MethodGet, "/v1/me", u.access, nil)
	}
}

// poll asks for path every interval until stop closes.
func (r *faultRun) poll(what, path string, interval time.Duration, stop <-chan struct{}) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		r.send(-1, what, http.MethodGet, path, "", nil)
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// since returns the answers to requests sent at or after t. Answers are
// appended when they end, so those of requests sent after mark (the length
// of answers when t was taken) are all at index mark or later.
func (r *faultRun) since(mark int, t time.Time) []answer {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []answer
	for _, a := range r.answers[mark:] {
		if !a.start.Before(t) {
			out = append(out, a)
		}
	}
	return out
}

func (r *faultRun) mark() (int, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.answers), time.Now()
}

// await polls cond over the answers sent since t until it holds or within
// passes; it reports whether it held and when.
func (r *faultRun) await(mark int, t time.Time, within time.Duration, cond func([]answer) bool) (bool, time.Time) {
	held := pollUntil(within, 10*time.Millisecond, func() bool { return cond(r.since(mark, t)) })
	return held, time.Now()
}

// eachUser holds when every user has an answer of kind what matching ok.
func eachUser(what string, ok func(answer) bool) func([]answer) bool {
	return func(as []answer) bool {
		seen := map[int]bool{}
		for _, a := range as {
			if a.what == what && ok(a) {
				seen[a.user] = true
			}
		}
		return len(seen) == faultUsers
	}
}

// atLeast holds when n answers of kind what match ok.
func atLeast(what string, n int, ok func(answer) bool) func([]answer) bool {
	return func(as []answer) bool {
		k := 0
		for _, a := range as {
			if a.what == what && ok(a) {
				k++
			}
		}
		return k >= n
	}
}

// allOf holds when every condition does.
func allOf(conds ...func([]answer) bool) func([]answer) bool {
	return func(as []answer) bool {
		for _, c := range conds {
			if !c(as) {
				return false
			}
		}
		return true
	}
}

func isStatus(status int) func(answer) bool {
	return func(a answer) bool { return a.err == nil && a.status == status }
}

func runFault(t *testing.T, f fault) {
	began := time.Now()
	c := testdb.StartCluster(t)
	l := start(t, map[string]string{
		"LANYARD_DATABASE_URL":      c.URL(),
		"LANYARD_SECRET":            strings.Repeat("fault-secret-", 4),
		"LANYARD_ISSUER":            "http://lanyard.test",
		"LANYARD_DB_TIMEOUT":        faultDBTimeout.String(),
		"LANYARD_SHUTDOWN_DRAIN":    "0s",
		"LANYARD_ARGON2_MEMORY_KIB": "8192", // sign-ups are not under test
		"LANYARD_ARGON2_TIME":       "1",
	})
	users := make([]*chainUser, faultUsers)
	for i := range users {
		status, body := l.post(t, "/v1/auth/signup", map[string]any{"email": fmt.Sprintf("fault%d@example.com", i), "password": "correct horse battery staple"})
		require.Equal(t, http.StatusCreated, status, body)
		users[i] = &chainUser{refresh: body["refresh_token"].(string), access: body["access_token"].(string)}
	}

	r := &faultRun{url: l.url}
	stop := make(chan struct{})
	var stopOnce sync.Once
	var wg sync.WaitGroup
	halt := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	t.Cleanup(halt) // before the server stops, even when the test fails early
	for i, u := range users {
		wg.Go(func() { r.chain(i, u, stop) })
	}
	wg.Go(func() { r.poll("jwks", "/.well-known/jwks.json", 50*time.Millisecond, stop) })
	wg.Go(func() { r.poll("readyz", "/readyz", 20*time.Millisecond, stop) })

	setUp := time.Since(began)
	m0, t0 := r.mark()
	ok, _ := r.await(m0, t0, 20*time.Second, allOf(eachUser("refresh", isStatus(http.StatusOK)), atLeast("readyz", 1, isStatus(http.StatusOK))))
	require.True(t, ok, "before the fault every user refreshes and /readyz is 200:\n%s", r.summary(m0, t0))

	_, injectAt := r.mark()
	restore := f.inject(t, c)
	mFault, faultAt := r.mark()
	// The fault bites: every user has had a database-backed request turned
	// away, and /readyz has been asked a few times, all while it lasts.
	ok, _ = r.await(mFault, faultAt, 10*time.Second, allOf(
		eachUser("refresh", isStatus(http.StatusServiceUnavailable)),
		atLeast("readyz", 3, func(answer) bool { return true })))
	assert.True(t, ok, "within 10s of the fault every user got a 503 on refresh and /readyz answered 3 times:\n%s", r.summary(mFault, faultAt))
	<-time.After(time.Until(faultAt.Add(faultHold))) // how long the outage lasts, not a wait for anything
	_, restoreBegin := r.mark()
	restore()
	mBack, backAt := r.mark()

	recovered := allOf(eachUser("refresh", isStatus(http.StatusOK)), atLeast("readyz", 1, isStatus(http.StatusOK)))
	ok, at := r.await(mBack, backAt, recoveryBound, recovered)
	if !ok {
		// Keep going a while to see whether it recovers at all (the chain
		// checks below need a working service), unless a chain is broken:
		// that user can never refresh again.
		broken := atLeast("refresh", 1, isStatus(http.StatusUnauthorized))
		_, at = r.await(mBack, backAt, 10*time.Second, func(as []answer) bool { return recovered(as) || broken(as) })
		as := r.since(mBack, backAt)
		t.Errorf("not recovered within %s of the database returning (after %s: recovered %v, a chain broken %v):\n%s",
			recoveryBound, at.Sub(backAt).Round(time.Millisecond), recovered(as), broken(as), r.summary(mBack, backAt))
	}
	t.Logf("%s: set-up %s, fault held %s, recovery took %s",
		f.name, setUp.Round(time.Millisecond), restoreBegin.Sub(faultAt).Round(time.Millisecond), at.Sub(backAt).Round(time.Millisecond))
	halt()

	// Every chain continues from where it was: the token each user holds
	// works, and so does its successor.
	for i, u := range users {
		for step := range 2 {
			a, out := r.send(i, "refresh", http.MethodPost, "/v1/auth/refresh", "", map[string]any{"refresh_token": u.refresh})
			if !assert.True(t, a.err == nil && a.status == http.StatusOK, "user %d's chain continues (step %d): %s", i, step, a) {
				break
			}
			u.refresh = out["refresh_token"].(string)
		}
	}
	db := testdb.Connect(t, c.URL())
	var sessions, revoked int
	require.NoError(t, db.QueryRow(context.Background(),
		`SELECT count(*), count(*) FILTER (WHERE revoked_at IS NOT NULL) FROM sessions`).Scan(&sessions, &revoked))
	assert.Equal(t, faultUsers, sessions, "one session per user")
	assert.Zero(t, revoked, "no session was revoked")

	r.check(t, f, &l.logBook, injectAt, faultAt, restoreBegin)
	checkLogs(t, &l.logBook)
}

// check applies the rules to every answer and reports each kind of breach
// once, with a count and examples. An example shows the duration the server
// logged next to the one the client measured, to tell a slow server from a
// busy box.
func (r *faultRun) check(t *testing.T, f fault, logs *logBook, injectAt, faultAt, restoreBegin time.Time) {
	t.Helper()
	r.mu.Lock()
	answers := append([]answer(nil), r.answers...)
	r.mu.Unlock()
	served := map[string]time.Duration{}
	logs.mu.Lock()
	for _, rec := range logs.logs {
		if id, ok := rec["request_id"].(string); ok {
			ns, _ := rec["duration"].(float64) // slog writes a duration as nanoseconds
			served[id] = time.Duration(ns)
		}
	}
	logs.mu.Unlock()
	breaches := map[string][]answer{}
	var order []string
	breach := func(rule string, a answer) {
		a.served = served[a.requestID]
		if breaches[rule] == nil {
			order = append(order, rule)
		}
		breaches[rule] = append(breaches[rule], a)
	}
	stats := map[string]map[string]int{}
	for _, a := range answers {
		key := strconv.Itoa(a.status)
		if a.err != nil {
			key = "error"
		}
		if stats[a.what] == nil {
			stats[a.what] = map[string]int{}
		}
		stats[a.what][key]++
		// Before: answered before the fault was injected. During: sent once
		// it was in place, answered before the repair began.
		before := a.end.Before(injectAt)
		during := !a.start.Before(faultAt) && a.end.Before(restoreBegin)
		switch a.what {
		case "refresh", "me":
			switch {
			case a.err != nil:
				breach(a.what+": no answer", a)
			case a.code == "refresh_token_reused" || a.code == "invalid_refresh_token":
				breach(a.what+": session revoked ("+a.code+")", a)
			case a.status == http.StatusOK:
			case a.status == http.StatusServiceUnavailable:
				if !strings.HasPrefix(a.contentType, "application/problem+json") || a.code != "unavailable" {
					breach(a.what+": 503 is not problem+json `unavailable`", a)
				}
				if n, err := strconv.Atoi(a.retryAfter); err != nil || n < 1 {
					breach(a.what+": 503 without a valid Retry-After", a)
				}
			default:
				breach(a.what+": status neither 200 nor 503", a)
			}
			if a.latency() > answerBound {
				breach(fmt.Sprintf("%s: answered later than %s", a.what, answerBound), a)
			}
		case "jwks":
			if a.err != nil || a.status != http.StatusOK {
				breach("jwks: not 200", a)
			}
		case "readyz":
			if a.err != nil {
				breach("readyz: no answer", a)
				continue
			}
			if a.latency() > readyBound {
				breach(fmt.Sprintf("readyz: answered later than %s", readyBound), a)
			}
			switch {
			case during && f.readyDown && a.status != http.StatusServiceUnavailable:
				breach("readyz: not 503 while the database is down", a)
			case (before || during && !f.readyDown) && a.status != http.StatusOK:
				breach("readyz: not 200 while the database answers", a)
			}
			if a.status == http.StatusServiceUnavailable && (a.code != "unavailable" || a.retryAfter == "") {
				breach("readyz: 503 is not `unavailable` with Retry-After", a)
			}
		}
	}
	t.Logf("%s: answers by route and status: %v", f.name, stats)
	for _, rule := range order {
		as := breaches[rule]
		var ex []string
		for _, a := range as[:min(3, len(as))] {
			ex = append(ex, "  "+a.String())
		}
		t.Errorf("%s: %d answers, e.g.\n%s", rule, len(as), strings.Join(ex, "\n"))
	}
}

// summary describes the answers since t, for a failed wait.
func (r *faultRun) summary(mark int, t time.Time) string {
	as := r.since(mark, t)
	counts := map[string]int{}
	for _, a := range as {
		key := fmt.Sprintf("%s %d", a.what, a.status)
		if a.err != nil {
			key = a.what + " error"
		}
		counts[key]++
	}
	s := fmt.Sprintf("  counts: %v", counts)
	shown := 0
	for _, a := range as {
		if (a.err != nil || a.status != http.StatusOK) && shown < 5 {
			s += "\n  " + a.String()
			shown++
		}
	}
	return s
}

// checkLogs: a database fault is not a server error, so nothing is logged
// at ERROR.
func checkLogs(t *testing.T, b *logBook) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []string
	for _, rec := range b.logs {
		if rec["level"] == "ERROR" {
			line, _ := json.Marshal(rec)
			errs = append(errs, string(line))
		}
	}
	if len(errs) > 0 {
		t.Errorf("%d records logged at ERROR, e.g.\n  %s", len(errs), strings.Join(errs[:min(3, len(errs))], "\n  "))
	}
}
