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
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	var (
		db      *gorm.DB
		err     error
		dialect Dialect
	)
	if opts.PostgresURL != "" {
		dialect = Postgres
		pool, poolErr := openPostgres(opts.PostgresURL, opts.Timeout)
		if poolErr != nil {
			return nil, poolErr
		}
		db, err = gorm.Open(postgres.New(postgres.Config{Conn: pool}), cfg)
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
		dsn := fmt.Sprintf("file:%s?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(%d)&_pragma=synchronous(NORMAL)",
			opts.SQLitePath, opts.Timeout.Milliseconds())
		db, err = gorm.Open(sqlite.Open(dsn), cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", dialect, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	if dialect == SQLite {
		sqlDB.SetMaxOpenConns(1)
	} else {
		sqlDB.SetMaxOpenConns(max(opts.MaxOpenConns, 2))
		sqlDB.SetMaxIdleConns(max(opts.MaxOpenConns, 2))
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	s := &Store{db: db, sqlDB: sqlDB, dialect: dialect, timeout: opts.Timeout, postgresURL: opts.PostgresURL}
	if err := s.Ping(ctx); err != nil {
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
func openPostgres(rawURL string, timeout time.Duration) (*sql.DB, error) {
	dsn, err := withServerTimeouts(rawURL, timeout)
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("parse database URL: invalid URL") // never echo it: it may hold a password
	}
	giveUp := min(cancelGrace, timeout/4)
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: giveUp}
	}
	return stdlib.OpenDB(*cfg), nil
}

// cancelGrace is how long a cancelled query waits for the server to confirm
// the cancellation before the connection is dropped instead. A request that
// gives up therefore returns at most this much after its deadline; readiness
// (1 s in all) counts on it.
const cancelGrace = 250 * time.Millisecond

// withServerTimeouts sets statement_timeout and lock_timeout on every
// connection (as startup parameters, so no extra round trip and no session
// state a pooler could lose), unless the URL sets them already. They are a
// little shorter than the client-side deadline: the server then cancels a
// slow statement itself and the connection stays usable, where a client-side
// cancellation would cost the pool that connection.
func withServerTimeouts(rawURL string, timeout time.Duration) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", errors.New("parse database URL: invalid URL") // never echo it: it may hold a password
	}
	server := max(timeout-timeout/10, time.Millisecond).Milliseconds()
	q := u.Query()
	for _, name := range []string{"statement_timeout", "lock_timeout"} {
		if !q.Has(name) {
			q.Set(name, strconv.FormatInt(server, 10))
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
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
	return s.fail(s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return fn(s.in(tx))
	}))
}

// in returns a Store whose operations run in the transaction tx.
func (s *Store) in(tx *gorm.DB) *Store {
	return &Store{db: tx, sqlDB: s.sqlDB, dialect: s.dialect, timeout: s.timeout, postgresURL: s.postgresURL}
}

// bound applies the operation deadline.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// Migrate applies every pending migration. On Postgres a session advisory lock
// makes replicas that start together migrate one at a time.
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
	err = s.db.WithContext(ctx).Raw(`SELECT max(version_id) FROM goose_db_version WHERE is_applied`).Scan(&applied).Error
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
func (s *Store) migrationProvider() (*goose.Provider, func(), error) {
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
		if db, err = sql.Open("pgx", s.postgresURL); err != nil {
			return nil, nil, err
		}
		done = func() { db.Close() }
		gooseDialect = goose.DialectPostgres
		// Retry the lock every second (goose's default is every 5 s) for up to
		// 5 minutes, so a replica that starts beside another waits ~1 s, not 5.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			done()
			return nil, nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	provider, err := goose.NewProvider(gooseDialect, db, sub, opts...)
	if err != nil {
		done()
		return nil, nil, fmt.Errorf("load migrations: %w", err)
	}
	return provider, done, nil
}

// migrate applies the pending migrations up to version upTo (0: all).
func (s *Store) migrate(ctx context.Context, upTo int64) ([]string, error) {
	provider, done, err := s.migrationProvider()
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
