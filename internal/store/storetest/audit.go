package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
)

// testEvent is an event of typ from a test client.
func testEvent(typ string) identity.AuditEvent {
	return identity.AuditEvent{At: t0, Type: typ, Actor: identity.ActorUser, IP: "192.0.2.7", UserAgent: "audit-test/1.0",
		Details: map[string]string{"reason": "test"}}
}

// eventsOf returns every event of the user, newest first.
func eventsOf(t *testing.T, s Store, userID string) []identity.AuditEvent {
	t.Helper()
	events, err := s.ListAudit(context.Background(), identity.AuditQuery{UserID: userID, Limit: 1000})
	require.NoError(t, err)
	return events
}

func testAudit(t *testing.T, s Store) {
	ctx := context.Background()
	user := uuid.NewString()
	var ids []int64
	for i := range 5 {
		e := identity.AuditEvent{At: t0.Add(time.Duration(i) * time.Second), Type: identity.AuditLoginFailed, UserID: user,
			Actor: identity.ActorUser, IP: "2001:db8::1", UserAgent: "Mozilla/5.0 ❤",
			Details: map[string]string{"reason": "wrong_password", "n": fmt.Sprint(i)}}
		if i%2 == 1 {
			e.Type = identity.AuditLoginSucceeded
		}
		require.NoError(t, s.AppendAudit(ctx, e))
	}
	require.NoError(t, s.AppendAudit(ctx, identity.AuditEvent{At: t0, Type: identity.AuditLoginFailed, Actor: identity.ActorUser,
		Details: map[string]string{"reason": "unknown_account"}}))
	require.NoError(t, s.AppendAudit(ctx, identity.AuditEvent{At: t0, Type: identity.AuditKeyRotated, Actor: identity.ActorSystem}))

	events := eventsOf(t, s, user)
	require.Len(t, events, 5)
	for i, e := range events {
		ids = append(ids, e.ID)
		n := 4 - i
		assert.Equal(t, fmt.Sprint(n), e.Details["n"], "newest first")
		assert.Equal(t, t0.Add(time.Duration(n)*time.Second), e.At, "time kept to the microsecond")
		assert.Equal(t, user, e.UserID)
		assert.Equal(t, identity.ActorUser, e.Actor)
		assert.Equal(t, "2001:db8::1", e.IP)
		assert.Equal(t, "Mozilla/5.0 ❤", e.UserAgent)
		assert.Equal(t, "wrong_password", e.Details["reason"])
		if i > 0 {
			assert.Less(t, e.ID, ids[i-1], "ids increase with time")
		}
	}

	// Filters and the cursor.
	failed, err := s.ListAudit(ctx, identity.AuditQuery{UserID: user, Type: identity.AuditLoginFailed})
	require.NoError(t, err)
	require.Len(t, failed, 3)
	for _, e := range failed {
		assert.Equal(t, identity.AuditLoginFailed, e.Type)
	}
	page, err := s.ListAudit(ctx, identity.AuditQuery{UserID: user, Limit: 2})
	require.NoError(t, err)
	require.Len(t, page, 2)
	assert.Equal(t, ids[:2], []int64{page[0].ID, page[1].ID})
	page, err = s.ListAudit(ctx, identity.AuditQuery{UserID: user, Limit: 2, Before: page[1].ID})
	require.NoError(t, err)
	require.Len(t, page, 2)
	assert.Equal(t, ids[2:4], []int64{page[0].ID, page[1].ID})

	// No account: the user id reads back empty; no details: none.
	all, err := s.ListAudit(ctx, identity.AuditQuery{Limit: 2})
	require.NoError(t, err)
	require.Len(t, all, 2)
	assert.Equal(t, identity.AuditKeyRotated, all[0].Type)
	assert.Equal(t, identity.ActorSystem, all[0].Actor)
	assert.Empty(t, all[0].UserID)
	assert.Empty(t, all[0].Details)
	assert.Empty(t, all[1].UserID)
	assert.Equal(t, "unknown_account", all[1].Details["reason"])
	none, err := s.ListAudit(ctx, identity.AuditQuery{UserID: uuid.NewString()})
	require.NoError(t, err)
	assert.Empty(t, none)

	// A failed transaction leaves no event behind, even one appended
	// before the failure.
	other := uuid.NewString()
	boom := errors.New("boom")
	err = s.Atomically(ctx, func(tx identity.Tx) error {
		e := testEvent(identity.AuditPasswordChanged)
		e.UserID = other
		if err := tx.AppendAudit(ctx, e); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	assert.Empty(t, eventsOf(t, s, other), "rolled back with its transaction")
	require.NoError(t, s.Atomically(ctx, func(tx identity.Tx) error {
		e := testEvent(identity.AuditPasswordChanged)
		e.UserID = other
		return tx.AppendAudit(ctx, e)
	}))
	assert.Len(t, eventsOf(t, s, other), 1, "committed with its transaction")
}

// testAuditWithChanges: the events the session statements append
// themselves are written exactly when the change happens.
func testAuditWithChanges(t *testing.T, s Store) {
	ctx := context.Background()

	// Login: the event comes with the session, and not without it.
	f := create(t, s, "audit-login@example.com")
	login := newSession(f.user.ID, t0)
	e := testEvent(identity.AuditLoginSucceeded)
	e.Details = map[string]string{"session_id": login.ID}
	assert.ErrorIs(t, s.CreateSessionIfPassword(ctx, login, testHash+"stale", e), identity.ErrStaleCredentials)
	assert.Empty(t, eventsOf(t, s, f.user.ID), "no session, no event")
	require.NoError(t, s.CreateSessionIfPassword(ctx, login, testHash, e))
	events := eventsOf(t, s, f.user.ID)
	require.Len(t, events, 1)
	assert.Equal(t, identity.AuditLoginSucceeded, events[0].Type)
	assert.Equal(t, f.user.ID, events[0].UserID, "the store names the session's user")
	assert.Equal(t, "192.0.2.7", events[0].IP)
	assert.Equal(t, "audit-test/1.0", events[0].UserAgent)
	assert.Equal(t, login.ID, events[0].Details["session_id"])

	// Logout: an event only when a live session ends.
	assert.NoError(t, s.RevokeSession(ctx, login.ID, make([]byte, 32), "logout", t0, testEvent(identity.AuditSessionEnded)))
	assert.Len(t, eventsOf(t, s, f.user.ID), 1, "wrong secret: nothing ended, no event")
	require.NoError(t, s.RevokeSession(ctx, login.ID, login.SecretHash, "logout", t0, testEvent(identity.AuditSessionEnded)))
	require.NoError(t, s.RevokeSession(ctx, login.ID, login.SecretHash, "logout", t0, testEvent(identity.AuditSessionEnded)))
	events = eventsOf(t, s, f.user.ID)
	require.Len(t, events, 2, "the second logout ended nothing")
	assert.Equal(t, identity.AuditSessionEnded, events[0].Type)
	assert.Equal(t, f.user.ID, events[0].UserID)

	// Refresh: a rotation or a grace answer writes nothing; reuse writes
	// one event, with the revocation.
	g := create(t, s, "audit-reuse@example.com")
	reuse := testEvent(identity.AuditRefreshReuse)
	rotateWith := func(gen int64, now time.Time) (identity.Rotation, error) {
		return s.RotateSession(ctx, identity.RotateRequest{
			SessionID: g.session.ID, SecretHash: g.session.SecretHash, Generation: gen,
			Now: now, GraceStart: now.Add(-10 * time.Second), IdleCutoff: now.Add(-168 * time.Hour), Reuse: reuse,
		})
	}
	_, err := rotateWith(0, t0.Add(time.Second))
	require.NoError(t, err)
	_, err = rotateWith(0, t0.Add(2*time.Second)) // the parent inside grace
	require.NoError(t, err)
	assert.Empty(t, eventsOf(t, s, g.user.ID), "rotation and grace write no event")
	r, err := rotateWith(0, t0.Add(time.Minute)) // the parent after grace
	require.NoError(t, err)
	require.True(t, r.Reused)
	events = eventsOf(t, s, g.user.ID)
	require.Len(t, events, 1)
	assert.Equal(t, identity.AuditRefreshReuse, events[0].Type)
	assert.Equal(t, g.user.ID, events[0].UserID)
	assert.Equal(t, t0.Add(time.Minute), events[0].At, "at the rotation's time")
	assert.Equal(t, "192.0.2.7", events[0].IP)
	assert.Equal(t, g.session.ID, events[0].Details["session_id"])
	_, err = rotateWith(1, t0.Add(2*time.Minute))
	assert.ErrorIs(t, err, identity.ErrNotFound, "revoked")
	assert.Len(t, eventsOf(t, s, g.user.ID), 1, "a revoked session matches nothing and writes nothing")

	// The reuse event is part of the rotation's transaction too.
	h := create(t, s, "audit-reuse-tx@example.com")
	boom := errors.New("boom")
	err = s.Atomically(ctx, func(tx identity.Tx) error {
		r, err := tx.RotateSession(ctx, identity.RotateRequest{
			SessionID: h.session.ID, SecretHash: h.session.SecretHash, Generation: -5,
			Now: t0, GraceStart: t0.Add(-10 * time.Second), IdleCutoff: t0.Add(-168 * time.Hour), Reuse: reuse,
		})
		if err != nil {
			return err
		}
		if !r.Reused {
			return errors.New("expected reuse")
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	assert.Empty(t, eventsOf(t, s, h.user.ID))
	assert.Empty(t, revokeReason(t, s, h.session), "rolled back with its event")
}

// testRacingReuse: many stale presentations at once revoke the session once
// and write exactly one event.
func testRacingReuse(t *testing.T, s Store) {
	ctx := context.Background()
	f := create(t, s, "audit-race@example.com")
	_, err := rotate(s, f, 0, t0.Add(time.Second))
	require.NoError(t, err)
	_, err = rotate(s, f, 1, t0.Add(2*time.Second))
	require.NoError(t, err)
	var reused atomic.Int64
	race(16, func(int) {
		r, err := s.RotateSession(ctx, identity.RotateRequest{
			SessionID: f.session.ID, SecretHash: f.session.SecretHash, Generation: 0,
			Now: t0.Add(3 * time.Second), GraceStart: t0.Add(-7 * time.Second), IdleCutoff: t0.Add(-168 * time.Hour),
			Reuse: testEvent(identity.AuditRefreshReuse),
		})
		if err == nil && r.Reused {
			reused.Add(1)
		}
	})
	assert.Equal(t, int64(1), reused.Load())
	events := eventsOf(t, s, f.user.ID)
	require.Len(t, events, 1)
	assert.Equal(t, identity.AuditRefreshReuse, events[0].Type)
}

func testAuditPurge(t *testing.T, s Store) {
	ctx := context.Background()
	cutoff := t0.Add(-90 * 24 * time.Hour)
	user := uuid.NewString()
	for i := range 7 {
		e := testEvent(identity.AuditLoginFailed)
		e.UserID, e.At = user, cutoff.Add(-time.Duration(i+1)*time.Hour)
		require.NoError(t, s.AppendAudit(ctx, e))
	}
	for _, at := range []time.Time{cutoff, cutoff.Add(time.Microsecond), t0} {
		e := testEvent(identity.AuditLoginSucceeded)
		e.UserID, e.At = user, at
		require.NoError(t, s.AppendAudit(ctx, e))
	}
	n, err := s.PurgeAudit(ctx, cutoff, 3)
	require.NoError(t, err)
	assert.Equal(t, int64(3), n, "one batch at most")
	n, err = s.PurgeAudit(ctx, cutoff, 3)
	require.NoError(t, err)
	assert.Equal(t, int64(3), n)
	n, err = s.PurgeAudit(ctx, cutoff, 3)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	n, err = s.PurgeAudit(ctx, cutoff, 3)
	require.NoError(t, err)
	assert.Zero(t, n)
	left := eventsOf(t, s, user)
	require.Len(t, left, 3, "only the events older than the cutoff went")
	for _, e := range left {
		assert.Equal(t, identity.AuditLoginSucceeded, e.Type)
		assert.False(t, e.At.Before(cutoff))
	}
}
