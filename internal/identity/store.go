package identity

import (
	"context"
	"time"
)

// The store seam. Each interface is one kind of record; a use case that
// must change several atomically does so through Store.Atomically, so a new
// flow needs no bespoke store method. Implementations return the sentinels
// of errors.go (ErrNotFound, ErrEmailTaken, ErrStaleCredentials, and
// ErrUnavailable wrapped around any failure of the database itself), never
// driver errors as domain codes. Every method honours ctx and the store's
// own deadline (LANYARD_DB_TIMEOUT). Throttle counters (Throttles, in
// throttle.go), mail tokens and the outbox (mailstore.go) and the audit
// trail (AuditLog, audit.go) joined Tx this way.

// Users keeps accounts, their password hashes and onboarding profiles.
type Users interface {
	// CreateUser stores a new account; ErrEmailTaken when the email (in any
	// case) is taken.
	CreateUser(ctx context.Context, u User, passwordHash string) error
	// FindCredentials returns the user with the given (normalised) email and
	// its password hash.
	FindCredentials(ctx context.Context, email string) (User, string, error)
	UserByID(ctx context.Context, id string) (User, error)
	PasswordHashByID(ctx context.Context, userID string) (string, error)
	// SwapPasswordHash replaces oldHash with hash (compare-and-swap);
	// ErrStaleCredentials when the stored hash is no longer oldHash. Inside a
	// transaction it also locks the user row until the transaction ends.
	SwapPasswordHash(ctx context.Context, userID, hash, oldHash string, at time.Time) error
	// UpsertProfile stores both answers; completed_at is set the first time
	// and kept afterwards. ErrNotFound when the user does not exist.
	UpsertProfile(ctx context.Context, userID string, p Profile, at time.Time) (Profile, error)
	// MarkEmailVerified records that the user proved email at at (the first
	// time counts); ErrNotFound when email is no longer the user's address.
	MarkEmailVerified(ctx context.Context, userID, email string, at time.Time) error
	// ChangeEmail replaces oldEmail with newEmail, proved at at;
	// ErrNotFound when the address is no longer oldEmail, ErrEmailTaken
	// when another account has newEmail.
	ChangeEmail(ctx context.Context, userID, oldEmail, newEmail string, at time.Time) error
}

// Sessions keeps refresh sessions.
type Sessions interface {
	CreateSession(ctx context.Context, s NewSession) error
	// CreateSessionIfPassword stores s only while the user's password hash
	// is still checkedHash, in one statement that locks the user row on the
	// way; ErrStaleCredentials otherwise. A login racing a password change
	// either lands first (and the change then ends its session) or finds the
	// new hash and opens nothing. One statement, not a transaction of two:
	// logins are the hot path the throttle's statements were added to.
	// event (the login_succeeded audit event) is appended in that same
	// statement on PostgreSQL (in the same transaction on SQLite), only when
	// the session is stored; its UserID is s.UserID.
	CreateSessionIfPassword(ctx context.Context, s NewSession, checkedHash string, event AuditEvent) error
	// RotateSession is the refresh hot path and must be a single statement:
	// presented generation == live: advance it and record r.Client; ==
	// live-1, rotated after GraceStart, and by r.Client (when both the
	// request and the rotation name a client): leave it (the caller
	// re-derives the live token); older, the parent after grace, or the
	// parent from another client: revoke the session with reason "reuse" and
	// append r.Reuse (the refresh_reuse_detected audit event, with the
	// session's user and its session_id filled in) in the same statement on
	// PostgreSQL (the same transaction on SQLite); no other outcome writes an
	// event. Only live, unexpired, non-idle sessions with a matching secret
	// hash match; otherwise ErrNotFound.
	RotateSession(ctx context.Context, r RotateRequest) (Rotation, error)
	// SessionState explains, on the failure path only, why a rotation matched
	// nothing; ErrNotFound when no session has that id and secret hash.
	SessionState(ctx context.Context, id string, secretHash []byte) (SessionState, error)
	// RevokeSession ends a live session whose secret hash matches; ending an
	// ended or unknown session is not an error (logout is idempotent). When
	// it ends a session it appends event (its UserID the session's user) in
	// the same statement on PostgreSQL, the same transaction on SQLite;
	// otherwise it writes no event.
	RevokeSession(ctx context.Context, id string, secretHash []byte, reason string, at time.Time, event AuditEvent) error
	// SessionActive reports whether the user's session is live (not ended,
	// not expired, not idle).
	SessionActive(ctx context.Context, sessionID, userID string, now, idleCutoff time.Time) (bool, error)
	// ReplaceSessionSecret gives a live (not ended, not expired) session of
	// the user a new secret hash, restarts its generations at 0 and marks it
	// used at at, so every refresh token issued for it before stops
	// matching. It returns the session's absolute end, unchanged. Inside a
	// transaction it locks the row until the transaction ends; ErrNotFound
	// when there is no such session.
	ReplaceSessionSecret(ctx context.Context, userID, sessionID string, secretHash []byte, at time.Time) (time.Time, error)
	// ListSessions returns the user's live sessions, most recently used first.
	ListSessions(ctx context.Context, userID string, now, idleCutoff time.Time) ([]SessionInfo, error)
	// EndSession ends one of the user's sessions; ErrNotFound when the user
	// has none with that id. Ending an ended session is not an error.
	EndSession(ctx context.Context, userID, sessionID, reason string, at time.Time) (ended bool, err error)
	// EndOtherSessions ends every live session of the user but keepSessionID,
	// imported Better-Auth sessions included (they can no longer be
	// exchanged). It returns how many sessions it ended (not counting the
	// Better-Auth sessions).
	EndOtherSessions(ctx context.Context, userID, keepSessionID, reason string, at time.Time) (int64, error)
	// EndAllSessions ends every live session of the user, imported
	// Better-Auth sessions included, and returns how many sessions it ended.
	EndAllSessions(ctx context.Context, userID, reason string, at time.Time) (int64, error)
	// PurgeSessions deletes up to batch sessions that can never be used again:
	// past their absolute end (now), idle before idleCutoff, or revoked before
	// revokedBefore. Safe to run on every replica at once.
	PurgeSessions(ctx context.Context, now, idleCutoff, revokedBefore time.Time, batch int) (int64, error)
}

// Tx is what a use case may read and write inside one transaction.
type Tx interface {
	Users
	Sessions
	Throttles
	MailTokens
	Outbox
	BetterAuthSessions
	AuditLog
	UserAdmin
}

// Store is the persistence the use cases need: every Tx operation on its
// own, or several at once through Atomically.
type Store interface {
	Tx
	// Atomically runs fn in one transaction: every write fn makes through tx
	// commits together, or none does when fn returns an error (which
	// Atomically returns). The whole transaction shares one deadline.
	Atomically(ctx context.Context, fn func(tx Tx) error) error
}

// ClockSource reads the database's clock, the one clock every replica
// shares.
type ClockSource interface {
	DatabaseNow(ctx context.Context) (time.Time, error)
}
