// Command load is the closed-loop load generator behind bench/refresh/run.sh.
//
// Each of -clients goroutines sends one request, waits for the answer, and
// sends the next, for -warmup plus -duration (the loop is bounded in time;
// each request also has a timeout). Only requests that start after the warmup
// and finish inside the measured window count.
//
//	-target lanyard:    signs up -clients users, then each client loops
//	                    POST /v1/auth/refresh with its own current refresh
//	                    token, replacing it with the response's refresh_token.
//	-target betterauth: signs up -clients users on the Better-Auth peer, keeps
//	                    each session's bearer token (set-auth-token), then
//	                    loops GET /api/auth/token with Authorization: Bearer.
//	-target none:       sends nothing; only the CPU readings over the window
//	                    (run.sh runs it beside pgbench).
//
// It prints one line:
//
//	target=... clients=32 duration=10s requests=N errors=E req_per_s=X p50_ms=Y p99_ms=Z cpu_...
//
// requests counts every request completed in the window; errors are the
// non-200 answers and transport errors among them; req_per_s counts only the
// 200s. The cpu_* fields are CPU-seconds per second over the same window
// (1.00 = one core busy): this process, the server process (-server-pid), all
// processes named "postgres", every other process, interrupts, steal, and the
// whole box (/proc/stat); see cpuSample.sub.
// Loopback targets only.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const password = "correct horse battery staple"

type config struct {
	target    string
	base      string
	clients   int
	duration  time.Duration
	warmup    time.Duration
	timeout   time.Duration
	serverPID int
}

func main() {
	var c config
	flag.StringVar(&c.target, "target", "lanyard", "lanyard, betterauth, or none (CPU readings only)")
	flag.StringVar(&c.base, "url", "", "base URL (default http://127.0.0.1:8080 for lanyard, http://127.0.0.1:3001 for betterauth)")
	flag.IntVar(&c.clients, "clients", 32, "concurrent clients (closed loop: one request in flight each)")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "measured window")
	flag.DurationVar(&c.warmup, "warmup", 2*time.Second, "unmeasured load before the window")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Second, "per-request timeout")
	flag.IntVar(&c.serverPID, "server-pid", 0, "server process id, for the cpu_server field (optional)")
	freePort := flag.Bool("free-port", false, "print a free loopback TCP port and exit (for run.sh)")
	flag.Parse()
	if *freePort {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			os.Exit(1)
		}
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
		l.Close()
		return
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// worker is one closed-loop client: do sends one request and says whether it succeeded.
type worker interface {
	do(ctx context.Context) (status int, err error)
}

func run(c config) error {
	if c.target == "none" {
		// No requests: only the CPU readings over the window (run.sh uses it
		// beside pgbench, with -server-pid set to pgbench's pid).
		return measure(c, nil)
	}
	if c.base == "" {
		c.base = map[string]string{"lanyard": "http://127.0.0.1:8080", "betterauth": "http://127.0.0.1:3001"}[c.target]
	}
	c.base = strings.TrimSuffix(c.base, "/")
	if err := loopbackOnly(c.base); err != nil {
		return err
	}
	if c.clients < 1 || c.duration <= 0 || c.warmup < 0 {
		return errors.New("need -clients >= 1, -duration > 0, -warmup >= 0")
	}
	client := &http.Client{
		Timeout: c.timeout,
		Transport: &http.Transport{
			Proxy:               nil, // loopback: never a proxy
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        c.clients * 2,
			MaxIdleConnsPerHost: c.clients * 2,
			MaxConnsPerHost:     c.clients,
			IdleConnTimeout:     time.Minute,
		},
	}
	var (
		workers []worker
		err     error
	)
	switch c.target {
	case "lanyard":
		workers, err = lanyardWorkers(client, c)
	case "betterauth":
		workers, err = betterAuthWorkers(client, c)
	default:
		return fmt.Errorf("unknown -target %q (lanyard or betterauth)", c.target)
	}
	if err != nil {
		return err
	}
	// One request per client, one at a time, before the load: it checks the
	// setup, and on a fresh Better-Auth database it lets the first /token
	// create the one signing key (32 concurrent first calls each create one).
	for i, w := range workers {
		if status, err := w.do(context.Background()); err != nil || status != http.StatusOK {
			return fmt.Errorf("client %d: first request: status %d, error %v", i, status, err)
		}
	}
	return measure(c, workers)
}

