package identity

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Operators' use cases (issue 13): finding, reading, disabling, enabling and
// deleting accounts, ending their sessions, and reading the audit trail.
// The admin API (on the admin listener) and the `lanyard users` / `lanyard
// audit` commands both call these, so each thing is done one way. Every
// change writes its audit event (actor admin) in the transaction of the
// change.

// UserAdmin is what the operators' use cases need of the store beyond the
// other record kinds.
type UserAdmin interface {
	// SearchUsers returns up to q.Limit users whose lower-cased email starts
	// with q.EmailPrefix (taken literally: LIKE wildcards in it are
	// escaped), ordered by lower-cased email, after q.After ("" for the
	// start). Profiles and DisabledAt are filled in.
	SearchUsers(ctx context.Context, q UserSearch) ([]User, error)
	// UserActivity counts the user's live sessions and returns the newest
	// created_at of its stored sessions (nil when none is stored).
	UserActivity(ctx context.Context, userID string, now, idleCutoff time.Time) (live int, lastLogin *time.Time, err error)
	// SetUserDisabled disables the user at at (a user already disabled
	// keeps its first time), or enables it when at is nil; ErrNotFound when
	// there is no such user.
	SetUserDisabled(ctx context.Context, userID string, at *time.Time) error
	// PendingEmailChanges returns the (lower-cased) new addresses of the
	// user's unused email-change tokens: confirmations may still be queued
	// for them.
	PendingEmailChanges(ctx context.Context, userID string) ([]string, error)
	// DeleteUser removes the user and everything tied to it, in the caller's
	// transaction: profile, sessions and mail tokens (by foreign key),
	// imported Better-Auth sessions (explicitly, before the user row), outbox
	// mails to email, email-change confirmations (KindConfirmEmailChange) to
	// changeEmails, and the throttle counters named (a counter whose Key is
	// AccountKeyPrefix long names every counter of its scope whose key
	// starts with it). ErrNotFound when there is no such user.
	DeleteUser(ctx context.Context, userID, email string, changeEmails []string, throttles []ThrottleCounter) error
}

// UserSearch selects users for an operator.
type UserSearch struct {
	EmailPrefix string // normalised (lower-case); "" matches everyone
	After       string // the lower-cased email of the previous page's last user
	Limit       int
}

// AdminUser is one account as an operator sees it.
type AdminUser struct {
	User
	// LiveSessions counts the sessions that can still be refreshed.
	LiveSessions int
	// LastLoginAt is when the newest session still stored was opened (by a
	// sign-up, login or Better-Auth exchange; refreshes do not count). Nil
	// when none is stored: ended and expired sessions are deleted a day
	// after they end.
	LastLoginAt *time.Time
}

// UserPage is one page of a user search.
type UserPage struct {
	Users      []User
	NextCursor string // "" on the last page
}

// AuditPage is one page of the audit trail, newest first.
type AuditPage struct {
	Events     []AuditEvent
	NextCursor string // "" on the last page
}

// Admin says who acts and how: the admin API (Via "api", with the caller's
// address and user agent) or the command line (Via "cli", user agent
// "lanyard-cli"). The actor is always ActorAdmin.
type Admin struct {
	Via       string
	IP        string
	UserAgent string
}

// Limits of a page, for the API and the commands alike.
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 200
)

// auditTypes are the event types a query may name.
var auditTypes = map[string]bool{
	AuditSignup: true, AuditLoginSucceeded: true, AuditLoginFailed: true, AuditThrottled: true,
	AuditRefreshReuse: true, AuditPasswordChanged: true, AuditPasswordReset: true, AuditEmailVerified: true,
	AuditEmailChanged: true, AuditSessionEnded: true, AuditUserDisabled: true, AuditUserEnabled: true,
	AuditUserDeleted: true, AuditUserViewed: true, AuditKeyRotated: true, AuditKeyRevoked: true,
}

func accountDisabled() *Error {
	return &Error{Code: CodeAccountDisabled, Message: "this account has been disabled"}
}

func noSuchUser() *Error { return &Error{Code: CodeNotFound, Message: "no such user"} }

func invalidCursor() *Error {
	return &Error{Code: CodeInvalidCursor, Message: "the cursor is not one this server issued; start again without it"}
}

// adminUserID reports whether id can be a user id at all: 1 to 64
// characters of valid UTF-8 without control characters. Anything else is
// answered like an unknown id, without a query.
func adminUserID(id string) bool {
	n := utf8.RuneCountInString(id)
	return n >= 1 && n <= 64 && utf8.ValidString(id) && !strings.ContainsFunc(id, invisible)
}

