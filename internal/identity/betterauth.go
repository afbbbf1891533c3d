package identity

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Moving from Better-Auth without signing anyone out: `lanyard import
// better-auth --sessions` copies the SHA-256 of each live Better-Auth
// session token, and a browser still holding the Better-Auth cookie trades
// it, once, for a Lanyard session.

// BetterAuthSessions keeps the imported Better-Auth sessions.
type BetterAuthSessions interface {
	// ExchangeBetterAuthSession marks the session whose token has this hash
	// exchanged at now and returns its user, if it is unexpired and was
	// never exchanged; ErrNotFound otherwise (one answer for unknown,
	// expired and exchanged). Inside a transaction the mark is undone when
	// the transaction is.
	ExchangeBetterAuthSession(ctx context.Context, tokenHash []byte, now time.Time) (userID string, err error)
}

// maxBetterAuthCookieLen bounds the work an exchange does before the MAC
// check: Better-Auth's signed cookie is about 80 characters.
const maxBetterAuthCookieLen = 512

// ErrExchangeDisabled: LANYARD_BETTER_AUTH_SECRET is not set.
var ErrExchangeDisabled = &Error{Code: CodeNotFound, Message: "session exchange is not enabled (LANYARD_BETTER_AUTH_SECRET is not set)"}

func invalidBetterAuthSession() *Error {
	return &Error{Code: CodeInvalidToken, Message: "the Better-Auth session is invalid, expired or already exchanged; sign in"}
}

// betterAuthToken checks a signed Better-Auth session cookie value,
// token + "." + base64(HMAC-SHA256(secret, token)), possibly still
// URL-encoded as the cookie holds it, and returns the token.
func betterAuthToken(signed string, secret []byte) (string, bool) {
	if len(signed) > maxBetterAuthCookieLen {
		return "", false
	}
	if strings.Contains(signed, "%") {
		unescaped, err := url.QueryUnescape(signed)
		if err != nil {
			return "", false
		}
		signed = unescaped
	}
	dot := strings.LastIndexByte(signed, '.')
	if dot <= 0 {
		return "", false
	}
	token, sig := signed[:dot], signed[dot+1:]
	got, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		if got, err = base64.RawStdEncoding.DecodeString(sig); err != nil {
			return "", false
		}
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(token))
	return token, hmac.Equal(got, mac.Sum(nil))
}

// ExchangeBetterAuth trades a live, imported Better-Auth session for a
// Lanyard session, once.
func (s *Service) ExchangeBetterAuth(ctx context.Context, signed string, client Client) (Tokens, error) {
	if len(s.cfg.BetterAuthSecret) == 0 {
		return Tokens{}, ErrExchangeDisabled
	}
	token, ok := betterAuthToken(signed, s.cfg.BetterAuthSecret)
	if !ok {
		return Tokens{}, invalidBetterAuthSession()
	}
	hash := sha256.Sum256([]byte(token))
	now := s.sessionTime()
	var (
		user       User
		session    NewSession
		refreshTok refreshToken
	)
	err := s.store.Atomically(ctx, func(tx Tx) error {
		userID, err := tx.ExchangeBetterAuthSession(ctx, hash[:], now)
		if errors.Is(err, ErrNotFound) {
			return invalidBetterAuthSession()
		}
		if err != nil {
			return err
		}
		if user, err = tx.UserByID(ctx, userID); err != nil {
			return err
		}
		if user.DisabledAt != nil {
			return accountDisabled()
		}
		if s.mail.Verification == VerificationRequired && !user.EmailVerified {
			return &Error{Code: CodeEmailUnverified, Message: "verify your email address first: follow the link mailed to it"}
		}
		if session, refreshTok, err = s.newSession(user.ID, now, client); err != nil {
			return err
		}
		if err := tx.CreateSession(ctx, session); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, auditOf(AuditLoginSucceeded, user.ID, client, now, map[string]string{
			"method": "better_auth", "session_id": session.ID}))
	})
	if err != nil {
		return Tokens{}, mailError(err)
	}
	s.authEvent(ctx, slog.LevelInfo, "better_auth_session_exchanged", user.ID, client, "success")
	return s.issue(user, refreshTok, session.ExpiresAt, now)
}
