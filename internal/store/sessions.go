package store

import (
	"context"
	"database/sql"
	"errors"
	"maps"
	"strings"
	"time"

	"gorm.io/gorm"

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
// the checked hash, and with it the login's audit event. Postgres infers no
// types for parameters in a SELECT list, so they are cast; FOR UPDATE holds
// the user row until the insert commits, as a password change does. On
// Postgres the event is a second data-modifying CTE reading the inserted
// row: one statement, one round trip, and no event when no session was
// stored. SQLite has no INSERT in a CTE: there the two inserts share a
// transaction (and SQLite serialises writers anyway).
const (
	createSessionIfPasswordPostgres = `
WITH s AS (
INSERT INTO lanyard.sessions (id, user_id, secret_hash, created_at, rotated_at, last_used_at, expires_at, user_agent, ip)
SELECT $1::uuid, id, $2::bytea, $3::timestamptz, $3::timestamptz, $3::timestamptz, $4::timestamptz, $5::text, $6::text
FROM lanyard.users WHERE id = $7 AND password_hash = $8 AND disabled_at IS NULL FOR UPDATE
RETURNING user_id),
a AS (INSERT INTO lanyard.audit_events (` + auditColumns + `)
SELECT $9::timestamptz, $10::text, s.user_id, $11::text, $12::text, $13::text, $14::jsonb FROM s)
SELECT count(*) FROM s`
	createSessionIfPasswordSQLite = `
INSERT INTO lanyard.sessions (id, user_id, secret_hash, created_at, rotated_at, last_used_at, expires_at, user_agent, ip)
SELECT ?1, id, ?2, ?3, ?3, ?3, ?4, ?5, ?6
FROM lanyard.users WHERE id = ?7 AND password_hash = ?8 AND disabled_at IS NULL`
)

// CreateSessionIfPassword implements identity.Sessions.
func (s *Store) CreateSessionIfPassword(ctx context.Context, ns identity.NewSession, checkedHash string, event identity.AuditEvent) error {
	if !validUserID(ns.UserID) {
		return identity.ErrStaleCredentials
	}
	event.UserID = ns.UserID
	audit, err := auditArgs(event)
	if err != nil {
		return err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	r := newSessionRow(ns)
	args := []any{r.ID, r.SecretHash, r.CreatedAt, r.ExpiresAt, r.UserAgent, r.IP, ns.UserID, checkedHash}
	if s.dialect == Postgres {
		var n int64
		if err := s.db.Statement.ConnPool.QueryRowContext(ctx, createSessionIfPasswordPostgres, append(args, withoutUser(audit)...)...).Scan(&n); err != nil {
			return s.fail(s.translate(err))
		}
		if n == 0 {
			return identity.ErrStaleCredentials
		}
		return nil
	}
	return s.fail(s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		in := s.in(tx)
		res, err := in.db.Statement.ConnPool.ExecContext(ctx, createSessionIfPasswordSQLite, args...)
		if err != nil {
			return s.translate(err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return identity.ErrStaleCredentials
		}
		return in.AppendAudit(ctx, event)
	}))
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
//
// A second data-modifying CTE appends the refresh_reuse_detected audit
// event, only when this statement revoked the session for reuse (the
// returned revoke_reason is the new one; every matched row had none), so the
// event and the revocation commit together and the hot path stays one
// statement. $9 to $12 are the event's type, actor, IP and user agent, $13
// its details, to which the statement adds the session_id.
const rotateSessionPostgres = `
WITH s AS (UPDATE lanyard.sessions SET` + rotateSet + `
  AND ($8::timestamptz IS NULL OR clock_timestamp() < $8)
  RETURNING generation, revoke_reason, expires_at, user_id),
a AS (INSERT INTO lanyard.audit_events (` + auditColumns + `)
  SELECT $2, $9::text, s.user_id, $10::text, $11::text, $12::text, $13::jsonb || jsonb_build_object('session_id', $5::text) FROM s WHERE s.revoke_reason = 'reuse')
SELECT s.generation, s.revoke_reason, s.expires_at, s.user_id, u.email, u.name, u.created_at, u.email_verified_at,
       p.python_proficiency, p.developer_role, p.completed_at
FROM s JOIN lanyard.users u ON u.id = s.user_id LEFT JOIN lanyard.profiles p ON p.user_id = s.user_id`

// rotateSessionSQLite: SQLite has no UPDATE in a CTE and RETURNING cannot
// join, so scalar subqueries bring the user and profile back. Its numbered
// parameters are spelled ?N. It needs no deadline guard: the database runs
// in this process, and a cancelled statement is interrupted, not queued.
// The reuse event is a second statement in the same transaction.
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
	// The event's session_id is added only where the event is written (on
	// reuse), so a refresh copies no map for it.
	reuse := r.Reuse
	reuse.At, reuse.UserID = r.Now, ""
	if reuse.Type == "" {
		reuse.Type = identity.AuditRefreshReuse
	}
	if reuse.Actor == "" {
		reuse.Actor = identity.ActorUser
	}
	audit, err := auditArgs(reuse)
	if err != nil {
		return identity.Rotation{}, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	args := []any{r.Generation, r.Now, r.GraceStart, r.IdleCutoff, r.SessionID, r.SecretHash, nil, nil}
	if len(r.Client) > 0 {
		args[6] = r.Client
	}
	if !r.NotAfter.IsZero() {
		args[7] = r.NotAfter
	}
	var (
		row          userWithProfile
		generation   int64
		revokeReason *string
		expiresAt    dbTime
	)
	scan := func(conn interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}, query string, args []any) error {
		return conn.QueryRowContext(ctx, query, args...).Scan(
			&generation, &revokeReason, &expiresAt, &row.ID, &row.Email, &row.Name, &row.CreatedAt, &row.EmailVerifiedAt,
			&row.PythonProficiency, &row.DeveloperRole, &row.CompletedAt)
	}
	if s.dialect == Postgres {
		// $9…$13: the event's type, actor, ip, user agent and details.
		err = scan(s.db.Statement.ConnPool, rotateSessionPostgres, append(args, audit[1], audit[3], audit[4], audit[5], audit[6]))
	} else {
		// SQLite's clock is this machine's, and the statement runs now.
		if !r.NotAfter.IsZero() && !time.Now().Before(r.NotAfter) {
			return identity.Rotation{}, identity.ErrNotFound
		}
		err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			in := s.in(tx)
			if err := scan(in.db.Statement.ConnPool, rotateSessionSQLite, args[:7]); err != nil {
				return err
			}
			if revokeReason == nil {
				return nil
			}
			reuse.UserID = row.ID
			reuse.Details = maps.Clone(reuse.Details)
			if reuse.Details == nil {
				reuse.Details = map[string]string{}
			}
			reuse.Details["session_id"] = r.SessionID
			return in.AppendAudit(ctx, reuse)
		})
	}
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
		UserDisabled bool
	}
	res := s.db.WithContext(ctx).Raw(`SELECT s.revoke_reason, s.expires_at, s.last_used_at, u.disabled_at IS NOT NULL AS user_disabled
FROM lanyard.sessions s JOIN lanyard.users u ON u.id = s.user_id WHERE s.id = ? AND s.secret_hash = ?`, id, secretHash).Scan(&row)
	if res.Error != nil {
		return identity.SessionState{}, s.fail(res.Error)
	}
	if res.RowsAffected == 0 {
		return identity.SessionState{}, identity.ErrNotFound
	}
	st := identity.SessionState{Exists: true, ExpiresAt: row.ExpiresAt.Time, LastUsedAt: row.LastUsedAt.Time, UserDisabled: row.UserDisabled}
	if row.RevokeReason != nil {
		st.RevokeReason = *row.RevokeReason
	}
	return st, nil
}

