package store

import (
	"context"
	"database/sql"
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

// CreateSession stores a new session.
func (s *Store) CreateSession(ctx context.Context, ns identity.NewSession) error {
	return s.db.WithContext(ctx).Create(newSessionRow(ns)).Error
}

// CreateLoginSession implements identity.Store. The no-op UPDATE both checks
// the hash and (on Postgres) locks the user row, so a password change either
// commits first (and this login fails) or waits and then ends this session.
func (s *Store) CreateLoginSession(ctx context.Context, ns identity.NewSession, checkedHash string) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE users SET password_hash = password_hash WHERE id = ? AND password_hash = ?`, ns.UserID, checkedHash)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return identity.ErrStaleCredentials
		}
		return tx.Create(newSessionRow(ns)).Error
	})
}

// rotateSession is the whole refresh hot path in one statement. Every SET
// expression reads the row as it was before the statement, so the cases are:
//   - presented generation is live: advance it and stamp rotated_at;
//   - presented is the immediate parent, rotated within grace: leave the
//     generation (the caller re-derives the live token: no fork);
//   - anything older, or the parent after grace: revoke the session (reuse).
//
// Under concurrency Postgres re-evaluates the row after a competing update
// commits, so twenty racing refreshes of one token yield one advance and
// nineteen grace answers, with no explicit lock, sleep or retry.
// revoked_at is NULL in every matched row; keeping it (rather than writing
// NULL) also gives Postgres the column's type for the @now parameter.
// The user and profile come back through scalar subqueries so that refresh
// re-reads profile completeness without a second round trip.
const rotateSession = `
UPDATE sessions SET
  generation    = CASE WHEN generation = @gen THEN generation + 1 ELSE generation END,
  rotated_at    = CASE WHEN generation = @gen THEN @now ELSE rotated_at END,
  last_used_at  = CASE WHEN generation = @gen OR (generation = @gen + 1 AND rotated_at > @grace_start) THEN @now ELSE last_used_at END,
  revoked_at    = CASE WHEN generation = @gen OR (generation = @gen + 1 AND rotated_at > @grace_start) THEN revoked_at ELSE @now END,
  revoke_reason = CASE WHEN generation = @gen OR (generation = @gen + 1 AND rotated_at > @grace_start) THEN revoke_reason ELSE 'reuse' END
WHERE id = @id AND secret_hash = @secret_hash AND revoked_at IS NULL
  AND generation >= @gen AND expires_at > @now AND last_used_at > @idle_cutoff
RETURNING generation, revoke_reason, expires_at, user_id,
  (SELECT email FROM users WHERE users.id = sessions.user_id) AS email,
  (SELECT name FROM users WHERE users.id = sessions.user_id) AS name,
  (SELECT created_at FROM users WHERE users.id = sessions.user_id) AS user_created_at,
  (SELECT python_proficiency FROM profiles WHERE profiles.user_id = sessions.user_id) AS python_proficiency,
  (SELECT developer_role FROM profiles WHERE profiles.user_id = sessions.user_id) AS developer_role,
  (SELECT completed_at FROM profiles WHERE profiles.user_id = sessions.user_id) AS completed_at`

type rotationRow struct {
	Generation        int64
	RevokeReason      *string
	ExpiresAt         dbTime
	UserID            string
	Email             string
	Name              *string
	UserCreatedAt     dbTime
	PythonProficiency *string
	DeveloperRole     *string
	CompletedAt       nullTime
}

// RotateSession implements identity.Store.
func (s *Store) RotateSession(ctx context.Context, r identity.RotateRequest) (identity.Rotation, error) {
	var row rotationRow
	res := s.db.WithContext(ctx).Raw(rotateSession,
		sql.Named("gen", r.Generation),
		sql.Named("now", r.Now),
		sql.Named("grace_start", r.GraceStart),
		sql.Named("idle_cutoff", r.IdleCutoff),
		sql.Named("id", r.SessionID),
		sql.Named("secret_hash", r.SecretHash),
	).Scan(&row)
	if res.Error != nil {
		return identity.Rotation{}, res.Error
	}
	if res.RowsAffected == 0 {
		return identity.Rotation{}, identity.ErrNotFound
	}
	user := userWithProfile{
		ID: row.UserID, Email: row.Email, Name: row.Name, CreatedAt: row.UserCreatedAt,
		PythonProficiency: row.PythonProficiency, DeveloperRole: row.DeveloperRole, CompletedAt: row.CompletedAt,
	}.user()
	return identity.Rotation{
		Generation: row.Generation,
		Reused:     row.RevokeReason != nil,
		ExpiresAt:  row.ExpiresAt.Time,
		User:       user,
	}, nil
}

// SessionState implements identity.Store (the refresh failure path).
func (s *Store) SessionState(ctx context.Context, id string, secretHash []byte) (identity.SessionState, error) {
	var row struct {
		RevokeReason *string
		ExpiresAt    dbTime
		LastUsedAt   dbTime
	}
	res := s.db.WithContext(ctx).Raw(`SELECT revoke_reason, expires_at, last_used_at FROM sessions WHERE id = ? AND secret_hash = ?`, id, secretHash).Scan(&row)
	if res.Error != nil {
		return identity.SessionState{}, res.Error
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

// RevokeSession implements identity.Store.
func (s *Store) RevokeSession(ctx context.Context, id string, secretHash []byte, reason string, at time.Time) error {
	return s.db.WithContext(ctx).Exec(
		`UPDATE sessions SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND secret_hash = ? AND revoked_at IS NULL`,
		at, reason, id, secretHash).Error
}
