package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/lanyard-id/lanyard/internal/identity"
)

func newSessionRow(s identity.NewSession) *sessionRow {
	return &sessionRow{
		ID: s.ID, UserID: s.UserID, SecretHash: s.SecretHash,
		CreatedAt: s.CreatedAt, RotatedAt: s.CreatedAt, LastUsedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt,
		UserAgent: nullable(s.UserAgent), IP: nullable(s.IP),
	}
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// CreateSession implements identity.Sessions.
func (s *Store) CreateSession(ctx context.Context, ns identity.NewSession) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.fail(s.db.WithContext(ctx).Create(newSessionRow(ns)).Error)
}

// createSessionIfPassword inserts the session only while the user row holds
// the checked hash. Postgres infers no types for parameters in a SELECT
// list, so they are cast; FOR UPDATE holds the user row until the insert
// commits, as a password change does. SQLite serialises writers anyway.
const (
	createSessionIfPasswordPostgres = `
INSERT INTO lanyard.sessions (id, user_id, secret_hash, created_at, rotated_at, last_used_at, expires_at, user_agent, ip)
SELECT $1::uuid, id, $2::bytea, $3::timestamptz, $3::timestamptz, $3::timestamptz, $4::timestamptz, $5::text, $6::text
FROM lanyard.users WHERE id = $7 AND password_hash = $8 FOR UPDATE`
	createSessionIfPasswordSQLite = `
INSERT INTO lanyard.sessions (id, user_id, secret_hash, created_at, rotated_at, last_used_at, expires_at, user_agent, ip)
SELECT ?1, id, ?2, ?3, ?3, ?3, ?4, ?5, ?6
FROM lanyard.users WHERE id = ?7 AND password_hash = ?8`
)

