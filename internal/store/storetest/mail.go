package storetest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
)

func mailToken(userID, email, purpose string, created time.Time, ttl time.Duration) identity.MailToken {
	h := sha256.Sum256([]byte(uuid.NewString()))
	state := sha256.Sum256([]byte("state"))
	return identity.MailToken{Hash: h[:], Purpose: purpose, UserID: userID, Email: email, State: state[:],
		CreatedAt: created, ExpiresAt: created.Add(ttl)}
}

func testEmailOwnership(t *testing.T, s Store) {
	ctx := context.Background()
	f := create(t, s, "owner@example.com")
	u, err := s.UserByID(ctx, f.user.ID)
	require.NoError(t, err)
	assert.False(t, u.EmailVerified, "a new account has not proved its address")

	assert.ErrorIs(t, s.MarkEmailVerified(ctx, f.user.ID, "someone-else@example.com", t0), identity.ErrNotFound,
		"a proof of another address proves nothing")
	require.NoError(t, s.MarkEmailVerified(ctx, f.user.ID, "OWNER@example.com", t0))
	u, err = s.UserByID(ctx, f.user.ID)
	require.NoError(t, err)
	assert.True(t, u.EmailVerified)
	u, _, err = s.FindCredentials(ctx, "owner@example.com")
	require.NoError(t, err)
	assert.True(t, u.EmailVerified)
	rot, err := rotate(s, f, 0, t0.Add(time.Second))
	require.NoError(t, err)
	assert.True(t, rot.User.EmailVerified, "a refresh carries it into the new token")

	// Changing the address: the old one must still be the user's, the new
	// one free; the new address counts as proved.
	g := create(t, s, "taken@example.com")
	assert.ErrorIs(t, s.ChangeEmail(ctx, f.user.ID, "owner@example.com", "TAKEN@example.com", t0), identity.ErrEmailTaken)
	assert.ErrorIs(t, s.ChangeEmail(ctx, f.user.ID, "stale@example.com", "new@example.com", t0), identity.ErrNotFound)
	require.NoError(t, s.ChangeEmail(ctx, f.user.ID, "owner@example.com", "new@example.com", t0))
	u, err = s.UserByID(ctx, f.user.ID)
	require.NoError(t, err)
	assert.Equal(t, "new@example.com", u.Email)
	assert.True(t, u.EmailVerified)
	_, _, err = s.FindCredentials(ctx, "owner@example.com")
	assert.ErrorIs(t, err, identity.ErrNotFound, "the old address is free")

	// EndAllSessions ends every session of that user and no other's.
	extra := addSession(t, s, f.user.ID, t0)
	ended, err := s.EndAllSessions(ctx, f.user.ID, "password_change", t0.Add(time.Minute))
	require.NoError(t, err)
	assert.EqualValues(t, 2, ended, "it counts the sessions it ended")
	assert.Equal(t, "password_change", revokeReason(t, s, f.session))
	assert.Equal(t, "password_change", revokeReason(t, s, extra))
	assert.Empty(t, revokeReason(t, s, g.session))
}