func loopbackOnly(base string) error {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" {
		return fmt.Errorf("-url %q: need http://loopback:port", base)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("-url %q is not a loopback address", base)
}

type result struct {
	lat      []time.Duration
	ok, fail int
	statuses map[string]int
}

func measure(c config, workers []worker) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	windowStart := start.Add(c.warmup)
	windowEnd := windowStart.Add(c.duration)

	// CPU readings at the window's edges, taken by a separate goroutine so the
	// clients never wait on /proc.
	var cpuBefore, cpuAfter cpuSample
	cpuDone := make(chan struct{})
	go func() {
		defer close(cpuDone)
		time.Sleep(time.Until(windowStart))
		cpuBefore = sampleCPU(c.serverPID)
		time.Sleep(time.Until(windowEnd))
		cpuAfter = sampleCPU(c.serverPID)
	}()

	results := make([]result, len(workers))
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := result{lat: make([]time.Duration, 0, 4096), statuses: map[string]int{}}
			for {
				t0 := time.Now()
				if !t0.Before(windowEnd) {
					break
				}
				status, err := w.do(ctx)
				t1 := time.Now()
				if t0.Before(windowStart) || t1.After(windowEnd) {
					continue // warmup, or straddles the end of the window
				}
				r.lat = append(r.lat, t1.Sub(t0))
				switch {
				case err != nil:
					r.fail++
					r.statuses[shortErr(err)]++
				case status != http.StatusOK:
					r.fail++
					r.statuses[strconv.Itoa(status)]++
				default:
					r.ok++
				}
			}
			results[i] = r
		}()
	}
	wg.Wait()
	<-cpuDone

	var all []time.Duration
	ok, fail := 0, 0
	statuses := map[string]int{}
	for _, r := range results {
		all = append(all, r.lat...)
		ok += r.ok
		fail += r.fail
		for k, v := range r.statuses {
			statuses[k] += v
		}
	}
	slices.Sort(all)
	secs := c.duration.Seconds()
	if c.target == "none" {
		fmt.Printf("target=none duration=%s %s\n", c.duration, cpuAfter.sub(cpuBefore, secs))
		return nil
	}
	fmt.Printf("target=%s clients=%d duration=%s requests=%d errors=%d req_per_s=%.1f p50_ms=%.2f p99_ms=%.2f %s\n",
		c.target, c.clients, c.duration, ok+fail, fail, float64(ok)/secs,
		pct(all, 0.50), pct(all, 0.99), cpuAfter.sub(cpuBefore, secs))
	if fail > 0 {
		fmt.Fprintf(os.Stderr, "load: %d errors: %v\n", fail, statuses)
	}
	return nil
}

// pct is the nearest-rank percentile in milliseconds.
func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(sorted[i].Microseconds()) / 1000
}

func shortErr(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "transport"
}

// ---- Lanyard ----

type lanyardWorker struct {
	client *http.Client
	url    string
	token  string
}

