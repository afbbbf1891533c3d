package identity

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/lanyard-id/lanyard/internal/password"
)

// Throttling: failure counters kept in the database, so every replica
// enforces one limit. An attempt is charged against its counters BEFORE any
// password is hashed (a charge is one upsert); an attempt that finds a
// counter blocked is refused with 429 and costs no hash. Charging first,
// rather than counting failures afterwards, is what keeps a burst of
// concurrent guesses within the limit: each one takes its place in the
// count before it may hash. An attempt that turns out well is refunded.

// Throttle scopes: what a counter counts.
const (
	ScopeLoginAccountIP = "login_account_ip" // failed logins (and current-password checks) of one account from one client
	ScopeLoginIP        = "login_ip"         // failed logins of one client across accounts (password spraying)
	ScopeLoginAccount   = "login_account"    // failed logins of one account from everywhere (the NIST ceiling)
	ScopeSignUpIP       = "signup_ip"        // sign-ups of one client
	ScopeForgotEmail    = "forgot_email"     // password-reset mails asked for one address
	ScopeForgotIP       = "forgot_ip"        // password-reset mails asked by one client
	ScopeMailResend     = "mail_resend"      // mails one account asked for (verification again, email change)
	ScopeMailTo         = "mail_to"          // unasked-for mails to one address (email change confirmations, sign-up notices)
)

// ThrottleCounter names one counter and the rule it is charged under.
type ThrottleCounter struct {
	Scope string
	// Key is an HMAC-SHA-256 of the normalised account and/or client
	// address: nothing stored reveals an email or an IP.
	Key    []byte
	Limit  int64 // attempts admitted per window
	Window time.Duration
}

// Throttles keeps the failure counters.
//
// A counter admits Limit attempts per Window (the window opens with its
// first attempt). The attempt that reaches the limit blocks the counter
// until the window ends; after that, while no full window has passed
// quietly since the last block, each further attempt is admitted alone and
// blocks the counter again for a delay that doubles each time, from the
// window up to maxDelay: an escalating delay, never a permanent lock.
type Throttles interface {
	// ChargeThrottles counts one attempt against every counter in a single
	// statement, each unless it is blocked at now, and reports which ones it
	// charged (in the order given). Blocked counters are left unchanged.
	ChargeThrottles(ctx context.Context, counters []ThrottleCounter, now time.Time, maxDelay time.Duration) ([]bool, error)
	// ThrottleBlocks returns when each counter's block ends (the zero time
	// when it has none or is not stored).
	ThrottleBlocks(ctx context.Context, counters []ThrottleCounter) ([]time.Time, error)
	// SettleThrottles, in one statement, resets cleared to no failures and
	// no block (a successful login clears its account's counters) and takes
	// one charge back from each of refunded (an attempt that was not a
	// failure), lifting the block and the escalation that charge set.
	SettleThrottles(ctx context.Context, cleared, refunded []ThrottleCounter) error
	// PurgeThrottles deletes up to batch counters that no longer matter at
	// now (their window and any block, plus one quiet window, are over).
	PurgeThrottles(ctx context.Context, now time.Time, batch int) (int64, error)
}

// RateLimit is one rule: Max attempts per Window; Max 0 turns it off.
type RateLimit struct {
	Max    int
	Window time.Duration
}

// RateLimits are the LANYARD_RATE_LIMIT_* settings.
type RateLimits struct {
	LoginAccountIP RateLimit // default 10 per 15 min
	LoginIP        RateLimit // default 30 per 15 min
	LoginAccount   RateLimit // default 100 per hour
	SignUpIP       RateLimit // default 20 per hour
	ForgotEmail    RateLimit // default 5 per hour
	ForgotIP       RateLimit // default 20 per hour
	MailResend     RateLimit // default 5 per hour
	// MaxDelay caps the escalating delay.
	MaxDelay time.Duration
}

// DefaultRateLimits are the contract's defaults.
func DefaultRateLimits() RateLimits {
	return RateLimits{
		LoginAccountIP: RateLimit{Max: 10, Window: 15 * time.Minute},
		LoginIP:        RateLimit{Max: 30, Window: 15 * time.Minute},
		LoginAccount:   RateLimit{Max: 100, Window: time.Hour},
		SignUpIP:       RateLimit{Max: 20, Window: time.Hour},
		ForgotEmail:    RateLimit{Max: 5, Window: time.Hour},
		ForgotIP:       RateLimit{Max: 20, Window: time.Hour},
		MailResend:     RateLimit{Max: 5, Window: time.Hour},
		MaxDelay:       4 * time.Hour,
	}
}

// Throttled is the cause of a rate_limited error: which rule refused the
// attempt and when it could pass.
type Throttled struct {
	Scope      string
	RetryAfter time.Duration
}

func (t *Throttled) Error() string {
	return fmt.Sprintf("throttled by %s for %s", t.Scope, t.RetryAfter)
}

