package identity

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lanyard-id/lanyard/internal/password"
)

// Config holds the rules the use cases enforce.
type Config struct {
	Issuer             string
	Audience           string
	AccessTTL          time.Duration
	RefreshIdleTTL     time.Duration
	RefreshAbsoluteTTL time.Duration
	RefreshReuseGrace  time.Duration
	// RefreshGraceUnbound (LANYARD_REFRESH_GRACE_BINDING=none) honours a
	// parent inside the grace window from any client. By default (false) only
	// the client that rotated it gets the successor; from any other it is
	// reuse, so a thief with a copied pair cannot ride the window.
	RefreshGraceUnbound bool
	// DBTimeout is LANYARD_DB_TIMEOUT, the deadline of each database
	// operation: a refresh that has not taken effect by then never will.
	DBTimeout         time.Duration
	PasswordMinLength int // code points
	PasswordMaxLength int
	// Secret is LANYARD_SECRET; the refresh-token MAC key is derived from it.
	Secret []byte
	// PreviousSecret (LANYARD_SECRET_PREVIOUS) is still accepted for
	// refresh-token MACs during a secret rotation.
	PreviousSecret []byte
	// RateLimits are the throttling rules (LANYARD_RATE_LIMIT_*); the zero
	// value turns throttling off.
	RateLimits RateLimits
	// Mail configures email verification, password reset and email change
	// (mail.go); the zero value is the defaults.
	Mail MailConfig
	// BetterAuthSecret (LANYARD_BETTER_AUTH_SECRET) checks the signature of
	// Better-Auth session cookies traded at the exchange; nil turns the
	// exchange off.
	BetterAuthSecret []byte
}

// Service runs the use cases. It is safe for concurrent use.
type Service struct {
	cfg     Config
	store   Store
	hasher  Hasher
	signer  Signer
	refresh refreshTokenCodec
	log     *slog.Logger
	// throttleKey keys the HMAC that names throttle counters.
	throttleKey []byte
	// Now is the process clock, for access-token iat and exp; tests replace
	// it to hit lifetime edges exactly.
	Now func() time.Time
	// sessionNow is the clock of session decisions: the database's clock
	// (see DatabaseClock) once SetSessionClock is called, Now until then.
	sessionNow func() time.Time
	mail       MailConfig
	sealer     mailSealer
	// mailWake wakes this replica's mail sender after a commit wrote mail.
	mailWake chan struct{}
	// throttled remembers which blocks this replica recorded (audit.go).
	throttled throttledBlocks
}

// SetSessionClock makes session decisions (rotation, grace, idle and
// absolute expiry, every session timestamp stored) follow clock, normally a
// DatabaseClock's Now, so that replicas with skewed clocks decide alike.
func (s *Service) SetSessionClock(clock func() time.Time) { s.sessionNow = clock }

// sessionTime is the current time for session decisions.
func (s *Service) sessionTime() time.Time {
	if s.sessionNow != nil {
		return s.sessionNow()
	}
	return s.Now()
}

// NewService wires the use cases to their dependencies.
func NewService(cfg Config, store Store, hasher Hasher, signer Signer, log *slog.Logger) (*Service, error) {
	key, err := refreshKey(cfg.Secret)
	if err != nil {
		return nil, err
	}
	var previous []byte
	if len(cfg.PreviousSecret) > 0 {
		if previous, err = refreshKey(cfg.PreviousSecret); err != nil {
			return nil, err
		}
	}
	throttleKey, err := throttleKeys(cfg.Secret)
	if err != nil {
		return nil, err
	}
	mail := cfg.Mail
	if err := validateMailConfig(&mail); err != nil {
		return nil, err
	}
	sealer, err := newMailSealer(cfg.Secret, cfg.PreviousSecret)
	if err != nil {
		return nil, err
	}
	return &Service{
		cfg: cfg, store: store, hasher: hasher, signer: signer,
		refresh:     refreshTokenCodec{key: key, previous: previous},
		log:         log,
		throttleKey: throttleKey,
		Now:         Now,
		mail:        mail,
		sealer:      sealer,
		mailWake:    make(chan struct{}, 1),
	}, nil
}

func refreshKey(secret []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, secret, nil, "lanyard refresh-token mac v1", sha256.Size)
}

// Now is the production clock: UTC, truncated to the microsecond precision
// both databases keep, so what is stored reads back equal.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// Client describes the caller for the session record.
type Client struct {
	UserAgent string
	IP        string
}

