package identity

import (
	"cmp"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Email verification modes (LANYARD_EMAIL_VERIFICATION).
const (
	VerificationOptional = "optional"
	VerificationRequired = "required"
)

// Mail kinds: the template each outbox row is rendered with. KindNone is
// written for a password reset asked for an address with no account, so
// both cases cost the same writes; the sender drops it unsent.
const (
	KindVerifyEmail           = "verify_email"
	KindResetPassword         = "reset_password"
	KindConfirmEmailChange    = "confirm_email_change"
	KindEmailChangeRequested  = "email_change_requested_notice"
	KindEmailChangedNotice    = "email_changed_notice"
	KindPasswordChangedNotice = "password_changed_notice"
	KindSignUpAttemptNotice   = "signup_attempt_notice"
	KindNone                  = "none"
)

// MailConfig is how the email flows behave (LANYARD_EMAIL_VERIFICATION,
// LANYARD_APP_URL and the link paths, the token lifetimes).
type MailConfig struct {
	Verification string // VerificationOptional (the zero value) or VerificationRequired
	// AppURL is the application that receives the links; each link is
	// AppURL + path + "?token=…".
	AppURL                                  *url.URL
	VerifyPath, ResetPath, ConfirmEmailPath string
	VerifyTTL, ResetTTL, ChangeEmailTTL     time.Duration
	// RetryBase is the wait after a first failed delivery; it doubles with
	// each further failure, up to an hour.
	RetryBase time.Duration
	// Lease is how long a sender holds a mail it is about to send (default
	// 2 minutes); a send's deadline is half of it.
	Lease time.Duration
}

// MailData is what a mail's template is filled with. It travels sealed in
// the outbox: the link carries a token.
type MailData struct {
	Email     string        `json:"email"`
	NewEmail  string        `json:"new_email,omitempty"`
	Link      string        `json:"link,omitempty"`
	ExpiresIn time.Duration `json:"expires_in,omitempty"`
}

// mailTokenPrefix marks Lanyard mail tokens, so a leaked one is
// recognisable in logs and by secret scanners.
const mailTokenPrefix = "lmt_"

// maxMailTokenLen bounds what is hashed: a token is 47 characters.
const maxMailTokenLen = 128

func invalidMailToken() *Error {
	return &Error{Code: CodeInvalidToken, Message: "the link is invalid, expired or already used; ask for a new one"}
}

// newMailToken returns a fresh token (256 random bits) and the record that
// stores its hash.
func newMailToken(purpose, userID, email string, state []byte, now time.Time, ttl time.Duration) (string, MailToken, error) {
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", MailToken{}, err
	}
	token := mailTokenPrefix + base64.RawURLEncoding.EncodeToString(secret[:])
	return token, MailToken{Hash: mailTokenHash(token), Purpose: purpose, UserID: userID, Email: email, State: state,
		CreatedAt: now, ExpiresAt: now.Add(ttl)}, nil
}

func mailTokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// tokenState binds a token to what must not change before it is used: the
// address alone for a verification, the password hash and the address for
// a reset or an email change (a password change voids those).
func tokenState(purpose, passwordHash, email string) []byte {
	h := sha256.New()
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	if purpose != PurposeVerifyEmail {
		h.Write([]byte(passwordHash))
	}
	h.Write([]byte{0})
	h.Write([]byte(strings.ToLower(email)))
	return h.Sum(nil)
}

// link is the application URL a mail points to.
func (s *Service) link(path, token string) string {
	u := *s.mail.AppURL
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = url.Values{"token": {token}}.Encode()
	return u.String()
}

// mailSealer seals outbox payloads (AES-256-GCM under a key derived from
// LANYARD_SECRET); it opens those sealed under the previous secret too.
type mailSealer struct{ current, previous cipher.AEAD }

func newMailSealer(secret, previous []byte) (mailSealer, error) {
	var m mailSealer
	var err error
	if m.current, err = mailAEAD(secret); err != nil {
		return m, err
	}
	if len(previous) > 0 {
		m.previous, err = mailAEAD(previous)
	}
	return m, err
}

