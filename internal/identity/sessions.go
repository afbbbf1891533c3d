package identity

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// revokedRetention is how long an ended session is kept before cleanup
// deletes it: long enough that a replayed refresh token is still reported as
// reuse (and logged), short enough that the table does not grow.
const revokedRetention = 24 * time.Hour

// purgeBatch bounds one DELETE, so cleanup never holds many row locks at once.
const purgeBatch = 1000

// AuthenticateSession checks an access token like Authenticate and also that
// its session is still live. Lanyard's own bearer endpoints use it, so an
// ended session's access tokens stop working there at once; offline
// verifiers accept them until they expire (at most the access TTL).
func (s *Service) AuthenticateSession(ctx context.Context, token string) (AccessClaims, error) {
	claims, err := s.Authenticate(token)
	if err != nil {
		return AccessClaims{}, err
	}
	now := s.sessionTime()
	live, err := s.store.SessionActive(ctx, claims.SessionID, claims.Subject, now, now.Add(-s.cfg.RefreshIdleTTL))
	if err != nil {
		return AccessClaims{}, internal(err)
	}
	if !live {
		return AccessClaims{}, &Error{Code: CodeUnauthorized, Message: "the session of this access token has ended"}
	}
	return claims, nil
}

// ListSessions returns the caller's live sessions, marking the current one.
func (s *Service) ListSessions(ctx context.Context, claims AccessClaims) ([]SessionInfo, error) {
	now := s.sessionTime()
	sessions, err := s.store.ListSessions(ctx, claims.Subject, now, now.Add(-s.cfg.RefreshIdleTTL))
	if err != nil {
		return nil, internal(err)
	}
	for i := range sessions {
		sessions[i].Current = sessions[i].ID == claims.SessionID
	}
	return sessions, nil
}

// EndSession ends one of the caller's sessions (possibly the current one).
func (s *Service) EndSession(ctx context.Context, claims AccessClaims, client Client, sessionID string) error {
	now := s.sessionTime()
	err := s.store.Atomically(ctx, func(tx Tx) error {
		ended, err := tx.EndSession(ctx, claims.Subject, sessionID, "logout", now)
		if err != nil || !ended {
			return err // ending an ended session changes nothing and records nothing
		}
		return tx.AppendAudit(ctx, auditOf(AuditSessionEnded, claims.Subject, client, now, map[string]string{
			"reason": "logout", "session_id": sessionID, "current": strconv.FormatBool(sessionID == claims.SessionID)}))
	})
	if errors.Is(err, ErrNotFound) {
		return &Error{Code: CodeNotFound, Message: "no such session"}
	}
	if err != nil {
		return internal(err)
	}
	return nil
}

// EndOtherSessions ends every session of the caller but the current one,
// recording session_ended (with the count) only when it ended any.
func (s *Service) EndOtherSessions(ctx context.Context, claims AccessClaims, client Client) error {
	now := s.sessionTime()
	err := s.store.Atomically(ctx, func(tx Tx) error {
		n, err := tx.EndOtherSessions(ctx, claims.Subject, claims.SessionID, "logout_others", now)
		if err != nil || n == 0 {
			return err // nothing ended: nothing to record
		}
		return tx.AppendAudit(ctx, auditOf(AuditSessionEnded, claims.Subject, client, now, map[string]string{
			"reason": "logout_others", "scope": "others", "kept_session_id": claims.SessionID, "count": strconv.FormatInt(n, 10)}))
	})
	if err != nil {
		return internal(err)
	}
	return nil
}

