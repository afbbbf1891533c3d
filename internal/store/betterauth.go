package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/lanyard-id/lanyard/internal/betterauth"
)

// errRollback ends a dry-run batch's transaction after all its work.
var errRollback = errors.New("dry run: roll back")

// importChunk bounds the rows of one multi-row statement: 500 users × 7
// columns stays far below both databases' limits on bound parameters
// (65535 for Postgres, 32766 for SQLite), whatever --batch is.
const importChunk = 500

// ImportBetterAuthBatch implements betterauth.Destination: the whole batch
// in one transaction, set-based (a few statements per chunk, not per user),
// rolled back at the end when dryRun.
//
// For each user: a Lanyard user with the same id is brought up to date
// with Better-Auth only while its row is still what the last import wrote
// (users.imported_fingerprint): a change made in Lanyard since (a new
// address, a verification, a profile answer) is never undone. An imported
// hash is replaced by a changed Better-Auth one only while it is still
// imported (an argon2id hash means the user has logged in to Lanyard). An
// address that belongs to another Lanyard user, compared as the unique
// index does (lower(email)), is a Conflict and nothing is written for that
// user.
func (s *Store) ImportBetterAuthBatch(ctx context.Context, users []betterauth.User, sessions []betterauth.Session, at time.Time, dryRun bool) ([]betterauth.Result, int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	at = at.UTC().Truncate(time.Microsecond)
	var results []betterauth.Result
	written := 0
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if results, written, err = s.in(tx).importBatch(ctx, users, sessions, at); err != nil {
			return err
		}
		if dryRun {
			return errRollback
		}
		return nil
	})
	if errors.Is(err, errRollback) {
		err = nil
	}
	if err != nil {
		return nil, 0, s.fail(err)
	}
	return results, written, nil
}

func (s *Store) importBatch(ctx context.Context, users []betterauth.User, sessions []betterauth.Session, at time.Time) ([]betterauth.Result, int, error) {
	ids := make([]string, len(users))
	emails := make([]string, len(users))
	for i, u := range users {
		ids[i], emails[i] = u.ID, u.Email
	}
	existing := make(map[string]userWithProfile, len(users))
	fingerprints := make(map[string][]byte, len(users))
	owners := make(map[string]string) // lower(email) -> id, for the batch's addresses
	for lo := 0; lo < len(users); lo += importChunk {
		hi := min(lo+importChunk, len(users))
		var rows []userWithProfile
		if err := s.db.Raw(selectUserWithProfile+"WHERE u.id IN ?", ids[lo:hi]).Scan(&rows).Error; err != nil {
			return nil, 0, err
		}
		for _, r := range rows {
			existing[r.ID] = r
		}
		var prints []struct {
			ID                  string
			ImportedFingerprint []byte
		}
		if err := s.db.Raw(`SELECT id, imported_fingerprint FROM lanyard.users WHERE id IN ?`, ids[lo:hi]).Scan(&prints).Error; err != nil {
			return nil, 0, err
		}
		for _, p := range prints {
			fingerprints[p.ID] = p.ImportedFingerprint
		}
		var taken []struct{ ID, Email string }
		if err := s.db.Raw(`SELECT id, lower(email) AS email FROM lanyard.users WHERE lower(email) IN ?`, emails[lo:hi]).Scan(&taken).Error; err != nil {
			return nil, 0, err
		}
		for _, t := range taken {
			owners[t.Email] = t.ID
		}
	}

	results := make([]betterauth.Result, len(users))
	var fresh []betterauth.User
	kept := make(map[string]bool, len(users)) // users whose row is Lanyard's after this batch
	for i, u := range users {
		results[i].ID = u.ID
		if owner, ok := owners[u.Email]; ok && owner != u.ID {
			results[i].Outcome, results[i].ConflictID = betterauth.Conflict, owner
			continue
		}
		old, ok := existing[u.ID]
		if !ok {
			fresh = append(fresh, u)
			results[i].Outcome = betterauth.Created
			continue
		}
		kept[u.ID] = true
		changed, err := s.updateImported(u, old, fingerprints[u.ID], at)
		if err != nil {
			return nil, 0, err
		}
		results[i].Outcome = betterauth.Unchanged
		if changed {
			results[i].Outcome = betterauth.Updated
		}
	}

	inserted, err := s.insertImported(fresh, at)
	if err != nil {
		return nil, 0, err
	}
	for i := range results {
		if results[i].Outcome != betterauth.Created {
			continue
		}
		if inserted[results[i].ID] {
			kept[results[i].ID] = true
			continue
		}
		// Not inserted although absent a moment ago: a Lanyard sign-up (or
		// another import) took the id or the address meanwhile.
		var owner []string
		if err := s.db.Raw(`SELECT id FROM lanyard.users WHERE id = ? OR lower(email) = ? ORDER BY id = ? DESC LIMIT 1`,
			results[i].ID, users[i].Email, results[i].ID).Scan(&owner).Error; err != nil {
			return nil, 0, err
		}
		results[i].Outcome, results[i].ConflictID = betterauth.Conflict, strings.Join(owner, "")
	}

	var live []betterauth.Session
	for _, ss := range sessions {
		if kept[ss.UserID] {
			live = append(live, ss)
		}
	}
	written, err := s.upsertImportedSessions(live)
	if err != nil {
		return nil, 0, err
	}
	return results, written, nil
}