func mailAEAD(secret []byte) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, secret, nil, "lanyard outbox payload v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal binds the payload to its row (id as additional data), so a sealed
// payload copied into another row does not open.
func (m mailSealer) seal(id string, data MailData) ([]byte, error) {
	plain, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, m.current.NonceSize(), m.current.NonceSize()+len(plain)+m.current.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return m.current.Seal(nonce, nonce, plain, []byte(id)), nil
}

func (m mailSealer) open(id string, sealed []byte) (MailData, error) {
	var data MailData
	for _, aead := range []cipher.AEAD{m.current, m.previous} {
		if aead == nil || len(sealed) < aead.NonceSize() {
			continue
		}
		plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(id))
		if err == nil {
			return data, json.Unmarshal(plain, &data)
		}
	}
	return data, errors.New("outbox payload does not open with LANYARD_SECRET or LANYARD_SECRET_PREVIOUS")
}

// enqueue writes a mail into the outbox inside tx.
func (s *Service) enqueue(ctx context.Context, tx Tx, kind, to string, data MailData, now time.Time) error {
	id := uuid.NewString()
	payload, err := s.sealer.seal(id, data)
	if err != nil {
		return err
	}
	return tx.EnqueueMail(ctx, OutboxMail{ID: id, Kind: kind, Recipient: to, Payload: payload, CreatedAt: now})
}

// mailWritten tells this replica's sender that a mail is waiting, so it
// goes out at once rather than at the next poll.
func (s *Service) mailWritten() {
	select {
	case s.mailWake <- struct{}{}:
	default:
	}
}

// MailWritten is signalled after a use case committed a mail.
func (s *Service) MailWritten() <-chan struct{} { return s.mailWake }

// allowedMail charges counters for a mail nobody is told about (a notice, a
// fresh link on a refused login): true when it may go out; false when a
// counter is blocked, and then it silently does not, since the answer must
// not change.
func (s *Service) allowedMail(ctx context.Context, counters []ThrottleCounter, userID string, client Client) (bool, error) {
	err := s.charge(ctx, counters, userID, client)
	var t *Throttled
	if errors.As(err, &t) {
		return false, nil
	}
	return err == nil, err
}

// issueVerification writes a verification token and its mail inside tx.
func (s *Service) issueVerification(ctx context.Context, tx Tx, user User, now time.Time) error {
	token, rec, err := newMailToken(PurposeVerifyEmail, user.ID, user.Email, tokenState(PurposeVerifyEmail, "", user.Email), now, s.mail.VerifyTTL)
	if err != nil {
		return err
	}
	if err := tx.CreateMailToken(ctx, rec); err != nil {
		return err
	}
	return s.enqueue(ctx, tx, KindVerifyEmail, user.Email, MailData{Email: user.Email, Link: s.link(s.mail.VerifyPath, token), ExpiresIn: s.mail.VerifyTTL}, now)
}

// redeem uses a mail token of purpose inside tx and returns it with the
// user it belongs to and that user's password hash, if the user's state
// still matches the one the token was issued for; invalidMailToken
// otherwise, whatever the reason (one answer for unknown, used, expired,
// another purpose, voided).
func (s *Service) redeem(ctx context.Context, tx Tx, token, purpose string, now time.Time) (MailToken, User, string, error) {
	if !strings.HasPrefix(token, mailTokenPrefix) || len(token) > maxMailTokenLen {
		return MailToken{}, User{}, "", invalidMailToken()
	}
	rec, err := tx.UseMailToken(ctx, mailTokenHash(token), purpose, now)
	if errors.Is(err, ErrNotFound) {
		return MailToken{}, User{}, "", invalidMailToken()
	}
	if err != nil {
		return MailToken{}, User{}, "", err
	}
	user, err := tx.UserByID(ctx, rec.UserID)
	if errors.Is(err, ErrNotFound) {
		return MailToken{}, User{}, "", invalidMailToken()
	}
	if err != nil {
		return MailToken{}, User{}, "", err
	}
	var hash string // a verification token's state does not bind the password
	if purpose != PurposeVerifyEmail {
		if hash, err = tx.PasswordHashByID(ctx, rec.UserID); err != nil {
			return MailToken{}, User{}, "", err
		}
	}
	if subtle.ConstantTimeCompare(rec.State, tokenState(purpose, hash, user.Email)) != 1 {
		return MailToken{}, User{}, "", invalidMailToken()
	}
	return rec, user, hash, nil
}

