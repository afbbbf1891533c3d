package store

import (
	"context"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/lanyard-id/lanyard/internal/identity"
)

// liveSession is the condition every "is this session usable" query shares.
const liveSession = `revoked_at IS NULL AND expires_at > @now AND last_used_at > @idle_cutoff`

// SessionActive reports whether a session of this user is live: Lanyard's own
// bearer endpoints refuse access tokens whose session has ended.
func (s *Store) SessionActive(ctx context.Context, sessionID, userID string, now, idleCutoff time.Time) (bool, error) {
	if !(validUUIDs(sessionID) && validUserID(userID)) {
		return false, nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var n int64
	err := s.db.WithContext(ctx).Raw(`SELECT count(*) FROM lanyard.sessions WHERE id = @id AND user_id = @user_id AND `+liveSession+
		` AND NOT EXISTS (SELECT 1 FROM lanyard.users WHERE users.id = @user_id AND users.disabled_at IS NOT NULL)`,
		map[string]any{"id": sessionID, "user_id": userID, "now": now, "idle_cutoff": idleCutoff}).Scan(&n).Error
	return n == 1, s.fail(err)
}

// ReplaceSessionSecret implements identity.Sessions. The UPDATE also locks
// the row on Postgres until the transaction ends.
func (s *Store) ReplaceSessionSecret(ctx context.Context, userID, sessionID string, secretHash []byte, at time.Time) (time.Time, error) {
	if !(validUUIDs(sessionID) && validUserID(userID)) {
		return time.Time{}, identity.ErrNotFound
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var rows []struct{ ExpiresAt dbTime }
	err := s.db.WithContext(ctx).Raw(`UPDATE lanyard.sessions SET secret_hash = @secret_hash, generation = 0, rotated_at = @at, rotated_by = NULL, last_used_at = @at
WHERE id = @id AND user_id = @user_id AND revoked_at IS NULL AND expires_at > @at RETURNING expires_at`,
		map[string]any{"secret_hash": secretHash, "at": at, "id": sessionID, "user_id": userID}).Scan(&rows).Error
	if err != nil {
		return time.Time{}, s.fail(err)
	}
	if len(rows) == 0 {
		return time.Time{}, identity.ErrNotFound
	}
	return rows[0].ExpiresAt.Time, nil
}

// ListSessions returns a user's live sessions, most recently used first.
func (s *Store) ListSessions(ctx context.Context, userID string, now, idleCutoff time.Time) ([]identity.SessionInfo, error) {
	if !validUserID(userID) {
		return nil, nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var rows []struct {
		ID         string
		CreatedAt  dbTime
		LastUsedAt dbTime
		UserAgent  *string
		IP         *string `gorm:"column:ip"`
	}
	err := s.db.WithContext(ctx).Raw(`SELECT id, created_at, last_used_at, user_agent, ip FROM lanyard.sessions WHERE user_id = @user_id AND `+liveSession+
		` ORDER BY last_used_at DESC, id`, map[string]any{"user_id": userID, "now": now, "idle_cutoff": idleCutoff}).Scan(&rows).Error
	if err != nil {
		return nil, s.fail(err)
	}
	out := make([]identity.SessionInfo, len(rows))
	for i, r := range rows {
		out[i] = identity.SessionInfo{ID: r.ID, CreatedAt: r.CreatedAt.Time, LastUsedAt: r.LastUsedAt.Time, UserAgent: r.UserAgent, IP: r.IP}
	}
	return out, nil
}

// EndSession ends one session of a user. ErrNotFound when the user has no
// session with that id (another user's session is "not found" too).
func (s *Store) EndSession(ctx context.Context, userID, sessionID, reason string, at time.Time) (bool, error) {
	if !(validUUIDs(sessionID) && validUserID(userID)) {
		return false, identity.ErrNotFound
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	db := s.db.WithContext(ctx)
	res := db.Exec(`UPDATE lanyard.sessions SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL`,
		at, reason, sessionID, userID)
	if res.Error != nil || res.RowsAffected == 1 {
		return res.Error == nil, s.fail(res.Error)
	}
	var n int64 // already ended is fine; someone else's or unknown is not found
	if err := db.Raw(`SELECT count(*) FROM lanyard.sessions WHERE id = ? AND user_id = ?`, sessionID, userID).Scan(&n).Error; err != nil {
		return false, s.fail(err)
	}
	if n == 0 {
		return false, identity.ErrNotFound
	}
	return false, nil
}

// EndOtherSessions implements identity.Sessions.
func (s *Store) EndOtherSessions(ctx context.Context, userID, keepSessionID, reason string, at time.Time) (int64, error) {
	return s.endSessions(ctx, userID, keepSessionID, reason, at)
}

// EndAllSessions implements identity.Sessions.
func (s *Store) EndAllSessions(ctx context.Context, userID, reason string, at time.Time) (int64, error) {
	return s.endSessions(ctx, userID, "", reason, at)
}

// endSessions ends every live session of the user but keepSessionID ("":
// none). The user's imported Better-Auth sessions end too, marked exchanged
// rather than deleted, so a later re-run of the import finds them spent and
// does not bring them back. It returns how many sessions it ended (the
// Better-Auth sessions it marked exchanged not counted).
func (s *Store) endSessions(ctx context.Context, userID, keepSessionID, reason string, at time.Time) (int64, error) {
	if !validUserID(userID) {
		return 0, nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	db := s.db.WithContext(ctx)
	keep, args := "", []any{at, reason, userID}
	if keepSessionID != "" {
		keep, args = " AND id <> ?", append(args, keepSessionID)
	}
	// Better-Auth sessions first: an exchange racing this holds its row
	// until it commits, and the sessions UPDATE after it then sees (and
	// ends) the session the exchange opened.
	if err := db.Exec(`UPDATE lanyard.better_auth_sessions SET exchanged_at = ? WHERE user_id = ? AND exchanged_at IS NULL`, at, userID).Error; err != nil {
		return 0, s.fail(err)
	}
	res := db.Exec(`UPDATE lanyard.sessions SET revoked_at = ?, revoke_reason = ? WHERE user_id = ?`+keep+` AND revoked_at IS NULL`, args...)
	if res.Error != nil {
		return 0, s.fail(res.Error)
	}
	return res.RowsAffected, nil
}

// PurgeSessions deletes up to batch sessions that can never be used again:
// past their absolute end, idle past the cutoff, or revoked before
// revokedBefore (revoked sessions are kept a while so a replayed token is
// still reported as reuse). On Postgres SKIP LOCKED lets replicas purge side
// by side without waiting on each other; deleting a row twice is harmless.
func (s *Store) PurgeSessions(ctx context.Context, now, idleCutoff, revokedBefore time.Time, batch int) (int64, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	lock := s.skipLocked()
	res := s.db.WithContext(ctx).Exec(`DELETE FROM lanyard.sessions WHERE id IN (SELECT id FROM lanyard.sessions
WHERE expires_at <= @now OR last_used_at <= @idle_cutoff OR revoked_at <= @revoked_before LIMIT @batch`+lock+`)`,
		map[string]any{"now": now, "idle_cutoff": idleCutoff, "revoked_before": revokedBefore, "batch": batch})
	return res.RowsAffected, s.fail(res.Error)
}

// validUserID: user ids are opaque strings of 1 to 64 characters (UUIDs for
// users Lanyard created, the original ids of imported ones). Anything else
// matches no row, so it is answered as not found without a query.
func validUserID(id string) bool {
	n := utf8.RuneCountInString(id)
	return n >= 1 && n <= 64 && utf8.ValidString(id)
}

func validUUIDs(ids ...string) bool {
	for _, id := range ids {
		if _, err := uuid.Parse(id); err != nil {
			return false
		}
	}
	return true
}
