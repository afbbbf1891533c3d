package betterauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
)

// Source reads a Better-Auth database inside one REPEATABLE READ READ ONLY
// transaction, so every batch, the total and the sessions come from one
// snapshot: users signing up or changing while the import runs cannot be
// read twice, half or not at all.
type Source struct {
	conn *pgx.Conn
	tx   pgx.Tx

	user, account, session string // quoted, schema-qualified table names
	profile                string // "" when the schema has no user_profile table
	// profileKey compares user_profile.user_id with the user ids: directly
	// when it is text (so its index serves), else through ::text (a uuid
	// or varchar column of another application's making).
	profileKey string
}

// schemaName is what --schema accepts: an unquoted Postgres identifier.
// Anything else is refused up front rather than quoted into something the
// operator did not mean (quoting still protects the statements).
var schemaName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,62}$`)

// OpenSource connects to the Better-Auth database at url and starts the
// snapshot. The tables user and account must exist in schema.
func OpenSource(ctx context.Context, url, schema string) (*Source, error) {
	if !schemaName.MatchString(schema) {
		return nil, errors.New("--schema must be a plain Postgres identifier (letters, digits, _ and $, at most 63 bytes)")
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, errors.New("--from: not a valid Postgres URL") // never echo it: it may hold a password
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the Better-Auth database: %w", err)
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("begin the snapshot of the Better-Auth database: %w", err)
	}
	s := &Source{conn: conn, tx: tx,
		user:    pgx.Identifier{schema, "user"}.Sanitize(),
		account: pgx.Identifier{schema, "account"}.Sanitize(),
		session: pgx.Identifier{schema, "session"}.Sanitize(),
	}
	if err := s.inspect(ctx, schema); err != nil {
		s.Close(ctx)
		return nil, err
	}
	return s, nil
}

// inspect checks the tables and finds the optional user_profile table.
func (s *Source) inspect(ctx context.Context, schema string) error {
	for _, table := range []string{"user", "account"} {
		var found bool
		if err := s.tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, pgx.Identifier{schema, table}.Sanitize()).Scan(&found); err != nil {
			return fmt.Errorf("read the Better-Auth schema: %w", err)
		}
		if !found {
			return fmt.Errorf("schema %q has no table %q: is this Better-Auth's database and schema (--schema)?", schema, table)
		}
	}
	var keyType *string
	err := s.tx.QueryRow(ctx, `SELECT data_type FROM information_schema.columns
WHERE table_schema = $1 AND table_name = 'user_profile' AND column_name = 'user_id'`, schema).Scan(&keyType)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil // no platform profiles in this deployment
	case err != nil:
		return fmt.Errorf("read the Better-Auth schema: %w", err)
	}
	s.profile = pgx.Identifier{schema, "user_profile"}.Sanitize()
	s.profileKey = "user_id::text"
	if *keyType == "text" {
		s.profileKey = "user_id"
	}
	return nil
}

// HasProfiles reports whether the schema has a user_profile table.
func (s *Source) HasProfiles() bool { return s.profile != "" }

// Close ends the snapshot and the connection.
func (s *Source) Close(ctx context.Context) {
	_ = s.tx.Rollback(ctx) // read only: nothing to keep
	_ = s.conn.Close(ctx)
}

// CountUsers returns how many users the snapshot holds.
func (s *Source) CountUsers(ctx context.Context) (int64, error) {
	var n int64
	err := s.tx.QueryRow(ctx, `SELECT count(*) FROM `+s.user).Scan(&n)
	return n, err
}

// sharedEmails maps each address that several Better-Auth users hold when
// case is ignored (Better-Auth's unique index is case-sensitive) to those
// users' ids, in id order.
func (s *Source) sharedEmails(ctx context.Context) (map[string][]string, error) {
	rows, err := s.tx.Query(ctx, `SELECT lower(email), array_agg(id ORDER BY id) FROM `+s.user+`
GROUP BY lower(email) HAVING count(*) > 1`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	shared := make(map[string][]string)
	for rows.Next() {
		var email string
		var ids []string
		if err := rows.Scan(&email, &ids); err != nil {
			return nil, err
		}
		shared[email] = ids
	}
	return shared, rows.Err()
}

// readBatch reads up to limit users with ids after after (keyset
// pagination in id order: no OFFSET that rescans what was read), with
// their accounts and profiles.
func (s *Source) readBatch(ctx context.Context, after string, limit int) ([]sourceUser, error) {
	rows, err := s.tx.Query(ctx, `SELECT id, name::bytea, email, COALESCE("emailVerified", false), "createdAt"
FROM `+s.user+` WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read Better-Auth users: %w", err)
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (sourceUser, error) {
		var u sourceUser
		err := r.Scan(&u.ID, &u.Name, &u.Email, &u.EmailVerified, &u.CreatedAt)
		return u, err
	})
	if err != nil || len(users) == 0 {
		return nil, wrapRead("users", err)
	}
	ids := make([]string, len(users))
	byID := make(map[string]*sourceUser, len(users))
	for i := range users {
		ids[i] = users[i].ID
		byID[users[i].ID] = &users[i]
	}
	rows, err = s.tx.Query(ctx, `SELECT "userId", "providerId", password FROM `+s.account+` WHERE "userId" = ANY($1) ORDER BY "userId", "providerId", id`, ids)
	if err != nil {
		return nil, fmt.Errorf("read Better-Auth accounts: %w", err)
	}
	var userID string
	var a sourceAccount
	_, err = pgx.ForEachRow(rows, []any{&userID, &a.Provider, &a.Password}, func() error {
		u := byID[userID]
		u.Accounts = append(u.Accounts, a)
		return nil
	})
	if err != nil {
		return nil, wrapRead("accounts", err)
	}
	if s.profile == "" {
		return users, nil
	}
	// The answers may be Postgres enums: read as text, mapped in Go.
	rows, err = s.tx.Query(ctx, `SELECT user_id::text, python_proficiency::text, developer_role::text FROM `+s.profile+` WHERE `+s.profileKey+` = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read user_profile (it needs the columns user_id, python_proficiency and developer_role): %w", err)
	}
	var p sourceProfile
	_, err = pgx.ForEachRow(rows, []any{&userID, &p.PythonProficiency, &p.DeveloperRole}, func() error {
		if u := byID[userID]; u != nil {
			u.Profiles = append(u.Profiles, p)
		}
		return nil
	})
	if err != nil {
		return nil, wrapRead("user_profile", err)
	}
	return users, nil
}

// liveSessions returns the sessions of these users that are still valid at
// now.
func (s *Source) liveSessions(ctx context.Context, userIDs []string, now time.Time) ([]Session, error) {
	rows, err := s.tx.Query(ctx, `SELECT "userId", token, "expiresAt" FROM `+s.session+` WHERE "userId" = ANY($1) AND "expiresAt" > $2`, userIDs, now)
	if err != nil {
		return nil, fmt.Errorf("read Better-Auth sessions: %w", err)
	}
	var out []Session
	var userID, token string
	var expires time.Time
	_, err = pgx.ForEachRow(rows, []any{&userID, &token, &expires}, func() error {
		// Only the hash is kept: the imported table must not hold bearer
		// credentials for Better-Auth.
		h := sha256.Sum256([]byte(token))
		out = append(out, Session{TokenHash: h[:], UserID: userID, ExpiresAt: expires.UTC().Truncate(time.Microsecond)})
		return nil
	})
	return out, wrapRead("sessions", err)
}

func wrapRead(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("read Better-Auth %s: %w", what, err)
}
