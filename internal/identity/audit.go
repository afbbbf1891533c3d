package identity

import (
	"context"
	"sync"
	"time"
)

// The audit trail: an append-only record of security events (sign-ups,
// logins, password and email changes, ended sessions, key changes, admin
// actions). Each event is written in the same transaction as the change it
// records (or in the same statement), so a change that fails leaves no
// event behind. Events outlive their user: they keep only the user id.

// AuditEvent is one recorded security event.
type AuditEvent struct {
	ID        int64 // assigned by the store; increases with time
	At        time.Time
	Type      string // one of the Audit* constants
	UserID    string // "" when no account is known
	Actor     string // ActorUser, ActorAdmin or ActorSystem
	IP        string
	UserAgent string
	Details   map[string]string // never a secret, password, token, hash or email address
}

// Who caused an event.
const (
	ActorUser   = "user"
	ActorAdmin  = "admin"
	ActorSystem = "system"
)

// Event types.
const (
	AuditSignup          = "signup"
	AuditLoginSucceeded  = "login_succeeded"
	AuditLoginFailed     = "login_failed"
	AuditThrottled       = "throttled"
	AuditRefreshReuse    = "refresh_reuse_detected"
	AuditPasswordChanged = "password_changed"
	AuditPasswordReset   = "password_reset"
	AuditEmailVerified   = "email_verified"
	AuditEmailChanged    = "email_changed"
	AuditSessionEnded    = "session_ended"
	AuditUserDisabled    = "user_disabled"
	AuditUserEnabled     = "user_enabled"
	AuditUserDeleted     = "user_deleted"
	AuditUserViewed      = "user_viewed" // an admin read one user's record
	AuditKeyRotated      = "key_rotated"
	AuditKeyRevoked      = "key_revoked"
)

// AuditQuery selects events, newest first.
type AuditQuery struct {
	UserID string // "" = any
	Type   string // "" = any
	Before int64  // cursor: only events with ID < Before; 0 = from the newest
	Limit  int
}

// AuditLog keeps the append-only audit trail.
type AuditLog interface {
	AppendAudit(ctx context.Context, e AuditEvent) error
	ListAudit(ctx context.Context, q AuditQuery) ([]AuditEvent, error)
	// PurgeAudit deletes up to batch events older than before.
	PurgeAudit(ctx context.Context, before time.Time, batch int) (int64, error)
}

// auditOf is the event typ of userID caused by client (a user's request) at
// at, a reading of the session clock: the database's clock in production.
func auditOf(typ, userID string, client Client, at time.Time, details map[string]string) AuditEvent {
	return AuditEvent{
		At: at, Type: typ, UserID: userID, Actor: ActorUser,
		IP: printable(client.IP, 45), UserAgent: printable(client.UserAgent, 512), Details: details,
	}
}

// audit appends the event typ of userID caused by client, now, on its own:
// for events whose change was committed before (a failed password check,
// whose throttle charge came first).
func (s *Service) audit(ctx context.Context, typ, userID string, client Client, details map[string]string) error {
	if err := s.store.AppendAudit(ctx, auditOf(typ, userID, client, s.sessionTime(), details)); err != nil {
		return internal(err)
	}
	return nil
}

// auditRetentionBounds are LANYARD_AUDIT_RETENTION's limits.
const (
	DefaultAuditRetention = 90 * 24 * time.Hour
	MinAuditRetention     = 24 * time.Hour
	MaxAuditRetention     = 10 * 365 * 24 * time.Hour
)

// PurgeAudit deletes the events older than retention, in bounded batches,
// and reports how many went. Safe to run on every replica at once.
func (s *Service) PurgeAudit(ctx context.Context, retention time.Duration) (int64, error) {
	if retention <= 0 {
		retention = DefaultAuditRetention
	}
	before := s.sessionTime().Add(-retention)
	var total int64
	for {
		n, err := s.store.PurgeAudit(ctx, before, purgeBatch)
		total += n
		if err != nil || n < purgeBatch || ctx.Err() != nil {
			return total, err
		}
	}
}

// MyEventsLimit is how many events GET /v1/me/events returns.
const MyEventsLimit = 50

// MyEvents returns the caller's own last MyEventsLimit security events,
// newest first.
func (s *Service) MyEvents(ctx context.Context, claims AccessClaims) ([]AuditEvent, error) {
	events, err := s.store.ListAudit(ctx, AuditQuery{UserID: claims.Subject, Limit: MyEventsLimit})
	if err != nil {
		return nil, internal(err)
	}
	return events, nil
}

// maxThrottledBlocks bounds the memory throttledBlocks keeps.
const maxThrottledBlocks = 10000

// throttledBlocks remembers, per counter, the end of the last block whose
// refusal this replica recorded, so a block writes one throttled event per
// replica however many requests it refuses. A counter's block end does not
// move while it refuses (refused attempts leave it unchanged); a new block
// has a new end and is recorded again.
type throttledBlocks struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// first reports whether c's block ending at end is not recorded yet, and
// marks it recorded.
func (b *throttledBlocks) first(c ThrottleCounter, end time.Time) bool {
	key := c.Scope + "\x00" + string(c.Key)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen == nil || len(b.seen) >= maxThrottledBlocks {
		b.seen = make(map[string]time.Time)
	}
	if last, ok := b.seen[key]; ok && last.Equal(end) {
		return false
	}
	b.seen[key] = end
	return true
}
