package store

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/lanyard-id/lanyard/internal/identity"
)

// MarkEmailVerified implements identity.Users: the address is proved only
// while it is still the user's (case-insensitively).
func (s *Store) MarkEmailVerified(ctx context.Context, userID, email string, at time.Time) error {
	if !validUserID(userID) {
		return identity.ErrNotFound
	}
	return s.execOne(ctx, identity.ErrNotFound, `UPDATE lanyard.users SET email_verified_at = COALESCE(email_verified_at, ?), updated_at = ?
WHERE id = ? AND lower(email) = lower(?)`, at, at, userID, email)
}

// ChangeEmail implements identity.Users.
func (s *Store) ChangeEmail(ctx context.Context, userID, oldEmail, newEmail string, at time.Time) error {
	if !validUserID(userID) {
		return identity.ErrNotFound
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	res := s.db.WithContext(ctx).Exec(`UPDATE lanyard.users SET email = ?, email_verified_at = ?, updated_at = ?
WHERE id = ? AND lower(email) = lower(?)`, newEmail, at, at, userID, oldEmail)
	switch {
	case errors.Is(res.Error, gorm.ErrDuplicatedKey):
		return identity.ErrEmailTaken
	case res.Error != nil:
		return s.fail(res.Error)
	case res.RowsAffected == 0:
		return identity.ErrNotFound
	}
	return nil
}

// CreateMailToken implements identity.MailTokens. No []byte parameter may
// directly follow "(": GORM expands a slice there into a list (for IN (?)).
func (s *Store) CreateMailToken(ctx context.Context, t identity.MailToken) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.fail(s.db.WithContext(ctx).Exec(`INSERT INTO lanyard.mail_tokens (purpose, token_hash, user_id, email, state, created_at, expires_at)
VALUES (@purpose, @hash, @user_id, @email, @state, @created_at, @expires_at)`, map[string]any{
		"hash": t.Hash, "purpose": t.Purpose, "user_id": t.UserID, "email": t.Email, "state": t.State,
		"created_at": t.CreatedAt, "expires_at": t.ExpiresAt,
	}).Error)
}

type mailTokenRow struct {
	TokenHash []byte
	Purpose   string
	UserID    string
	Email     string
	State     []byte
	CreatedAt dbTime
	ExpiresAt dbTime
}

// UseMailToken implements identity.MailTokens in one statement, so two
// redemptions of one token racing each other cannot both succeed.
func (s *Store) UseMailToken(ctx context.Context, hash []byte, purpose string, now time.Time) (identity.MailToken, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var rows []mailTokenRow
	res := s.db.WithContext(ctx).Raw(`UPDATE lanyard.mail_tokens SET used_at = @now
WHERE token_hash = @hash AND purpose = @purpose AND used_at IS NULL AND expires_at > @now
RETURNING token_hash, purpose, user_id, email, state, created_at, expires_at`,
		map[string]any{"now": now, "hash": hash, "purpose": purpose}).Scan(&rows)
	if res.Error != nil {
		return identity.MailToken{}, s.fail(res.Error)
	}
	if len(rows) == 0 {
		return identity.MailToken{}, identity.ErrNotFound
	}
	r := rows[0]
	return identity.MailToken{Hash: r.TokenHash, Purpose: r.Purpose, UserID: r.UserID, Email: r.Email, State: r.State,
		CreatedAt: r.CreatedAt.Time, ExpiresAt: r.ExpiresAt.Time}, nil
}

// PurgeMailTokens implements identity.MailTokens.
func (s *Store) PurgeMailTokens(ctx context.Context, before time.Time, batch int) (int64, error) {
	return s.purge(ctx, `DELETE FROM lanyard.mail_tokens WHERE token_hash IN (SELECT token_hash FROM lanyard.mail_tokens
WHERE expires_at <= @before OR used_at <= @before LIMIT @batch`, before, batch)
}

// purge runs a batched DELETE … IN (SELECT … LIMIT @batch, closed here); on
// Postgres SKIP LOCKED lets replicas purge side by side.
func (s *Store) purge(ctx context.Context, deleteIn string, before time.Time, batch int) (int64, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	lock := s.skipLocked()
	res := s.db.WithContext(ctx).Exec(deleteIn+lock+`)`, map[string]any{"before": before, "batch": batch})
	return res.RowsAffected, s.fail(res.Error)
}

// EnqueueMail implements identity.Outbox.
func (s *Store) EnqueueMail(ctx context.Context, m identity.OutboxMail) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.fail(s.db.WithContext(ctx).Exec(`INSERT INTO lanyard.outbox (id, kind, recipient, payload, created_at, not_before)
VALUES (?, ?, ?, ?, ?, ?)`, m.ID, m.Kind, m.Recipient, m.Payload, m.CreatedAt, m.CreatedAt).Error)
}

