package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"text/tabwriter"
	"time"

	"github.com/lanyard-id/lanyard/internal/config"
	"github.com/lanyard-id/lanyard/internal/httpapi"
	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/password"
	"github.com/lanyard-id/lanyard/internal/store"
	"github.com/lanyard-id/lanyard/keys"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

const usage = `Lanyard: sign-up, sign-in and offline-verifiable access tokens.

Usage:
  lanyard [serve]      run the HTTP service (migrates the database first unless LANYARD_MIGRATE=false)
  lanyard migrate      apply pending database migrations and exit
  lanyard keys list    show the signing keys: kid, algorithm, state and dates
  lanyard keys rotate  publish a new signing key; it signs after the publication lead
                       (--now: sign at once; see lanyard keys rotate --help for the cost)
  lanyard keys reseal  re-encrypt every stored key under LANYARD_SECRET (rotating the
                       secret: run it with the old one in LANYARD_SECRET_PREVIOUS)
  lanyard healthcheck  exit 0 when the local server answers /healthz (for container HEALTHCHECKs)
  lanyard version      print the version
  lanyard help         show this help

Settings come from LANYARD_* environment variables; see README.md.
With no LANYARD_DATABASE_URL, Lanyard keeps everything in ./lanyard-data
(embedded SQLite, a generated secret and signing key).
`

// run is the whole program; main only supplies the process's environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "serve":
		return serve(ctx, getenv, stdout)
	case "migrate":
		return migrate(ctx, getenv, stdout)
	case "keys":
		switch {
		case len(args) >= 2 && args[1] == "list":
			return listKeys(ctx, getenv, stdout)
		case len(args) >= 2 && args[1] == "rotate":
			return rotateKeys(ctx, args[2:], getenv, stdout)
		case len(args) == 2 && args[1] == "reseal":
			return resealKeys(ctx, getenv, stdout)
		}
		return fmt.Errorf("usage: lanyard keys list | lanyard keys rotate [--now] | lanyard keys reseal")
	case "healthcheck":
		return healthcheck(ctx, getenv)
	case "version", "--version":
		fmt.Fprintln(stdout, "lanyard", buildVersion())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// healthcheck asks the server on LANYARD_ADDR for /healthz. Distroless
// images have no curl, so the binary checks itself.
func healthcheck(ctx context.Context, getenv func(string) string) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(cfg.Addr)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: /healthz answered %d", res.StatusCode)
	}
	return nil
}

// purgeSessions deletes ended and expired sessions every interval until ctx
// ends. Every replica runs it; the store makes that safe.
func purgeSessions(ctx context.Context, interval time.Duration, svc *identity.Service, api *httpapi.Server, log *slog.Logger) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		n, err := svc.PurgeSessions(ctx)
		api.CountPurged(n)
		if err != nil && ctx.Err() == nil {
			log.Warn("session cleanup failed", "error", err, "purged", n)
		} else if n > 0 {
			log.Info("sessions purged", "count", n)
		}
	}
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return "dev"
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// openStore loads the configuration and connects to the database.
func openStore(ctx context.Context, getenv func(string) string) (config.Config, *store.Store, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return cfg, nil, err
	}
	st, err := store.Open(ctx, store.Options{PostgresURL: cfg.DatabaseURL, SQLitePath: cfg.SQLitePath(), MaxOpenConns: cfg.DBMaxConns})
	if err != nil {
		return cfg, nil, err
	}
	return cfg, st, nil
}

func migrate(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	_, st, err := openStore(ctx, getenv)
	if err != nil {
		return err
	}
	defer st.Close()
	applied, err := st.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "database is up to date")
	}
	for _, m := range applied {
		fmt.Fprintln(stdout, "applied", m)
	}
	return nil
}

func listKeys(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	_, st, err := openStore(ctx, getenv)
	if err != nil {
		return err
	}
	defer st.Close()
	records, err := st.SigningKeys(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tCREATED\tACTIVATED\tRETIRED\tREMOVED")
	for _, r := range records {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.KID, r.Alg, r.State, r.CreatedAt.UTC().Format(time.RFC3339),
			stamp(r.ActivatedAt), stamp(r.RetiredAt), stamp(r.RemovedAt))
	}
	return tw.Flush()
}

func stamp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