func testMailTokens(t *testing.T, s Store) {
	ctx := context.Background()
	f := create(t, s, "tokens@example.com")
	tok := mailToken(f.user.ID, f.user.Email, identity.PurposeResetPassword, t0, 30*time.Minute)
	require.NoError(t, s.CreateMailToken(ctx, tok))

	_, err := s.UseMailToken(ctx, tok.Hash, identity.PurposeVerifyEmail, t0.Add(time.Minute))
	assert.ErrorIs(t, err, identity.ErrNotFound, "a token is only good for its purpose")
	_, err = s.UseMailToken(ctx, tok.Hash, identity.PurposeResetPassword, t0.Add(30*time.Minute))
	assert.ErrorIs(t, err, identity.ErrNotFound, "expired at its expiry")

	// Used inside a transaction that fails: still unused.
	boom := assert.AnError
	err = s.Atomically(ctx, func(tx identity.Tx) error {
		_, err := tx.UseMailToken(ctx, tok.Hash, identity.PurposeResetPassword, t0.Add(time.Minute))
		require.NoError(t, err)
		return boom
	})
	require.ErrorIs(t, err, boom)

	got, err := s.UseMailToken(ctx, tok.Hash, identity.PurposeResetPassword, t0.Add(time.Minute))
	require.NoError(t, err)
	assert.Equal(t, tok.UserID, got.UserID)
	assert.Equal(t, tok.Email, got.Email)
	assert.Equal(t, tok.State, got.State)
	assert.True(t, tok.ExpiresAt.Equal(got.ExpiresAt))
	_, err = s.UseMailToken(ctx, tok.Hash, identity.PurposeResetPassword, t0.Add(2*time.Minute))
	assert.ErrorIs(t, err, identity.ErrNotFound, "single use")

	// Redemptions racing each other: exactly one wins.
	racy := mailToken(f.user.ID, f.user.Email, identity.PurposeVerifyEmail, t0, time.Hour)
	require.NoError(t, s.CreateMailToken(ctx, racy))
	var mu sync.Mutex
	wins := 0
	race(8, func(int) {
		if _, err := s.UseMailToken(ctx, racy.Hash, identity.PurposeVerifyEmail, t0.Add(time.Minute)); err == nil {
			mu.Lock()
			wins++
			mu.Unlock()
		} else {
			assert.ErrorIs(t, err, identity.ErrNotFound)
		}
	})
	assert.Equal(t, 1, wins)
}

func testMailTokenPurge(t *testing.T, s Store) {
	ctx := context.Background()
	f := create(t, s, "purge-tokens@example.com")
	expired := mailToken(f.user.ID, f.user.Email, identity.PurposeVerifyEmail, t0, time.Hour)
	used := mailToken(f.user.ID, f.user.Email, identity.PurposeVerifyEmail, t0, 48*time.Hour)
	live := mailToken(f.user.ID, f.user.Email, identity.PurposeVerifyEmail, t0, 48*time.Hour)
	for _, tok := range []identity.MailToken{expired, used, live} {
		require.NoError(t, s.CreateMailToken(ctx, tok))
	}
	_, err := s.UseMailToken(ctx, used.Hash, identity.PurposeVerifyEmail, t0.Add(time.Minute))
	require.NoError(t, err)
	n, err := s.PurgeMailTokens(ctx, t0.Add(2*time.Hour), 100)
	require.NoError(t, err)
	assert.EqualValues(t, 2, n, "the expired and the used one")
	_, err = s.UseMailToken(ctx, live.Hash, identity.PurposeVerifyEmail, t0.Add(3*time.Hour))
	assert.NoError(t, err, "the live one stays")
}

func outboxMail(recipient string, at time.Time) identity.OutboxMail {
	return identity.OutboxMail{ID: uuid.NewString(), Kind: "verify_email", Recipient: recipient, Payload: []byte("sealed"), CreatedAt: at}
}

