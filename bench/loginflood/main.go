// Command loginflood measures Lanyard's peak memory under a login flood: it
// starts the lanyard binary, records its resident set at rest, sends logins
// from many concurrent clients for a bounded time (loopback only), and
// compares the peak (VmHWM) with the budget base + cap × 19 MiB + 64 MiB.
//
// With -fairness it measures instead whether a flood from one client starves
// the others of hash slots: -clients connections send bogus logins from one
// address while one other client logs in correctly, one login at a time;
// it reports that client's success rate and latency. Sources are told apart
// by X-Forwarded-For (the binary runs with LANYARD_TRUSTED_PROXIES=127.0.0.1),
// and the rate limits are raised out of the way (in every mode), so the hash
// slots are what is contested, not the throttle.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	bin := flag.String("bin", "./lanyard", "lanyard binary")
	clients := flag.Int("clients", 200, "concurrent clients")
	duration := flag.Duration("duration", 15*time.Second, "how long to flood")
	dbURL := flag.String("db", "", "postgres URL (empty: embedded SQLite)")
	fairness := flag.Bool("fairness", false, "measure another client's logins during a flood from one address")
	flag.Parse()
	run := flood
	if *fairness {
		run = fair
	}
	if err := run(*bin, *clients, *duration, *dbURL); err != nil {
		fmt.Fprintln(os.Stderr, "loginflood:", err)
		os.Exit(1)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// cpuSeconds is the process's user+system CPU time so far.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name; utime and stime are the 12th and 13th.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100, nil // USER_HZ is 100 on Linux
}

// statusKiB reads a "VmRSS:"-style line of /proc/<pid>/status.
func statusKiB(pid int, field string) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	return 0, fmt.Errorf("%s not found", field)
}

// server is a running lanyard binary.
type server struct {
	base string
	pid  int
	stop func()
}

// startServer starts the binary on a free loopback port with env added,
// and waits until it is ready. The rate limits are raised out of the way
// (runs against one database sign up again; the throttle's statements still
// run on every login): an attempt in
// progress counts as a possible failure until its hash is checked, so more
// concurrent logins of one account from one address than the limit would
// be refused, and what is measured here is the hashing path.
func startServer(bin, dbURL string, client *http.Client, env ...string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dataDir, err := os.MkdirTemp("", "loginflood-")
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := exec.Command(bin, "serve")
	// The raised limits come first, so the caller's environment can set others.
	cmd.Env = append([]string{"LANYARD_RATE_LIMIT_LOGIN_ACCOUNT_IP=1000000", "LANYARD_RATE_LIMIT_LOGIN_IP=1000000", "LANYARD_RATE_LIMIT_LOGIN_ACCOUNT=1000000",
		"LANYARD_RATE_LIMIT_SIGNUP_IP=1000000"}, os.Environ()...)
	cmd.Env = append(cmd.Env, "LANYARD_ADDR=127.0.0.1:"+strconv.Itoa(port), "LANYARD_DATA_DIR="+dataDir, "LANYARD_LOG_LEVEL=warn")
	if dbURL != "" {
		cmd.Env = append(cmd.Env, "LANYARD_DATABASE_URL="+dbURL, "LANYARD_SECRET=loginflood-benchmark-secret-0123456789")
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dataDir)
		return nil, err
	}
	s := &server{base: base, pid: cmd.Process.Pid, stop: func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		os.RemoveAll(dataDir)
	}}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if res, err := client.Get(base + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s, nil
			}
		}
	}
	s.stop()
	return nil, fmt.Errorf("lanyard did not become ready")
}