// Tokens is what signup, login and refresh return.
type Tokens struct {
	AccessToken      string
	ExpiresIn        time.Duration
	RefreshToken     string
	RefreshExpiresIn time.Duration
	// SessionExpiresIn is what remains of the session's absolute lifetime:
	// how long a browser should keep the refresh cookie.
	SessionExpiresIn time.Duration
	User             User
	// VerificationPending: the sign-up was accepted but opens no session
	// until the address is verified (LANYARD_EMAIL_VERIFICATION=required);
	// the other fields are empty.
	VerificationPending bool
}

// SignUpInput is the signup request.
type SignUpInput struct {
	Email    string
	Password string
	Name     *string
}

// SignUp creates an account and its first session.
func (s *Service) SignUp(ctx context.Context, in SignUpInput, client Client) (Tokens, error) {
	email, emailErr := normaliseEmail(in.Email)
	var fields []FieldError
	if emailErr != nil {
		fields = append(fields, *emailErr)
	}
	if f := s.checkNewPassword("password", in.Password, email); f != nil {
		fields = append(fields, *f)
	}
	name, nameErr := normaliseName(in.Name)
	if nameErr != nil {
		fields = append(fields, *nameErr)
	}
	if len(fields) > 0 {
		return Tokens{}, &Error{Code: CodeValidation, Message: "the request has invalid fields", Fields: fields}
	}
	// Every sign-up that gets as far as hashing counts, successful or not.
	signUps := s.counter(ScopeSignUpIP, s.cfg.RateLimits.SignUpIP, clientAddress(client.IP))
	if err := s.charge(ctx, signUps, "", client); err != nil {
		return Tokens{}, err
	}
	hash, err := s.hasher.Hash(hashingFor(ctx, client), in.Password)
	if err != nil {
		s.settle(ctx, nil, signUps)
		return Tokens{}, hashError(err)
	}
	now := s.sessionTime()
	user := User{ID: uuid.NewString(), Email: email, Name: name, CreatedAt: now}
	session, token, err := s.newSession(user.ID, now, client)
	if err != nil {
		return Tokens{}, internal(err)
	}
	required := s.mail.Verification == VerificationRequired
	err = s.store.Atomically(ctx, func(tx Tx) error {
		if err := aliasTaken(ctx, tx.FindCredentials, email); err != nil {
			return err
		}
		if err := tx.CreateUser(ctx, user, hash); err != nil {
			return err
		}
		if err := s.issueVerification(ctx, tx, user, now); err != nil {
			return err
		}
		if required {
			// no session before the address is proved
			return tx.AppendAudit(ctx, auditOf(AuditSignup, user.ID, client, now, map[string]string{"verification": "pending"}))
		}
		if err := tx.AppendAudit(ctx, auditOf(AuditSignup, user.ID, client, now, map[string]string{"session_id": session.ID})); err != nil {
			return err
		}
		return tx.CreateSession(ctx, session)
	})
	switch {
	case errors.Is(err, ErrEmailTaken) && required:
		// The same answer as for a new address; the owner hears of it, at
		// most as often as the per-address mail limit allows.
		send, err := s.allowedMail(ctx, s.counter(ScopeMailTo, s.cfg.RateLimits.MailResend, email), "", client)
		if err != nil {
			return Tokens{}, err
		}
		if send {
			err = s.store.Atomically(ctx, func(tx Tx) error {
				return s.enqueue(ctx, tx, KindSignUpAttemptNotice, email, MailData{Email: email}, now)
			})
			if err != nil {
				return Tokens{}, internal(err)
			}
			s.mailWritten()
		}
		return Tokens{VerificationPending: true}, nil
	case errors.Is(err, ErrEmailTaken):
		return Tokens{}, &Error{Code: CodeEmailTaken, Message: "an account with this email already exists"}
	case err != nil:
		return Tokens{}, internal(err)
	}
	s.mailWritten()
	if required {
		return Tokens{VerificationPending: true}, nil
	}
	return s.issue(user, token, session.ExpiresAt, now)
}

