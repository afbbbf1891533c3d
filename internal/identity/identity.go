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
	// EmailVerified: the user proved the address (a link mailed to it).
	EmailVerified bool
	// DisabledAt is when an operator disabled the account (admin.go); nil
	// while it is enabled.
	DisabledAt *time.Time
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
	// Client is the presenting client's fingerprint (see clientFingerprint),
	// stored when the token advances; inside the grace window the parent is
	// honoured only for the client that advanced it. Nil when the grace
	// window is not bound to a client (LANYARD_REFRESH_GRACE_BINDING=none).
	Client []byte
	// NotAfter, when set, is the request's deadline on the database's clock:
	// a rotation that would take effect later (a statement the database
	// reads only after the request has answered 503) changes nothing.
	NotAfter time.Time
	// Reuse is the audit event appended when this rotation revokes the
	// session for reuse (Type, Actor, IP, UserAgent and Details as given;
	// the store sets At to Now and fills in UserID and
	// Details["session_id"]). A rotation that does not revoke writes none.
	Reuse AuditEvent
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
	// UserDisabled: the session's user is disabled now (admin.go).
	UserDisabled bool
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
