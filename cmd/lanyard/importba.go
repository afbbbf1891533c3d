package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/lanyard-id/lanyard/internal/betterauth"
	"github.com/lanyard-id/lanyard/internal/config"
	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/store"
)

const importUsage = `usage: lanyard import better-auth --from postgres://… [--schema public] [--dry-run] [--sessions] [--batch 1000]

Copies the users of a Better-Auth deployment into Lanyard's database (LANYARD_DATABASE_URL,
or the embedded one), migrating it first as lanyard migrate does. Each user keeps its id
(as sub), email, name, email verification and creation time; its password hash is kept as
it is and verified as Better-Auth's scrypt until the user's first login, which replaces it
with argon2id. A user_profile table in the schema, if there is one, brings the onboarding
answers. Users without a password account (OAuth only) are skipped, with the reason.

Running it again writes only what changed in Better-Auth since; it never replaces a hash
a user has already replaced by logging in to Lanyard.

  --from URL     the Better-Auth Postgres database (read in one read-only snapshot)
  --schema NAME  the schema of its tables (default public)
  --dry-run      do all the work in transactions that are rolled back: the report is
                 real, nothing is written
  --sessions     also import the live Better-Auth sessions of imported users, so that
                 a browser still holding one can exchange it once for a Lanyard session
  --batch N      users per transaction (default 1000)

The report lists every failed, skipped and warned user (user <id>: <kind>: <reason>) and
the counts. The exit status is 0 only when no user failed.
`

// importTimeout bounds one batch transaction. A batch is a thousand users
// written set-based, which is more than the request-sized LANYARD_DB_TIMEOUT
// is meant for, and nothing waits on an import interactively.
const importTimeout = 2 * time.Minute

// importCommand runs `lanyard import better-auth …`.
func importCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "better-auth" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprint(stdout, importUsage)
			return nil
		}
		return fmt.Errorf("lanyard import imports from better-auth only\n%s", importUsage)
	}
	fs := flag.NewFlagSet("lanyard import better-auth", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the usage text below says it better than flag's listing
	from := fs.String("from", "", "")
	schema := fs.String("schema", "public", "")
	dryRun := fs.Bool("dry-run", false, "")
	sessions := fs.Bool("sessions", false, "")
	batch := fs.Int("batch", 1000, "")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, importUsage)
			return nil
		}
		return fmt.Errorf("%w\n%s", err, importUsage)
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q\n%s", fs.Arg(0), importUsage)
	case *from == "":
		return fmt.Errorf("--from is required\n%s", importUsage)
	case *batch < 1 || *batch > 10000:
		return fmt.Errorf("--batch must be 1 to 10000")
	}

	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	// The source first: a wrong --from or --schema is refused before the
	// destination is touched (migrated).
	src, err := betterauth.OpenSource(ctx, *from, *schema)
	if err != nil {
		return err
	}
	defer src.Close(context.WithoutCancel(ctx))
	opts := storeOptions(cfg)
	opts.Timeout = max(opts.Timeout, importTimeout)
	open := openMigrated
	if *dryRun {
		open = openForDryRun
	}
	st, release, err := open(ctx, cfg, opts, stderr)
	if err != nil {
		return err
	}
	defer release()

	if !src.HasProfiles() {
		fmt.Fprintf(stderr, "import: schema %s has no user_profile table; no onboarding answers to import\n", *schema)
	}
	if *dryRun {
		fmt.Fprintln(stderr, "import: dry run, every batch is rolled back")
	}
	rep, err := betterauth.Import(ctx, src, st, betterauth.Options{
		BatchSize: *batch, DryRun: *dryRun, Sessions: *sessions, Now: identity.Now(), Progress: stderr,
	})
	if werr := rep.Write(stdout); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("import stopped (batches written so far stay; running it again carries on): %w", err)
	}
	if n := rep.Count(betterauth.Failed); n > 0 {
		return fmt.Errorf("import: %d users failed; see the report", n)
	}
	return nil
}

// openForDryRun opens the destination for a dry run, which writes nothing,
// not even the schema: a database that still needs migrations is refused.
func openForDryRun(ctx context.Context, cfg config.Config, opts store.Options, _ io.Writer) (*store.Store, func(), error) {
	if cfg.Embedded() {
		if _, err := os.Stat(cfg.SQLitePath()); err != nil {
			return nil, nil, fmt.Errorf("dry run: no embedded database in %s yet; run lanyard migrate first (a dry run writes nothing)", cfg.DataDir)
		}
	}
	st, err := store.Open(ctx, opts)
	if err != nil {
		return nil, nil, err
	}
	pending, err := st.HasPendingMigrations(ctx)
	if err == nil && pending {
		err = errors.New("dry run: the destination database needs migrations; run lanyard migrate first (a dry run writes nothing)")
	}
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, func() { st.Close() }, nil
}
