package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lanyard-id/lanyard/internal/config"
	"github.com/lanyard-id/lanyard/internal/httpapi"
	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/password"
	"github.com/lanyard-id/lanyard/internal/store"
	"github.com/lanyard-id/lanyard/keys"
)

// clockSyncInterval is how often the offset to the database's clock is
// measured again; session decisions use the corrected clock.
const clockSyncInterval = 30 * time.Second

// app is `lanyard serve` once built: everything is open and the listener is
// bound, but nothing runs until run. close releases what newApp took.
type app struct {
	cfg      config.Config
	log      *slog.Logger
	unlock   func() // releases the embedded data directory; nil on Postgres
	store    *store.Store
	clock    *identity.DatabaseClock
	ring     *identity.KeyRing
	sealer   *keys.Sealer
	svc      *identity.Service
	hasher   *password.Hasher
	postman  identity.Postman // delivers the outbox: SMTP, or the log in development
	api      *httpapi.Server
	listener net.Listener
	srv      *http.Server
	handlers inFlight
	// The admin listener (/metrics, for operators only); nil when
	// LANYARD_ADMIN_ADDR is off.
	adminListener net.Listener
	adminSrv      *http.Server

	// lifetime is the context requests do their database work under. It
	// outlives the signal and ends only when the shutdown timeout has
	// passed, so in-flight work is cancelled before the process exits
	// instead of committing after it.
	lifetime    context.Context
	endLifetime context.CancelFunc
}

// newApp opens the database (migrating it unless told not to), measures its
// clock, loads the signing keys and builds the service, the HTTP handler and
// the listener. On error everything it took is released.
func newApp(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *app, err error) {
	a := &app{log: log}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	if cfg.Embedded() {
		if a.unlock, err = lockDataDir(cfg, log); err != nil {
			return nil, err
		}
	}
	if a.store, err = store.Open(ctx, storeOptions(cfg)); err != nil {
		return nil, err
	}
	if !cfg.Embedded() && !a.store.ServerTimeouts() {
		log.Info("the database does not apply the statement_timeout and lock_timeout startup parameters (a pooler such as PgBouncer refuses them, Neon drops them); "+
			"LANYARD_DB_TIMEOUT still bounds every statement, cancelling it on the server (through a pooler too); "+
			"statements go unnamed (pgx exec mode) unless the URL sets default_query_exec_mode", "schema", a.store.Schema())
	}
	if cfg.MigrateOnStart {
		applied, err := a.store.Migrate(ctx)
		if err != nil {
			return nil, err
		}
		for _, m := range applied {
			log.Info("migration applied", "file", m)
		}
		findings, err := storedEmailFindings(ctx, a.store, applied)
		if err != nil {
			return nil, err
		}
		for _, f := range findings {
			log.Warn("stored email address breaks the email rules; it keeps working, review the account", "user_id", f.UserID, "rule", f.Reason)
		}
	}
	// Session decisions follow the database's clock, so replicas whose own
	// clocks disagree still agree; without a first measurement there is
	// nothing to correct by, so a database that does not answer stops start-up.
	if a.clock, err = syncedClock(ctx, a.store); err != nil {
		return nil, err
	}
	// With the embedded default this fills in the generated secret.
	if a.ring, a.sealer, err = loadKeys(ctx, &cfg, a.store, log); err != nil {
		return nil, err
	}
	hasher, err := password.NewHasher(cfg.Argon2, cfg.HashConcurrency, cfg.HashQueueWait)
	if err != nil {
		return nil, err
	}
	a.hasher = hasher
	if err := a.checkImportedHashes(ctx); err != nil {
		return nil, err
	}
	a.svc, err = identity.NewService(serviceConfig(cfg), a.store, hasher, a.ring, log)
	if err != nil {
		return nil, err
	}
	if a.postman, err = newPostman(cfg, log); err != nil {
		return nil, err
	}
	a.svc.SetSessionClock(a.clock.Now)

	a.lifetime, a.endLifetime = context.WithCancel(context.WithoutCancel(ctx))
	a.api, err = httpapi.New(httpapi.Deps{
		Service: a.svc, Keys: a.ring, DB: a.store, Log: log, Lifetime: a.lifetime,
		Issuer: cfg.Issuer, CORSOrigins: cfg.CORSOrigins, TrustedProxies: cfg.TrustedProxies, ClientIPHeader: cfg.ClientIPHeader,
		HashesInFlight: hasher.InFlight, AdminToken: cfg.AdminToken,
	})
	if err != nil {
		return nil, err
	}
	a.srv = newHTTPServer(a.handlers.track(a.api.Handler()), log)
	if a.listener, err = listen(a.srv, cfg.Addr, "LANYARD_ADDR"); err != nil {
		return nil, err
	}
	if cfg.AdminAddr != "" {
		a.adminSrv = newHTTPServer(a.api.AdminHandler(), log)
		a.adminListener, err = listen(a.adminSrv, cfg.AdminAddr, "LANYARD_ADMIN_ADDR")
		switch {
		case err != nil && cfg.AdminAddrDefault:
			// Several processes on one host (replicas, tests) cannot all have
			// the default port; an address the operator chose must work.
			log.Warn("admin listener off: its default address is in use; set LANYARD_ADMIN_ADDR to another address or to off",
				"addr", cfg.AdminAddr, "error", err)
			a.adminSrv, err = nil, nil
		case err != nil:
			return nil, err
		}
	}
	a.cfg = cfg
	return a, nil
}

