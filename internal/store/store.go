// Package store keeps Lanyard's state with GORM, in PostgreSQL for production
// or in an embedded pure-Go SQLite database by default. It is the only package
// that knows SQL; it implements identity.Store with the same statements on
// both databases, bounds every operation by a deadline, reports the
// database's own failures as identity.ErrUnavailable, and runs the embedded
// goose migrations. The conformance suite every implementation must pass is
// in storetest.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/lanyard-id/lanyard/internal/identity"
)

//go:embed migrations
var migrations embed.FS

// Dialect names the database behind a Store.
type Dialect string

const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// Options say where the database is.
type Options struct {
	PostgresURL  string // when empty, SQLitePath is used
	SQLitePath   string
	MaxOpenConns int // Postgres pool size
	// Timeout bounds every operation (a transaction counts as one): waiting
	// for a pooled connection, lock waits and the statements themselves.
	// Past it the operation fails with identity.ErrUnavailable. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// Schema is the PostgreSQL schema holding every table, the migration
	// table included (LANYARD_DATABASE_SCHEMA); empty means DefaultSchema.
	// SQLite ignores it.
	Schema string
}

// DefaultTimeout is LANYARD_DB_TIMEOUT's default.
const DefaultTimeout = 3 * time.Second

// Store implements identity.Store, the signing-key storage and the
// database clock. A Store made by Atomically is bound to one transaction.
type Store struct {
	db      *gorm.DB
	sqlDB   *sql.DB
	dialect Dialect
	timeout time.Duration
	// postgresURL is the URL as configured, without the request deadlines:
	// migrations use it.
	postgresURL string
	schema      string
	// params is what the pool adds to each connection's startup packet
	// (Postgres only).
	params *startupParams
}

// Open connects without migrating; call Migrate for that.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	cfg := &gorm.Config{
		// Single statements need no BEGIN/COMMIT around them: that would triple
		// the round trips of every write.
		SkipDefaultTransaction: true,
		TranslateError:         true,
		// Open pings itself, within the deadline; GORM's ping has none.
		DisableAutomaticPing: true,
		Logger:               logger.Discard,
		NowFunc:              func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
	}
	if opts.Schema == "" {
		opts.Schema = DefaultSchema
	}
	if err := ValidSchema(opts.Schema); err != nil {
		return nil, fmt.Errorf("database schema: %w", err)
	}
	var (
		db      *gorm.DB
		sqlDB   *sql.DB
		params  *startupParams
		err     error
		dialect Dialect
	)
	if opts.PostgresURL != "" {
		dialect = Postgres
		sqlDB, params, err = openPostgres(opts.PostgresURL, opts.Timeout)
		if err != nil {
			return nil, err
		}
		db, err = gorm.Open(postgres.New(postgres.Config{Conn: pool(sqlDB, dialect, opts.Schema)}), cfg)
	} else {
		dialect = SQLite
		if err := os.MkdirAll(filepath.Dir(opts.SQLitePath), 0o700); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
		// The file holds password hashes and sealed keys: create it private
		// (SQLite gives its -wal and -shm files the same mode).
		f, err := os.OpenFile(opts.SQLitePath, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create database file: %w", err)
		}
		f.Close()
		// WAL lets readers run beside the writer; the busy timeout (the
		// operation deadline) and a single connection make concurrent writers
		// queue instead of failing with SQLITE_BUSY at once.
		// Transactions begin IMMEDIATE: a deferred one that reads, then
		// writes, while another process (an admin command beside the
		// server) writes gets SQLITE_BUSY at once, without the busy wait.
		dsn := fmt.Sprintf("file:%s?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(%d)&_pragma=synchronous(NORMAL)&_txlock=immediate",
			opts.SQLitePath, opts.Timeout.Milliseconds())
		if sqlDB, err = sql.Open(sqlite.DriverName, dsn); err != nil {
			return nil, fmt.Errorf("open %s database: %w", dialect, err)
		}
		db, err = gorm.Open(&sqlite.Dialector{Conn: pool(sqlDB, dialect, opts.Schema)}, cfg)
	}
	if err != nil {
		if sqlDB != nil {
			sqlDB.Close()
		}
		return nil, fmt.Errorf("open %s database: %w", dialect, err)
	}
	if dialect == SQLite {
		sqlDB.SetMaxOpenConns(1)
	} else {
		sqlDB.SetMaxOpenConns(max(opts.MaxOpenConns, 2))
		sqlDB.SetMaxIdleConns(max(opts.MaxOpenConns, 2))
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	s := &Store{db: db, sqlDB: sqlDB, dialect: dialect, timeout: opts.Timeout, postgresURL: opts.PostgresURL,
		schema: opts.Schema, params: params}
	err = s.Ping(ctx)
	if params.refusedBy(err) {
		// A pooler (PgBouncer, Neon's pooled endpoint) accepts only the
		// startup parameters it knows. Without the server-side timeouts the
		// request deadline still bounds every statement: the cancel request
		// it sends on expiry passes through the pooler.
		params.refused.Store(true)
		err = s.Ping(ctx)
	}
	if err == nil && s.ServerTimeouts() && len(params.added) > 0 {
		// Some servers accept the parameters and drop them (Neon's direct
		// endpoint does): ask once what a connection got.
		err = params.check(ctx, s)
		if err == nil && params.unnamed() {
			// The connections opened so far cache named statements: drop
			// them (they are idle), so every connection goes unnamed.
			sqlDB.SetMaxIdleConns(0)
			sqlDB.SetMaxIdleConns(max(opts.MaxOpenConns, 2))
		}
	}
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("connect to %s database: %w", dialect, err)
	}
	return s, nil
}

