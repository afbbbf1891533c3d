// Command loginflood measures Lanyard's peak memory under a login flood: it
// starts the lanyard binary, records its resident set at rest, sends logins
// from many concurrent clients for a bounded time (loopback only), and
// compares the peak (VmHWM) with the budget base + cap × 19 MiB + 64 MiB.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
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
	flag.Parse()
	if err := flood(*bin, *clients, *duration, *dbURL); err != nil {
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

func flood(bin string, clients int, duration time.Duration, dbURL string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	dataDir, err := os.MkdirTemp("", "loginflood-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataDir)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "LANYARD_ADDR=127.0.0.1:"+strconv.Itoa(port), "LANYARD_DATA_DIR="+dataDir, "LANYARD_LOG_LEVEL=warn")
	if dbURL != "" {
		cmd.Env = append(cmd.Env, "LANYARD_DATABASE_URL="+dbURL, "LANYARD_SECRET=loginflood-benchmark-secret-0123456789")
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	pid := cmd.Process.Pid

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	ready := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if res, err := client.Get(base + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				ready = true
				break
			}
		}
	}
	if !ready {
		return fmt.Errorf("lanyard did not become ready")
	}
	// A fresh address per run, so runs against one Postgres database never collide.
	email := fmt.Sprintf("flood-%d@example.com", time.Now().UnixNano())
	creds, _ := json.Marshal(map[string]string{"email": email, "password": "correct horse battery staple"})
	res, err := client.Post(base+"/v1/auth/signup", "application/json", bytes.NewReader(creds))
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		return fmt.Errorf("signup: %d", res.StatusCode)
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
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/auth/login", bytes.NewReader(creds))
				req.Header.Set("Content-Type", "application/json")
				res, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						other.Add(1)
					}
					continue
				}
				res.Body.Close()
				switch res.StatusCode {
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