// serviceConfig is the use cases' configuration: the server's and the
// admin commands' (users.go) alike.
func serviceConfig(cfg config.Config) identity.Config {
	return identity.Config{
		Issuer: cfg.Issuer, Audience: cfg.Audience,
		AccessTTL: cfg.AccessTTL, RefreshIdleTTL: cfg.RefreshIdleTTL, RefreshAbsoluteTTL: cfg.RefreshAbsoluteTTL,
		RefreshReuseGrace: cfg.RefreshReuseGrace, RefreshGraceUnbound: cfg.RefreshGraceBinding == "none", DBTimeout: cfg.DBTimeout,
		PasswordMinLength: cfg.PasswordMinLength, PasswordMaxLength: cfg.PasswordMaxLength,
		Secret: cfg.Secret, PreviousSecret: cfg.PreviousSecret, RateLimits: cfg.RateLimits,
		Mail: cfg.Mail, BetterAuthSecret: cfg.BetterAuthSecret,
	}
}

// newHTTPServer is the server of either listener: the same timeouts and
// header cap bound slow or oversized clients on both.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// listen binds addr for srv, with request framing watched (a request with
// both Content-Length and Transfer-Encoding is refused).
func listen(srv *http.Server, addr, variable string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &config.Error{Variable: variable, Reason: err.Error()}
	}
	return httpapi.GuardFraming(srv, l), nil
}

// storeOptions is where the configuration says the database is, and how long
// any one operation on it may take.
func storeOptions(cfg config.Config) store.Options {
	return store.Options{
		PostgresURL: cfg.DatabaseURL, SQLitePath: cfg.SQLitePath(), Schema: cfg.DatabaseSchema,
		MaxOpenConns: cfg.DBMaxConns, Timeout: cfg.DBTimeout,
	}
}

// syncedClock is the database's clock, measured once.
func syncedClock(ctx context.Context, st *store.Store) (*identity.DatabaseClock, error) {
	clock := identity.NewDatabaseClock(st, identity.Now)
	if err := clock.Sync(ctx); err != nil {
		return nil, fmt.Errorf("read the database clock: %w", err)
	}
	return clock, nil
}