// openPostgres returns a pool whose connections carry the server-side
// timeouts, and whose cancelled queries are cancelled on the server too.
// pgx's default only stops waiting on the client side: a statement queued
// behind a lock would keep waiting on the server after its request had
// answered 503, and an auto-commit statement would then commit (after
// shutdown, even after the process exited). With a cancel request the
// server stops it, and the connection stays usable. When the server cannot
// be reached to cancel (frozen, gone), the socket deadline ends the wait
// shortly after.
func openPostgres(rawURL string, timeout time.Duration) (*sql.DB, *startupParams, error) {
	cfg, err := parseURL(rawURL)
	if err != nil {
		return nil, nil, err
	}
	params := serverTimeouts(cfg, timeout)
	params.modeSet = execModeSet(rawURL)
	giveUp := min(cancelGrace, timeout/4)
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: giveUp}
	}
	return stdlib.OpenDB(*cfg, stdlib.OptionBeforeConnect(params.beforeConnect)), params, nil
}

// cancelGrace is how long a cancelled query waits for the server to confirm
// the cancellation before the connection is dropped instead. A request that
// gives up therefore returns at most this much after its deadline; readiness
// (1 s in all) counts on it.
const cancelGrace = 250 * time.Millisecond

// startupParams are the server-side timeouts Lanyard adds to each
// connection's startup packet: no extra round trip and no session state a
// pooler could lose. They are a little shorter than the client-side
// deadline: the server then cancels a slow statement itself and the
// connection stays usable, where a client-side cancellation would cost the
// pool that connection. A pooler refuses startup parameters it does not
// know (PgBouncer: "unsupported startup parameter"); once one has, they are
// left out.
//
// A server that refuses them is a pooler, and one in transaction mode
// hands each transaction to any server connection: pgx's default, named
// prepared statements cached per connection, then meets statements it
// never prepared ("prepared statement ... does not exist") or prepared
// twice. So the connections after a refusal also send every statement
// unnamed (default_query_exec_mode=exec), unless the URL chose a mode.
// So do those after a server accepted the parameters and dropped them: a
// pooler configured to ignore them (ignore_startup_parameters) looks like
// that, and so does Neon's direct endpoint, which then parses and plans
// every statement again (docs/neon.md: a URL that sets a mode keeps it).
type startupParams struct {
	added   []string // the names Lanyard set (ones the URL sets are the operator's)
	value   string   // what it set them to, in milliseconds
	refused atomic.Bool
	ignored bool // accepted, yet not in effect (set while opening, before the pool is shared)
	modeSet bool // the URL sets default_query_exec_mode
}

