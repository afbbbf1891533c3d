package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/lanyard-id/lanyard/internal/identity"
)

// fail passes err on, marked with identity.ErrUnavailable when the failure
// is the database's rather than the request's, so the caller answers 503
// and the client retries instead of seeing a 500.
func (s *Store) fail(err error) error {
	if err == nil || errors.Is(err, identity.ErrUnavailable) || !unavailable(err) {
		return err
	}
	return fmt.Errorf("%w: %w", identity.ErrUnavailable, err)
}

// IsMissingTable reports an error about a table that does not exist (a
// database never migrated), on either database.
func IsMissingTable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "42P01" // undefined_table
	}
	return err != nil && strings.Contains(err.Error(), "no such table")
}

// IsMissingColumn reports an error about a column that does not exist (a
// database migrated by an older build), on either database.
func IsMissingColumn(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "42703" // undefined_column
	}
	return err != nil && strings.Contains(err.Error(), "no such column")
}

// unavailable reports whether err means the database cannot serve now: a
// deadline passed or the work was cancelled, the connection failed, the
// server refused or shut down, a lock or statement timed out, or the
// embedded database stayed busy.
func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "53"), // insufficient resources (too many connections, disk full)
			strings.HasPrefix(pgErr.Code, "57"), // operator intervention: statement_timeout, shutdown, cannot connect now
			strings.HasPrefix(pgErr.Code, "58"), // system error (I/O)
			pgErr.Code == "55P03",               // lock_not_available: lock_timeout
			pgErr.Code == "40001",               // serialization_failure
			pgErr.Code == "40P01":               // deadlock_detected
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connectErr) || errors.As(err, &netErr) || pgconn.Timeout(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	// SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6), with extended codes.
	var sqliteErr interface{ Code() int }
	if errors.As(err, &sqliteErr) {
		code := sqliteErr.Code() & 0xff
		return code == 5 || code == 6
	}
	// pgx reports a connection it already closed, and database/sql a closed
	// pool (shutdown), only by message.
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "sql: database is closed")
}