// VerifyEmail proves the user's address with the token mailed to it.
func (s *Service) VerifyEmail(ctx context.Context, token string, client Client) error {
	now := s.sessionTime()
	var user User
	err := s.store.Atomically(ctx, func(tx Tx) error {
		var err error
		var rec MailToken
		if rec, user, _, err = s.redeem(ctx, tx, token, PurposeVerifyEmail, now); err != nil {
			return err
		}
		if err := tx.MarkEmailVerified(ctx, user.ID, rec.Email, now); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, auditOf(AuditEmailVerified, user.ID, client, now, map[string]string{"method": "link"}))
	})
	if err != nil {
		return mailError(err)
	}
	s.authEvent(ctx, slog.LevelInfo, "email_verified", user.ID, client, "success")
	return nil
}

// ResendVerification mails a new verification link to the signed-in user,
// unless the address is already proved. Throttled per account.
func (s *Service) ResendVerification(ctx context.Context, claims AccessClaims, client Client) error {
	counter := s.counter(ScopeMailResend, s.cfg.RateLimits.MailResend, claims.Subject)
	if err := s.charge(ctx, counter, claims.Subject, client); err != nil {
		return err
	}
	user, err := s.store.UserByID(ctx, claims.Subject)
	if err != nil {
		return userError(err)
	}
	if user.EmailVerified {
		return nil
	}
	now := s.sessionTime()
	if err := s.store.Atomically(ctx, func(tx Tx) error { return s.issueVerification(ctx, tx, user, now) }); err != nil {
		return internal(err)
	}
	s.mailWritten()
	return nil
}

// ForgotPassword mails a reset link if an account has this address. The
// answer, and the work done, are the same either way: an outbox row is
// written in both cases (for an unknown address one the sender drops), so
// the time taken does not tell whether the account exists. Throttled per
// address and per client before anything is read.
func (s *Service) ForgotPassword(ctx context.Context, email string, client Client) error {
	normalised, fieldErr := normaliseEmail(email)
	account := normalised
	if fieldErr != nil {
		// An address the current rules refuse may still be the stored
		// address of an account made before them (legacyaddr.go).
		if account = legacyAddress(email); account == "" || len(account) > 254 {
			return &Error{Code: CodeValidation, Message: "the request has invalid fields", Fields: []FieldError{*fieldErr}}
		}
		normalised = ""
	}
	counters := append(s.counter(ScopeForgotEmail, s.cfg.RateLimits.ForgotEmail, account),
		s.counter(ScopeForgotIP, s.cfg.RateLimits.ForgotIP, clientAddress(client.IP))...)
	if err := s.charge(ctx, counters, "", client); err != nil {
		return err
	}
	now := s.sessionTime()
	err := s.store.Atomically(ctx, func(tx Tx) error {
		user, hash, err := findAccount(ctx, tx.FindCredentials, email, normalised)
		if errors.Is(err, ErrNotFound) {
			return s.enqueue(ctx, tx, KindNone, account, MailData{Email: account}, now)
		}
		if err != nil {
			return err
		}
		token, rec, err := newMailToken(PurposeResetPassword, user.ID, user.Email, tokenState(PurposeResetPassword, hash, user.Email), now, s.mail.ResetTTL)
		if err != nil {
			return err
		}
		if err := tx.CreateMailToken(ctx, rec); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, KindResetPassword, user.Email, MailData{Email: user.Email, Link: s.link(s.mail.ResetPath, token), ExpiresIn: s.mail.ResetTTL}, now)
	})
	if err != nil {
		return internal(err)
	}
	s.mailWritten()
	return nil
}