// run serves until ctx ends (SIGTERM) or the listener fails, with the
// background loops (database clock, key maintenance, session purge) in one
// errgroup beside the server. The loops live exactly as long as the server:
// they keep running while requests drain after the signal, and stop once
// the server has stopped or failed. run returns only when every one of them
// has returned, so close never pulls the store from under a loop.
func (a *app) run(ctx context.Context) error {
	loops, stopLoops := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLoops()
	g, gctx := errgroup.WithContext(loops)
	g.Go(func() error {
		defer stopLoops()
		return a.serve(ctx, gctx)
	})
	g.Go(func() error { return a.clock.Run(gctx, clockSyncInterval, a.log) })
	g.Go(func() error {
		maintainKeys(gctx, a.cfg.KeyCheckInterval, a.ring, a.store, a.sealer, keyPolicy(a.cfg), a.log)
		return nil
	})
	g.Go(func() error {
		sendMail(gctx, a.cfg.MailPollInterval, a.svc, a.postman, a.log)
		return nil
	})
	g.Go(func() error {
		watchImportedHashes(gctx, a)
		return nil
	})
	if a.cfg.CleanupInterval > 0 {
		g.Go(func() error {
			purgeSessions(gctx, a.cfg.CleanupInterval, a.svc, a.api, a.log)
			return nil
		})
		g.Go(func() error {
			purgeAudit(gctx, a.cfg.CleanupInterval, a.cfg.AuditRetention, a.svc, a.log)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	a.log.Info("stopped")
	return nil
}

// serve runs the HTTP server until the signal (ctx) or a failed loop (stop)
// ends it, or the listener fails.
//
// After the signal, readiness goes false first and the listener stays open
// for LANYARD_SHUTDOWN_DRAIN, so a load balancer polling /readyz stops
// sending traffic before connections are refused; then the listener closes
// and in-flight requests get LANYARD_SHUTDOWN_TIMEOUT to finish.
func (a *app) serve(ctx, stop context.Context) error {
	// Either server returning on its own is a listener failure that stops
	// both; after stopServing, both return.
	servers := 1
	served := make(chan error, 2)
	go func() { served <- a.srv.Serve(a.listener) }()
	admin := "off"
	if a.adminSrv != nil {
		servers++
		go func() { served <- a.adminSrv.Serve(a.adminListener) }()
		admin = "http://" + a.adminListener.Addr().String()
	}
	a.api.SetReady(true)
	database := "sqlite:" + a.cfg.SQLitePath()
	if !a.cfg.Embedded() {
		database = "postgres"
	}
	a.log.Info("listening", "addr", "http://"+a.listener.Addr().String(), "admin", admin, "issuer", a.cfg.Issuer,
		"database", database, "kid", a.ring.Ring().SigningKeyID(), "alg", string(a.ring.Ring().Algorithm()), "version", buildVersion())

	select {
	case err := <-served:
		return a.listenerFailed(err)
	case <-ctx.Done():
	case <-stop.Done():
	}
	a.api.SetReady(false)
	a.log.Info("shutting down", "drain", a.cfg.ShutdownDrain.String(), "timeout", a.cfg.ShutdownTimeout.String())
	drain := time.NewTimer(a.cfg.ShutdownDrain)
	defer drain.Stop()
	select {
	case <-drain.C:
	case err := <-served:
		return a.listenerFailed(err)
	}
	err := a.stopServing()
	for range servers {
		if served := <-served; !errors.Is(served, http.ErrServerClosed) {
			return served
		}
	}
	return err
}

// listenerFailed stops serving after Serve returned on its own. Nothing new
// can arrive, so there is no drain; requests already in flight still get the
// shutdown timeout.
func (a *app) listenerFailed(err error) error {
	a.api.SetReady(false)
	a.log.Error("listener failed; stopping", "error", err)
	_ = a.stopServing() // the listener's failure is the error to report; stopServing logs what it cut off
	return fmt.Errorf("serve: %w", err)
}

// stopServing closes the listener and waits up to LANYARD_SHUTDOWN_TIMEOUT
// for in-flight requests. Past it, the lifetime context ends, which cancels
// their database work, and it waits for their handlers to return (they
// answer 503) before closing the connections: by the time it returns no
// request can still write to the database.
//
// The admin listener closes last, so metrics stay scrapeable while requests
// drain. A scrape touches no database: one still running at the deadline is
// simply cut off.
func (a *app) stopServing() error {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	defer a.endLifetime()
	if a.adminSrv != nil {
		defer func() {
			_ = a.adminSrv.Shutdown(ctx) // past the deadline, Close cuts off the rest
			a.adminSrv.Close()
		}()
	}
	if a.srv.Shutdown(ctx) == nil {
		return nil
	}
	n := a.handlers.count()
	a.log.Warn("shutdown timeout passed; cancelling the requests still in flight", "in_flight", n, "timeout", a.cfg.ShutdownTimeout.String())
	a.endLifetime()
	a.handlers.wait()
	// The handlers have returned, but net/http writes out their answers
	// after that: let it finish (the connections then go idle and close)
	// before cutting off whatever is left.
	flush, cancelFlush := context.WithTimeout(context.Background(), time.Second)
	_ = a.srv.Shutdown(flush)
	cancelFlush()
	a.srv.Close()
	return fmt.Errorf("shutdown: %d requests were still running after LANYARD_SHUTDOWN_TIMEOUT (%s); their database work was cancelled", n, a.cfg.ShutdownTimeout)
}

// close releases what newApp took, in reverse order. It is safe on an app
// that was only partly built, and must come after run has returned.
func (a *app) close() {
	if a.endLifetime != nil {
		a.endLifetime()
	}
	if a.listener != nil {
		a.listener.Close() // already closed if run ran; not if it never did
	}
	if a.adminListener != nil {
		a.adminListener.Close()
	}
	if a.store != nil {
		a.store.Close()
	}
	if a.unlock != nil {
		a.unlock()
	}
}

// inFlight counts the requests being handled. http.Server.Shutdown stops
// waiting for them at its deadline; the handlers keep running, and shutdown
// has to wait for them before the store closes.
type inFlight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to zero while wait waits
}

func (f *inFlight) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.n++
		f.mu.Unlock()
		defer f.done()
		h.ServeHTTP(w, r)
	})
}

