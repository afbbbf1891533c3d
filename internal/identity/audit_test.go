package identity_test

import (
	"cmp"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/testdb"
	"github.com/lanyard-id/lanyard/internal/tokentest"
	"github.com/lanyard-id/lanyard/keys"
)

// keyEvents returns the key events, oldest first.
func keyEvents(t *testing.T, st identity.AuditLog) []identity.AuditEvent {
	t.Helper()
	var out []identity.AuditEvent
	for _, typ := range []string{identity.AuditKeyRotated, identity.AuditKeyRevoked} {
		events, err := st.ListAudit(context.Background(), identity.AuditQuery{Type: typ, Limit: 100})
		require.NoError(t, err)
		out = append(out, events...)
	}
	// Oldest first, by id.
	slices.SortFunc(out, func(a, b identity.AuditEvent) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// TestKeyAuditEvents: `lanyard keys rotate|revoke` (an administrator) and
// the maintenance loop (the system) record every key published, every key
// that starts signing and every revocation, in the transaction of the
// change; a refused revocation records nothing.
func TestKeyAuditEvents(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			st := testdb.Open(t, d)
			seal := sealer(t)
			t0 := identity.Now()
			ring, _, err := identity.LoadKeyRing(ctx, st, seal, keys.ES256, t0)
			require.NoError(t, err)
			a := ring.Ring().SigningKeyID()
			assert.Empty(t, keyEvents(t, st), "the first key is no rotation")

			// Manual rotation: a next key is published now, and the
			// maintenance loop lets it sign after the lead.
			require.NoError(t, ring.Rotate(ctx, st, seal, policy, t0.Add(time.Minute), false))
			events := keyEvents(t, st)
			require.Len(t, events, 1)
			assert.Equal(t, identity.AuditKeyRotated, events[0].Type)
			assert.Equal(t, identity.ActorAdmin, events[0].Actor)
			assert.Equal(t, "published", events[0].Details["stage"])
			assert.Equal(t, "manual", events[0].Details["trigger"])
			b := events[0].Details["kid"]
			require.NotEmpty(t, b)
			assert.NotEqual(t, a, b)
			_, err = ring.Maintain(ctx, st, seal, policy, t0.Add(time.Minute+policy.PublicationLead))
			require.NoError(t, err)
			require.Equal(t, b, ring.Ring().SigningKeyID())
			events = keyEvents(t, st)
			require.Len(t, events, 2)
			assert.Equal(t, identity.ActorSystem, events[1].Actor)
			assert.Equal(t, map[string]string{"kid": b, "alg": "ES256", "previous_kid": a, "stage": "signing"}, events[1].Details)

			// A refused revocation records nothing; a revocation records one
			// event (and the successor that takes over signing).
			_, err = ring.Revoke(ctx, st, seal, policy, "no-such-kid", t0.Add(time.Hour))
			require.ErrorIs(t, err, identity.ErrNotFound)
			assert.Len(t, keyEvents(t, st), 2)
			_, err = ring.Revoke(ctx, st, seal, policy, b, t0.Add(time.Hour))
			require.NoError(t, err)
			events = keyEvents(t, st)
			require.Len(t, events, 5, "published, signing, revoked")
			assert.Equal(t, "revocation", events[2].Details["trigger"])
			assert.Equal(t, "signing", events[3].Details["stage"])
			assert.Equal(t, identity.AuditKeyRevoked, events[4].Type)
			assert.Equal(t, map[string]string{"kid": b, "previous_state": identity.KeyStateCurrent}, events[4].Details)
			for _, e := range events {
				assert.Empty(t, e.UserID)
				assert.Empty(t, e.IP)
				for _, v := range e.Details {
					assert.NotContains(t, v, "BEGIN", "no key material")
				}
			}
			_, err = ring.Revoke(ctx, st, seal, policy, b, t0.Add(2*time.Hour))
			require.ErrorIs(t, err, identity.ErrKeyRevoked)
			assert.Len(t, keyEvents(t, st), 5, "revoking again records nothing")
		})
	}
}