// execModeSet reports whether a database URL chooses pgx's query
// execution mode itself.
func execModeSet(rawURL string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && u.Query().Has("default_query_exec_mode")
}

// parseURL parses a database URL without ever echoing it: it may hold a
// password.
func parseURL(rawURL string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return nil, errors.New("parse database URL: invalid URL")
	}
	return cfg, nil
}

// unnamed reports whether statements go unnamed: the server refused or
// dropped the startup parameters, and the URL chose no execution mode.
func (p *startupParams) unnamed() bool {
	return p != nil && (p.refused.Load() || p.ignored) && !p.modeSet
}

// connConfig is the configuration of a new connection to dbURL for a
// store whose server showed p: the migrations' own connections follow the
// pool's choice of execution mode.
func (p *startupParams) connConfig(dbURL string) (*pgx.ConnConfig, error) {
	cfg, err := parseURL(dbURL)
	if err != nil {
		return nil, err
	}
	if p.unnamed() {
		cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	}
	return cfg, nil
}

// check records whether the server applied the parameters it accepted.
func (p *startupParams) check(ctx context.Context, s *Store) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	// pg_settings gives the value in milliseconds, as it was sent; a role's
	// or database's own default is not mistaken for it.
	var got string
	if err := s.sqlDB.QueryRowContext(ctx, `SELECT setting FROM pg_catalog.pg_settings WHERE name = $1`, p.added[0]).Scan(&got); err != nil {
		return s.fail(err)
	}
	p.ignored = got != p.value
	return nil
}

func serverTimeouts(cfg *pgx.ConnConfig, timeout time.Duration) *startupParams {
	server := strconv.FormatInt(max(timeout-timeout/10, time.Millisecond).Milliseconds(), 10)
	p := &startupParams{value: server}
	for _, name := range []string{"statement_timeout", "lock_timeout"} {
		if _, set := cfg.RuntimeParams[name]; !set {
			cfg.RuntimeParams[name] = server
			p.added = append(p.added, name)
		}
	}
	return p
}

func (p *startupParams) beforeConnect(_ context.Context, cfg *pgx.ConnConfig) error {
	if p.refused.Load() {
		// cfg is a shallow copy: its map is shared with every connection's.
		cfg.RuntimeParams = maps.Clone(cfg.RuntimeParams)
		for _, name := range p.added {
			delete(cfg.RuntimeParams, name)
		}
	}
	if p.unnamed() {
		cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	}
	return nil
}

// refusedBy reports whether err is a pooler refusing one of the added
// parameters.
func (p *startupParams) refusedBy(err error) bool {
	if p == nil || err == nil || p.refused.Load() {
		return false
	}
	msg := err.Error()
	if !strings.Contains(msg, "unsupported startup parameter") {
		return false
	}
	for _, name := range p.added {
		if strings.Contains(msg, name) {
			return true
		}
	}
	return false
}

// ServerTimeouts reports whether connections carry the server-side
// statement and lock timeouts (false on SQLite, behind a pooler that
// refused them, and on a server that accepted and dropped them).
func (s *Store) ServerTimeouts() bool {
	return s.params != nil && !s.params.refused.Load() && !s.params.ignored
}

// Schema names the PostgreSQL schema holding Lanyard's tables ("" on
// SQLite).
func (s *Store) Schema() string {
	if s.dialect != Postgres {
		return ""
	}
	return s.schema
}

// Close releases the connection pool.
func (s *Store) Close() error { return s.sqlDB.Close() }

