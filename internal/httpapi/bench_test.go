package httpapi_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/lanyard-id/lanyard/internal/password"
	"github.com/lanyard-id/lanyard/internal/store"
)

func benchClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
}

func postJSON(client *http.Client, url string, body []byte) (int, []byte, error) {
	res, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// latencies gathers per-request durations from many goroutines.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(d []time.Duration) { l.mu.Lock(); l.all = append(l.all, d...); l.mu.Unlock() }

func (l *latencies) report(b *testing.B, elapsed time.Duration) {
	slices.Sort(l.all)
	if len(l.all) == 0 {
		return
	}
	pct := func(p float64) float64 { return float64(l.all[int(float64(len(l.all)-1)*p)].Microseconds()) / 1000 }
	b.ReportMetric(float64(len(l.all))/elapsed.Seconds(), "req/s")
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
}

// BenchmarkRefreshPostgres: refresh end to end (HTTP, JSON, validation, one
// UPDATE, ES256 minting) on Postgres with 32 concurrent clients, each
// rotating its own session. Reports req/s, p50/p99 and statements per refresh.
func BenchmarkRefreshPostgres(b *testing.B) {
	const clients = 32
	s := newTestServer(b, store.Postgres, withStatementCounter())
	tokens := make([]string, clients)
	for i := range tokens {
		tokens[i] = s.signUp(b, fmt.Sprintf("bench%d@example.com", i)).Refresh
	}
	statements := s.statements
	client := benchClient(clients)
	var (
		next  atomic.Int64
		lat   latencies
		fails atomic.Int64
	)
	b.SetParallelism((clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	statements.Reset()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)-1) % clients
		token := tokens[i]
		var mine []time.Duration
		for pb.Next() {
			body, _ := json.Marshal(map[string]string{"refresh_token": token})
			t0 := time.Now()
			status, res, err := postJSON(client, s.URL+"/v1/auth/refresh", body)
			mine = append(mine, time.Since(t0))
			if err != nil || status != http.StatusOK {
				fails.Add(1)
				continue
			}
			var out struct {
				Refresh string `json:"refresh_token"`
			}
			_ = json.Unmarshal(res, &out)
			token = out.Refresh
		}
		lat.add(mine)
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if fails.Load() > 0 {
		b.Fatalf("%d refreshes failed", fails.Load())
	}
	lat.report(b, elapsed)
	b.ReportMetric(float64(statements.Count())/float64(b.N), "stmts/refresh")
}

// BenchmarkLoginPostgres: logins end to end with the default argon2id
// parameters and the default hash cap (one per CPU), 16 clients. Compare
// its req/s with BenchmarkRawArgon2idParallel's hashes/s.
func BenchmarkLoginPostgres(b *testing.B) {
	hasher, err := password.NewHasher(password.DefaultParams(), runtime.NumCPU(), 30*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	s := newTestServer(b, store.Postgres, withHasher(hasher))
	s.signUp(b, "login-bench@example.com")
	body, _ := json.Marshal(map[string]string{"email": "login-bench@example.com", "password": goodPassword})
	client := benchClient(16)
	var (
		lat   latencies
		fails atomic.Int64
	)
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			t0 := time.Now()
			status, _, err := postJSON(client, s.URL+"/v1/auth/login", body)
			mine = append(mine, time.Since(t0))
			if err != nil || status != http.StatusOK {
				fails.Add(1)
			}
		}
		lat.add(mine)
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if fails.Load() > 0 {
		b.Fatalf("%d logins failed", fails.Load())
	}
	lat.report(b, elapsed)
}

// BenchmarkRawArgon2idParallel is the floor for logins: bare argon2.IDKey
// with the same parameters on every CPU.
func BenchmarkRawArgon2idParallel(b *testing.B) {
	p := password.DefaultParams()
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			argon2.IDKey([]byte(goodPassword), salt, p.Time, p.MemoryKiB, p.Threads, 32)
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "hashes/s")
}