const rotateUsage = `usage: lanyard keys rotate [--now]

Publishes a new signing key now; it starts signing after LANYARD_KEY_PUBLICATION_LEAD
(default 15m), so every verifier's cached JWKS already holds it by then. The old key
stays published until the last token it signed has expired.

--now  makes the new key sign at once. Use it only when the current key may be
       compromised: verifiers that cached the old JWKS reject new tokens until they
       refetch it (PyJWKClient up to 5 min, jose up to 10 min, CDNs longer), so some
       users see 401s until then. Running servers switch within LANYARD_KEY_CHECK_INTERVAL.
`

// rotateKeys runs `lanyard keys rotate [--now]` against the database.
func rotateKeys(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	immediately := false
	for _, a := range args {
		switch a {
		case "--now":
			immediately = true
		case "-h", "--help":
			fmt.Fprint(stdout, rotateUsage)
			return nil
		default:
			return fmt.Errorf("unknown flag %q\n%s", a, rotateUsage)
		}
	}
	cfg, st, err := openStore(ctx, getenv)
	if err != nil {
		return err
	}
	defer st.Close()
	ring, sealer, err := loadKeys(ctx, &cfg, st, nil)
	if err != nil {
		return err
	}
	now := identity.Now()
	if err := ring.Rotate(ctx, st, sealer, keyPolicy(cfg), now, immediately); err != nil {
		return err
	}
	if immediately {
		fmt.Fprintf(stdout, "key %s signs now; verifiers that cached the old JWKS reject its tokens until they refetch\n", ring.Ring().SigningKeyID())
	} else {
		fmt.Fprintf(stdout, "next key published; it starts signing at %s\n", now.Add(cfg.KeyPublicationLead).Format(time.RFC3339))
	}
	return listKeys(ctx, getenv, stdout)
}

// resealKeys re-encrypts every stored signing key under LANYARD_SECRET,
// opening them with it or LANYARD_SECRET_PREVIOUS.
func resealKeys(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, st, err := openStore(ctx, getenv)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := cfg.EnsureSecret(); err != nil {
		return err
	}
	sealer, err := newSealer(cfg)
	if err != nil {
		return err
	}
	records, err := st.SigningKeys(ctx)
	if err != nil {
		return err
	}
	resealed := 0
	for _, r := range records {
		if r.State == identity.KeyStateRemoved {
			continue // never used again; it stays sealed under whatever secret it had
		}
		alg, err := keys.ParseAlgorithm(r.Alg)
		if err != nil {
			return err
		}
		key, err := sealer.Open(r.KID, alg, r.Sealed)
		if err != nil {
			return fmt.Errorf("key %s opens with neither LANYARD_SECRET nor LANYARD_SECRET_PREVIOUS: %w", r.KID, err)
		}
		sealed, err := sealer.Seal(key)
		if err != nil {
			return err
		}
		if err := st.ResealSigningKey(ctx, r.KID, sealed); err != nil {
			return err
		}
		resealed++
	}
	fmt.Fprintf(stdout, "resealed %d signing keys under LANYARD_SECRET\n", resealed)
	return nil
}

func keyPolicy(cfg config.Config) identity.KeyPolicy {
	return identity.KeyPolicy{
		Algorithm: cfg.SigningAlg, RotationInterval: cfg.KeyRotationInterval,
		PublicationLead: cfg.KeyPublicationLead, AccessTTL: cfg.AccessTTL,
	}
}

// loadKeys opens the secret and the key ring (creating the first key).
func loadKeys(ctx context.Context, cfg *config.Config, st *store.Store, log *slog.Logger) (*identity.KeyRing, *keys.Sealer, error) {
	generated, err := cfg.EnsureSecret()
	if err != nil {
		return nil, nil, err
	}
	if generated && log != nil {
		log.Warn("generated a development secret; set LANYARD_SECRET in production", "file", cfg.DataDir+"/secret")
	}
	sealer, err := newSealer(*cfg)
	if err != nil {
		return nil, nil, err
	}
	ring, warnings, err := identity.LoadKeyRing(ctx, st, sealer, cfg.SigningAlg, identity.Now())
	if err != nil {
		return nil, nil, err
	}
	for _, w := range warnings {
		if log != nil {
			log.Warn(w)
		}
	}
	return ring, sealer, nil
}