func pageLimit(limit int) (int, error) {
	switch {
	case limit == 0:
		return DefaultPageLimit, nil
	case limit < 1 || limit > MaxPageLimit:
		return 0, &Error{Code: CodeValidation, Message: "the request has invalid fields",
			Fields: []FieldError{{Field: "limit", Message: "must be between 1 and " + strconv.Itoa(MaxPageLimit)}}}
	}
	return limit, nil
}

// Cursors are opaque to clients: a version letter and the position,
// base64url-encoded.
const (
	userCursorPrefix  = "u1:"
	auditCursorPrefix = "a1:"
)

func encodeCursor(prefix, position string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(prefix + position))
}

func decodeCursor(prefix, cursor string) (string, bool) {
	if cursor == "" {
		return "", true
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || !strings.HasPrefix(string(b), prefix) || !utf8.Valid(b) {
		return "", false
	}
	position := string(b[len(prefix):])
	// Positions this server issues are ids and addresses: never a control
	// character (PostgreSQL refuses a NUL in text outright).
	return position, position != "" && !strings.ContainsFunc(position, invisible)
}

// AdminListUsers finds users by normalised email prefix, a page at a time.
func (s *Service) AdminListUsers(ctx context.Context, emailPrefix, cursor string, limit int) (UserPage, error) {
	limit, err := pageLimit(limit)
	if err != nil {
		return UserPage{}, err
	}
	after, ok := decodeCursor(userCursorPrefix, cursor)
	if !ok {
		return UserPage{}, invalidCursor()
	}
	prefix := strings.ToLower(strings.TrimSpace(emailPrefix))
	if strings.ContainsFunc(prefix, invisible) || !utf8.ValidString(prefix) {
		return UserPage{}, &Error{Code: CodeValidation, Message: "the email prefix has a control or invisible character",
			Fields: []FieldError{{Field: "email_prefix", Message: "no control or invisible characters"}}}
	}
	users, err := s.store.SearchUsers(ctx, UserSearch{EmailPrefix: prefix, After: after, Limit: limit + 1})
	if err != nil {
		return UserPage{}, internal(err)
	}
	page := UserPage{Users: users}
	if len(users) > limit {
		page.Users = users[:limit]
		page.NextCursor = encodeCursor(userCursorPrefix, strings.ToLower(users[limit-1].Email))
	}
	return page, nil
}

// AdminGetUser reads one user with its activity, and records that an
// operator looked (AuditUserViewed) in the same transaction.
func (s *Service) AdminGetUser(ctx context.Context, by Admin, userID string) (AdminUser, error) {
	if !adminUserID(userID) {
		return AdminUser{}, noSuchUser()
	}
	now := s.sessionTime()
	var out AdminUser
	err := s.store.Atomically(ctx, func(tx Tx) error {
		user, err := tx.UserByID(ctx, userID)
		if err != nil {
			return err
		}
		live, last, err := tx.UserActivity(ctx, userID, now, now.Add(-s.cfg.RefreshIdleTTL))
		if err != nil {
			return err
		}
		out = AdminUser{User: user, LiveSessions: live, LastLoginAt: last}
		return tx.AppendAudit(ctx, by.event(AuditUserViewed, userID, now, nil))
	})
	if err != nil {
		return AdminUser{}, adminError(err)
	}
	return out, nil
}

// AdminDisableUser disables the user and ends every session of it at once
// (reason "disabled"), imported Better-Auth sessions included. Disabling a
// disabled user changes nothing but is recorded again.
func (s *Service) AdminDisableUser(ctx context.Context, by Admin, userID string) error {
	return s.adminChange(ctx, by, userID, AuditUserDisabled, func(tx Tx, now time.Time) error {
		if err := tx.SetUserDisabled(ctx, userID, &now); err != nil {
			return err
		}
		_, err := tx.EndAllSessions(ctx, userID, "disabled", now)
		return err
	})
}

// AdminEnableUser lets a disabled user log in again; the sessions that
// disabling ended stay ended.
func (s *Service) AdminEnableUser(ctx context.Context, by Admin, userID string) error {
	return s.adminChange(ctx, by, userID, AuditUserEnabled, func(tx Tx, _ time.Time) error {
		return tx.SetUserDisabled(ctx, userID, nil)
	})
}

// AdminEndSessions ends every session of the user (reason "admin"). The
// session_ended event (with the count) is written only when a session
// ended: a call that ends nothing changes nothing and records nothing.
func (s *Service) AdminEndSessions(ctx context.Context, by Admin, userID string) error {
	if !adminUserID(userID) {
		return noSuchUser()
	}
	now := s.sessionTime()
	err := s.store.Atomically(ctx, func(tx Tx) error {
		if _, err := tx.UserByID(ctx, userID); err != nil {
			return err
		}
		n, err := tx.EndAllSessions(ctx, userID, "admin", now)
		if err != nil || n == 0 {
			return err
		}
		return tx.AppendAudit(ctx, by.event(AuditSessionEnded, userID, now,
			map[string]string{"reason": "admin", "count": strconv.FormatInt(n, 10)}))
	})
	return adminError(err)
}

// AdminDeleteUser removes the user and everything tied to it (UserAdmin's
// DeleteUser, with the throttle counters keyed by its id or address) in one
// transaction. A pending email change goes too: its confirmation mail to the
// new address and that address's mail_to counter. Audit events keep the
// user id.
func (s *Service) AdminDeleteUser(ctx context.Context, by Admin, userID string) error {
	return s.adminChange(ctx, by, userID, AuditUserDeleted, func(tx Tx, _ time.Time) error {
		user, err := tx.UserByID(ctx, userID)
		if err != nil {
			return err
		}
		// Read before the user row (and its mail tokens with it) goes.
		changes, err := tx.PendingEmailChanges(ctx, userID)
		if err != nil {
			return err
		}
		counters := s.accountCounters(user)
		for _, e := range changes {
			counters = append(counters, s.counterOf(ScopeMailTo, strings.ToLower(e)))
		}
		return tx.DeleteUser(ctx, userID, user.Email, changes, counters)
	})
}

// accountCounters are the throttle counters of the user's id or address
// (throttle.go, mail.go): those keyed by it alone, and (by their key's
// prefix) those keyed by it together with a client address.
func (s *Service) accountCounters(u User) []ThrottleCounter {
	email := strings.ToLower(u.Email)
	return []ThrottleCounter{
		s.counterOf(ScopeLoginAccount, accountOf(u.ID, "")),
		s.counterOf(ScopeLoginAccount, accountOf("", email)),
		s.accountClientCounters(ScopeLoginAccountIP, accountOf(u.ID, "")),
		s.accountClientCounters(ScopeLoginAccountIP, accountOf("", email)),
		s.counterOf(ScopeForgotEmail, email),
		s.counterOf(ScopeMailResend, u.ID),
		s.counterOf(ScopeMailResend, emailChangeResend, u.ID),
		s.counterOf(ScopeMailTo, email),
	}
}

// adminChange runs change and records its audit event in one transaction,
// both at one reading of the session clock.
func (s *Service) adminChange(ctx context.Context, by Admin, userID, eventType string, change func(tx Tx, now time.Time) error) error {
	if !adminUserID(userID) {
		return noSuchUser()
	}
	now := s.sessionTime()
	err := s.store.Atomically(ctx, func(tx Tx) error {
		if err := change(tx, now); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, by.event(eventType, userID, now, nil))
	})
	return adminError(err)
}

