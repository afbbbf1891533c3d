package store

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/lanyard-id/lanyard/internal/identity"
)

// upsertProfile keeps the first completion time: changing an answer later
// is not completing onboarding again.
const upsertProfile = `
INSERT INTO lanyard.profiles (user_id, python_proficiency, developer_role, completed_at, updated_at)
VALUES (@user_id, @python, @role, @at, @at)
ON CONFLICT (user_id) DO UPDATE SET
  python_proficiency = excluded.python_proficiency,
  developer_role     = excluded.developer_role,
  completed_at       = COALESCE(profiles.completed_at, excluded.completed_at),
  updated_at         = excluded.updated_at
RETURNING python_proficiency, developer_role, completed_at`

// UpsertProfile implements identity.Users.
func (s *Store) UpsertProfile(ctx context.Context, userID string, p identity.Profile, at time.Time) (identity.Profile, error) {
	if !validUserID(userID) {
		return identity.Profile{}, identity.ErrNotFound
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var row struct {
		PythonProficiency string
		DeveloperRole     string
		CompletedAt       nullTime
	}
	err := s.db.WithContext(ctx).Raw(upsertProfile,
		map[string]any{"user_id": userID, "python": p.PythonProficiency, "role": p.DeveloperRole, "at": at},
	).Scan(&row).Error
	if errors.Is(s.translate(err), gorm.ErrForeignKeyViolated) {
		return identity.Profile{}, identity.ErrNotFound
	}
	if err != nil {
		return identity.Profile{}, s.fail(err)
	}
	return identity.Profile{PythonProficiency: row.PythonProficiency, DeveloperRole: row.DeveloperRole, CompletedAt: row.CompletedAt.ptr()}, nil
}
