package store

import (
	"context"
	"time"

	"github.com/lanyard-id/lanyard/internal/identity"
)

// ExchangeBetterAuthSession implements identity.BetterAuthSessions in one
// statement, so two exchanges of one session racing each other cannot both
// succeed.
func (s *Store) ExchangeBetterAuthSession(ctx context.Context, tokenHash []byte, now time.Time) (string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var ids []string
	err := s.db.WithContext(ctx).Raw(`UPDATE lanyard.better_auth_sessions SET exchanged_at = @now
WHERE token_hash = @hash AND exchanged_at IS NULL AND expires_at > @now RETURNING user_id`,
		map[string]any{"now": now, "hash": tokenHash}).Scan(&ids).Error
	if err != nil {
		return "", s.fail(err)
	}
	if len(ids) == 0 {
		return "", identity.ErrNotFound
	}
	return ids[0], nil
}

// HasBetterAuthHashes reports whether any user still has an imported
// Better-Auth password hash (not yet replaced by a login).
func (s *Store) HasBetterAuthHashes(ctx context.Context) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var found bool
	err := s.db.WithContext(ctx).Raw(`SELECT EXISTS (SELECT 1 FROM lanyard.users WHERE password_hash LIKE '$ba-scrypt$%')`).Scan(&found).Error
	return found, s.fail(err)
}
