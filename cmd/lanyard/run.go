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
		if len(args) < 2 || args[1] != "list" {
			return fmt.Errorf("usage: lanyard keys list")
		}
		return listKeys(ctx, getenv, stdout)
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
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tCREATED\tACTIVATED")
	for _, r := range records {
		activated := "-"
		if r.ActivatedAt != nil {
			activated = r.ActivatedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.KID, r.Alg, r.State, r.CreatedAt.UTC().Format(time.RFC3339), activated)
	}
	return tw.Flush()
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
	generated, err := cfg.EnsureSecret()
	if err != nil {
		return err
	}
	if generated {
		log.Warn("generated a development secret; set LANYARD_SECRET in production", "file", cfg.DataDir+"/secret")
	}
	sealer, err := keys.NewSealer(cfg.Secret)
	if err != nil {
		return &config.Error{Variable: "LANYARD_SECRET", Reason: err.Error()}
	}
	ring, warnings, err := identity.LoadKeyRing(ctx, st, sealer, cfg.SigningAlg, identity.Now())
	if err != nil {
		return err
	}
	for _, w := range warnings {
		log.Warn(w)
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
		Secret: cfg.Secret,
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
