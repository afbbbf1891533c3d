// Package testdb gives tests a fresh, migrated database of each kind: a new
// PostgreSQL database per call (dropped at cleanup) and a new SQLite file.
// Postgres is required: when it cannot be reached the test fails, it never
// skips, so CI cannot pass without having run against it.
package testdb

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/lanyard-id/lanyard/internal/store"
)

// AdminURLVar overrides where the test Postgres server is.
const AdminURLVar = "LANYARD_TEST_POSTGRES_URL"

func adminURL() string {
	if u := os.Getenv(AdminURLVar); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// PostgresURL creates an empty database and returns its URL.
func PostgresURL(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, adminURL())
	if err != nil {
		t.Fatalf("PostgreSQL is required for this test (set %s or start it; .ci/run does): %v", AdminURLVar, err)
	}
	defer admin.Close(ctx)
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	name := "lanyard_test_" + hex.EncodeToString(suffix[:])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, adminURL())
		if err != nil {
			t.Errorf("drop test database: %v", err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	u, err := url.Parse(adminURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// SearchPath returns dbURL with search_path set (unless it sets one), so a
// test's own queries may name Lanyard's tables without their schema.
// Lanyard itself never relies on search_path: its SQL is schema-qualified.
func SearchPath(dbURL, path string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		return dbURL
	}
	q := u.Query()
	if !q.Has("search_path") {
		q.Set("search_path", path)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Connect opens a connection to the Postgres at url (with Lanyard's schema
// first on its search_path), giving up after 10s,
// and closes it at cleanup.
func Connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, SearchPath(url, store.DefaultSchema+",public"))
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// OpenCounted returns a migrated Postgres store whose every statement is
// counted on the wire.
func OpenCounted(t testing.TB) (*store.Store, *StatementCounter) {
	t.Helper()
	proxied, counter := CountStatements(t, PostgresURL(t))
	return open(t, store.Options{MaxOpenConns: 40, PostgresURL: proxied}), counter
}

// Open returns a migrated store of the given dialect, closed at cleanup.
func Open(t testing.TB, dialect store.Dialect) *store.Store {
	t.Helper()
	opts := store.Options{MaxOpenConns: 40}
	switch dialect {
	case store.Postgres:
		opts.PostgresURL = PostgresURL(t)
	case store.SQLite:
		opts.SQLitePath = filepath.Join(t.TempDir(), "lanyard.db")
	default:
		t.Fatalf("unknown dialect %q", dialect)
	}
	return open(t, opts)
}

// OpenWith returns a store opened with opts and migrated, closed at
// cleanup (a schema of its own, say).
func OpenWith(t testing.TB, opts store.Options) *store.Store {
	t.Helper()
	return open(t, opts)
}

// pooledURL returns directURL's database through a PgBouncer of its own in
// transaction mode (as Neon's pooled endpoint is), with pgx's query
// execution mode set: Debian's PgBouncer 1.18 has no prepared statements in
// that mode (docs/neon.md).
func pooledURL(t testing.TB, directURL, mode string) string {
	t.Helper()
	u, err := url.Parse(StartPgBouncer(t, directURL))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("default_query_exec_mode", mode)
	u.RawQuery = q.Encode()
	return u.String()
}

// OpenPooled returns a migrated store on a new database, migrated and used
// through pooledURL in exec mode; SQL inspects it directly.
func OpenPooled(t testing.TB) *store.Store {
	t.Helper()
	return OpenPooledMode(t, "exec")
}

// OpenPooledMode is OpenPooled with another pgx query execution mode
// (simple_protocol, say) in the URL.
func OpenPooledMode(t testing.TB, mode string) *store.Store {
	t.Helper()
	direct := PostgresURL(t)
	s := open(t, store.Options{MaxOpenConns: 40, PostgresURL: pooledURL(t, direct, mode)})
	v, _ := raw.Load(s)
	v.(*rawHandle).inspectURL = direct
	return s
}

func open(t testing.TB, opts store.Options) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	h := &rawHandle{opts: opts}
	raw.Store(s, h)
	t.Cleanup(h.close)
	return s
}

// raw remembers where each store from Open lives, for SQL.
var raw sync.Map // *store.Store → *rawHandle

type rawHandle struct {
	opts       store.Options
	inspectURL string // when not opts.PostgresURL (a pooler's)
	once       sync.Once
	db         *gorm.DB
	err        error
}

func (h *rawHandle) open() (*gorm.DB, error) {
	h.once.Do(func() {
		dialector := sqlite.Open("file:" + h.opts.SQLitePath + "?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)")
		if h.opts.PostgresURL != "" {
			dialector = postgres.Open(SearchPath(cmp.Or(h.inspectURL, h.opts.PostgresURL), cmp.Or(h.opts.Schema, store.DefaultSchema)))
		}
		h.db, h.err = gorm.Open(dialector, &gorm.Config{Logger: logger.Discard})
	})
	return h.db, h.err
}

func (h *rawHandle) close() {
	if h.db != nil {
		if sqlDB, err := h.db.DB(); err == nil {
			sqlDB.Close()
		}
	}
}

// OptionsOf returns the options a store from Open was opened with.
func OptionsOf(t testing.TB, s *store.Store) store.Options {
	t.Helper()
	v, ok := raw.Load(s)
	if !ok {
		t.Fatal("testdb: the store was not opened by testdb")
	}
	return v.(*rawHandle).opts
}

// SQL is a second, raw handle on the database behind s (a store from Open),
// for tests that inspect or tamper with rows directly: checking that a
// rejected request wrote nothing, or that a CHECK constraint holds against a
// buggy writer. The store itself offers no such back door.
func SQL(t testing.TB, s *store.Store) *gorm.DB {
	t.Helper()
	v, ok := raw.Load(s)
	if !ok {
		t.Fatal("testdb.SQL: the store was not opened by testdb")
	}
	db, err := v.(*rawHandle).open()
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// Dialects are the databases every store-backed test runs on.
var Dialects = []store.Dialect{store.Postgres, store.SQLite}