// ResetPassword sets a new password with a reset token, ends every session
// of the user and mails a notice. The address is proved by the way.
func (s *Service) ResetPassword(ctx context.Context, token, next string, client Client) error {
	now := s.sessionTime()
	var user User
	err := s.store.Atomically(ctx, func(tx Tx) error {
		var (
			hash string
			err  error
		)
		if _, user, hash, err = s.redeem(ctx, tx, token, PurposeResetPassword, now); err != nil {
			return err
		}
		// The rules are checked after the token, which needs the user's
		// address; a refused password rolls the use of the token back.
		if f := s.checkNewPassword("new_password", next, user.Email); f != nil {
			return &Error{Code: CodeValidation, Message: "the request has invalid fields", Fields: []FieldError{*f}}
		}
		newHash, err := s.hasher.Hash(hashingFor(ctx, client), next)
		if err != nil {
			return hashError(err)
		}
		if err := tx.SwapPasswordHash(ctx, user.ID, newHash, hash, now); err != nil {
			return err
		}
		if _, err := tx.EndAllSessions(ctx, user.ID, "password_change", now); err != nil {
			return err
		}
		if err := tx.MarkEmailVerified(ctx, user.ID, user.Email, now); err != nil {
			return err
		}
		if err := tx.AppendAudit(ctx, auditOf(AuditPasswordReset, user.ID, client, now, map[string]string{
			"method": "link", "sessions": "ended"})); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, KindPasswordChangedNotice, user.Email, MailData{Email: user.Email}, now)
	})
	if errors.Is(err, ErrStaleCredentials) {
		return invalidMailToken() // the password changed while this reset ran
	}
	if err != nil {
		return mailError(err)
	}
	s.mailWritten()
	s.authEvent(ctx, slog.LevelInfo, "password_reset", user.ID, client, "success")
	return nil
}

// RequestEmailChange checks the current password (throttled like a login)
// and mails a confirmation link to the new address and a notice to the
// current one. The answer, and the notice, are the same when the new
// address belongs to another account; only the confirmation is not sent
// then. The mails are throttled per account and per new address, so the
// endpoint cannot be used to flood a mailbox.
func (s *Service) RequestEmailChange(ctx context.Context, claims AccessClaims, client Client, newEmail, current string) error {
	normalised, fieldErr := normaliseEmail(newEmail)
	if fieldErr != nil {
		fieldErr.Field = "new_email"
		return &Error{Code: CodeValidation, Message: "the request has invalid fields", Fields: []FieldError{*fieldErr}}
	}
	user, err := s.store.UserByID(ctx, claims.Subject)
	if err != nil {
		return userError(err)
	}
	if strings.EqualFold(normalised, user.Email) {
		return &Error{Code: CodeValidation, Message: "the request has invalid fields",
			Fields: []FieldError{{Field: "new_email", Message: "is already the account's address"}}}
	}
	hash, err := s.checkCurrentPassword(ctx, claims, client, current, "email_change_failed")
	if err != nil {
		return err
	}
	rule := s.cfg.RateLimits.MailResend
	counters := append(s.counter(ScopeMailResend, rule, emailChangeResend, claims.Subject), s.counter(ScopeMailTo, rule, normalised)...)
	if err := s.charge(ctx, counters, claims.Subject, client); err != nil {
		return err
	}
	now := s.sessionTime()
	err = s.store.Atomically(ctx, func(tx Tx) error {
		if err := s.enqueue(ctx, tx, KindEmailChangeRequested, user.Email, MailData{Email: user.Email, NewEmail: normalised}, now); err != nil {
			return err
		}
		if _, _, err := findAccount(ctx, tx.FindCredentials, newEmail, normalised); err == nil {
			return nil // taken: no confirmation, and nothing that tells the requester
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		token, rec, err := newMailToken(PurposeChangeEmail, user.ID, normalised, tokenState(PurposeChangeEmail, hash, user.Email), now, s.mail.ChangeEmailTTL)
		if err != nil {
			return err
		}
		if err := tx.CreateMailToken(ctx, rec); err != nil {
			return err
		}
		data := MailData{Email: user.Email, NewEmail: normalised, Link: s.link(s.mail.ConfirmEmailPath, token), ExpiresIn: s.mail.ChangeEmailTTL}
		return s.enqueue(ctx, tx, KindConfirmEmailChange, normalised, data, now)
	})
	if err != nil {
		return internal(err)
	}
	s.mailWritten()
	return nil
}

// ConfirmEmailChange switches the account to the address the token was
// mailed to (the user id stays) and notifies the previous address. The
// audit event names neither address.
func (s *Service) ConfirmEmailChange(ctx context.Context, token string, client Client) error {
	now := s.sessionTime()
	var user User
	err := s.store.Atomically(ctx, func(tx Tx) error {
		rec, u, _, err := s.redeem(ctx, tx, token, PurposeChangeEmail, now)
		if err != nil {
			return err
		}
		user = u
		if err := aliasTaken(ctx, tx.FindCredentials, rec.Email); err != nil {
			return err
		}
		if err := tx.ChangeEmail(ctx, user.ID, user.Email, rec.Email, now); err != nil {
			return err
		}
		if err := tx.AppendAudit(ctx, auditOf(AuditEmailChanged, user.ID, client, now, map[string]string{"method": "link"})); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, KindEmailChangedNotice, user.Email, MailData{Email: user.Email, NewEmail: rec.Email}, now)
	})
	switch {
	case errors.Is(err, ErrEmailTaken):
		return &Error{Code: CodeEmailTaken, Message: "an account with this email already exists"}
	case errors.Is(err, ErrNotFound):
		return invalidMailToken()
	case err != nil:
		return mailError(err)
	}
	s.mailWritten()
	s.authEvent(ctx, slog.LevelInfo, "email_changed", user.ID, client, "success")
	return nil
}