// updateImported brings an existing user up to date with Better-Auth and
// reports whether anything was written. stored is the fingerprint of what
// the last import wrote (nil: none).
func (s *Store) updateImported(u betterauth.User, old userWithProfile, stored []byte, at time.Time) (bool, error) {
	// The hash is replaced only while it is still an imported one: the
	// CASE re-checks that in the UPDATE itself, so a login that rehashes to
	// argon2id meanwhile is never undone.
	hashChanged := strings.HasPrefix(old.PasswordHash, "$ba-scrypt$") && old.PasswordHash != u.PasswordHash
	incoming := importedFingerprint(u)
	untouched := stored != nil && bytes.Equal(stored, lanyardFingerprint(old))
	if !untouched || bytes.Equal(incoming, stored) {
		// Changed in Lanyard since the import (Lanyard's values stay), or
		// unchanged in Better-Auth: only a changed imported hash is news.
		if !hashChanged {
			return false, nil
		}
		return true, s.db.Exec(`UPDATE lanyard.users SET password_hash = CASE WHEN password_hash LIKE '$ba-scrypt$%' THEN ? ELSE password_hash END,
  updated_at = ? WHERE id = ?`, u.PasswordHash, at, u.ID).Error
	}
	// Better-Auth keeps no time of proof: the import vouches for it now, and
	// an earlier time of proof stays.
	verified := `email_verified_at = NULL, `
	args := []any{u.Email, u.Name, u.CreatedAt}
	if u.EmailVerified {
		verified = `email_verified_at = COALESCE(email_verified_at, ?), `
		args = append(args, at)
	}
	args = append(args, u.PasswordHash, incoming, at, u.ID)
	err := s.db.Exec(`UPDATE lanyard.users SET email = ?, name = ?, created_at = ?, `+verified+`
  password_hash = CASE WHEN password_hash LIKE '$ba-scrypt$%' THEN ? ELSE password_hash END,
  imported_fingerprint = ?, updated_at = ?
WHERE id = ?`, args...).Error
	if err != nil {
		return false, err
	}
	if u.Profile != nil {
		return true, s.upsertImportedProfiles([]betterauth.User{u}, at)
	}
	return true, s.db.Exec(`DELETE FROM lanyard.profiles WHERE user_id = ?`, u.ID).Error
}

// importedFingerprint is what an import writes for u, and lanyardFingerprint
// the same of a stored row: equal when the row still holds what the import
// wrote.
func importedFingerprint(u betterauth.User) []byte {
	var proficiency, role string
	if u.Profile != nil {
		proficiency, role = u.Profile.PythonProficiency, u.Profile.DeveloperRole
	}
	return fingerprint(u.Email, u.Name, u.CreatedAt, u.EmailVerified, proficiency, role)
}

func lanyardFingerprint(r userWithProfile) []byte {
	return fingerprint(r.Email, r.Name, r.CreatedAt.Time, r.EmailVerifiedAt.Valid, deref(r.PythonProficiency), deref(r.DeveloperRole))
}

func fingerprint(email string, name *string, created time.Time, verified bool, proficiency, role string) []byte {
	h := sha256.New()
	for _, part := range []string{email, nameOrNone(name), created.UTC().Format(time.RFC3339Nano), strconv.FormatBool(verified), proficiency, role} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}