// LogIn checks credentials and opens a session. It is throttled before any
// hash is computed (throttle.go). An unknown or malformed email is
// throttled alike, costs the same hash work as a wrong password and fails
// with the same error.
func (s *Service) LogIn(ctx context.Context, email, pw string, client Client) (Tokens, error) {
	normalised, _ := normaliseEmail(email) // "" when refused: then only the earlier rules' spelling is looked up
	user, hash, err := findAccount(ctx, s.store.FindCredentials, email, normalised)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Tokens{}, internal(err)
	}
	if normalised == "" {
		normalised = strings.ToLower(strings.TrimSpace(email))
	}
	hctx, try, err := s.admitLogin(ctx, accountOf(user.ID, normalised), user.ID, client)
	if err != nil {
		return Tokens{}, err
	}
	var ok, needsRehash bool
	if user.ID == "" {
		err = s.hasher.VerifyDummy(hctx, pw)
	} else {
		ok, needsRehash, err = s.hasher.Verify(hctx, pw, hash)
	}
	if err != nil {
		try.abort(ctx)
		return Tokens{}, hashError(err)
	}
	if !ok {
		s.authEvent(ctx, slog.LevelInfo, "login_failed", user.ID, client, "failure")
		// On its own: the attempt's throttle charge was committed before
		// the password check, and a failure changes nothing else.
		reason := "wrong_password"
		if user.ID == "" {
			reason = "unknown_account"
		}
		if err := s.audit(ctx, AuditLoginFailed, user.ID, client, map[string]string{"reason": reason}); err != nil {
			return Tokens{}, err
		}
		return Tokens{}, invalidLogin()
	}
	// Only someone who knows the password learns the account is disabled:
	// the hash was verified exactly as for any account, so a wrong password
	// still answers invalid_credentials in the same time.
	if user.DisabledAt != nil {
		try.succeeded(ctx)
		s.authEvent(ctx, slog.LevelInfo, "login_disabled", user.ID, client, "failure")
		if err := s.audit(ctx, AuditLoginFailed, user.ID, client, map[string]string{"reason": "account_disabled"}); err != nil {
			return Tokens{}, err
		}
		return Tokens{}, accountDisabled()
	}
	// Only someone who knows the password learns the address is unproved,
	// and gets a fresh link (the first may have expired or been lost), as
	// often as the per-account mail limit allows.
	if s.mail.Verification == VerificationRequired && !user.EmailVerified {
		try.succeeded(ctx)
		s.authEvent(ctx, slog.LevelInfo, "login_unverified", user.ID, client, "failure")
		if err := s.audit(ctx, AuditLoginFailed, user.ID, client, map[string]string{"reason": "email_unverified"}); err != nil {
			return Tokens{}, err
		}
		send, err := s.allowedMail(ctx, s.counter(ScopeMailResend, s.cfg.RateLimits.MailResend, user.ID), user.ID, client)
		if err != nil {
			return Tokens{}, err
		}
		if send {
			now := s.sessionTime()
			if err := s.store.Atomically(ctx, func(tx Tx) error { return s.issueVerification(ctx, tx, user, now) }); err != nil {
				return Tokens{}, internal(err)
			}
			s.mailWritten()
		}
		return Tokens{}, &Error{Code: CodeEmailUnverified, Message: "verify your email address first: follow the link mailed to it (a new one is on its way)"}
	}
	// Settled on its own, not in the session's transaction: that would hold
	// the counters' rows (shared by every login of the client) until the
	// commit, and 16 concurrent logins measured about 3 % slower that way.
	try.succeeded(ctx)
	now := s.sessionTime()
	if needsRehash {
		hash = s.rehash(hctx, user.ID, pw, hash, now)
	}
	session, token, err := s.newSession(user.ID, now, client)
	if err != nil {
		return Tokens{}, internal(err)
	}
	loggedIn := auditOf(AuditLoginSucceeded, user.ID, client, now, map[string]string{"method": "password", "session_id": session.ID})
	for tries := 1; ; tries++ {
		err = s.store.CreateSessionIfPassword(ctx, session, hash, loggedIn)
		if !errors.Is(err, ErrStaleCredentials) || tries == staleCredentialRetries {
			break
		}
		// The hash changed since it was checked: a racing login re-hashed it
		// (same password, new parameters) or the password was changed. The
		// login stands only if the password verifies against the new hash.
		if hash, err = s.recheck(hctx, user.ID, pw); err != nil {
			return Tokens{}, err
		}
	}
	if errors.Is(err, ErrStaleCredentials) {
		// No session is opened for a user disabled meanwhile (the statement
		// checks that too), nor when the password kept changing.
		if u, err := s.store.UserByID(ctx, user.ID); err == nil && u.DisabledAt != nil {
			if err := s.audit(ctx, AuditLoginFailed, user.ID, client, map[string]string{"reason": "account_disabled"}); err != nil {
				return Tokens{}, err
			}
			return Tokens{}, accountDisabled()
		}
		return Tokens{}, invalidLogin()
	}
	if err != nil {
		return Tokens{}, internal(err)
	}
	s.authEvent(ctx, slog.LevelInfo, "login_succeeded", user.ID, client, "success")
	return s.issue(user, token, session.ExpiresAt, now)
}