// mailError passes the use cases' own errors through and reports anything
// else as internal (database failures become 503 there).
func mailError(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return internal(err)
}

// Postman delivers one rendered mail; identity knows neither SMTP nor
// templates. Permanent reports a refusal that retrying cannot fix.
type Postman interface {
	Deliver(ctx context.Context, id, kind, to string, data MailData) error
	Permanent(err error) bool
}

// Outbox delivery: each replica's sender claims due mails (a lease, so two
// senders never hold one mail), delivers them and records the outcome.
// Before each mail it renews its lease on that mail, and the send's
// deadline is shorter than the lease, so a batch that takes longer than
// one lease (a slow SMTP server) never lets another sender take a mail it
// is still sending. Only a sender that dies, or cannot reach the database,
// after the SMTP server accepted a mail and before recording it can cause a
// second delivery, once the lease has run out.
const (
	mailMaxAttempts = 12
	mailBatch       = 10
)

// mailBackoff is the wait before attempt n+1: base doubling, capped at an
// hour (with the default 10 s, about 7 hours over 12 attempts).
func mailBackoff(base time.Duration, attempts int) time.Duration {
	return min(base<<min(attempts-1, 12), time.Hour)
}

// DeliverMail sends the due mails it can claim and reports how many it
// handled; the sender loop calls it until it handles none.
func (s *Service) DeliverMail(ctx context.Context, postman Postman, claim string) (int, error) {
	now := s.sessionTime()
	mails, err := s.store.ClaimMail(ctx, claim, now, s.mail.Lease, mailBatch)
	if err != nil {
		return 0, err
	}
	for _, m := range mails {
		if err := s.deliverOne(ctx, postman, m); err != nil {
			return 0, err
		}
	}
	return len(mails), nil
}