// newSealer seals under LANYARD_SECRET and, during a secret rotation, also
// opens what LANYARD_SECRET_PREVIOUS sealed.
func newSealer(cfg config.Config) (*keys.Sealer, error) {
	sealer, err := keys.NewSealer(cfg.Secret)
	if err != nil {
		return nil, &config.Error{Variable: "LANYARD_SECRET", Reason: err.Error()}
	}
	if cfg.PreviousSecret == nil {
		return sealer, nil
	}
	if sealer, err = sealer.AcceptPrevious(cfg.PreviousSecret); err != nil {
		return nil, &config.Error{Variable: "LANYARD_SECRET_PREVIOUS", Reason: err.Error()}
	}
	return sealer, nil
}

// maintainKeys performs due key transitions and picks up other replicas'
// changes every interval until ctx ends.
func maintainKeys(ctx context.Context, interval time.Duration, ring *identity.KeyRing, st *store.Store, sealer *keys.Sealer, p identity.KeyPolicy, log *slog.Logger) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		changed, err := ring.Maintain(ctx, st, sealer, p, identity.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("key maintenance failed", "error", err)
		case changed:
			log.Info("signing keys changed", "kid", ring.Ring().SigningKeyID(), "alg", string(ring.Ring().Algorithm()))
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func serve(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, st, err := openStore(ctx, getenv)
	if err != nil {
		return err
	}
	defer st.Close()
	log := newLogger(cfg, stdout)

	if cfg.MigrateOnStart {
		applied, err := st.Migrate(ctx)
		if err != nil {
			return err
		}
		for _, m := range applied {
			log.Info("migration applied", "file", m)
		}
	}
	ring, sealer, err := loadKeys(ctx, &cfg, st, log)
	if err != nil {
		return err
	}
	hasher, err := password.NewHasher(cfg.Argon2, cfg.HashConcurrency, cfg.HashQueueWait)
	if err != nil {
		return err
	}
	svc, err := identity.NewService(identity.Config{
		Issuer: cfg.Issuer, Audience: cfg.Audience,
		AccessTTL: cfg.AccessTTL, RefreshIdleTTL: cfg.RefreshIdleTTL, RefreshAbsoluteTTL: cfg.RefreshAbsoluteTTL,
		RefreshReuseGrace: cfg.RefreshReuseGrace,
		PasswordMinLength: cfg.PasswordMinLength, PasswordMaxLength: cfg.PasswordMaxLength,
		Secret: cfg.Secret, PreviousSecret: cfg.PreviousSecret,
	}, st, hasher, ring, log)
	if err != nil {
		return err
	}
	api, err := httpapi.New(httpapi.Deps{
		Service: svc, Keys: ring, DB: st, Log: log,
		Issuer: cfg.Issuer, CORSOrigins: cfg.CORSOrigins, TrustedProxies: cfg.TrustedProxies,
		HashesInFlight: hasher.InFlight,
	})
	if err != nil {
		return err
	}

	listener, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return &config.Error{Variable: "LANYARD_ADDR", Reason: err.Error()}
	}
	srv := &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(listener) }()
	if cfg.CleanupInterval > 0 {
		go purgeSessions(ctx, cfg.CleanupInterval, svc, api, log)
	}
	go maintainKeys(ctx, cfg.KeyCheckInterval, ring, st, sealer, keyPolicy(cfg), log)
	api.SetReady(true)
	database := "sqlite:" + cfg.SQLitePath()
	if !cfg.Embedded() {
		database = "postgres"
	}
	log.Info("listening", "addr", "http://"+listener.Addr().String(), "issuer", cfg.Issuer,
		"database", database, "kid", ring.Ring().SigningKeyID(), "alg", string(ring.Ring().Algorithm()), "version", buildVersion())

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	// Readiness goes false first so a load balancer stops sending traffic
	// (give it LANYARD_SHUTDOWN_DRAIN to notice); Shutdown then stops
	// accepting and waits for in-flight requests, whose contexts stay alive
	// (BaseContext drops the signal's cancellation) so no refresh is cut off
	// half-way.
	api.SetReady(false)
	log.Info("shutting down", "drain", cfg.ShutdownDrain.String(), "timeout", cfg.ShutdownTimeout.String())
	if cfg.ShutdownDrain > 0 {
		drain := time.NewTimer(cfg.ShutdownDrain)
		select {
		case <-drain.C:
		case err := <-served:
			return err
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}
