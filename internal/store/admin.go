package store

import (
	"context"
	"strings"
	"time"

	"github.com/lanyard-id/lanyard/internal/identity"
)

// The operators' store operations (identity.UserAdmin).

// likePrefix escapes LIKE's wildcards (and the escape character) in p, so
// it matches only itself, and appends the one wildcard that makes it a
// prefix.
func likePrefix(p string) string {
	return likeEscaper.Replace(p) + "%"
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// SearchUsers implements identity.UserAdmin.
func (s *Store) SearchUsers(ctx context.Context, q identity.UserSearch) ([]identity.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var rows []userWithProfile
	err := s.db.WithContext(ctx).Raw(selectUserWithProfile+`WHERE lower(u.email) LIKE @prefix ESCAPE '\' AND lower(u.email) > @after
ORDER BY lower(u.email) LIMIT @limit`, map[string]any{"prefix": likePrefix(q.EmailPrefix), "after": q.After, "limit": q.Limit}).Scan(&rows).Error
	if err != nil {
		return nil, s.fail(err)
	}
	users := make([]identity.User, len(rows))
	for i, r := range rows {
		users[i] = r.user()
	}
	return users, nil
}

// UserActivity implements identity.UserAdmin in one statement.
func (s *Store) UserActivity(ctx context.Context, userID string, now, idleCutoff time.Time) (int, *time.Time, error) {
	if !validUserID(userID) {
		return 0, nil, nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var row struct {
		Live      int
		LastLogin nullTime
	}
	err := s.db.WithContext(ctx).Raw(`SELECT
  (SELECT count(*) FROM lanyard.sessions WHERE user_id = @user_id AND `+liveSession+`) AS live,
  (SELECT max(created_at) FROM lanyard.sessions WHERE user_id = @user_id) AS last_login`,
		map[string]any{"user_id": userID, "now": now, "idle_cutoff": idleCutoff}).Scan(&row).Error
	if err != nil {
		return 0, nil, s.fail(err)
	}
	return row.Live, row.LastLogin.ptr(), nil
}

// SetUserDisabled implements identity.UserAdmin. On Postgres the UPDATE
// locks the user row until the transaction ends: a login racing it waits
// and then finds the account disabled.
func (s *Store) SetUserDisabled(ctx context.Context, userID string, at *time.Time) error {
	if !validUserID(userID) {
		return identity.ErrNotFound
	}
	if at == nil {
		return s.execOne(ctx, identity.ErrNotFound, `UPDATE lanyard.users SET disabled_at = NULL WHERE id = ?`, userID)
	}
	return s.execOne(ctx, identity.ErrNotFound, `UPDATE lanyard.users SET disabled_at = COALESCE(disabled_at, ?) WHERE id = ?`, *at, userID)
}

// PendingEmailChanges implements identity.UserAdmin.
func (s *Store) PendingEmailChanges(ctx context.Context, userID string) ([]string, error) {
	if !validUserID(userID) {
		return nil, nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var emails []string
	err := s.db.WithContext(ctx).Raw(`SELECT DISTINCT lower(email) FROM lanyard.mail_tokens
WHERE user_id = ? AND purpose = ? AND used_at IS NULL ORDER BY 1`, userID, identity.PurposeChangeEmail).Scan(&emails).Error
	if err != nil {
		return nil, s.fail(err)
	}
	return emails, nil
}

// DeleteUser implements identity.UserAdmin. Profiles, sessions and mail
// tokens go with the user row (ON DELETE CASCADE). Better-Auth sessions are
// deleted explicitly before it, in the order a Better-Auth exchange locks
// them (its session row, then a key-share lock on the user row): left to
// the cascade, the delete would hold the user row while waiting for the
// exchange's session row, and the two would deadlock.
func (s *Store) DeleteUser(ctx context.Context, userID, email string, changeEmails []string, throttles []identity.ThrottleCounter) error {
	if !validUserID(userID) {
		return identity.ErrNotFound
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	db := s.db.WithContext(ctx)
	if err := db.Exec(`DELETE FROM lanyard.outbox WHERE lower(recipient) = lower(?)`, email).Error; err != nil {
		return s.fail(err)
	}
	if len(changeEmails) > 0 {
		lowered := make([]string, len(changeEmails))
		for i, e := range changeEmails {
			lowered[i] = strings.ToLower(e)
		}
		if err := db.Exec(`DELETE FROM lanyard.outbox WHERE kind = ? AND lower(recipient) IN ?`,
			identity.KindConfirmEmailChange, lowered).Error; err != nil {
			return s.fail(err)
		}
	}
	if len(throttles) > 0 {
		where, args := countersWhere(throttles)
		if err := s.execNumbered(ctx, `DELETE FROM lanyard.throttles WHERE `+where, args); err != nil {
			return err
		}
	}
	if err := db.Exec(`DELETE FROM lanyard.better_auth_sessions WHERE user_id = ?`, userID).Error; err != nil {
		return s.fail(err)
	}
	res := db.Exec(`DELETE FROM lanyard.users WHERE id = ?`, userID)
	if res.Error != nil {
		return s.fail(res.Error)
	}
	if res.RowsAffected == 0 {
		return identity.ErrNotFound
	}
	return nil
}