func (s *Service) deliverOne(ctx context.Context, postman Postman, m OutboxMail) error {
	if m.Kind == KindNone {
		return ignoreLostClaim(s.store.MarkMailSent(ctx, m.ID, m.Claim, s.sessionTime()))
	}
	data, err := s.sealer.open(m.ID, m.Payload)
	if err != nil {
		s.log.ErrorContext(ctx, "mail given up", "mail_id", m.ID, "kind", m.Kind, "error", err)
		return ignoreLostClaim(s.store.FailMail(ctx, m.ID, m.Claim, s.sessionTime(), err.Error()))
	}
	// The mails before this one may have taken longer than the lease: make
	// sure it is still this sender's, for a whole send.
	if err := s.store.RenewMailClaim(ctx, m.ID, m.Claim, s.sessionTime().Add(s.mail.Lease)); err != nil {
		return ignoreLostClaim(err)
	}
	sendCtx, cancel := context.WithTimeout(ctx, s.mail.Lease/2)
	sendErr := postman.Deliver(sendCtx, m.ID, m.Kind, m.Recipient, data)
	cancel()
	now := s.sessionTime()
	switch {
	case sendErr == nil:
		s.log.InfoContext(ctx, "mail sent", "mail_id", m.ID, "kind", m.Kind, "attempt", m.Attempts)
		return ignoreLostClaim(s.store.MarkMailSent(ctx, m.ID, m.Claim, now))
	case postman.Permanent(sendErr) || m.Attempts >= mailMaxAttempts:
		s.log.ErrorContext(ctx, "mail given up", "mail_id", m.ID, "kind", m.Kind, "attempt", m.Attempts, "error", sendErr)
		return ignoreLostClaim(s.store.FailMail(ctx, m.ID, m.Claim, now, sendErr.Error()))
	default:
		retry := now.Add(mailBackoff(s.mail.RetryBase, m.Attempts))
		s.log.WarnContext(ctx, "mail delivery failed; will retry", "mail_id", m.ID, "kind", m.Kind, "attempt", m.Attempts, "retry_at", retry, "error", sendErr)
		return ignoreLostClaim(s.store.RetryMail(ctx, m.ID, m.Claim, retry, sendErr.Error()))
	}
}

// ignoreLostClaim: a claim that ran out meanwhile belongs to another
// sender now, which records the outcome itself.
func ignoreLostClaim(err error) error {
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// PurgeMail deletes mail tokens and outbox rows that can never matter
// again, for the cleanup loop.
func (s *Service) PurgeMail(ctx context.Context) (int64, error) {
	before := s.sessionTime().Add(-24 * time.Hour)
	tokens, err := s.store.PurgeMailTokens(ctx, before, purgeBatch)
	if err != nil {
		return tokens, err
	}
	mails, err := s.store.PurgeMail(ctx, before.Add(-6*24*time.Hour), purgeBatch)
	return tokens + mails, err
}

// validateMailConfig fills defaults and checks the settings.
func validateMailConfig(c *MailConfig) error {
	if c.Verification == "" {
		c.Verification = VerificationOptional
	}
	if c.Verification != VerificationOptional && c.Verification != VerificationRequired {
		return fmt.Errorf("email verification mode %q: want optional or required", c.Verification)
	}
	if c.AppURL == nil {
		c.AppURL = &url.URL{Scheme: "http", Host: "localhost:3000"}
	}
	for _, p := range []*string{&c.VerifyPath, &c.ResetPath, &c.ConfirmEmailPath} {
		if *p != "" && !strings.HasPrefix(*p, "/") {
			return fmt.Errorf("link path %q must start with /", *p)
		}
	}
	c.VerifyPath = cmp.Or(c.VerifyPath, "/verify-email")
	c.ResetPath = cmp.Or(c.ResetPath, "/reset-password")
	c.ConfirmEmailPath = cmp.Or(c.ConfirmEmailPath, "/confirm-email")
	c.VerifyTTL = cmp.Or(c.VerifyTTL, 24*time.Hour)
	c.ResetTTL = cmp.Or(c.ResetTTL, 30*time.Minute)
	c.ChangeEmailTTL = cmp.Or(c.ChangeEmailTTL, time.Hour)
	c.RetryBase = cmp.Or(c.RetryBase, 10*time.Second)
	c.Lease = cmp.Or(c.Lease, 2*time.Minute)
	return nil
}
