package identity_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/store"
	"github.com/lanyard-id/lanyard/internal/testdb"
	"github.com/lanyard-id/lanyard/internal/tokentest"
)

// fakeDatabaseClock stands in for the database server's clock, which the
// test moves by hand to reach lifetime edges exactly.
type fakeDatabaseClock struct{ *tokentest.Clock }

func (c fakeDatabaseClock) DatabaseNow(context.Context) (time.Time, error) { return c.Now(), nil }

// replica is a Lanyard process whose own clock is skew away from the
// database's.
func replica(t *testing.T, st *store.Store, db fakeDatabaseClock, skew time.Duration, secret []byte) *identity.Service {
	t.Helper()
	local := func() time.Time { return db.Now().Add(skew) }
	svc := newService(t, st, st, local, secret)
	clock := identity.NewDatabaseClock(db, local)
	require.NoError(t, clock.Sync(context.Background()))
	assert.Equal(t, -skew, clock.Offset())
	svc.SetSessionClock(clock.Now)
	return svc
}

// TestClockSkew: two replicas whose clocks are 3 minutes apart (+90 s and
// -90 s off the database's) make identical refresh, grace and expiry
// decisions, at the exact edges, because both decide on the database's
// clock. With their own clocks, each of the checks below would go the
// other way on one of them.
func TestClockSkew(t *testing.T) {
	st := testdb.Open(t, store.Postgres)
	db := fakeDatabaseClock{tokentest.NewClock(identity.Now())}
	secret := newSecret()
	ahead := replica(t, st, db, 90*time.Second, secret)
	behind := replica(t, st, db, -90*time.Second, secret)
	replicas := map[string]*identity.Service{"ahead": ahead, "behind": behind}
	ctx := context.Background()
	grace := testConfig.RefreshReuseGrace
	idle := testConfig.RefreshIdleTTL

	signUp := func(email string) identity.Tokens {
		t.Helper()
		tk, err := ahead.SignUp(ctx, identity.SignUpInput{Email: email, Password: pw}, identity.Client{})
		require.NoError(t, err)
		return tk
	}

	// Grace: one replica rotates, the other honours the parent until the
	// grace window ends on the database's clock, and not a moment longer.
	for name, other := range replicas {
		rotator := ahead
		if other == ahead {
			rotator = behind
		}
		parent := signUp("grace-" + name + "@example.com")
		child, err := rotator.Refresh(ctx, parent.RefreshToken, identity.Client{})
		require.NoError(t, err)
		db.Advance(grace - time.Second)
		again, err := other.Refresh(ctx, parent.RefreshToken, identity.Client{})
		require.NoError(t, err, "%s: the parent within grace", name)
		assert.Equal(t, child.RefreshToken, again.RefreshToken, "%s: the same successor", name)
		db.Advance(2 * time.Second)
		_, err = other.Refresh(ctx, parent.RefreshToken, identity.Client{})
		assert.Equal(t, identity.CodeRefreshTokenReused, identity.ErrorCode(err), "%s: the parent after grace", name)
	}

	// Idle expiry: sessions created together go idle together on both.
	sessions := map[string]identity.Tokens{}
	for _, name := range []string{"ahead-early", "behind-early", "ahead-late", "behind-late"} {
		sessions[name] = signUp("idle-" + name + "@example.com")
	}
	db.Advance(idle - time.Second)
	for name, svc := range replicas {
		_, err := svc.Refresh(ctx, sessions[name+"-early"].RefreshToken, identity.Client{})
		assert.NoError(t, err, "%s: a second before the idle limit", name)
	}
	db.Advance(2 * time.Second)
	for name, svc := range replicas {
		_, err := svc.Refresh(ctx, sessions[name+"-late"].RefreshToken, identity.Client{})
		assert.Equal(t, identity.CodeSessionExpired, identity.ErrorCode(err), "%s: a second after the idle limit", name)
	}

	// The absolute end: a session refreshed often enough to never idle ends
	// at the same instant on both.
	chains := map[string]identity.Tokens{"ahead": signUp("abs-ahead@example.com"), "behind": signUp("abs-behind@example.com")}
	step := idle / 2
	for chains["ahead"].RefreshExpiresIn > step {
		db.Advance(step)
		for name, svc := range replicas {
			next, err := svc.Refresh(ctx, chains[name].RefreshToken, identity.Client{})
			require.NoError(t, err, name)
			chains[name] = next
		}
	}
	// Within a step of the end now, refresh_expires_in is the time left
	// (rounded to the second): move to about a second before the end.
	assert.Equal(t, chains["ahead"].RefreshExpiresIn, chains["behind"].RefreshExpiresIn)
	db.Advance(chains["ahead"].RefreshExpiresIn - time.Second)
	for name, svc := range replicas {
		next, err := svc.Refresh(ctx, chains[name].RefreshToken, identity.Client{})
		require.NoError(t, err, "%s: a second before the absolute end", name)
		chains[name] = next
	}
	db.Advance(2 * time.Second)
	for name, svc := range replicas {
		_, err := svc.Refresh(ctx, chains[name].RefreshToken, identity.Client{})
		assert.Equal(t, identity.CodeSessionExpired, identity.ErrorCode(err), "%s: a second after the absolute end", name)
	}
}

// TestDatabaseClockMeasuresOffset: against the real database, a process
// clock 90 s fast is corrected to the database's within milliseconds.
func TestDatabaseClockMeasuresOffset(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(string(d), func(t *testing.T) {
			st := testdb.Open(t, d)
			skewed := func() time.Time { return time.Now().Add(90 * time.Second) }
			clock := identity.NewDatabaseClock(st, skewed)
			require.NoError(t, clock.Sync(context.Background()))
			assert.InDelta(t, float64(-90*time.Second), float64(clock.Offset()), float64(50*time.Millisecond))
			assert.WithinDuration(t, time.Now(), clock.Now(), 50*time.Millisecond)
		})
	}
}