type outboxRow struct {
	ID        string
	Kind      string
	Recipient string
	Payload   []byte
	CreatedAt dbTime
	Attempts  int
}

// ClaimMail implements identity.Outbox in one statement. On Postgres the
// candidate rows are locked with SKIP LOCKED, so two senders never wait on
// or take the same row; SQLite has one writer at a time.
func (s *Store) ClaimMail(ctx context.Context, claim string, now time.Time, lease time.Duration, batch int) ([]identity.OutboxMail, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	lock := s.skipLocked()
	var rows []outboxRow
	res := s.db.WithContext(ctx).Raw(`UPDATE lanyard.outbox SET claim = @claim, lease_until = @lease_until, attempts = attempts + 1
WHERE id IN (SELECT id FROM lanyard.outbox
  WHERE sent_at IS NULL AND failed_at IS NULL AND not_before <= @now AND (lease_until IS NULL OR lease_until <= @now)
  ORDER BY not_before LIMIT @batch`+lock+`)
RETURNING id, kind, recipient, payload, created_at, attempts`,
		map[string]any{"claim": claim, "lease_until": now.Add(lease), "now": now, "batch": batch}).Scan(&rows)
	if res.Error != nil {
		return nil, s.fail(res.Error)
	}
	out := make([]identity.OutboxMail, len(rows))
	for i, r := range rows {
		out[i] = identity.OutboxMail{ID: r.ID, Kind: r.Kind, Recipient: r.Recipient, Payload: r.Payload,
			CreatedAt: r.CreatedAt.Time, Attempts: r.Attempts, Claim: claim}
	}
	return out, nil
}

// MarkMailSent implements identity.Outbox.
func (s *Store) MarkMailSent(ctx context.Context, id, claim string, at time.Time) error {
	return s.settleMail(ctx, `UPDATE lanyard.outbox SET sent_at = ?, payload = NULL, claim = NULL, lease_until = NULL, last_error = NULL
WHERE id = ? AND claim = ? AND sent_at IS NULL AND failed_at IS NULL`, at, id, claim)
}

// RenewMailClaim implements identity.Outbox.
func (s *Store) RenewMailClaim(ctx context.Context, id, claim string, until time.Time) error {
	return s.settleMail(ctx, `UPDATE lanyard.outbox SET lease_until = ?
WHERE id = ? AND claim = ? AND sent_at IS NULL AND failed_at IS NULL`, until, id, claim)
}

// RetryMail implements identity.Outbox.
func (s *Store) RetryMail(ctx context.Context, id, claim string, notBefore time.Time, lastError string) error {
	return s.settleMail(ctx, `UPDATE lanyard.outbox SET not_before = ?, claim = NULL, lease_until = NULL, last_error = ?
WHERE id = ? AND claim = ? AND sent_at IS NULL AND failed_at IS NULL`, notBefore, truncate(lastError, 512), id, claim)
}

// FailMail implements identity.Outbox.
func (s *Store) FailMail(ctx context.Context, id, claim string, at time.Time, lastError string) error {
	return s.settleMail(ctx, `UPDATE lanyard.outbox SET failed_at = ?, payload = NULL, claim = NULL, lease_until = NULL, last_error = ?
WHERE id = ? AND claim = ? AND sent_at IS NULL AND failed_at IS NULL`, at, truncate(lastError, 512), id, claim)
}

func (s *Store) settleMail(ctx context.Context, update string, args ...any) error {
	return s.execOne(ctx, identity.ErrNotFound, update, args...)
}

// PurgeMail implements identity.Outbox.
func (s *Store) PurgeMail(ctx context.Context, before time.Time, batch int) (int64, error) {
	return s.purge(ctx, `DELETE FROM lanyard.outbox WHERE id IN (SELECT id FROM lanyard.outbox
WHERE sent_at <= @before OR failed_at <= @before LIMIT @batch`, before, batch)
}

// truncate cuts s to at most n runes (the column's CHECK counts characters).
func truncate(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// UserEmail is one account's stored address.
type UserEmail struct {
	ID    string
	Email string
}

// UserEmails pages through every account's address in id order, from after
// the id after ("" for the start), for checks over existing rows.
func (s *Store) UserEmails(ctx context.Context, after string, limit int) ([]UserEmail, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var rows []UserEmail
	q := `SELECT id, email FROM lanyard.users ORDER BY id LIMIT ?`
	args := []any{limit}
	if after != "" {
		q, args = `SELECT id, email FROM lanyard.users WHERE id > ? ORDER BY id LIMIT ?`, []any{after, limit}
	}
	return rows, s.fail(s.db.WithContext(ctx).Raw(q, args...).Scan(&rows).Error)
}