// staleCredentialRetries bounds how often a login re-reads a hash that
// changed under it; more than one change during one login is a password
// being changed in a loop, not re-hashing.
const staleCredentialRetries = 3

func invalidLogin() *Error {
	return &Error{Code: CodeInvalidCredentials, Message: "the email or password is incorrect"}
}

// recheck reads the user's hash again and returns it if pw still verifies.
func (s *Service) recheck(ctx context.Context, userID, pw string) (string, error) {
	hash, err := s.store.PasswordHashByID(ctx, userID)
	if errors.Is(err, ErrNotFound) {
		return "", invalidLogin() // deleted meanwhile
	}
	if err != nil {
		return "", internal(err)
	}
	ok, _, err := s.hasher.Verify(ctx, pw, hash)
	if err != nil {
		return "", hashError(err)
	}
	if !ok {
		return "", invalidLogin() // the password was changed
	}
	return hash, nil
}

// rehash upgrades a stored hash to the configured argon2 parameters and
// returns the hash now stored. It is best effort: the login has already
// succeeded and must not fail because of it, and it never overwrites a hash
// that a password change stored meanwhile.
func (s *Service) rehash(ctx context.Context, userID, password, oldHash string, now time.Time) string {
	hash, err := s.hasher.Hash(ctx, password)
	if err == nil {
		err = s.store.SwapPasswordHash(ctx, userID, hash, oldHash, now)
	}
	switch {
	case errors.Is(err, ErrStaleCredentials):
		// Another login of the same user re-hashed first (or the password
		// changed): nothing is wrong, and the caller re-checks the hash.
		s.log.DebugContext(ctx, "password rehash not needed: the stored hash changed meanwhile", "user_id", userID)
		return oldHash
	case err != nil:
		s.log.WarnContext(ctx, "password rehash skipped", "user_id", userID, "error", err)
		return oldHash
	}
	return hash
}

// reuseDetails are the details of every refresh_reuse_detected event; the
// store copies them before adding its own, so one map serves every refresh.
var reuseDetails = map[string]string{"reason": "reuse"}

// Refresh rotates a refresh token presented by client. The success path is
// one store statement.
func (s *Service) Refresh(ctx context.Context, presented string, client Client) (Tokens, error) {
	tok, ok := s.refresh.decode(presented)
	if !ok {
		return Tokens{}, invalidRefreshToken()
	}
	// Taken just before the statement: a retry of a refresh whose answer was
	// lost is judged against the rotation time the database stored, on the
	// same clock, however long the first attempt waited.
	now := s.sessionTime()
	req := RotateRequest{
		SessionID:  tok.sessionID.String(),
		SecretHash: tok.secretHash(),
		Generation: tok.generation,
		Now:        now,
		GraceStart: now.Add(-s.cfg.RefreshReuseGrace),
		IdleCutoff: now.Add(-s.cfg.RefreshIdleTTL),
	}
	if !s.cfg.RefreshGraceUnbound {
		req.Client = clientFingerprint(client)
	}
	// Written by the rotation statement itself, and only if it revokes the
	// session for reuse: a refresh writes no audit row otherwise.
	req.Reuse = auditOf(AuditRefreshReuse, "", client, now, reuseDetails)
	if s.sessionNow != nil && s.cfg.DBTimeout > 0 {
		// Only a reading of the database's clock can bound what the database
		// does; with the process clock alone there is no guard.
		req.NotAfter = now.Add(s.cfg.DBTimeout)
	}
	rot, err := s.store.RotateSession(ctx, req)
	if errors.Is(err, ErrNotFound) {
		return Tokens{}, s.explainRefreshFailure(ctx, tok, now)
	}
	if err != nil {
		return Tokens{}, internal(err)
	}
	if rot.Reused {
		s.authEvent(ctx, slog.LevelWarn, "refresh_reused", rot.User.ID, client, "session_revoked",
			slog.String("session_id", tok.sessionID.String()), slog.Int64("presented_generation", tok.generation), slog.Int64("live_generation", rot.Generation))
		return Tokens{}, reused()
	}
	tok.generation = rot.Generation
	return s.issue(rot.User, tok, rot.ExpiresAt, now)
}

