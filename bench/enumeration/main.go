// Command enumeration measures whether login response time tells an unknown
// email from a known account with a wrong password, before and after an
// argon2 parameter change. It drives the login use case directly (no HTTP,
// throttling off, embedded SQLite or -db Postgres) and reports the median of
// -samples logins of each kind, interleaved, with the raw argon2id time of
// each parameter set for reference: without the equalisation, an unknown
// email would cost the current parameters and a dormant account its own.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/password"
	"github.com/lanyard-id/lanyard/internal/store"
	"github.com/lanyard-id/lanyard/keys"
)

func main() {
	samples := flag.Int("samples", 101, "logins of each kind per phase")
	dbURL := flag.String("db", "", "postgres URL (empty: embedded SQLite in a temporary directory)")
	flag.Parse()
	if err := run(*samples, *dbURL); err != nil {
		fmt.Fprintln(os.Stderr, "enumeration:", err)
		os.Exit(1)
	}
}

const pw = "correct horse battery staple"

var (
	before = password.Params{MemoryKiB: 12288, Time: 1, Threads: 1}
	after  = password.DefaultParams() // 19456 KiB, 2 passes: about 3x the work
)

func run(samples int, dbURL string) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "enumeration-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := store.Open(ctx, store.Options{PostgresURL: dbURL, SQLitePath: filepath.Join(dir, "lanyard.db")})
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return err
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	suffix := time.Now().UnixNano() // fresh emails, so runs on one database never collide

	fmt.Printf("raw argon2id: m=%d,t=%d %s; m=%d,t=%d %s (median of %d)\n",
		before.MemoryKiB, before.Time, rawMedian(before, samples), after.MemoryKiB, after.Time, rawMedian(after, samples), samples)

	old, err := service(ctx, st, secret, before)
	if err != nil {
		return err
	}
	dormant := fmt.Sprintf("dormant-%d@example.com", suffix)
	if _, err := old.SignUp(ctx, identity.SignUpInput{Email: dormant, Password: pw}, identity.Client{}); err != nil {
		return err
	}
	measure(ctx, old, "before the change", dormant, samples, suffix)

	// Same database, new parameters: the account is dormant, its hash still
	// made with the old ones.
	changed, err := service(ctx, st, secret, after)
	if err != nil {
		return err
	}
	measure(ctx, changed, "after the change ", dormant, samples, suffix)
	return nil
}

func service(ctx context.Context, st *store.Store, secret []byte, p password.Params) (*identity.Service, error) {
	hasher, err := password.NewHasher(p, 1, time.Minute)
	if err != nil {
		return nil, err
	}
	sealer, err := keys.NewSealer(secret)
	if err != nil {
		return nil, err
	}
	ring, _, err := identity.LoadKeyRing(ctx, st, sealer, keys.ES256, identity.Now())
	if err != nil {
		return nil, err
	}
	return identity.NewService(identity.Config{
		Issuer: "http://enumeration.test", Audience: "http://enumeration.test",
		AccessTTL: 15 * time.Minute, RefreshIdleTTL: time.Hour, RefreshAbsoluteTTL: time.Hour,
		PasswordMinLength: 15, PasswordMaxLength: 1024, Secret: secret,
	}, st, hasher, ring, slog.New(slog.DiscardHandler))
}

// measure logs in alternately as an unknown email and as known with a wrong
// password, and prints both medians.
func measure(ctx context.Context, svc *identity.Service, phase, known string, samples int, suffix int64) {
	var unknown, wrong []time.Duration
	for i := range samples {
		began := time.Now()
		_, _ = svc.LogIn(ctx, fmt.Sprintf("nobody-%d-%d@example.com", suffix, i), pw, identity.Client{})
		unknown = append(unknown, time.Since(began))
		began = time.Now()
		_, _ = svc.LogIn(ctx, known, "a wrong password, sorry", identity.Client{})
		wrong = append(wrong, time.Since(began))
	}
	u, w := median(unknown), median(wrong)
	fmt.Printf("%s: unknown email %s, wrong password %s (difference %+.1f%%, medians of %d)\n",
		phase, u.Round(10*time.Microsecond), w.Round(10*time.Microsecond), 100*(float64(w)-float64(u))/float64(u), samples)
}

func rawMedian(p password.Params, n int) time.Duration {
	salt := make([]byte, 16)
	var d []time.Duration
	for range n {
		began := time.Now()
		argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, 32)
		d = append(d, time.Since(began))
	}
	return median(d).Round(10 * time.Microsecond)
}

func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}