// Ping runs a real query through the pool, within the operation deadline
// and ctx: readiness uses it, so an exhausted pool or a frozen server reads
// as not ready.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var one int
	return s.fail(s.db.Statement.ConnPool.QueryRowContext(ctx, `SELECT 1`).Scan(&one))
}

// DatabaseNow implements identity.ClockSource: the database server's clock
// (for SQLite, which runs in this process, the machine's).
func (s *Store) DatabaseNow(ctx context.Context) (time.Time, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var now dbTime
	query := `SELECT clock_timestamp()`
	if s.dialect == SQLite {
		query = `SELECT strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')`
	}
	if err := s.db.Statement.ConnPool.QueryRowContext(ctx, query).Scan(&now); err != nil {
		return time.Time{}, s.fail(err)
	}
	return now.UTC(), nil
}

// Atomically implements identity.Store: fn's operations run in one
// transaction under one deadline.
func (s *Store) Atomically(ctx context.Context, fn func(identity.Tx) error) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return fn(s.in(tx))
	})
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		// The deadline rolled the transaction back under the statements
		// still running in it, which then fail with "transaction has
		// already been committed or rolled back": the cause is the deadline.
		err = fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return s.fail(err)
}

// in returns a Store whose operations run in the transaction tx.
func (s *Store) in(tx *gorm.DB) *Store {
	c := *s
	c.db = tx
	return &c
}

// bound applies the operation deadline.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// Migrate applies every pending migration. On Postgres a lease row
// (goose_lock) makes replicas that start together migrate one at a time.
func (s *Store) Migrate(ctx context.Context) ([]string, error) {
	return s.migrate(ctx, 0)
}