// throttleKeys derives the counters' HMAC key from LANYARD_SECRET, so every
// replica computes the same keys and the database alone cannot reverse them.
func throttleKeys(secret []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, secret, nil, "lanyard throttle key v1", sha256.Size)
}

// counterKey is the HMAC of length-prefixed parts, so no pair of parts
// reads as another.
func (s *Service) counterKey(parts ...string) []byte {
	mac := hmac.New(sha256.New, s.throttleKey)
	for _, p := range parts {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		mac.Write(n[:])
		mac.Write([]byte(p))
	}
	return mac.Sum(nil)
}

// clientAddress normalises a client IP for counting: an IPv6 client is its
// /64, since one subscriber gets a whole /64 and could otherwise rotate
// addresses within it to escape every per-address limit.
func clientAddress(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return addr.String()
	}
	prefix, _ := addr.Prefix(64) // cannot fail for IPv6
	return prefix.String()
}

// counter is the counter of scope for the given account and/or address
// under rule, or none when the rule is off.
func (s *Service) counter(scope string, rule RateLimit, parts ...string) []ThrottleCounter {
	if rule.Max <= 0 {
		return nil // nothing hashed for a rule that is off
	}
	return limited(s.counterOf(scope, parts...), rule)
}

// limited is c under rule (which is on).
func limited(c ThrottleCounter, rule RateLimit) []ThrottleCounter {
	c.Limit, c.Window = int64(rule.Max), rule.Window
	return []ThrottleCounter{c}
}

// AccountKeyPrefix is how many leading bytes of a counter's key that
// counts one account from one client depend on the account alone. Deleting
// the account then finds every such counter by that prefix without knowing
// the clients (a ThrottleCounter whose Key is that short names them all).
const AccountKeyPrefix = sha256.Size / 2

// accountClientCounter is the counter of scope for account from the client
// address addr: the account's prefix, then the pair's own HMAC, each cut to
// 128 bits (still far beyond any chance collision between counters).
func (s *Service) accountClientCounter(scope, account, addr string) ThrottleCounter {
	key := append(s.accountClientCounters(scope, account).Key, s.counterKey(scope, account, addr)[:sha256.Size-AccountKeyPrefix]...)
	return ThrottleCounter{Scope: scope, Key: key}
}

// accountClientCounters names every counter of scope for account, whatever
// the client (what deleting the account removes).
func (s *Service) accountClientCounters(scope, account string) ThrottleCounter {
	return ThrottleCounter{Scope: scope, Key: s.counterKey(scope, account)[:AccountKeyPrefix]}
}

// counterOf names the counter of scope for the given parts (what deleting
// an account removes), whatever its rule.
func (s *Service) counterOf(scope string, parts ...string) ThrottleCounter {
	return ThrottleCounter{Scope: scope, Key: s.counterKey(append([]string{scope}, parts...)...)}
}

// emailChangeResend tells the email-change mails' per-account counter from
// the verification resend's in ScopeMailResend.
const emailChangeResend = "email-change"

// loginCounters are the counters of a password check of account (a user
// id, or an email nobody has) from client.
func (s *Service) loginCounters(account string, client Client) (perClient, others []ThrottleCounter) {
	addr := clientAddress(client.IP)
	l := s.cfg.RateLimits
	if l.LoginAccountIP.Max > 0 {
		perClient = limited(s.accountClientCounter(ScopeLoginAccountIP, account, addr), l.LoginAccountIP)
	}
	others = append(s.counter(ScopeLoginIP, l.LoginIP, addr), s.counter(ScopeLoginAccount, l.LoginAccount, account)...)
	return perClient, others
}

// accountOf names an account for its counters: by user id when it exists
// (a login and a password change then share them), else by the email
// asked for, so unknown emails are throttled exactly like known ones.
func accountOf(userID, email string) string {
	if userID != "" {
		return "user:" + userID
	}
	return "email:" + email
}

// attempt is a charged password check. A failure leaves the charge as it
// is; succeeded or abort settles it otherwise.
type attempt struct {
	s         *Service
	perClient []ThrottleCounter // cleared by a success
	others    []ThrottleCounter // refunded by a success
}

// admitLogin charges a password check of account from client, or returns
// the rate_limited error when a counter is blocked. The returned context
// carries the client as the hasher's fairness key.
func (s *Service) admitLogin(ctx context.Context, account, userID string, client Client) (context.Context, *attempt, error) {
	perClient, others := s.loginCounters(account, client)
	a := &attempt{s: s, perClient: perClient, others: others}
	if err := s.charge(ctx, a.counters(), userID, client); err != nil {
		return ctx, nil, err
	}
	return hashingFor(ctx, client), a, nil
}

// counters are all the attempt charged.
func (a *attempt) counters() []ThrottleCounter {
	return append(slices.Clone(a.perClient), a.others...)
}

// hashingFor tells the hasher whose hash this is, so one client cannot
// hold every slot while others wait.
func hashingFor(ctx context.Context, client Client) context.Context {
	return password.WithClientKey(ctx, clientAddress(client.IP))
}