// TestPurgeAudit: the retention job deletes every event older than the
// retention, however many batches that takes, and nothing newer.
func TestPurgeAudit(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := testdb.Open(t, d)
			clk := tokentest.NewClock(identity.Now())
			svc := newService(t, st, st, clk.Now, newSecret())
			retention := 90 * 24 * time.Hour
			old := clk.Now().Add(-retention - time.Second)
			// 1005 events, in transactions small enough for the store's
			// operation deadline on a loaded machine.
			for batch := range 5 {
				require.NoError(t, st.Atomically(ctx, func(tx identity.Tx) error {
					for i := batch * 201; i < (batch+1)*201; i++ {
						if err := tx.AppendAudit(ctx, identity.AuditEvent{At: old.Add(-time.Duration(i) * time.Minute), Type: identity.AuditLoginFailed,
							UserID: "old", Actor: identity.ActorUser}); err != nil {
							return err
						}
					}
					return nil
				}))
			}
			for _, at := range []time.Time{clk.Now().Add(-retention + time.Second), clk.Now()} {
				require.NoError(t, st.AppendAudit(ctx, identity.AuditEvent{At: at, Type: identity.AuditLoginFailed, UserID: "new", Actor: identity.ActorUser}))
			}
			n, err := svc.PurgeAudit(ctx, retention)
			require.NoError(t, err)
			assert.Equal(t, int64(1005), n, "more than one batch")
			left, err := st.ListAudit(ctx, identity.AuditQuery{Limit: 1000})
			require.NoError(t, err)
			require.Len(t, left, 2)
			for _, e := range left {
				assert.Equal(t, "new", e.UserID)
			}
		})
	}
}

// TestAuditRequiredVerification: with verification required, a sign-up is
// recorded as pending (no session), and a right password on an unproved
// address as a failed login; a refused sign-up (address taken) records
// nothing.
func TestAuditRequiredVerification(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := testdb.Open(t, d)
			clk := tokentest.NewClock(identity.Now())
			cfg := testConfig
			cfg.Mail.Verification = identity.VerificationRequired
			svc := newServiceWith(t, cfg, st, st, clk.Now, newSecret())
			client := identity.Client{UserAgent: "Req/1.0", IP: "2001:db8::7"}
			tk, err := svc.SignUp(ctx, identity.SignUpInput{Email: "pending@example.com", Password: pw}, client)
			require.NoError(t, err)
			require.True(t, tk.VerificationPending)
			tk, err = svc.SignUp(ctx, identity.SignUpInput{Email: "pending@example.com", Password: pw}, client)
			require.NoError(t, err, "the same answer for a taken address")
			require.True(t, tk.VerificationPending)
			_, err = svc.LogIn(ctx, "pending@example.com", pw, client)
			assert.Equal(t, identity.CodeEmailUnverified, code(err))

			events, err := st.ListAudit(ctx, identity.AuditQuery{Limit: 100})
			require.NoError(t, err)
			require.Len(t, events, 2, "one sign-up, one failed login; nothing for the refused sign-up")
			assert.Equal(t, identity.AuditLoginFailed, events[0].Type)
			assert.Equal(t, "email_unverified", events[0].Details["reason"])
			assert.Equal(t, identity.AuditSignup, events[1].Type)
			assert.Equal(t, map[string]string{"verification": "pending"}, events[1].Details)
			for _, e := range events {
				assert.Equal(t, events[1].UserID, e.UserID)
				assert.NotEmpty(t, e.UserID)
				assert.Equal(t, "2001:db8::7", e.IP)
				assert.Equal(t, "Req/1.0", e.UserAgent)
				assert.Equal(t, clk.Now(), e.At, "the session clock's time")
			}
		})
	}
}
