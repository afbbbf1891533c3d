package store

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/lanyard-id/lanyard/internal/identity"
)

// userWithProfile is one row of users LEFT JOIN profiles.
type userWithProfile struct {
	ID                string
	Email             string
	Name              *string
	CreatedAt         dbTime
	PasswordHash      string
	PythonProficiency *string
	DeveloperRole     *string
	CompletedAt       nullTime
	EmailVerifiedAt   nullTime
	DisabledAt        nullTime
}

func (r userWithProfile) user() identity.User {
	u := identity.User{ID: r.ID, Email: r.Email, Name: r.Name, CreatedAt: r.CreatedAt.Time, EmailVerified: r.EmailVerifiedAt.Valid,
		DisabledAt: r.DisabledAt.ptr()}
	if r.PythonProficiency != nil || r.DeveloperRole != nil {
		u.Profile = &identity.Profile{CompletedAt: r.CompletedAt.ptr()}
		if r.PythonProficiency != nil {
			u.Profile.PythonProficiency = *r.PythonProficiency
		}
		if r.DeveloperRole != nil {
			u.Profile.DeveloperRole = *r.DeveloperRole
		}
	}
	return u
}

const selectUserWithProfile = `
SELECT u.id, u.email, u.name, u.created_at, u.password_hash, u.email_verified_at, u.disabled_at,
       p.python_proficiency, p.developer_role, p.completed_at
FROM lanyard.users u LEFT JOIN lanyard.profiles p ON p.user_id = u.id
`

// CreateUser implements identity.Users.
func (s *Store) CreateUser(ctx context.Context, u identity.User, passwordHash string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	err := s.db.WithContext(ctx).Create(&userRow{
		ID: u.ID, Email: u.Email, Name: u.Name, PasswordHash: passwordHash,
		CreatedAt: u.CreatedAt, UpdatedAt: u.CreatedAt,
	}).Error
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return identity.ErrEmailTaken
	}
	return s.fail(err)
}

// FindCredentials looks a user up by normalised email through the
// lower(email) unique index.
func (s *Store) FindCredentials(ctx context.Context, email string) (identity.User, string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var row userWithProfile
	res := s.db.WithContext(ctx).Raw(selectUserWithProfile+"WHERE lower(u.email) = ?", email).Scan(&row)
	if res.Error != nil {
		return identity.User{}, "", s.fail(res.Error)
	}
	if res.RowsAffected == 0 {
		return identity.User{}, "", identity.ErrNotFound
	}
	return row.user(), row.PasswordHash, nil
}

// UserByID returns a user with its profile.
func (s *Store) UserByID(ctx context.Context, id string) (identity.User, error) {
	if !validUserID(id) {
		return identity.User{}, identity.ErrNotFound // Postgres would reject a non-UUID with an error
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var row userWithProfile
	res := s.db.WithContext(ctx).Raw(selectUserWithProfile+"WHERE u.id = ?", id).Scan(&row)
	if res.Error != nil {
		return identity.User{}, s.fail(res.Error)
	}
	if res.RowsAffected == 0 {
		return identity.User{}, identity.ErrNotFound
	}
	return row.user(), nil
}

// PasswordHashByID returns a user's password hash.
func (s *Store) PasswordHashByID(ctx context.Context, userID string) (string, error) {
	if !validUserID(userID) {
		return "", identity.ErrNotFound
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var hash string
	res := s.db.WithContext(ctx).Raw(`SELECT password_hash FROM lanyard.users WHERE id = ?`, userID).Scan(&hash)
	if res.Error != nil {
		return "", s.fail(res.Error)
	}
	if res.RowsAffected == 0 {
		return "", identity.ErrNotFound
	}
	return hash, nil
}

// SwapPasswordHash writes hash only while the stored hash is still oldHash,
// so a concurrent change is never silently overwritten. On Postgres the
// UPDATE also locks the user row until the transaction ends.
func (s *Store) SwapPasswordHash(ctx context.Context, userID, hash, oldHash string, at time.Time) error {
	return s.updateUserWhileHash(ctx, userID, oldHash,
		`UPDATE lanyard.users SET password_hash = ?, updated_at = ? WHERE id = ? AND password_hash = ?`, hash, at, userID, oldHash)
}

// updateUserWhileHash runs an UPDATE of the user row that matches only while
// the stored hash is still hash; ErrStaleCredentials when it matched nothing.
func (s *Store) updateUserWhileHash(ctx context.Context, userID, hash, update string, args ...any) error {
	if !validUserID(userID) {
		return identity.ErrStaleCredentials
	}
	return s.execOne(ctx, identity.ErrStaleCredentials, update, args...)
}

// execOne runs a statement that must change at least one row, and returns
// none when it changed nothing.
func (s *Store) execOne(ctx context.Context, none error, statement string, args ...any) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	res := s.db.WithContext(ctx).Exec(statement, args...)
	if res.Error != nil {
		return s.fail(res.Error)
	}
	if res.RowsAffected == 0 {
		return none
	}
	return nil
}