// succeeded clears the account's counters (for this client, and the
// account-wide one: NIST SP 800-63B-4 limits *consecutive* failures) and
// takes the charge back from the client-wide one: a success is not a
// failure, but one client's success (an attacker's own account) must not
// reset its spraying count.
func (a *attempt) succeeded(ctx context.Context) {
	cleared := slices.Clone(a.perClient)
	var refunded []ThrottleCounter
	for _, c := range a.others {
		if c.Scope == ScopeLoginAccount {
			cleared = append(cleared, c)
		} else {
			refunded = append(refunded, c)
		}
	}
	a.s.settle(ctx, cleared, refunded)
}

// abort takes back the whole charge: the check never ran (no hash slot,
// database away), so it says nothing about the password.
func (a *attempt) abort(ctx context.Context) {
	a.s.settle(ctx, nil, a.counters())
}

// settle is best effort: the answer does not depend on it, and a counter
// left too high only expires later.
func (s *Service) settle(ctx context.Context, cleared, refunded []ThrottleCounter) {
	if len(cleared)+len(refunded) == 0 {
		return
	}
	if err := s.store.SettleThrottles(ctx, cleared, refunded); err != nil {
		s.log.WarnContext(ctx, "throttle counters not settled", "error", err)
	}
}

// charge counts one attempt against counters, or refuses it: rate_limited
// with the time until every blocking counter lets it pass.
func (s *Service) charge(ctx context.Context, counters []ThrottleCounter, userID string, client Client) error {
	if len(counters) == 0 {
		return nil
	}
	now := s.sessionTime()
	charged, err := s.store.ChargeThrottles(ctx, counters, now, s.cfg.RateLimits.MaxDelay)
	if err != nil {
		return internal(err)
	}
	var refund, blocked []ThrottleCounter
	for i, c := range counters {
		if charged[i] {
			refund = append(refund, c)
		} else {
			blocked = append(blocked, c)
		}
	}
	if len(blocked) == 0 {
		return nil
	}
	ends, err := s.store.ThrottleBlocks(ctx, blocked)
	if err != nil {
		s.settle(ctx, nil, refund)
		return internal(err)
	}
	t := &Throttled{Scope: blocked[0].Scope, RetryAfter: time.Second}
	longest := 0
	for i, end := range ends {
		if wait := end.Sub(now); wait > t.RetryAfter {
			t.Scope, t.RetryAfter, longest = blocked[i].Scope, wait, i
		}
	}
	s.authEvent(ctx, slog.LevelWarn, "throttled", userID, client, "blocked", slog.String("scope", t.Scope), slog.Duration("retry_after", t.RetryAfter))
	// The attempt does not happen, so it must not count anywhere: the
	// charge is taken back, and the refusal recorded, in one transaction
	// (best effort, like settle: the answer does not depend on it). Only
	// the first refusal of a block is recorded (per replica): a flood of
	// refused requests must not flood the audit trail, nor push a user's
	// real events out of their last 50.
	if !s.throttled.first(blocked[longest], ends[longest]) {
		s.settle(ctx, nil, refund)
		return &Error{Code: CodeRateLimited, Message: "too many attempts; retry later", cause: t}
	}
	event := auditOf(AuditThrottled, userID, client, now, map[string]string{
		"scope": t.Scope, "retry_after": strconv.FormatInt(int64(t.RetryAfter.Round(time.Second)/time.Second), 10)})
	err = s.store.Atomically(ctx, func(tx Tx) error {
		if len(refund) > 0 {
			if err := tx.SettleThrottles(ctx, nil, refund); err != nil {
				return err
			}
		}
		return tx.AppendAudit(ctx, event)
	})
	if err != nil {
		s.log.WarnContext(ctx, "throttle counters not settled, refusal not recorded", "error", err)
	}
	return &Error{Code: CodeRateLimited, Message: "too many attempts; retry later", cause: t}
}

// throttlePurgeBatch bounds one DELETE of stale counters.
const throttlePurgeBatch = 1000

// PurgeThrottles deletes counters that no longer matter, in bounded
// batches, and reports how many went. Safe to run on every replica at once.
func (s *Service) PurgeThrottles(ctx context.Context) (int64, error) {
	now := s.sessionTime()
	var total int64
	for {
		n, err := s.store.PurgeThrottles(ctx, now, throttlePurgeBatch)
		total += n
		if err != nil || n < throttlePurgeBatch || ctx.Err() != nil {
			return total, err
		}
	}
}

// authEvent logs a security event: one message for all of them, the event's
// name, the user id when known (never the email, nor any secret), the
// client's IP and the outcome.
func (s *Service) authEvent(ctx context.Context, level slog.Level, event, userID string, client Client, outcome string, attrs ...slog.Attr) {
	all := append([]slog.Attr{
		slog.String("event", event),
		slog.String("user_id", userID),
		slog.String("client_ip", client.IP),
		slog.String("outcome", outcome),
	}, attrs...)
	s.log.LogAttrs(ctx, level, "auth event", all...)
}