// ChangePassword checks the current password, stores the new one, ends
// every other session and gives the current one a new secret, returning its
// fresh token pair: whoever copied any refresh token of this user before
// (the current session's included) holds a dead token afterwards.
//
// The current-password check is throttled like a login of the account from
// client (the two share their counters).
func (s *Service) ChangePassword(ctx context.Context, claims AccessClaims, client Client, current, next string) (Tokens, error) {
	if err := s.checkPasswordChange(ctx, claims.Subject, next); err != nil {
		return Tokens{}, err
	}
	sessionID, err := uuid.Parse(claims.SessionID)
	if err != nil {
		return Tokens{}, &Error{Code: CodeUnauthorized, Message: "the session of this access token has ended"}
	}
	hash, err := s.checkCurrentPassword(ctx, claims, client, current, "password_change_failed")
	if err != nil {
		return Tokens{}, err
	}
	newHash, err := s.hasher.Hash(hashingFor(ctx, client), next)
	if err != nil {
		return Tokens{}, hashError(err)
	}
	secret, err := newSessionSecret()
	if err != nil {
		return Tokens{}, internal(err)
	}
	tok := refreshToken{sessionID: sessionID, secret: secret}
	now := s.sessionTime()
	var (
		user      User
		expiresAt time.Time
	)
	// Lock order: the user row first (as logins do), then sessions, so two
	// racing changes queue on the user row instead of deadlocking. The
	// caller's own session is re-keyed under lock: a session ended meanwhile
	// (from another device) cannot change the password.
	err = s.store.Atomically(ctx, func(tx Tx) error {
		if err := tx.SwapPasswordHash(ctx, claims.Subject, newHash, hash, now); err != nil {
			return err
		}
		var err error
		if expiresAt, err = tx.ReplaceSessionSecret(ctx, claims.Subject, claims.SessionID, tok.secretHash(), now); err != nil {
			return err
		}
		if _, err := tx.EndOtherSessions(ctx, claims.Subject, claims.SessionID, "password_change", now); err != nil {
			return err
		}
		if user, err = tx.UserByID(ctx, claims.Subject); err != nil {
			return err
		}
		if err := tx.AppendAudit(ctx, auditOf(AuditPasswordChanged, claims.Subject, client, now, map[string]string{
			"session_id": claims.SessionID, "other_sessions": "ended"})); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, KindPasswordChangedNotice, user.Email, MailData{Email: user.Email}, now)
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return Tokens{}, &Error{Code: CodeUnauthorized, Message: "the session of this access token has ended"}
	case errors.Is(err, ErrStaleCredentials):
		return Tokens{}, &Error{Code: CodeInvalidCredentials, Message: "the password was changed meanwhile; nothing was written"}
	case err != nil:
		return Tokens{}, internal(err)
	}
	s.mailWritten()
	s.authEvent(ctx, slog.LevelInfo, "password_changed", claims.Subject, client, "success")
	return s.issue(user, tok, expiresAt, now)
}

// checkCurrentPassword verifies the signed-in user's current password
// before a sensitive change, throttled like a login of the account from
// client (they share counters), and returns the stored hash it matched.
// failedEvent names the security event logged when it does not match.
func (s *Service) checkCurrentPassword(ctx context.Context, claims AccessClaims, client Client, current, failedEvent string) (string, error) {
	hash, err := s.store.PasswordHashByID(ctx, claims.Subject)
	if err != nil {
		return "", userError(err)
	}
	hctx, try, err := s.admitLogin(ctx, accountOf(claims.Subject, ""), claims.Subject, client)
	if err != nil {
		return "", err
	}
	ok, _, err := s.hasher.Verify(hctx, current, hash)
	if err != nil {
		try.abort(ctx)
		return "", hashError(err)
	}
	if !ok {
		s.authEvent(ctx, slog.LevelInfo, failedEvent, claims.Subject, client, "failure")
		// A failed check of the current password is a failed login of the
		// account: on its own, as LogIn's (its charge came first).
		if err := s.audit(ctx, AuditLoginFailed, claims.Subject, client, map[string]string{
			"reason": "wrong_password", "operation": strings.TrimSuffix(failedEvent, "_failed")}); err != nil {
			return "", err
		}
		return "", &Error{Code: CodeInvalidCredentials, Message: "the current password is incorrect"}
	}
	try.succeeded(ctx)
	return hash, nil
}

// PurgeSessions deletes sessions that can never be used again, in bounded
// batches, and reports how many went. Safe to run on every replica at once.
func (s *Service) PurgeSessions(ctx context.Context) (int64, error) {
	now := s.sessionTime()
	var total int64
	for {
		// Every kind of dead session is kept revokedRetention past its end, so a
		// late refresh still gets the precise code (session_expired,
		// refresh_token_reused) and replicas with skewed clocks agree.
		horizon := now.Add(-revokedRetention)
		n, err := s.store.PurgeSessions(ctx, horizon, horizon.Add(-s.cfg.RefreshIdleTTL), horizon, purgeBatch)
		total += n
		if err != nil || n < purgeBatch || ctx.Err() != nil {
			return total, err
		}
	}
}