// HasPendingMigrations reports whether migrations remain to be applied
// (a command that must write nothing, such as a dry run, refuses to run
// on such a database rather than migrate it). It compares goose's version
// table with the newest embedded migration itself, since goose's own check
// would create the version table: asking must write nothing either.
func (s *Store) HasPendingMigrations(ctx context.Context) (bool, error) {
	files, err := fs.ReadDir(migrations, "migrations/"+string(s.dialect))
	if err != nil {
		return false, err
	}
	var newest int64
	for _, f := range files {
		if n, err := strconv.ParseInt(strings.SplitN(f.Name(), "_", 2)[0], 10, 64); err == nil {
			newest = max(newest, n)
		}
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var applied *int64
	err = s.db.WithContext(ctx).Raw(`SELECT max(version_id) FROM lanyard.goose_db_version WHERE is_applied`).Scan(&applied).Error
	if err != nil {
		if failed := s.fail(err); errors.Is(failed, identity.ErrUnavailable) {
			return false, failed
		}
		return true, nil // no version table: never migrated
	}
	return applied == nil || *applied < newest, nil
}

// migrationProvider is goose over the embedded migrations of the dialect;
// done releases its connection.
func (s *Store) migrationProvider(ctx context.Context) (*goose.Provider, func(), error) {
	var sub fs.FS
	sub, err := fs.Sub(migrations, "migrations/"+string(s.dialect))
	if err != nil {
		return nil, nil, err
	}
	var opts []goose.ProviderOption
	gooseDialect := goose.DialectSQLite3
	db := s.sqlDB
	done := func() {}
	if s.dialect == Postgres {
		// A migration may rewrite a large table: it runs on a connection of
		// its own, without the statement and lock timeouts meant for requests.
		cfg, err := s.params.connConfig(s.postgresURL)
		if err != nil {
			return nil, nil, err
		}
		db = stdlib.OpenDB(*cfg)
		done = func() { db.Close() }
		if err := createSchema(ctx, db, s.schema); err != nil {
			done()
			return nil, nil, s.fail(err)
		}
		gooseDialect = goose.DialectPostgres
		sub = inSchema{sub, s.schema}
		opts = append(opts, goose.WithTableName(s.schema+".goose_db_version"))
		// A lease row, not a session advisory lock: behind a transaction
		// pooler the session that took an advisory lock is not the one that
		// would release it. Replicas that start together migrate one at a
		// time; the lock is retried every second (so a replica waits ~1 s,
		// not goose's default 5 s) for up to 5 minutes, and a migrator that
		// dies frees it when its lease ends.
		locker, err := lock.NewPostgresTableLocker(
			lock.WithTableName(s.schema+".goose_lock"),
			lock.WithTableLockTimeout(time.Second, 300),
		)
		if err != nil {
			done()
			return nil, nil, err
		}
		opts = append(opts, goose.WithLocker(locker))
	}
	provider, err := goose.NewProvider(gooseDialect, db, sub, opts...)
	if err != nil {
		done()
		return nil, nil, fmt.Errorf("load migrations: %w", err)
	}
	return provider, done, nil
}

// inSchema is the Postgres migrations with every Up and Down section
// starting by SET LOCAL search_path: goose runs each migration in a
// transaction of its own, and a transaction is the one thing a pooler keeps
// on one server connection, so the migrations' unqualified names land in
// the schema through any pooler.
type inSchema struct {
	fs.FS
	schema string
}

func (f inSchema) Open(name string) (fs.File, error) {
	file, err := f.FS.Open(name)
	if err != nil || !strings.HasSuffix(name, ".sql") {
		return file, err
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(file)
	if err != nil {
		return nil, err
	}
	set := "SET LOCAL search_path TO " + f.schema + ";\n"
	var out strings.Builder
	for line := range strings.Lines(string(b)) {
		out.WriteString(line)
		switch gooseAnnotation(line) {
		case "up", "down":
			out.WriteString(set)
		case "no transaction":
			// SET LOCAL outside a transaction does nothing: the migration's
			// names would land wherever the server connection's path points.
			return nil, fmt.Errorf("%s: a PostgreSQL migration must run in a transaction (it sets its search_path with SET LOCAL)", name)
		}
	}
	return &rewrittenFile{Reader: strings.NewReader(out.String()), info: info}, nil
}

// gooseAnnotation returns a line's goose annotation in lower case ("" when
// it has none), read as goose reads it: a line starting with "--" that
// names +goose, with every "--" and the first "+goose" removed.
func gooseAnnotation(line string) string {
	if !strings.HasPrefix(line, "--") || !strings.Contains(line, "+goose") {
		return ""
	}
	cmd := strings.Replace(strings.ReplaceAll(line, "--", ""), "+goose", "", 1)
	return strings.ToLower(strings.TrimSpace(cmd))
}

// rewrittenFile is an embedded migration with its search_path lines.
type rewrittenFile struct {
	*strings.Reader
	info fs.FileInfo
}

func (f *rewrittenFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *rewrittenFile) Close() error               { return nil }

// ErrStranded refuses to migrate a fresh schema beside a deployment made
// before LANYARD_DATABASE_SCHEMA, whose tables are where the database
// user's search_path put them (public, as a rule): that would start an
// empty Lanyard and leave every account behind. The error is a
// *StrandedError.
var ErrStranded = errors.New("Lanyard's tables are in another schema")

// StrandedError names the schema holding the deployment.
type StrandedError struct{ Schema, Target string }

func (e *StrandedError) Error() string {
	return fmt.Sprintf("Lanyard's tables are in schema %s (a deployment from before LANYARD_DATABASE_SCHEMA, which names %s): "+
		"set LANYARD_DATABASE_SCHEMA=%s to keep them there, or move them once with `lanyard migrate --move-from %s` (docs/upgrading.md)",
		e.Schema, e.Target, e.Schema, e.Schema)
}

func (e *StrandedError) Unwrap() error { return ErrStranded }

// ErrForeignGooseTable refuses a schema whose goose_db_version belongs to
// another application that migrates with goose: Lanyard would take the
// other application's versions for its own.
var ErrForeignGooseTable = errors.New("the schema's goose_db_version is another application's (it records migrations but the schema holds no Lanyard tables): set LANYARD_DATABASE_SCHEMA to a schema of Lanyard's own")

// migrate applies the pending migrations up to version upTo (0: all).
func (s *Store) migrate(ctx context.Context, upTo int64) ([]string, error) {
	if s.dialect == Postgres {
		if err := s.CheckDeployment(ctx); err != nil {
			return nil, err
		}
	}
	provider, done, err := s.migrationProvider(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	var results []*goose.MigrationResult
	if upTo > 0 {
		results, err = provider.UpTo(ctx, upTo)
	} else {
		results, err = provider.Up(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	applied := make([]string, 0, len(results))
	for _, r := range results {
		applied = append(applied, r.Source.Path)
	}
	return applied, nil
}

// CheckDeployment refuses a schema that is not Lanyard's to migrate: a
// fresh one while a deployment from before LANYARD_DATABASE_SCHEMA sits
// in public or elsewhere on the database user's search_path (a
// *StrandedError), or one whose goose_db_version is another
// application's (ErrForeignGooseTable). It reads only the catalogue, which
// needs no privilege on the schemas it looks at.
func (s *Store) CheckDeployment(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	mine, err := s.lanyardTables(ctx, s.sqlDB, s.schema)
	if err != nil {
		return err
	}
	if mine["signing_keys"] {
		return nil
	}
	if mine["goose_db_version"] {
		var applied *int64
		err := s.sqlDB.QueryRowContext(ctx, `SELECT max(version_id) FROM `+s.schema+`.goose_db_version WHERE version_id > 0`).Scan(&applied)
		if err != nil {
			return s.fail(err)
		}
		if applied != nil {
			return ErrForeignGooseTable
		}
	}
	// Where an older build's unqualified names landed: the search_path of
	// a plain connection (the same URL), and public.
	rows, err := s.sqlDB.QueryContext(ctx, `SELECT unnest(current_schemas(false)) UNION SELECT 'public'`)
	if err != nil {
		return s.fail(err)
	}
	var candidates []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return s.fail(err)
		}
		candidates = append(candidates, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s.fail(err)
	}
	slices.Sort(candidates)
	for _, other := range candidates {
		if other == s.schema {
			continue
		}
		found, err := s.deploymentIn(ctx, other)
		if err != nil {
			return err
		}
		if found {
			return &StrandedError{Schema: other, Target: s.schema}
		}
	}
	return nil
}

// deploymentIn reports whether schema holds a Lanyard deployment: goose's
// version table, signing keys, users and sessions, each with a column
// only Lanyard's has.
func (s *Store) deploymentIn(ctx context.Context, schema string) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	found, err := s.lanyardTables(ctx, s.sqlDB, schema)
	return found["goose_db_version"] && found["signing_keys"] && found["users"] && found["sessions"], err
}

// lanyardTables are the tables in schema that are Lanyard's: named as one
// of Tables and having its signature column. The catalogue query needs no
// USAGE on schema.
func (s *Store) lanyardTables(ctx context.Context, q execer, schema string) (map[string]bool, error) {
	names, columns := make([]string, 0, len(Tables)), make([]string, 0, len(Tables))
	for _, t := range Tables {
		names, columns = append(names, t), append(columns, signatureColumns[t])
	}
	rows, err := q.QueryContext(ctx, `SELECT c.relname FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND NOT a.attisdropped
JOIN unnest($2::text[], $3::text[]) AS t(name, col) ON t.name = c.relname AND t.col = a.attname
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')`, schema, names, columns)
	if err != nil {
		return nil, s.fail(err)
	}
	defer rows.Close()
	found := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, s.fail(err)
		}
		found[name] = true
	}
	return found, s.fail(rows.Err())
}

// Tables are every table Lanyard's migrations create, goose's own included:
// what a move between schemas carries.
var Tables = []string{
	"goose_db_version", "goose_lock", "users", "profiles", "sessions", "signing_keys", "throttles",
	"mail_tokens", "outbox", "better_auth_sessions", "audit_events",
}

// signatureColumns name, for each of Tables, a column another
// application's table of that name is unlikely to have: what tells
// Lanyard's tables from an application's in a shared schema.
var signatureColumns = map[string]string{
	"goose_db_version": "version_id", "goose_lock": "lease_expires_at", "users": "password_hash",
	"profiles": "python_proficiency", "sessions": "secret_hash", "signing_keys": "private_sealed",
	"throttles": "window_start_ms", "mail_tokens": "token_hash", "outbox": "lease_until",
	"better_auth_sessions": "exchanged_at", "audit_events": "actor",
}

// Functions are the functions Lanyard's migrations create (with their
// argument lists): a move between schemas carries them too.
var Functions = []string{"audit_events_refuse_update()"}

// MoveSchema moves a deployment's tables from schema from (public, for one
// made before LANYARD_DATABASE_SCHEMA) into the store's schema, in one
// transaction: every table or none. Stop the replicas of the old version
// first: they look for their tables in from.
func (s *Store) MoveSchema(ctx context.Context, from string) ([]string, error) {
	if s.dialect != Postgres {
		return nil, errors.New("only a PostgreSQL database has schemas to move between")
	}
	if err := ValidSchema(from); err != nil {
		return nil, fmt.Errorf("schema to move from: %w", err)
	}
	if from == s.schema {
		return nil, fmt.Errorf("the tables are in %s already", from)
	}
	if found, err := s.deploymentIn(ctx, from); err != nil {
		return nil, err
	} else if !found {
		return nil, fmt.Errorf("schema %s holds no Lanyard deployment", from)
	}
	if found, err := s.deploymentIn(ctx, s.schema); err != nil {
		return nil, err
	} else if found {
		return nil, fmt.Errorf("schema %s holds a Lanyard deployment already; nothing was moved", s.schema)
	}
	tx, err := s.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return nil, s.fail(err)
	}
	defer tx.Rollback()
	if err := createSchema(ctx, tx, s.schema); err != nil {
		return nil, err
	}
	// Only Lanyard's own tables move: an application's table of the same
	// name (its own users) stays where it is.
	mine, err := s.lanyardTables(ctx, tx, from)
	if err != nil {
		return nil, err
	}
	var moved []string
	for _, table := range Tables {
		// goose_lock is never an older deployment's (it came with the
		// lease lock) and may be an application's: the target gets its own.
		if !mine[table] || table == "goose_lock" {
			continue
		}
		if _, err := tx.ExecContext(ctx, `ALTER TABLE `+from+`.`+table+` SET SCHEMA `+s.schema); err != nil {
			return nil, fmt.Errorf("move %s.%s: %w", from, table, err)
		}
		moved = append(moved, table)
	}
	for _, function := range Functions {
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT to_regprocedure($1) IS NOT NULL`, from+"."+function).Scan(&exists); err != nil {
			return nil, s.fail(err)
		}
		if !exists {
			continue
		}
		if _, err := tx.ExecContext(ctx, `ALTER FUNCTION `+from+`.`+function+` SET SCHEMA `+s.schema); err != nil {
			return nil, fmt.Errorf("move %s.%s: %w", from, function, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, s.fail(err)
	}
	return moved, nil
}

// skipLocked locks the rows a batch claims so that replicas working side
// by side take different ones (Postgres); SQLite has one writer anyway.
func (s *Store) skipLocked() string {
	if s.dialect == Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// translate maps a driver error to GORM's portable sentinels
// (gorm.ErrDuplicatedKey, gorm.ErrForeignKeyViolated, …). GORM does this
// itself for Create and friends, but not for errors surfacing through
// Raw(…).Scan, so statements with RETURNING go through here.
func (s *Store) translate(err error) error {
	if t, ok := s.db.Dialector.(gorm.ErrorTranslator); ok && err != nil {
		return t.Translate(err)
	}
	return err
}
