package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lanyard-id/lanyard/internal/config"
	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/store"
	"github.com/lanyard-id/lanyard/keys"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

const usage = `Lanyard: sign-up, sign-in and offline-verifiable access tokens.

Usage:
  lanyard [serve]      run the HTTP service (migrates the database first unless LANYARD_MIGRATE=false)
  lanyard migrate [--move-from public]
                       apply pending database migrations and exit (--move-from: first move
                       the tables of a deployment from before LANYARD_DATABASE_SCHEMA into it)
  lanyard keys list    show the signing keys: kid, algorithm, state and dates
  lanyard keys rotate  publish a new signing key; it signs after the publication lead
                       (--now: sign at once; see lanyard keys rotate --help for the cost)
  lanyard keys revoke KID
                       withdraw a possibly compromised key at once: it leaves the JWKS
                       and its tokens are refused; if it signs, a new key signs now
  lanyard keys reseal  re-encrypt every stored key under LANYARD_SECRET (rotating the
                       secret: run it with the old one in LANYARD_SECRET_PREVIOUS)
  lanyard import better-auth --from postgres://… [--schema public] [--dry-run] [--sessions] [--batch 1000]
                       copy a Better-Auth deployment's users (ids, passwords, profiles, and
                       with --sessions its live sessions); see lanyard import --help
  lanyard users list [--email-prefix P] [--limit N] [--cursor C] [--json]
                       find users by email prefix, a page at a time
  lanyard users show [--json] ID
                       one user: profile, disabled, live sessions, last login
  lanyard users disable ID | enable ID | end-sessions ID
                       disable a user (every session ends; login, refresh and its access
                       tokens are refused at Lanyard) or enable it again; end its sessions
  lanyard users delete --yes ID
                       delete a user and everything tied to it (docs/admin.md); needs --yes
  lanyard audit [--user ID] [--type T] [--limit N] [--cursor C] [--json]
                       read the audit trail, newest first
  lanyard healthcheck  exit 0 when the local server answers /healthz (for container HEALTHCHECKs)
  lanyard version      print the version
  lanyard help         show this help

Settings come from LANYARD_* environment variables; see docs/settings.md.
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
		return migrate(ctx, args[1:], getenv, stdout)
	case "keys":
		switch {
		case len(args) >= 2 && args[1] == "list":
			return listKeys(ctx, getenv, stdout)
		case len(args) >= 2 && args[1] == "rotate":
			return rotateKeys(ctx, args[2:], getenv, stdout)
		case len(args) >= 2 && args[1] == "revoke":
			return revokeKey(ctx, args[2:], getenv, stdout, stderr)
		case len(args) == 2 && args[1] == "reseal":
			return resealKeys(ctx, getenv, stdout)
		}
		return fmt.Errorf("usage: lanyard keys list | lanyard keys rotate [--now] | lanyard keys revoke KID | lanyard keys reseal")
	case "import":
		return importCommand(ctx, args[1:], getenv, stdout, stderr)
	case "users":
		return usersCommand(ctx, args[1:], getenv, stdout)
	case "audit":
		return auditCommand(ctx, args[1:], getenv, stdout)
	case "healthcheck":
		return healthcheck(ctx, getenv)
	case "version", "--version":
		return printVersion(stdout)
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

func buildVersion() string { return readVersion(debug.ReadBuildInfo()).Version }

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// openStore loads the configuration and connects to an existing, migrated
// database for an admin command. It never guesses: with no
// LANYARD_DATABASE_URL it opens the embedded database only when
// LANYARD_DATA_DIR already holds one (never creating a directory or an
// empty database), and a database without Lanyard's tables is refused with
// the command that makes them rather than a "no such table" error.
func openStore(ctx context.Context, getenv func(string) string) (config.Config, *store.Store, []identity.SigningKeyRecord, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return cfg, nil, nil, err
	}
	if cfg.Embedded() {
		info, err := os.Stat(cfg.SQLitePath())
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return cfg, nil, nil, fmt.Errorf("no database: LANYARD_DATABASE_URL is unset and LANYARD_DATA_DIR (%s) holds no embedded database (lanyard.db); "+
				"set LANYARD_DATABASE_URL, or LANYARD_DATA_DIR to the server's data directory", cfg.DataDir)
		case err != nil:
			return cfg, nil, nil, fmt.Errorf("embedded database: %w", err)
		case !info.Mode().IsRegular():
			return cfg, nil, nil, fmt.Errorf("embedded database %s is not a regular file", cfg.SQLitePath())
		}
	}
	st, err := store.Open(ctx, storeOptions(cfg))
	if err != nil {
		return cfg, nil, nil, err
	}
	// Every admin command reads the signing keys: reading them first also
	// probes the tables, so a database that was never migrated says so in
	// one line.
	records, err := st.SigningKeys(ctx)
	if err != nil {
		defer st.Close()
		where := "the database at LANYARD_DATABASE_URL"
		if cfg.Embedded() {
			where = "the embedded database " + cfg.SQLitePath()
		}
		switch {
		case store.IsMissingTable(err) && !cfg.Embedded():
			if err := st.CheckDeployment(ctx); err != nil {
				return cfg, nil, nil, err
			}
			return cfg, nil, nil, fmt.Errorf("%s has no Lanyard tables in schema %s (LANYARD_DATABASE_SCHEMA) yet: run lanyard migrate (or start the server, which migrates) first",
				where, cfg.DatabaseSchema)
		case store.IsMissingTable(err):
			return cfg, nil, nil, fmt.Errorf("%s has no Lanyard tables yet: run lanyard migrate (or start the server, which migrates) first", where)
		case store.IsMissingColumn(err):
			return cfg, nil, nil, fmt.Errorf("%s was migrated by an older lanyard: run lanyard migrate first", where)
		}
		return cfg, nil, nil, err
	}
	return cfg, st, records, nil
}

// migrate applies pending migrations. On the embedded database it takes the
// data directory first, as serve does, so it never runs beside a server.
func migrate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	flags := flag.NewFlagSet("migrate", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	moveFrom := flags.String("move-from", "", "")
	if err := flags.Parse(args); err != nil || flags.NArg() > 0 {
		return errors.New("usage: lanyard migrate [--move-from SCHEMA]")
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	if *moveFrom != "" {
		if err := moveSchema(ctx, cfg, *moveFrom, stdout); err != nil {
			return err
		}
	}
	_, release, err := openMigrated(ctx, cfg, storeOptions(cfg), stdout)
	if err != nil {
		return err
	}
	release()
	return nil
}

// moveSchema moves a deployment's tables from schema from into
// LANYARD_DATABASE_SCHEMA, once, before migrating.
func moveSchema(ctx context.Context, cfg config.Config, from string, out io.Writer) error {
	if cfg.Embedded() {
		return errors.New("--move-from needs LANYARD_DATABASE_URL: the embedded database has no schemas")
	}
	st, err := store.Open(ctx, storeOptions(cfg))
	if err != nil {
		return err
	}
	defer st.Close()
	moved, err := st.MoveSchema(ctx, from)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "moved %d tables from %s to %s: %s\n", len(moved), from, cfg.DatabaseSchema, strings.Join(moved, ", "))
	return nil
}

// openMigrated opens the configured database for a command that writes it
// outside the server (migrate, import) and applies pending migrations,
// printing each to out (and any stored address the email rules now refuse).
// On the embedded database it takes the data directory first, as serve
// does, so it never runs beside a server. release closes the store and
// frees the directory.
func openMigrated(ctx context.Context, cfg config.Config, opts store.Options, out io.Writer) (*store.Store, func(), error) {
	unlock := func() {}
	if cfg.Embedded() {
		var err error
		if unlock, err = lockDataDir(cfg, newLogger(cfg, out)); err != nil {
			return nil, nil, err
		}
	}
	st, err := store.Open(ctx, opts)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	release := func() {
		st.Close()
		unlock()
	}
	applied, err := st.Migrate(ctx)
	if err != nil {
		release()
		return nil, nil, err
	}
	if len(applied) == 0 {
		fmt.Fprintln(out, "database is up to date")
	}
	for _, m := range applied {
		fmt.Fprintln(out, "applied", m)
	}
	findings, err := storedEmailFindings(ctx, st, applied)
	if err != nil {
		release()
		return nil, nil, err
	}
	for _, f := range findings {
		fmt.Fprintf(out, "user %s: stored email address breaks the email rules (%s); it keeps working, review the account\n", f.UserID, f.Reason)
	}
	return st, release, nil
}

func listKeys(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	_, st, records, err := openStore(ctx, getenv)
	if err != nil {
		return err
	}
	st.Close()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tCREATED\tACTIVATED\tRETIRED\tREMOVED\tREVOKED")
	for _, r := range records {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.KID, r.Alg, r.State, r.CreatedAt.UTC().Format(time.RFC3339),
			stamp(r.ActivatedAt), stamp(r.RetiredAt), stamp(r.RemovedAt), stamp(r.RevokedAt))
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
	cfg, st, _, err := openStore(ctx, getenv)
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

const revokeUsage = `usage: lanyard keys revoke [--] KID

