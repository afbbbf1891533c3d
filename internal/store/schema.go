package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// DefaultSchema is LANYARD_DATABASE_SCHEMA's default: Lanyard's tables live
// in a schema of their own, so it can share a database with an application
// that has its own users table in public.
const DefaultSchema = "lanyard"

// The store's SQL names every table with the schema written out, as
// lanyard.users: a pooler in transaction mode (Neon's pooled endpoint,
// PgBouncer) hands each transaction to whichever server connection is free,
// so a search_path set on one connection (by a startup parameter or SET)
// cannot be relied on, and an unqualified name could land on the
// application's public.users. The literal prefix in the source is
// rewritten once per statement, at the connection pool (schemaPool), to the
// configured schema; SQLite has no schemas and gets the bare names.
const sourceSchema = "lanyard"

// schemaName is what LANYARD_DATABASE_SCHEMA accepts: a lowercase unquoted
// identifier, so the name is the same quoted or not and needs no escaping
// anywhere it is written into SQL.
var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// reservedWords cannot name a schema unquoted: PostgreSQL 15's reserved
// keywords and those that may only be function or type names
// (pg_get_keywords() catcode R and T).
var reservedWords = strings.Fields(`all analyse analyze and any array as asc asymmetric authorization binary
both case cast check collate collation column concurrently constraint create cross current_catalog
current_date current_role current_schema current_time current_timestamp current_user default deferrable
desc distinct do else end except false fetch for foreign freeze from full grant group having ilike in
initially inner intersect into is isnull join lateral leading left like limit localtime localtimestamp
natural not notnull null offset on only or order outer overlaps placing primary references returning
right select session_user similar some symmetric table tablesample then to trailing true union unique
user using variadic verbose when where window with`)

// ValidSchema reports whether name can be LANYARD_DATABASE_SCHEMA.
func ValidSchema(name string) error {
	switch {
	case !schemaName.MatchString(name) || strings.HasPrefix(name, "pg_"):
		return errors.New("must be a lowercase identifier: a letter or _, then letters, digits or _, at most 63 characters, not starting with pg_")
	case slices.Contains(reservedWords, name) || name == "information_schema":
		return fmt.Errorf("%s is reserved in PostgreSQL and cannot name a schema unquoted: choose another name", name)
	}
	return nil
}

// qualifier rewrites the source schema prefix of table names to target
// (with the dot; "" for SQLite). GORM writes a model's table name quoted
// ("lanyard"."users" on Postgres, `lanyard`.`users` on SQLite), the
// hand-written SQL unquoted: all are rewritten. The package's statements
// are a fixed set, so each is rewritten once and remembered: the refresh
// statement is not copied on every call. Longer ones (the import's
// multi-row inserts, each of another length) are rewritten every time.
type qualifier struct {
	r    *strings.Replacer // nil: nothing to rewrite
	memo *sync.Map         // query → rewritten query
}

// memoLimit bounds the statements qualifier remembers.
const memoLimit = 4096

func newQualifier(target string) qualifier {
	if target == sourceSchema+"." {
		// "lanyard".users and lanyard.users name the same table: the name
		// is a lowercase identifier.
		return qualifier{}
	}
	return qualifier{r: strings.NewReplacer(
		`"`+sourceSchema+`".`, target,
		"`"+sourceSchema+"`.", target,
		sourceSchema+`.`, target,
	), memo: &sync.Map{}}
}

func (q qualifier) sql(query string) string {
	if q.r == nil || !strings.Contains(query, sourceSchema) {
		return query
	}
	if len(query) > memoLimit {
		return q.r.Replace(query)
	}
	if done, ok := q.memo.Load(query); ok {
		return done.(string)
	}
	done := q.r.Replace(query)
	q.memo.Store(query, done)
	return done
}

// schemaPool is the connection pool GORM sees: every statement, the
// transactions' included, has its table names qualified on the way.
type schemaPool struct {
	db *sql.DB
	q  qualifier
}

var (
	_ gorm.ConnPool         = (*schemaPool)(nil)
	_ gorm.ConnPoolBeginner = (*schemaPool)(nil)
	_ gorm.GetDBConnector   = (*schemaPool)(nil)
)

func (p *schemaPool) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return p.db.PrepareContext(ctx, p.q.sql(query))
}

func (p *schemaPool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return p.db.ExecContext(ctx, p.q.sql(query), args...)
}

func (p *schemaPool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return p.db.QueryContext(ctx, p.q.sql(query), args...)
}

func (p *schemaPool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return p.db.QueryRowContext(ctx, p.q.sql(query), args...)
}

func (p *schemaPool) BeginTx(ctx context.Context, opts *sql.TxOptions) (gorm.ConnPool, error) {
	tx, err := p.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &schemaTx{tx: tx, q: p.q}, nil
}

func (p *schemaPool) GetDBConn() (*sql.DB, error) { return p.db, nil }

// schemaTx is schemaPool inside a transaction.
type schemaTx struct {
	tx *sql.Tx
	q  qualifier
}

var (
	_ gorm.ConnPool    = (*schemaTx)(nil)
	_ gorm.TxCommitter = (*schemaTx)(nil)
)

func (t *schemaTx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return t.tx.PrepareContext(ctx, t.q.sql(query))
}

func (t *schemaTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.q.sql(query), args...)
}

func (t *schemaTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.q.sql(query), args...)
}

func (t *schemaTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.q.sql(query), args...)
}

func (t *schemaTx) Commit() error   { return t.tx.Commit() }
func (t *schemaTx) Rollback() error { return t.tx.Rollback() }

// pool wraps db so that its statements name tables in schema ("" for
// SQLite: no schema).
func pool(db *sql.DB, dialect Dialect, schema string) gorm.ConnPool {
	target := ""
	if dialect == Postgres {
		target = schema + "."
	}
	return &schemaPool{db: db, q: newQualifier(target)}
}

// execer is a database or a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// createSchema makes the schema if it is missing. It looks first: CREATE
// SCHEMA IF NOT EXISTS checks the CREATE privilege on the database before
// it checks whether the schema exists, and a role an administrator gave a
// ready-made schema need not have that privilege. Replicas starting
// together may race: the loser's unique violation means the schema exists.
func createSchema(ctx context.Context, db execer, schema string) error {
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
		return fmt.Errorf("look for schema %s: %w", schema, err)
	}
	if exists {
		return nil
	}
	_, err := db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+schema)
	if err != nil && !isUniqueViolation(err) {
		return fmt.Errorf("create schema %s: %w", schema, err)
	}
	return nil
}

// isUniqueViolation reports a CREATE SCHEMA IF NOT EXISTS that lost a race:
// PostgreSQL checks for the name before it inserts it.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "42P06")
}