func testOutbox(t *testing.T, s Store) {
	ctx := context.Background()
	a, b := outboxMail("a@example.com", t0), outboxMail("b@example.com", t0.Add(time.Second))
	require.NoError(t, s.EnqueueMail(ctx, a))
	require.NoError(t, s.EnqueueMail(ctx, b))

	// Not due before it was created.
	got, err := s.ClaimMail(ctx, "early", t0.Add(-time.Second), time.Minute, 10)
	require.NoError(t, err)
	assert.Empty(t, got)

	got, err = s.ClaimMail(ctx, "one", t0.Add(2*time.Second), time.Minute, 1)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, a.ID, got[0].ID, "oldest first")
	assert.Equal(t, []byte("sealed"), got[0].Payload)
	assert.Equal(t, 1, got[0].Attempts)
	assert.Equal(t, "one", got[0].Claim)

	// Leased: nobody else gets it until the lease runs out.
	got, err = s.ClaimMail(ctx, "two", t0.Add(3*time.Second), 7*time.Minute, 10)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, b.ID, got[0].ID)

	// Only the holder may renew its lease, and a renewed lease keeps others off.
	assert.ErrorIs(t, s.RenewMailClaim(ctx, a.ID, "two", t0.Add(time.Hour)), identity.ErrNotFound)
	require.NoError(t, s.RenewMailClaim(ctx, a.ID, "one", t0.Add(8*time.Minute)))
	got, err = s.ClaimMail(ctx, "other", t0.Add(7*time.Minute+10*time.Second), time.Minute, 10)
	require.NoError(t, err)
	require.Len(t, got, 1, "b's lease ran out, a's was renewed")
	assert.Equal(t, b.ID, got[0].ID)
	assert.ErrorIs(t, s.RenewMailClaim(ctx, b.ID, "two", t0.Add(9*time.Minute)), identity.ErrNotFound,
		"b was taken by another sender: its first one must not send it")
	require.NoError(t, s.RetryMail(ctx, b.ID, "other", t0.Add(10*time.Minute), "released"))

	// The holder retries later; a stale claim changes nothing.
	assert.ErrorIs(t, s.RetryMail(ctx, a.ID, "two", t0.Add(time.Hour), "x"), identity.ErrNotFound)
	require.NoError(t, s.RetryMail(ctx, a.ID, "one", t0.Add(10*time.Minute), "421 try later"))
	got, err = s.ClaimMail(ctx, "three", t0.Add(5*time.Minute), time.Minute, 10)
	require.NoError(t, err)
	assert.Empty(t, got, "neither is due before its retry time")
	got, err = s.ClaimMail(ctx, "three", t0.Add(10*time.Minute), time.Minute, 10)
	require.NoError(t, err)
	require.Len(t, got, 2, "both are due again")
	claimed := map[string]identity.OutboxMail{got[0].ID: got[0], got[1].ID: got[1]}
	assert.Equal(t, 2, claimed[a.ID].Attempts)
	assert.Equal(t, 3, claimed[b.ID].Attempts, "claimed by two, other and three")

	// Sent and failed mails are never claimed again.
	assert.ErrorIs(t, s.MarkMailSent(ctx, b.ID, "two", t0), identity.ErrNotFound, "b's first claim was lost")
	require.NoError(t, s.MarkMailSent(ctx, a.ID, "three", t0.Add(11*time.Minute)))
	require.NoError(t, s.FailMail(ctx, b.ID, "three", t0.Add(11*time.Minute), "550 no such user"))
	assert.ErrorIs(t, s.MarkMailSent(ctx, a.ID, "three", t0), identity.ErrNotFound, "sent once")
	got, err = s.ClaimMail(ctx, "four", t0.Add(24*time.Hour), time.Minute, 10)
	require.NoError(t, err)
	assert.Empty(t, got)

	n, err := s.PurgeMail(ctx, t0.Add(12*time.Minute), 100)
	require.NoError(t, err)
	assert.EqualValues(t, 2, n)
}

// testRacingClaims: senders on several replicas claiming at once never
// take the same mail.
func testRacingClaims(t *testing.T, s Store) {
	ctx := context.Background()
	const mails = 40
	for i := range mails {
		require.NoError(t, s.EnqueueMail(ctx, outboxMail(fmt.Sprintf("r%d@example.com", i), t0)))
	}
	var mu sync.Mutex
	seen := map[string]string{}
	race(6, func(i int) {
		claim := fmt.Sprintf("sender-%d", i)
		for {
			got, err := s.ClaimMail(ctx, claim, t0.Add(time.Second), time.Minute, 3)
			require.NoError(t, err)
			if len(got) == 0 {
				return
			}
			mu.Lock()
			for _, m := range got {
				assert.Empty(t, seen[m.ID], "mail %s claimed by %s and %s", m.ID, seen[m.ID], claim)
				seen[m.ID] = claim
			}
			mu.Unlock()
		}
	})
	assert.Len(t, seen, mails)
}