// CreateSessionIfPassword implements identity.Sessions.
func (s *Store) CreateSessionIfPassword(ctx context.Context, ns identity.NewSession, checkedHash string) error {
	if !validUserID(ns.UserID) {
		return identity.ErrStaleCredentials
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	query := createSessionIfPasswordPostgres
	if s.dialect == SQLite {
		query = createSessionIfPasswordSQLite
	}
	r := newSessionRow(ns)
	res, err := s.db.Statement.ConnPool.ExecContext(ctx, query,
		r.ID, r.SecretHash, r.CreatedAt, r.ExpiresAt, r.UserAgent, r.IP, ns.UserID, checkedHash)
	if err != nil {
		return s.fail(s.translate(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return s.fail(err)
	} else if n == 0 {
		return identity.ErrStaleCredentials
	}
	return nil
}

// The refresh hot path is one statement. Every SET expression reads the row
// as it was before the statement, so the cases are:
//   - presented generation ($1) is live: advance it, stamp rotated_at and
//     record the rotating client's fingerprint ($7) in rotated_by;
//   - presented is the immediate parent, rotated after the grace start ($3)
//     by this same client (or binding is off: $7 NULL, or the rotation
//     recorded no client): leave the generation (the caller re-derives the
//     live token: no fork);
//   - anything older, the parent after grace, or the parent inside grace
//     from another client (a thief riding the window): revoke the session
//     (reuse).
//
// Under concurrency Postgres re-evaluates the row after a competing update
// commits, so twenty racing refreshes of one token yield one advance and
// nineteen grace answers, with no explicit lock, sleep or retry.
// revoked_at is NULL in every matched row; keeping it (rather than writing
// NULL) also gives Postgres the column's type for the $2 parameter.
//
// It bypasses GORM: on this path GORM's named-parameter rewriting and its
// SQL explainer (run even with logging off) cost more CPU than the round
// trip. Parameters: $1 generation, $2 now, $3 grace start, $4 idle cutoff,
// $5 session id, $6 secret hash, $7 client fingerprint (NULL: unbound).
// bench/refresh/run.sh carries a copy as a pgbench diagnostic: keep it in step.
const rotateSet = `
  generation    = CASE WHEN generation = $1 THEN generation + 1 ELSE generation END,
  rotated_at    = CASE WHEN generation = $1 THEN $2 ELSE rotated_at END,
  rotated_by    = CASE WHEN generation = $1 THEN $7 ELSE rotated_by END,
  last_used_at  = CASE WHEN generation = $1 OR (` + graceParent + `) THEN $2 ELSE last_used_at END,
  revoked_at    = CASE WHEN generation = $1 OR (` + graceParent + `) THEN revoked_at ELSE $2 END,
  revoke_reason = CASE WHEN generation = $1 OR (` + graceParent + `) THEN revoke_reason ELSE 'reuse' END
WHERE id = $5 AND secret_hash = $6 AND revoked_at IS NULL
  AND generation >= $1 AND expires_at > $2 AND last_used_at > $4`

// graceParent: the presented token is the live one's parent, rotated inside
// the grace window by the client presenting it now.
const graceParent = `generation = $1 + 1 AND rotated_at > $3 AND ($7 IS NULL OR rotated_by IS NULL OR rotated_by = $7)`

// rotateSessionPostgres reads the user and profile by joining the updated
// row in a data-modifying CTE: two index lookups. $8, when not NULL, is the
// request's deadline on the database's clock: a statement that runs later
// (one that sat unread in the socket of a frozen server, and runs when it
// wakes, long after its request answered 503) changes nothing, so the
// client's retry is not taken for reuse.
const rotateSessionPostgres = `
WITH s AS (UPDATE lanyard.sessions SET` + rotateSet + `
  AND ($8::timestamptz IS NULL OR clock_timestamp() < $8)
  RETURNING generation, revoke_reason, expires_at, user_id)
SELECT s.generation, s.revoke_reason, s.expires_at, s.user_id, u.email, u.name, u.created_at, u.email_verified_at,
       p.python_proficiency, p.developer_role, p.completed_at
FROM s JOIN lanyard.users u ON u.id = s.user_id LEFT JOIN lanyard.profiles p ON p.user_id = s.user_id`

// rotateSessionSQLite: SQLite has no UPDATE in a CTE and RETURNING cannot
// join, so scalar subqueries bring the user and profile back. Its numbered
// parameters are spelled ?N. It needs no deadline guard: the database runs
// in this process, and a cancelled statement is interrupted, not queued.
var rotateSessionSQLite = strings.ReplaceAll(`
UPDATE lanyard.sessions SET`+rotateSet+`
RETURNING generation, revoke_reason, expires_at, user_id,
  (SELECT email FROM lanyard.users WHERE users.id = sessions.user_id),
  (SELECT name FROM lanyard.users WHERE users.id = sessions.user_id),
  (SELECT created_at FROM lanyard.users WHERE users.id = sessions.user_id),
  (SELECT email_verified_at FROM lanyard.users WHERE users.id = sessions.user_id),
  (SELECT python_proficiency FROM lanyard.profiles WHERE profiles.user_id = sessions.user_id),
  (SELECT developer_role FROM lanyard.profiles WHERE profiles.user_id = sessions.user_id),
  (SELECT completed_at FROM lanyard.profiles WHERE profiles.user_id = sessions.user_id)`, "$", "?")

// RotateSession implements identity.Sessions. Its deadline cancels the
// statement, so a rotation that waited too long rolls back rather than
// committing after its caller has answered 503.
func (s *Store) RotateSession(ctx context.Context, r identity.RotateRequest) (identity.Rotation, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	query := rotateSessionPostgres
	args := []any{r.Generation, r.Now, r.GraceStart, r.IdleCutoff, r.SessionID, r.SecretHash, nil, nil}
	if len(r.Client) > 0 {
		args[6] = r.Client
	}
	if !r.NotAfter.IsZero() {
		args[7] = r.NotAfter
	}
	if s.dialect == SQLite {
		// SQLite's clock is this machine's, and the statement runs now.
		if !r.NotAfter.IsZero() && !time.Now().Before(r.NotAfter) {
			return identity.Rotation{}, identity.ErrNotFound
		}
		query, args = rotateSessionSQLite, args[:7]
	}
	var (
		row          userWithProfile
		generation   int64
		revokeReason *string
		expiresAt    dbTime
	)
	err := s.db.Statement.ConnPool.QueryRowContext(ctx, query, args...).Scan(
		&generation, &revokeReason, &expiresAt, &row.ID, &row.Email, &row.Name, &row.CreatedAt, &row.EmailVerifiedAt,
		&row.PythonProficiency, &row.DeveloperRole, &row.CompletedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return identity.Rotation{}, identity.ErrNotFound
	}
	if err != nil {
		return identity.Rotation{}, s.fail(err)
	}
	return identity.Rotation{
		Generation: generation,
		Reused:     revokeReason != nil,
		ExpiresAt:  expiresAt.Time,
		User:       row.user(),
	}, nil
}

// SessionState implements identity.Sessions (the refresh failure path).
func (s *Store) SessionState(ctx context.Context, id string, secretHash []byte) (identity.SessionState, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var row struct {
		RevokeReason *string
		ExpiresAt    dbTime
		LastUsedAt   dbTime
	}
	res := s.db.WithContext(ctx).Raw(`SELECT revoke_reason, expires_at, last_used_at FROM lanyard.sessions WHERE id = ? AND secret_hash = ?`, id, secretHash).Scan(&row)
	if res.Error != nil {
		return identity.SessionState{}, s.fail(res.Error)
	}
	if res.RowsAffected == 0 {
		return identity.SessionState{}, identity.ErrNotFound
	}
	st := identity.SessionState{Exists: true, ExpiresAt: row.ExpiresAt.Time, LastUsedAt: row.LastUsedAt.Time}
	if row.RevokeReason != nil {
		st.RevokeReason = *row.RevokeReason
	}
	return st, nil
}

// RevokeSession implements identity.Sessions.
func (s *Store) RevokeSession(ctx context.Context, id string, secretHash []byte, reason string, at time.Time) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.fail(s.db.WithContext(ctx).Exec(
		`UPDATE lanyard.sessions SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND secret_hash = ? AND revoked_at IS NULL`,
		at, reason, id, secretHash).Error)
}
