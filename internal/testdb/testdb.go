// Package testdb gives tests a fresh, migrated database of each kind: a new
// PostgreSQL database per call (dropped at cleanup) and a new SQLite file.
// Postgres is required: when it cannot be reached the test fails, it never
// skips, so CI cannot pass without having run against it.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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
	return s
}

// Dialects are the databases every store-backed test runs on.
var Dialects = []store.Dialect{store.Postgres, store.SQLite}
