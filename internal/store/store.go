// Package store keeps Lanyard's state with GORM, in PostgreSQL for production
// or in an embedded pure-Go SQLite database by default. It is the only package
// that knows SQL; it implements identity.Store with the same statements on
// both databases and runs the embedded goose migrations.
package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
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
}

// Store implements identity.Store.
type Store struct {
	db      *gorm.DB
	sqlDB   *sql.DB
	dialect Dialect
}

// Open connects without migrating; call Migrate for that.
func Open(ctx context.Context, opts Options) (*Store, error) {
	cfg := &gorm.Config{
		// Single statements need no BEGIN/COMMIT around them: that would triple
		// the round trips of every write.
		SkipDefaultTransaction: true,
		TranslateError:         true,
		Logger:                 logger.Discard,
		NowFunc:                func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
	}
	var (
		db      *gorm.DB
		err     error
		dialect Dialect
	)
	if opts.PostgresURL != "" {
		dialect = Postgres
		db, err = gorm.Open(postgres.Open(opts.PostgresURL), cfg)
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
		// WAL lets readers run beside the writer; the busy timeout and a single
		// connection make concurrent writers queue instead of failing with SQLITE_BUSY.
		dsn := "file:" + opts.SQLitePath + "?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)"
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
	if err := sqlDB.PingContext(ctx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("connect to %s database: %w", dialect, err)
	}
	return &Store{db: db, sqlDB: sqlDB, dialect: dialect}, nil
}

// Dialect reports which database this is.
func (s *Store) Dialect() Dialect { return s.dialect }

// DB exposes the GORM handle to tests and benchmarks in this module (for
// statement counting); production code goes through the methods.
func (s *Store) DB() *gorm.DB { return s.db }

// Close releases the connection pool.
func (s *Store) Close() error { return s.sqlDB.Close() }

// Ping checks the database answers; readiness uses it.
func (s *Store) Ping(ctx context.Context) error { return s.sqlDB.PingContext(ctx) }

// Migrate applies every pending migration. On Postgres a session advisory lock
// makes replicas that start together migrate one at a time.
func (s *Store) Migrate(ctx context.Context) ([]string, error) {
	sub, err := fs.Sub(migrations, "migrations/"+string(s.dialect))
	if err != nil {
		return nil, err
	}
	var opts []goose.ProviderOption
	gooseDialect := goose.DialectSQLite3
	if s.dialect == Postgres {
		gooseDialect = goose.DialectPostgres
		// Retry the lock every second (goose's default is every 5 s) for up to
		// 5 minutes, so a replica that starts beside another waits ~1 s, not 5.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	provider, err := goose.NewProvider(gooseDialect, s.sqlDB, sub, opts...)
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	results, err := provider.Up(ctx)
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
