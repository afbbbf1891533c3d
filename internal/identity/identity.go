// Package identity is Lanyard's domain: users, onboarding profiles and refresh
// sessions, and the use cases that act on them (sign up, log in, refresh, log
// out, read the signed-in user). It knows no HTTP and no SQL: storage, password
// hashing and token signing sit behind the small interfaces declared here.
package identity

import (
	"context"
	"time"
)

// User is an account. Email is stored lower-cased; Name is nil when not given.
type User struct {
	ID        string
	Email     string
	Name      *string
	CreatedAt time.Time
	Profile   *Profile // nil until onboarding starts
}

// ProfileComplete reports whether onboarding is done: both answers given.
func (u User) ProfileComplete() bool { return u.Profile != nil && u.Profile.Complete() }

// Profile is the onboarding questionnaire.
type Profile struct {
	PythonProficiency string
	DeveloperRole     string
	CompletedAt       *time.Time
}

// Complete reports whether both answers are present.
func (p Profile) Complete() bool { return p.PythonProficiency != "" && p.DeveloperRole != "" }

// NewSession is a refresh session about to be stored.
type NewSession struct {
	ID         string
	UserID     string
	SecretHash []byte // SHA-256 of the session secret; the secret itself is never stored
	CreatedAt  time.Time
	ExpiresAt  time.Time // absolute end, never extended by rotation
	UserAgent  string
	IP         string
}

// RotateRequest asks the store to rotate the refresh token of generation
// Generation in one statement; see Store.RotateSession.
type RotateRequest struct {
	SessionID  string
	SecretHash []byte
	Generation int64
	Now        time.Time
	GraceStart time.Time // a parent rotated after this is still honoured
	IdleCutoff time.Time // a session last used before this has gone idle
}

// Rotation is what a rotation statement found and did.
type Rotation struct {
	Generation int64 // the live generation after the statement
	Reused     bool  // the presented token was stale: the session is now revoked
	ExpiresAt  time.Time
	User       User
}

// SessionInfo is a session as its user sees it.
type SessionInfo struct {
	ID         string
	CreatedAt  time.Time
	LastUsedAt time.Time
	UserAgent  *string
	IP         *string
	Current    bool
}

// SessionState explains, on the failure path only, why a rotation matched nothing.
type SessionState struct {
	Exists       bool
	RevokeReason string // "" when not revoked
	ExpiresAt    time.Time
	LastUsedAt   time.Time
}

// Store is the persistence the use cases need. Implementations return
// ErrNotFound and ErrEmailTaken as sentinels and never leak driver errors as
// domain codes.
type Store interface {
	// CreateUser stores a user and its first session atomically.
	CreateUser(ctx context.Context, u User, passwordHash string, first NewSession) error
	// FindCredentials returns the user with the given (normalised) email and its password hash.
	FindCredentials(ctx context.Context, email string) (User, string, error)
	// CreateLoginSession stores a session only while the user's password
	// hash is still checkedHash, atomically with that check: a login that
	// raced a password change must not outlive it. ErrStaleCredentials
	// otherwise.
	CreateLoginSession(ctx context.Context, s NewSession, checkedHash string) error
	// RotateSession is the refresh hot path and must be a single statement:
	// presented generation == live: advance it; == live-1 and rotated after
	// GraceStart: leave it (the caller re-derives the live token); older, or
	// the parent after grace: revoke the session with reason "reuse". Only
	// live, unexpired, non-idle sessions with a matching secret hash match;
	// otherwise ErrNotFound.
	RotateSession(ctx context.Context, r RotateRequest) (Rotation, error)
	SessionState(ctx context.Context, id string, secretHash []byte) (SessionState, error)
	// RevokeSession ends a live session whose secret hash matches; ending an
	// ended or unknown session is not an error (logout is idempotent).
	RevokeSession(ctx context.Context, id string, secretHash []byte, reason string, at time.Time) error
	UserByID(ctx context.Context, id string) (User, error)
	// UpsertProfile stores both answers; completed_at is set the first time
	// and kept afterwards. ErrNotFound when the user does not exist.
	UpsertProfile(ctx context.Context, userID string, p Profile, at time.Time) (Profile, error)
	// SetPasswordHash replaces oldHash with hash; ErrStaleCredentials when the
	// stored hash is no longer oldHash (a change won the race).
	SetPasswordHash(ctx context.Context, userID, hash, oldHash string, at time.Time) error
	PasswordHashByID(ctx context.Context, userID string) (string, error)
	// ChangePassword replaces oldHash with hash and ends every other session
	// of the user, atomically; ErrNotFound when keepSessionID is no longer
	// live, ErrStaleCredentials when the stored hash is no longer oldHash.
	ChangePassword(ctx context.Context, userID, hash, oldHash, keepSessionID string, at time.Time) error

	// SessionActive reports whether the user's session is live (not ended,
	// not expired, not idle).
	SessionActive(ctx context.Context, sessionID, userID string, now, idleCutoff time.Time) (bool, error)
	ListSessions(ctx context.Context, userID string, now, idleCutoff time.Time) ([]SessionInfo, error)
	// EndSession ends one of the user's sessions; ErrNotFound when the user
	// has none with that id. Ending an ended session is not an error.
	EndSession(ctx context.Context, userID, sessionID, reason string, at time.Time) error
	EndOtherSessions(ctx context.Context, userID, keepSessionID, reason string, at time.Time) error
	// PurgeSessions deletes up to batch sessions that can never be used again.
	PurgeSessions(ctx context.Context, now, idleCutoff, revokedBefore time.Time, batch int) (int64, error)
}

// Hasher hashes and checks passwords (argon2id in production).
type Hasher interface {
	Hash(ctx context.Context, password string) (string, error)
	Verify(ctx context.Context, password, phc string) (ok, needsRehash bool, err error)
	VerifyDummy(ctx context.Context, password string) error
}

// Signer signs and checks access tokens with the current key ring.
type Signer interface {
	Sign(payload []byte) (string, error)
	Verify(token string) ([]byte, error)
}

// The onboarding answers, as the contract enumerates them.
var (
	PythonProficiencies = []string{"none", "beginner", "intermediate", "advanced"}
	DeveloperRoles      = []string{"student", "hobbyist", "software_engineer", "data_scientist",
		"ml_engineer", "robotics_engineer", "researcher", "educator", "other"}
)