func reused() *Error {
	return &Error{Code: CodeRefreshTokenReused, Message: "this refresh token was already used; the session has been revoked"}
}

// explainRefreshFailure runs only when rotation matched nothing, to pick the
// error code a client can act on.
func (s *Service) explainRefreshFailure(ctx context.Context, tok refreshToken, now time.Time) error {
	st, err := s.store.SessionState(ctx, tok.sessionID.String(), tok.secretHash())
	switch {
	case err != nil && !errors.Is(err, ErrNotFound):
		return internal(err)
	case !st.Exists:
		return invalidRefreshToken()
	case st.UserDisabled:
		return accountDisabled()
	case st.RevokeReason == "reuse":
		return reused()
	case st.RevokeReason != "":
		return invalidRefreshToken()
	case !now.Before(st.ExpiresAt) || !st.LastUsedAt.After(now.Add(-s.cfg.RefreshIdleTTL)):
		return &Error{Code: CodeSessionExpired, Message: "the session has expired; sign in again"}
	default:
		// A generation newer than the live one cannot be minted without the
		// server key; treat it like any other unusable token.
		return invalidRefreshToken()
	}
}

// LogOut ends the session a refresh token belongs to. It is idempotent and
// says nothing about whether the token was valid. Only a logout that ends a
// live session records session_ended (with the session, in one statement).
func (s *Service) LogOut(ctx context.Context, presented string, client Client) error {
	tok, ok := s.refresh.decode(presented)
	if !ok {
		return nil
	}
	now := s.sessionTime()
	event := auditOf(AuditSessionEnded, "", client, now, map[string]string{"reason": "logout", "session_id": tok.sessionID.String()})
	if err := s.store.RevokeSession(ctx, tok.sessionID.String(), tok.secretHash(), "logout", now, event); err != nil {
		return internal(err)
	}
	return nil
}

// Me returns the user an access token names, fresh from the store.
func (s *Service) Me(ctx context.Context, claims AccessClaims) (User, error) {
	user, err := s.store.UserByID(ctx, claims.Subject)
	if err != nil {
		return User{}, userError(err)
	}
	return user, nil
}

func (s *Service) newSession(userID string, now time.Time, client Client) (NewSession, refreshToken, error) {
	secret, err := newSessionSecret()
	if err != nil {
		return NewSession{}, refreshToken{}, err
	}
	tok := refreshToken{sessionID: uuid.New(), secret: secret}
	return NewSession{
		ID:         tok.sessionID.String(),
		UserID:     userID,
		SecretHash: tok.secretHash(),
		CreatedAt:  now,
		ExpiresAt:  now.Add(s.cfg.RefreshAbsoluteTTL),
		UserAgent:  printable(client.UserAgent, 512),
		IP:         printable(client.IP, 45),
	}, tok, nil
}

// issue mints the access token and encodes the refresh token of tok's
// generation. sessionNow is the session clock's reading of the decision just
// made; the access token's iat and exp follow the process clock, which is
// what verifiers compare them with.
func (s *Service) issue(user User, tok refreshToken, sessionExpiresAt, sessionNow time.Time) (Tokens, error) {
	access, err := s.mintAccessToken(user, tok.sessionID.String(), s.Now())
	if err != nil {
		return Tokens{}, internal(err)
	}
	// Never reported as 0 while the session is live (the schema says >= 1).
	refreshLife := max(min(sessionExpiresAt.Sub(sessionNow), s.cfg.RefreshIdleTTL).Round(time.Second), time.Second)
	return Tokens{
		AccessToken:      access,
		ExpiresIn:        s.cfg.AccessTTL,
		RefreshToken:     s.refresh.encode(tok),
		RefreshExpiresIn: refreshLife,
		SessionExpiresIn: max(sessionExpiresAt.Sub(sessionNow).Round(time.Second), time.Second),
		User:             user,
	}, nil
}

func hashError(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, password.ErrBusy) {
		return &Error{Code: CodeUnavailable, Message: "too many sign-ins in progress; retry shortly", cause: err}
	}
	return internal(err)
}

// printable makes a client-supplied header safe to store and show: valid
// UTF-8 (Postgres rejects anything else, and net/http passes bytes 0x80-0xFF
// through), no control, direction or invisible characters (invisible: a
// user agent needs none of them, and they can hide or reorder what the
// sessions list shows), at most n bytes.
func printable(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if invisible(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "")
	}
	return s
}