func (by Admin) event(eventType, userID string, at time.Time, details map[string]string) AuditEvent {
	d := map[string]string{"via": by.Via}
	for k, v := range details {
		d[k] = v
	}
	e := auditOf(eventType, userID, Client{IP: by.IP, UserAgent: by.UserAgent}, at, d)
	e.Actor = ActorAdmin
	return e
}

func adminError(err error) error {
	var e *Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound):
		return noSuchUser()
	case errors.As(err, &e):
		return e
	}
	return internal(err)
}

// AdminAudit reads the audit trail, newest first, optionally of one user
// and one event type.
func (s *Service) AdminAudit(ctx context.Context, userID, eventType, cursor string, limit int) (AuditPage, error) {
	limit, err := pageLimit(limit)
	if err != nil {
		return AuditPage{}, err
	}
	if eventType != "" && !auditTypes[eventType] {
		return AuditPage{}, &Error{Code: CodeValidation, Message: "the request has invalid fields",
			Fields: []FieldError{{Field: "type", Message: "is not an audit event type"}}}
	}
	position, ok := decodeCursor(auditCursorPrefix, cursor)
	if !ok {
		return AuditPage{}, invalidCursor()
	}
	var before int64
	if position != "" {
		if before, err = strconv.ParseInt(position, 10, 64); err != nil || before <= 0 {
			return AuditPage{}, invalidCursor()
		}
	}
	if userID != "" && !adminUserID(userID) {
		return AuditPage{}, nil // no event can name it
	}
	events, err := s.store.ListAudit(ctx, AuditQuery{UserID: userID, Type: eventType, Before: before, Limit: limit + 1})
	if err != nil {
		return AuditPage{}, internal(err)
	}
	page := AuditPage{Events: events}
	if len(events) > limit {
		page.Events = events[:limit]
		page.NextCursor = encodeCursor(auditCursorPrefix, strconv.FormatInt(events[limit-1].ID, 10))
	}
	return page, nil
}