// nameOrNone tells an absent name from an empty one in a fingerprint.
func nameOrNone(name *string) string {
	if name == nil {
		return "\x01"
	}
	return *name
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// insertImported inserts new users (and their profiles) and returns the
// ids actually inserted. ON CONFLICT DO NOTHING covers both the id and the
// address index, so a row that became a duplicate since the check above
// is left out rather than aborting the batch's transaction.
func (s *Store) insertImported(users []betterauth.User, at time.Time) (map[string]bool, error) {
	inserted := make(map[string]bool, len(users))
	var withProfile []betterauth.User
	for lo := 0; lo < len(users); lo += importChunk {
		chunk := users[lo:min(lo+importChunk, len(users))]
		var q strings.Builder
		q.WriteString(`INSERT INTO lanyard.users (id, email, name, password_hash, created_at, updated_at, email_verified_at, imported_fingerprint) VALUES `)
		args := make([]any, 0, 8*len(chunk))
		for i, u := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?)")
			var verifiedAt any
			if u.EmailVerified {
				// Better-Auth keeps no time of proof: the import vouches for it now.
				verifiedAt = at
			}
			args = append(args, u.ID, u.Email, u.Name, u.PasswordHash, u.CreatedAt, at, verifiedAt, importedFingerprint(u))
		}
		q.WriteString(` ON CONFLICT DO NOTHING RETURNING id`)
		var ids []string
		if err := s.db.Raw(q.String(), args...).Scan(&ids).Error; err != nil {
			return nil, err
		}
		for _, id := range ids {
			inserted[id] = true
		}
	}
	for _, u := range users {
		if inserted[u.ID] && u.Profile != nil {
			withProfile = append(withProfile, u)
		}
	}
	return inserted, s.upsertImportedProfiles(withProfile, at)
}

// upsertImportedProfiles writes the answers; a profile is complete when
// both are there, and an earlier completion time is kept, as UpsertProfile
// does.
func (s *Store) upsertImportedProfiles(users []betterauth.User, at time.Time) error {
	for lo := 0; lo < len(users); lo += importChunk {
		chunk := users[lo:min(lo+importChunk, len(users))]
		var q strings.Builder
		q.WriteString(`INSERT INTO lanyard.profiles (user_id, python_proficiency, developer_role, completed_at, updated_at) VALUES `)
		args := make([]any, 0, 5*len(chunk))
		for i, u := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?)")
			var completedAt any
			if u.Profile.Complete() {
				completedAt = at
			}
			args = append(args, u.ID, nullable(u.Profile.PythonProficiency), nullable(u.Profile.DeveloperRole), completedAt, at)
		}
		q.WriteString(` ON CONFLICT (user_id) DO UPDATE SET
  python_proficiency = excluded.python_proficiency,
  developer_role     = excluded.developer_role,
  completed_at       = CASE WHEN excluded.completed_at IS NULL THEN NULL ELSE COALESCE(profiles.completed_at, excluded.completed_at) END,
  updated_at         = excluded.updated_at`)
		if err := s.db.Exec(q.String(), args...).Error; err != nil {
			return err
		}
	}
	return nil
}

// upsertImportedSessions adds the sessions not there yet and refreshes the
// expiry of those Better-Auth has extended since (it slides a session on
// use), unless already exchanged. It returns how many rows it wrote, so a
// re-run with nothing new reports 0.
func (s *Store) upsertImportedSessions(sessions []betterauth.Session) (int, error) {
	written := 0
	for lo := 0; lo < len(sessions); lo += importChunk {
		chunk := sessions[lo:min(lo+importChunk, len(sessions))]
		var q strings.Builder
		// user_id comes first: GORM expands a slice bound right after "(",
		// and would spread the hash's bytes over 32 placeholders.
		q.WriteString(`INSERT INTO lanyard.better_auth_sessions (user_id, token_hash, expires_at) VALUES `)
		args := make([]any, 0, 3*len(chunk))
		for i, ss := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?)")
			args = append(args, ss.UserID, ss.TokenHash, ss.ExpiresAt)
		}
		q.WriteString(` ON CONFLICT (token_hash) DO UPDATE SET expires_at = excluded.expires_at
WHERE better_auth_sessions.exchanged_at IS NULL AND better_auth_sessions.user_id = excluded.user_id
  AND better_auth_sessions.expires_at <> excluded.expires_at`)
		res := s.db.Exec(q.String(), args...)
		if res.Error != nil {
			return 0, res.Error
		}
		written += int(res.RowsAffected)
	}
	return written, nil
}