Withdraws the signing key KID (see lanyard keys list) at once, for when it may be
compromised. Every running server drops it from its JWKS and refuses its tokens within
LANYARD_KEY_CHECK_INTERVAL (default 30s). If KID is the key that signs, another signs at
once, in the same transaction (the published next key if there is one, else a new key):
verifiers that cached the old JWKS meet an unknown kid and refetch within their cooldown,
and each user's next refresh gets a token from the new key. A revoked key is never used
again. The incident procedure is in docs/operations.md.
`

// revokeKey runs `lanyard keys revoke KID` against the database.
func revokeKey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(stdout, revokeUsage)
		return nil
	}
	// A kid is base64url and may start with '-': anything but the help
	// flags is a kid, and `--` may precede one.
	if len(args) == 2 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) != 1 || args[0] == "" {
		return fmt.Errorf("name exactly one key to revoke\n%s", revokeUsage)
	}
	kid := args[0]
	cfg, st, _, err := openStore(ctx, getenv)
	if err != nil {
		return err
	}
	defer st.Close()
	log := newLogger(cfg, stderr)
	ring, sealer, err := loadKeys(ctx, &cfg, st, log)
	if err != nil {
		return err
	}
	signing, err := ring.Revoke(ctx, st, sealer, keyPolicy(cfg), kid, identity.Now())
	switch {
	case errors.Is(err, identity.ErrNotFound):
		return fmt.Errorf("no signing key with kid %q (lanyard keys list shows them)", kid)
	case err != nil:
		return err
	}
	// A security event: which key, never any key material.
	log.Warn("auth event", "event", "key_revoked", "outcome", "success", "kid", kid, "signing_kid", signing)
	fmt.Fprintf(stdout, "key %s revoked; key %s signs. Running servers drop %s within LANYARD_KEY_CHECK_INTERVAL (%s)\n",
		kid, signing, kid, cfg.KeyCheckInterval)
	return listKeys(ctx, getenv, stdout)
}

// resealKeys re-encrypts every stored signing key under LANYARD_SECRET,
// opening them with it or LANYARD_SECRET_PREVIOUS.
func resealKeys(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, st, records, err := openStore(ctx, getenv)
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
	resealed := 0
	for _, r := range records {
		if r.State == identity.KeyStateRemoved || r.State == identity.KeyStateRevoked {
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

// serve builds the application, then runs it until ctx ends.
func serve(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	a, err := newApp(ctx, cfg, newLogger(cfg, stdout))
	if err != nil {
		return err
	}
	defer a.close()
	return a.run(ctx)
}
