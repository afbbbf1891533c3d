package identity

import (
	"context"
	"time"
)

// Mail records: the single-use tokens mailed to a user (verification,
// password reset, email change) and the outbox of mails waiting to be
// sent. Both join the transaction seam, so a mail is written in the same
// transaction as the token it carries and the change it announces: either
// all of it commits or none does.

// Mail token purposes. A token is only ever redeemed for its own purpose.
const (
	PurposeVerifyEmail   = "verify_email"
	PurposeResetPassword = "reset_password"
	PurposeChangeEmail   = "change_email"
)

// MailToken is a stored mail token: only the SHA-256 of its secret is kept.
type MailToken struct {
	Hash    []byte
	Purpose string
	UserID  string
	// Email is the address the token proves: the account's address for
	// verification and reset, the new address for an email change.
	Email string
	// State binds the token to the user's state when it was issued (a
	// digest of the password hash and the address): a password change or
	// an email change voids every token issued before it.
	State     []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

// MailTokens keeps mail tokens.
type MailTokens interface {
	// CreateMailToken stores t.
	CreateMailToken(ctx context.Context, t MailToken) error
	// UseMailToken marks the token with this hash and purpose used at now
	// and returns it, if it is unused and unexpired at now; ErrNotFound
	// otherwise (unknown, used, expired or of another purpose: one answer).
	// Inside a transaction the mark is undone when the transaction is.
	UseMailToken(ctx context.Context, hash []byte, purpose string, now time.Time) (MailToken, error)
	// PurgeMailTokens deletes up to batch tokens that expired or were used
	// before before.
	PurgeMailTokens(ctx context.Context, before time.Time, batch int) (int64, error)
}

// OutboxMail is one mail waiting in the outbox. Payload is sealed with the
// server secret: it may carry a token, which the database must never hold
// in a usable form. It is wiped once the mail is sent or given up.
type OutboxMail struct {
	ID        string
	Kind      string // the template
	Recipient string
	Payload   []byte
	CreatedAt time.Time
	Attempts  int
	// Claim identifies one sender's lease of the row: only the holder of
	// the current claim may mark it sent or failed.
	Claim string
}

// Outbox keeps mails until a sender delivers them.
type Outbox interface {
	// EnqueueMail stores m, due at once.
	EnqueueMail(ctx context.Context, m OutboxMail) error
	// ClaimMail leases up to batch due mails (not sent, not failed, not
	// leased by another sender at now) to claim until now+lease, counting
	// an attempt for each. On PostgreSQL rows other senders hold locked are
	// skipped (SKIP LOCKED), so every replica can run a sender.
	ClaimMail(ctx context.Context, claim string, now time.Time, lease time.Duration, batch int) ([]OutboxMail, error)
	// RenewMailClaim extends the claim's lease on one mail to until, just
	// before it is sent; ErrNotFound when the claim was lost (the lease ran
	// out and another sender took the mail), and then it must not be sent.
	RenewMailClaim(ctx context.Context, id, claim string, until time.Time) error
	// MarkMailSent records delivery and wipes the payload; ErrNotFound when
	// the claim was lost (the lease ran out and another sender took it).
	MarkMailSent(ctx context.Context, id, claim string, at time.Time) error
	// RetryMail releases the claim and makes the mail due again at
	// notBefore; ErrNotFound when the claim was lost.
	RetryMail(ctx context.Context, id, claim string, notBefore time.Time, lastError string) error
	// FailMail gives the mail up (a permanent refusal, or too many
	// attempts) and wipes the payload; ErrNotFound when the claim was lost.
	FailMail(ctx context.Context, id, claim string, at time.Time, lastError string) error
	// PurgeMail deletes up to batch mails sent or given up before before.
	PurgeMail(ctx context.Context, before time.Time, batch int) (int64, error)
}