func (w *lanyardWorker) do(ctx context.Context) (int, error) {
	body, _ := json.Marshal(map[string]string{"refresh_token": w.token})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	status, b, err := fetch(w.client, req)
	if err != nil || status != http.StatusOK {
		return status, err
	}
	var out struct {
		RefreshToken string `json:"refresh_token"`
		AccessToken  string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.RefreshToken == "" || out.AccessToken == "" {
		return -1, nil // a 200 without tokens is an error too
	}
	w.token = out.RefreshToken
	return status, nil
}

func lanyardWorkers(client *http.Client, c config) ([]worker, error) {
	if err := waitReady(client, c.base+"/readyz"); err != nil {
		return nil, err
	}
	run := time.Now().UnixNano()
	tokens, err := setupEach(c.clients, 2, func(i int) (string, error) {
		creds, _ := json.Marshal(map[string]string{
			"email": fmt.Sprintf("refresh-bench-%d-%d@example.com", run, i), "password": password,
		})
		for attempt := 0; ; attempt++ {
			res, err := client.Post(c.base+"/v1/auth/signup", "application/json", bytes.NewReader(creds))
			if err != nil {
				return "", err
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusServiceUnavailable && attempt < 5 { // hash queue full
				time.Sleep(200 * time.Millisecond)
				continue
			}
			if res.StatusCode != http.StatusCreated {
				return "", fmt.Errorf("lanyard signup: HTTP %d: %s", res.StatusCode, b)
			}
			var out struct {
				RefreshToken string `json:"refresh_token"`
			}
			if err := json.Unmarshal(b, &out); err != nil || out.RefreshToken == "" {
				return "", fmt.Errorf("lanyard signup: no refresh_token in %s", b)
			}
			return out.RefreshToken, nil
		}
	})
	if err != nil {
		return nil, err
	}
	ws := make([]worker, len(tokens))
	for i, t := range tokens {
		ws[i] = &lanyardWorker{client: client, url: c.base + "/v1/auth/refresh", token: t}
	}
	return ws, nil
}

// ---- Better-Auth peer ----

type betterAuthWorker struct {
	client *http.Client
	url    string
	bearer string
}

func (w *betterAuthWorker) do(ctx context.Context) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, w.url, nil)
	req.Header.Set("Authorization", "Bearer "+w.bearer)
	status, b, err := fetch(w.client, req)
	if err != nil || status != http.StatusOK {
		return status, err
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Token == "" {
		return -1, nil
	}
	return status, nil
}

func betterAuthWorkers(client *http.Client, c config) ([]worker, error) {
	if err := waitReady(client, c.base+"/healthz"); err != nil {
		return nil, err
	}
	api := c.base + "/api/auth"
	run := time.Now().UnixNano()
	post := func(path string, body any) (*http.Response, []byte, error) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, api+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		// Go's client sends no Sec-Fetch-* headers, so Better-Auth's CSRF check
		// does not demand an Origin (checked: sign-up answers 200 without it).
		// Sending the peer's own origin keeps this working if that changes.
		req.Header.Set("Origin", c.base)
		res, err := client.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer res.Body.Close()
		rb, err := io.ReadAll(res.Body)
		return res, rb, err
	}
	// scrypt (N=16384, r=16) runs in libuv's 4-thread pool: 4 at a time.
	bearers, err := setupEach(c.clients, 4, func(i int) (string, error) {
		email := fmt.Sprintf("refresh-bench-%d-%d@example.com", run, i)
		res, b, err := post("/sign-up/email", map[string]string{"name": "Bench " + strconv.Itoa(i), "email": email, "password": password})
		if err != nil {
			return "", err
		}
		if res.StatusCode != http.StatusOK {
			return "", fmt.Errorf("better-auth sign-up: HTTP %d: %s", res.StatusCode, b)
		}
		if tok := res.Header.Get("set-auth-token"); tok != "" {
			return tok, nil // autoSignIn: sign-up already opened a session
		}
		res, b, err = post("/sign-in/email", map[string]string{"email": email, "password": password})
		if err != nil {
			return "", err
		}
		if res.StatusCode != http.StatusOK || res.Header.Get("set-auth-token") == "" {
			return "", fmt.Errorf("better-auth sign-in: HTTP %d, no set-auth-token: %s", res.StatusCode, b)
		}
		return res.Header.Get("set-auth-token"), nil
	})
	if err != nil {
		return nil, err
	}
	ws := make([]worker, len(bearers))
	for i, t := range bearers {
		ws[i] = &betterAuthWorker{client: client, url: api + "/token", bearer: t}
	}
	return ws, nil
}

// ---- helpers ----

func waitReady(client *http.Client, u string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := client.Get(u)
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 60 s (last error %v)", u, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// setupEach runs f for 0..n-1 with at most par at a time.
func setupEach(n, par int, f func(i int) (string, error)) ([]string, error) {
	out := make([]string, n)
	errs := make([]error, n)
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i], errs[i] = f(i)
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// ---- CPU accounting ----

type cpuSample struct {
	at               time.Time
	self, server, pg float64 // CPU seconds
	box              boxStat
	serverOK, pgOK   bool
}

const clkTck = 100 // USER_HZ on Linux

func sampleCPU(serverPID int) cpuSample {
	s := cpuSample{at: time.Now()}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = tvSec(ru.Utime) + tvSec(ru.Stime)
	}
	if serverPID > 0 {
		if v, _, err := procCPU(serverPID); err == nil {
			s.server, s.serverOK = v, true
		}
	}
	s.pg, s.pgOK = postgresCPU()
	s.box = readBoxStat()
	return s
}