// login posts creds, from the address in X-Forwarded-For when from is set,
// and returns the status.
func login(ctx context.Context, client *http.Client, base string, creds []byte, from string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/auth/login", bytes.NewReader(creds))
	req.Header.Set("Content-Type", "application/json")
	if from != "" {
		req.Header.Set("X-Forwarded-For", from)
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

// signUp creates an account with a fresh address, so runs against one
// Postgres database never collide, and returns its credentials.
func signUp(client *http.Client, base, from string) ([]byte, error) {
	email := fmt.Sprintf("flood-%d@example.com", time.Now().UnixNano())
	creds, _ := json.Marshal(map[string]string{"email": email, "password": "correct horse battery staple"})
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/auth/signup", bytes.NewReader(creds))
	req.Header.Set("Content-Type", "application/json")
	if from != "" {
		req.Header.Set("X-Forwarded-For", from)
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("signup: %d", res.StatusCode)
	}
	return creds, nil
}

// fair floods bogus logins from one address over clients connections while
// one other client logs in correctly, one login after another, for
// duration; it reports that client's success rate and latency.
func fair(bin string, clients int, duration time.Duration, dbURL string) error {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	srv, err := startServer(bin, dbURL, client, "LANYARD_TRUSTED_PROXIES=127.0.0.1")
	if err != nil {
		return err
	}
	defer srv.stop()
	const flooder, user = "203.0.113.66", "198.51.100.7"
	creds, err := signUp(client, srv.base, user)
	if err != nil {
		return err
	}
	bogus, _ := json.Marshal(map[string]string{"email": "nobody@example.com", "password": "not anybody's password"})

	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var flood sync.Map // status → *atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				status, err := login(ctx, client, srv.base, bogus, flooder)
				if err != nil {
					continue
				}
				n, _ := flood.LoadOrStore(status, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
			}
		})
	}
	// The user's own connection, so it never queues behind the flood's.
	userClient := &http.Client{Timeout: 30 * time.Second}
	var latencies []time.Duration
	statuses := map[int]int{}
	for ctx.Err() == nil {
		began := time.Now()
		status, err := login(context.Background(), userClient, srv.base, creds, user)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			break // the flood has stopped: not a measurement under load
		}
		latencies = append(latencies, time.Since(began))
		statuses[status]++
	}
	wg.Wait()
	if len(latencies) == 0 {
		return fmt.Errorf("no login finished within %s", duration)
	}
	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[int(p*float64(len(latencies)-1))] }
	fmt.Printf("fairness: %d flood connections from %s for %s\n", clients, flooder, duration)
	flood.Range(func(k, v any) bool {
		fmt.Printf("flood status %d: %d\n", k, v.(*atomic.Int64).Load())
		return true
	})
	fmt.Printf("user logins=%d ok=%d (%.1f%%) statuses=%v p50=%s p99=%s\n", len(latencies), statuses[http.StatusOK],
		100*float64(statuses[http.StatusOK])/float64(len(latencies)), statuses,
		pct(0.50).Round(time.Millisecond), pct(0.99).Round(time.Millisecond))
	return nil
}

func flood(bin string, clients int, duration time.Duration, dbURL string) error {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	srv, err := startServer(bin, dbURL, client)
	if err != nil {
		return err
	}
	defer srv.stop()
	base, pid := srv.base, srv.pid
	creds, err := signUp(client, base, "")
	if err != nil {
		return err
	}
	runtime.GC()
	time.Sleep(time.Second) // let the server settle before the baseline reading
	baseKiB, err := statusKiB(pid, "VmRSS")
	if err != nil {
		return err
	}

	cpuBefore, err := cpuSeconds(pid)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var ok, busy, other atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				status, err := login(ctx, client, base, creds, "")
				if err != nil {
					if ctx.Err() == nil {
						other.Add(1)
					}
					continue
				}
				switch status {
				case http.StatusOK:
					ok.Add(1)
				case http.StatusServiceUnavailable:
					busy.Add(1)
				default:
					other.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpuAfter, err := cpuSeconds(pid)
	if err != nil {
		return err
	}
	peakKiB, err := statusKiB(pid, "VmHWM")
	if err != nil {
		return err
	}
	hashCap := runtime.NumCPU()
	if v := os.Getenv("LANYARD_HASH_CONCURRENCY"); v != "" {
		hashCap, _ = strconv.Atoi(v)
	}
	budgetMiB := float64(hashCap*19 + 64)
	growthMiB := float64(peakKiB-baseKiB) / 1024
	fmt.Printf("clients=%d duration=%s hash_cap=%d\n", clients, elapsed.Round(time.Millisecond), hashCap)
	fmt.Printf("logins ok=%d (%.1f/s) 503=%d other=%d\n", ok.Load(), float64(ok.Load())/elapsed.Seconds(), busy.Load(), other.Load())
	if ok.Load() > 0 {
		fmt.Printf("server cpu=%.1fs (%.0f%% of %d CPUs), %.1f ms per successful login\n", cpuAfter-cpuBefore,
			100*(cpuAfter-cpuBefore)/elapsed.Seconds()/float64(runtime.NumCPU()), runtime.NumCPU(), 1000*(cpuAfter-cpuBefore)/float64(ok.Load()))
	}
	fmt.Printf("rss base=%.1f MiB peak=%.1f MiB growth=%.1f MiB budget(cap*19+64)=%.0f MiB within=%v\n",
		float64(baseKiB)/1024, float64(peakKiB)/1024, growthMiB, budgetMiB, growthMiB <= budgetMiB)
	if other.Load() > 0 {
		return fmt.Errorf("%d logins failed with neither 200 nor 503", other.Load())
	}
	return nil
}
