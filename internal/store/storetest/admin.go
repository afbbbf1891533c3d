package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
)

// testUserAdmin: the operators' store operations (identity.UserAdmin).
func testUserAdmin(t *testing.T, s Store) {
	ctx := context.Background()
	emails := []string{"adm-b@example.com", "adm_a@example.com", "adm%c@example.com", "admx@example.com", "zed@example.com"}
	users := map[string]fixture{}
	for _, e := range emails {
		users[e] = create(t, s, e)
	}

	t.Run("search", func(t *testing.T) {
		search := func(prefix, after string, limit int) []string {
			found, err := s.SearchUsers(ctx, identity.UserSearch{EmailPrefix: prefix, After: after, Limit: limit})
			require.NoError(t, err)
			out := make([]string, len(found))
			for i, u := range found {
				out[i] = u.Email
			}
			return out
		}
		assert.Equal(t, []string{"adm%c@example.com", "adm-b@example.com", "adm_a@example.com", "admx@example.com"}, search("adm", "", 10))
		assert.Equal(t, []string{"adm_a@example.com"}, search("adm_", "", 10), "_ matches only itself")
		assert.Equal(t, []string{"adm%c@example.com"}, search("adm%", "", 10), "% matches only itself")
		assert.Empty(t, search(`adm\`, "", 10))
		assert.Equal(t, []string{"adm%c@example.com", "adm-b@example.com"}, search("adm", "", 2))
		assert.Equal(t, []string{"adm_a@example.com", "admx@example.com"}, search("adm", "adm-b@example.com", 10))
		found, err := s.SearchUsers(ctx, identity.UserSearch{EmailPrefix: "zed", Limit: 1})
		require.NoError(t, err)
		require.Len(t, found, 1)
		assert.Equal(t, users["zed@example.com"].user.ID, found[0].ID)
		assert.Nil(t, found[0].DisabledAt)
	})

	t.Run("activity", func(t *testing.T) {
		f := users["admx@example.com"]
		later := addSession(t, s, f.user.ID, t0.Add(time.Hour))
		live, last, err := s.UserActivity(ctx, f.user.ID, t0.Add(2*time.Hour), t0.Add(-time.Hour))
		require.NoError(t, err)
		assert.Equal(t, 2, live)
		require.NotNil(t, last)
		assert.True(t, last.Equal(t0.Add(time.Hour)), "the newest session's creation: %v", last)
		_, err = s.EndSession(ctx, f.user.ID, later.ID, "logout", t0.Add(2*time.Hour))
		require.NoError(t, err)
		live, last, err = s.UserActivity(ctx, f.user.ID, t0.Add(2*time.Hour), t0.Add(-time.Hour))
		require.NoError(t, err)
		assert.Equal(t, 1, live, "an ended session is not live")
		assert.True(t, last.Equal(t0.Add(time.Hour)), "but still the last login")
		live, last, err = s.UserActivity(ctx, "nobody", t0, t0)
		require.NoError(t, err)
		assert.Zero(t, live)
		assert.Nil(t, last)
	})

	t.Run("disable", func(t *testing.T) {
		f := users["adm-b@example.com"]
		at := t0.Add(time.Minute)
		require.NoError(t, s.SetUserDisabled(ctx, f.user.ID, &at))
		later := at.Add(time.Minute)
		require.NoError(t, s.SetUserDisabled(ctx, f.user.ID, &later), "idempotent")
		u, err := s.UserByID(ctx, f.user.ID)
		require.NoError(t, err)
		require.NotNil(t, u.DisabledAt)
		assert.True(t, u.DisabledAt.Equal(at), "the first time is kept")
		found, _, err := s.FindCredentials(ctx, f.user.Email)
		require.NoError(t, err)
		assert.NotNil(t, found.DisabledAt)

		// A disabled user's sessions are not active, and a login opens none.
		active, err := s.SessionActive(ctx, f.session.ID, f.user.ID, t0, t0.Add(-time.Hour))
		require.NoError(t, err)
		assert.False(t, active)
		err = s.CreateSessionIfPassword(ctx, newSession(f.user.ID, t0), testHash, identity.AuditEvent{Type: identity.AuditLoginSucceeded, Actor: identity.ActorUser, At: t0})
		assert.ErrorIs(t, err, identity.ErrStaleCredentials)
		st, err := s.SessionState(ctx, f.session.ID, f.session.SecretHash)
		require.NoError(t, err)
		assert.True(t, st.UserDisabled)

		n, err := s.EndAllSessions(ctx, f.user.ID, "disabled", at)
		require.NoError(t, err)
		assert.EqualValues(t, 1, n, "it reports the sessions it ended")
		assert.Equal(t, "disabled", revokeReason(t, s, f.session))
		n, err = s.EndAllSessions(ctx, f.user.ID, "disabled", at)
		require.NoError(t, err)
		assert.Zero(t, n, "nothing left to end")

		require.NoError(t, s.SetUserDisabled(ctx, f.user.ID, nil))
		u, err = s.UserByID(ctx, f.user.ID)
		require.NoError(t, err)
		assert.Nil(t, u.DisabledAt)
		st, err = s.SessionState(ctx, f.session.ID, f.session.SecretHash)
		require.NoError(t, err)
		assert.False(t, st.UserDisabled)
		assert.Equal(t, "disabled", st.RevokeReason, "enabling revives no session")

		assert.ErrorIs(t, s.SetUserDisabled(ctx, "nobody", &at), identity.ErrNotFound)
		assert.ErrorIs(t, s.SetUserDisabled(ctx, "nobody", nil), identity.ErrNotFound)
	})

	t.Run("delete", func(t *testing.T) {
		f := users["adm_a@example.com"]
		other := users["zed@example.com"]
		// Limit 1: the one charge blocks the counter, so a block shows it is stored.
		counter := func(key string) identity.ThrottleCounter {
			k := sha256.Sum256([]byte(key))
			return identity.ThrottleCounter{Scope: identity.ScopeLoginAccount, Key: k[:], Limit: 1, Window: time.Hour}
		}
		mine, theirs := counter("mine-0123456789-0123456789-0123"), counter("theirs-0123456789-0123456789-01")
		// Counters of one account from any client share their key's
		// prefix; deletion names them by it. The range reaches both ends
		// of the prefix and nothing past them.
		prefix := bytes.Repeat([]byte{0x7f}, identity.AccountKeyPrefix)
		family := func(fill byte, prefix []byte) identity.ThrottleCounter {
			c := counter("")
			c.Scope = identity.ScopeLoginAccountIP
			c.Key = append(slices.Clone(prefix), bytes.Repeat([]byte{fill}, len(c.Key)-len(prefix))...)
			return c
		}
		lowest, highest := family(0x00, prefix), family(0xff, prefix)
		below := family(0xff, append(bytes.Repeat([]byte{0x7f}, identity.AccountKeyPrefix-1), 0x7e))
		above := family(0x00, append(bytes.Repeat([]byte{0x7f}, identity.AccountKeyPrefix-1), 0x80))
		otherScope := family(0x10, prefix)
		otherScope.Scope = identity.ScopeLoginIP
		all := []identity.ThrottleCounter{mine, theirs, lowest, highest, below, above, otherScope}
		_, err := s.ChargeThrottles(ctx, all, t0, time.Hour)
		require.NoError(t, err)
		require.NoError(t, s.EnqueueMail(ctx, outboxMail(f.user.Email, t0)))
		require.NoError(t, s.EnqueueMail(ctx, outboxMail(other.user.Email, t0)))
		_, err = s.UpsertProfile(ctx, f.user.ID, identity.Profile{PythonProficiency: "advanced", DeveloperRole: "researcher"}, t0)
		require.NoError(t, err)
		// A pending email change: its token names the new address, and its
		// confirmation waits in the outbox next to another kind of mail to
		// the same address (which stays).
		require.NoError(t, s.CreateMailToken(ctx, mailToken(f.user.ID, "adm-new@example.com", identity.PurposeChangeEmail, t0, time.Hour)))
		require.NoError(t, s.CreateMailToken(ctx, mailToken(other.user.ID, "zed-new@example.com", identity.PurposeChangeEmail, t0, time.Hour)))
		confirm := outboxMail("adm-new@example.com", t0)
		confirm.Kind = identity.KindConfirmEmailChange
		require.NoError(t, s.EnqueueMail(ctx, confirm))
		require.NoError(t, s.EnqueueMail(ctx, outboxMail("adm-new@example.com", t0)))
		changes, err := s.PendingEmailChanges(ctx, f.user.ID)
		require.NoError(t, err)
		assert.Equal(t, []string{"adm-new@example.com"}, changes, "the user's pending change, no one else's")

		require.NoError(t, s.Atomically(ctx, func(tx identity.Tx) error {
			changes, err := tx.PendingEmailChanges(ctx, f.user.ID)
			if err != nil {
				return err
			}
			return tx.DeleteUser(ctx, f.user.ID, f.user.Email, changes,
				[]identity.ThrottleCounter{mine, {Scope: identity.ScopeLoginAccountIP, Key: prefix}})
		}))
		_, err = s.UserByID(ctx, f.user.ID)
		assert.ErrorIs(t, err, identity.ErrNotFound)
		assert.False(t, exists(t, s, f.session), "sessions go with the user")
		blocks, err := s.ThrottleBlocks(ctx, all)
		require.NoError(t, err)
		assert.True(t, blocks[0].IsZero(), "the user's counter is gone")
		assert.False(t, blocks[1].IsZero(), "another's stays")
		assert.True(t, blocks[2].IsZero(), "the lowest key of the prefix is gone")
		assert.True(t, blocks[3].IsZero(), "the highest key of the prefix is gone")
		assert.False(t, blocks[4].IsZero(), "the prefix just below stays")
		assert.False(t, blocks[5].IsZero(), "the prefix just above stays")
		assert.False(t, blocks[6].IsZero(), "the same prefix in another scope stays")
		claimed, err := s.ClaimMail(ctx, "claim", t0.Add(time.Minute), time.Minute, 100)
		require.NoError(t, err)
		kept := 0
		for _, m := range claimed {
			assert.NotEqual(t, f.user.Email, m.Recipient, "the user's mail is gone")
			assert.NotEqual(t, identity.KindConfirmEmailChange, m.Kind, "the pending change's confirmation is gone")
			if m.Recipient == "adm-new@example.com" {
				kept++
			}
		}
		assert.Equal(t, 1, kept, "other kinds of mail to the new address stay")
		assert.NotEmpty(t, claimed, "other mail stays")
		assert.ErrorIs(t, s.Atomically(ctx, func(tx identity.Tx) error {
			return tx.DeleteUser(ctx, f.user.ID, f.user.Email, nil, nil)
		}), identity.ErrNotFound)
		_, err = s.UserByID(ctx, other.user.ID)
		assert.NoError(t, err, "nobody else is touched")
	})
}