func (f *inFlight) done() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.n == 0 && f.idle != nil {
		close(f.idle)
		f.idle = nil
	}
}

func (f *inFlight) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// wait returns once no request is being handled.
func (f *inFlight) wait() {
	f.mu.Lock()
	if f.n == 0 {
		f.mu.Unlock()
		return
	}
	if f.idle == nil {
		f.idle = make(chan struct{})
	}
	idle := f.idle
	f.mu.Unlock()
	<-idle
}

// purgeSessions deletes ended and expired sessions every interval until ctx
// ends. Every replica runs it; the store makes that safe.
func purgeSessions(ctx context.Context, interval time.Duration, svc *identity.Service, api *httpapi.Server, log *slog.Logger) {
	every(ctx, interval, func() {
		n, err := svc.PurgeSessions(ctx)
		api.CountPurged(n)
		if err != nil && ctx.Err() == nil {
			log.Warn("session cleanup failed", "error", err, "purged", n)
		} else if n > 0 {
			log.Info("sessions purged", "count", n)
		}
		// Throttle counters expire on their own; this only reclaims the rows.
		if n, err := svc.PurgeThrottles(ctx); err != nil && ctx.Err() == nil {
			log.Warn("throttle cleanup failed", "error", err, "purged", n)
		}
		if n, err := svc.PurgeMail(ctx); err != nil && ctx.Err() == nil {
			log.Warn("mail cleanup failed", "error", err, "purged", n)
		}
	})
}

// purgeAudit deletes audit events older than retention
// (LANYARD_AUDIT_RETENTION), in batches, every interval until ctx ends.
// Every replica runs it; the store makes that safe.
func purgeAudit(ctx context.Context, interval, retention time.Duration, svc *identity.Service, log *slog.Logger) {
	every(ctx, interval, func() {
		n, err := svc.PurgeAudit(ctx, retention)
		if err != nil && ctx.Err() == nil {
			log.Warn("audit cleanup failed", "error", err, "purged", n)
		} else if n > 0 {
			log.Info("audit events purged", "count", n)
		}
	})
}

// every calls fn every interval until ctx ends (first after one interval).
func every(ctx context.Context, interval time.Duration, fn func()) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		fn()
	}
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

// importedHashesInterval is how often a replica looks whether imported
// Better-Auth hashes remain (an import may run while it serves; the last
// one may have been replaced by a login).
const importedHashesInterval = 15 * time.Second

// checkImportedHashes turns the hasher's equal-cost mode on while any
// imported Better-Auth hash remains: every login then does both
// algorithms' work, so its time does not tell imported accounts, other
// accounts and unknown addresses apart (internal/password).
func (a *app) checkImportedHashes(ctx context.Context) error {
	found, err := a.store.HasBetterAuthHashes(ctx)
	if err != nil {
		return fmt.Errorf("look for imported password hashes: %w", err)
	}
	if found != a.hasher.LegacyScrypt() {
		a.log.Info("equal-cost logins for imported Better-Auth hashes", "on", found)
	}
	a.hasher.SetLegacyScrypt(found)
	return nil
}

// watchImportedHashes repeats checkImportedHashes every
// importedHashesInterval until ctx ends.
func watchImportedHashes(ctx context.Context, a *app) {
	every(ctx, importedHashesInterval, func() {
		if err := a.checkImportedHashes(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("imported hash check failed", "error", err)
		}
	})
}