// sub formats the CPU use between two samples, in cores (CPU-seconds per second):
//
//	cpu_loader, cpu_server, cpu_postgres: those processes;
//	cpu_other:   process time (user+system) of everything else on the box:
//	             compiles, other benchmarks; large values mean a noisy run;
//	cpu_irq:     interrupt and softirq time (loopback networking lands here in part);
//	cpu_steal:   time the hypervisor gave to other guests;
//	cpu_box:     all of the above, out of ncpu.
func (after cpuSample) sub(before cpuSample, secs float64) string {
	el := after.at.Sub(before.at).Seconds()
	if el <= 0 {
		el = secs
	}
	f := func(ok bool, v float64) string {
		if !ok {
			return "na"
		}
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	self := (after.self - before.self) / el
	server := (after.server - before.server) / el
	pg := (after.pg - before.pg) / el
	serverOK := after.serverOK && before.serverOK
	pgOK := after.pgOK && before.pgOK
	other, irq, steal, box := "na", "na", "na", "na"
	if after.box.ok && before.box.ok {
		d := func(x, y float64) float64 { return (x - y) / clkTck / el }
		procs := d(after.box.procs, before.box.procs)
		known := self
		if serverOK {
			known += server
		}
		if pgOK {
			known += pg
		}
		irqV := d(after.box.irq, before.box.irq)
		stealV := d(after.box.steal, before.box.steal)
		other = f(true, max(0, procs-known))
		irq = f(true, irqV)
		steal = f(true, stealV)
		box = f(true, procs+irqV+stealV)
	}
	return fmt.Sprintf("cpu_loader=%s cpu_server=%s cpu_postgres=%s cpu_other=%s cpu_irq=%s cpu_steal=%s cpu_box=%s ncpu=%d",
		f(true, self), f(serverOK, server), f(pgOK, pg), other, irq, steal, box, runtime.NumCPU())
}

func tvSec(tv syscall.Timeval) float64 { return float64(tv.Sec) + float64(tv.Usec)/1e6 }

// procCPU returns a process's utime+stime in seconds, and its command name.
func procCPU(pid int) (float64, string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", err
	}
	s := string(b)
	open, closeP := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closeP < open {
		return 0, "", errors.New("bad stat")
	}
	fields := strings.Fields(s[closeP+1:])
	if len(fields) < 13 {
		return 0, "", errors.New("short stat")
	}
	ut, _ := strconv.ParseFloat(fields[11], 64)
	st, _ := strconv.ParseFloat(fields[12], 64)
	return (ut + st) / clkTck, s[open+1 : closeP], nil
}

// postgresCPU sums the CPU time of every live process named "postgres"
// (the postmaster, its background workers and the backends).
func postgresCPU() (float64, bool) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, false
	}
	total, found := 0.0, false
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		v, comm, err := procCPU(pid)
		if err == nil && comm == "postgres" {
			total += v
			found = true
		}
	}
	return total, found
}

type boxStat struct {
	procs, irq, steal float64 // jiffies: user+nice+system, irq+softirq, steal
	ok                bool
}

func readBoxStat() boxStat {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return boxStat{}
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return boxStat{}
	}
	// cpu user nice system idle iowait irq softirq steal guest guest_nice
	fields := strings.Fields(sc.Text())
	if len(fields) < 9 || fields[0] != "cpu" {
		return boxStat{}
	}
	v := make([]float64, 8)
	for i := range v {
		v[i], _ = strconv.ParseFloat(fields[i+1], 64)
	}
	return boxStat{procs: v[0] + v[1] + v[2], irq: v[5] + v[6], steal: v[7], ok: true}
}

// fetch sends req and reads the whole body (a status of 0 with an error when
// the exchange failed).
func fetch(client *http.Client, req *http.Request) (int, []byte, error) {
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, nil, err
	}
	return res.StatusCode, b, nil
}