// RevokeSession implements identity.Sessions. On Postgres the event is a
// data-modifying CTE over the revoked row: one statement, and no event when
// nothing was revoked. SQLite runs the two in one transaction.
func (s *Store) RevokeSession(ctx context.Context, id string, secretHash []byte, reason string, at time.Time, event identity.AuditEvent) error {
	audit, err := auditArgs(event)
	if err != nil {
		return err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if s.dialect == Postgres {
		_, err := s.db.Statement.ConnPool.ExecContext(ctx, `
WITH s AS (UPDATE lanyard.sessions SET revoked_at = $1, revoke_reason = $2
  WHERE id = $3 AND secret_hash = $4 AND revoked_at IS NULL RETURNING user_id)
INSERT INTO lanyard.audit_events (`+auditColumns+`)
SELECT $5::timestamptz, $6::text, s.user_id, $7::text, $8::text, $9::text, $10::jsonb FROM s`,
			append([]any{at, reason, id, secretHash}, withoutUser(audit)...)...)
		return s.fail(s.translate(err))
	}
	return s.fail(s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var users []string
		err := tx.Raw(`UPDATE lanyard.sessions SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND secret_hash = ? AND revoked_at IS NULL
RETURNING user_id`, at, reason, id, secretHash).Scan(&users).Error
		if err != nil || len(users) == 0 {
			return err
		}
		event.UserID = users[0]
		return s.in(tx).AppendAudit(ctx, event)
	}))
}
