// Package storetest is the conformance suite every Lanyard storage backend
// must pass. It sees a backend only through the interfaces identity owns, so
// a new backend is checked by calling Run with a function that opens an
// empty, migrated instance of it. Lanyard runs it on PostgreSQL and on the
// embedded SQLite.
package storetest

import (
	"context"
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
)

// Store is everything a storage backend provides to Lanyard.
type Store interface {
	identity.Store
	identity.KeyMaintainer
	identity.ClockSource
}

// Open returns an empty, migrated backend, released when t ends.
type Open func(t *testing.T) Store

const testHash = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"

// t0 has microseconds, the precision both databases keep.
var t0 = time.Date(2026, 11, 21, 12, 0, 0, 123456000, time.UTC)

// Run runs the whole suite. Subtests that count or race get a backend of
// their own.
func Run(t *testing.T, open Open) {
	shared := open(t)
	t.Run("users", func(t *testing.T) { testUsers(t, shared) })
	t.Run("transactions", func(t *testing.T) { testTransactions(t, shared) })
	t.Run("rotation", func(t *testing.T) { testRotation(t, shared) })
	t.Run("grace bound to the client", func(t *testing.T) { testGraceBinding(t, shared) })
	t.Run("revocation", func(t *testing.T) { testRevocation(t, shared) })
	t.Run("session secret replaced", func(t *testing.T) { testReplaceSecret(t, shared) })
	t.Run("profiles", func(t *testing.T) { testProfiles(t, shared) })
	t.Run("user sessions", func(t *testing.T) { testUserSessions(t, shared) })
	t.Run("database clock", func(t *testing.T) { testDatabaseClock(t, shared) })
	t.Run("signing keys", func(t *testing.T) { testSigningKeys(t, open(t)) })
	t.Run("purge", func(t *testing.T) { testPurge(t, open(t)) })
	t.Run("racing rotations", func(t *testing.T) { testRacingRotations(t, open(t)) })
	t.Run("racing password swaps", func(t *testing.T) { testRacingSwaps(t, open(t)) })
	t.Run("throttles", func(t *testing.T) { testThrottles(t, shared) })
	t.Run("throttle purge", func(t *testing.T) { testThrottlePurge(t, open(t)) })
	t.Run("racing throttle charges", func(t *testing.T) { testRacingCharges(t, open(t)) })
	t.Run("email ownership", func(t *testing.T) { testEmailOwnership(t, shared) })
	t.Run("mail tokens", func(t *testing.T) { testMailTokens(t, shared) })
	t.Run("mail token purge", func(t *testing.T) { testMailTokenPurge(t, open(t)) })
	t.Run("outbox", func(t *testing.T) { testOutbox(t, open(t)) })
	t.Run("racing outbox claims", func(t *testing.T) { testRacingClaims(t, open(t)) })
	t.Run("audit trail", func(t *testing.T) { testAudit(t, open(t)) })
	t.Run("audit events with their changes", func(t *testing.T) { testAuditWithChanges(t, shared) })
	t.Run("racing reuse audit", func(t *testing.T) { testRacingReuse(t, open(t)) })
	t.Run("audit purge", func(t *testing.T) { testAuditPurge(t, open(t)) })
	t.Run("operators", func(t *testing.T) { testUserAdmin(t, open(t)) })
}

type fixture struct {
	user    identity.User
	session identity.NewSession
}

func newFixture(email string) fixture {
	name := "Ada Lovelace"
	u := identity.User{ID: uuid.NewString(), Email: email, Name: &name, CreatedAt: t0}
	s := newSession(u.ID, t0)
	s.UserAgent, s.IP = "test-agent/1.0", "127.0.0.1"
	return fixture{user: u, session: s}
}

func newSession(userID string, created time.Time) identity.NewSession {
	secret := sha256.Sum256([]byte(uuid.NewString()))
	return identity.NewSession{ID: uuid.NewString(), UserID: userID, SecretHash: secret[:], CreatedAt: created, ExpiresAt: created.Add(720 * time.Hour)}
}

// create stores a user and its first session the way sign-up does.
func create(t *testing.T, s Store, email string) fixture {
	t.Helper()
	f := newFixture(email)
	require.NoError(t, s.Atomically(context.Background(), func(tx identity.Tx) error {
		if err := tx.CreateUser(context.Background(), f.user, testHash); err != nil {
			return err
		}
		return tx.CreateSession(context.Background(), f.session)
	}))
	return f
}

func addSession(t *testing.T, s Store, userID string, created time.Time) identity.NewSession {
	t.Helper()
	ns := newSession(userID, created)
	require.NoError(t, s.CreateSession(context.Background(), ns))
	return ns
}

// exists reports whether a session is still stored (ended or not).
func exists(t *testing.T, s Store, ns identity.NewSession) bool {
	t.Helper()
	_, err := s.SessionState(context.Background(), ns.ID, ns.SecretHash)
	if err != nil {
		require.ErrorIs(t, err, identity.ErrNotFound)
		return false
	}
	return true
}

func revokeReason(t *testing.T, s Store, ns identity.NewSession) string {
	t.Helper()
	st, err := s.SessionState(context.Background(), ns.ID, ns.SecretHash)
	require.NoError(t, err)
	return st.RevokeReason
}

func rotate(s Store, f fixture, gen int64, now time.Time) (identity.Rotation, error) {
	return rotateAs(s, f, gen, now, nil)
}

// rotateAs rotates as the client with that fingerprint (nil: unbound).
func rotateAs(s Store, f fixture, gen int64, now time.Time, client []byte) (identity.Rotation, error) {
	return s.RotateSession(context.Background(), identity.RotateRequest{
		SessionID: f.session.ID, SecretHash: f.session.SecretHash, Generation: gen,
		Now: now, GraceStart: now.Add(-10 * time.Second), IdleCutoff: now.Add(-168 * time.Hour),
		Client: client,
	})
}

// Client fingerprints, as identity derives them (16 bytes).
var (
	victim = []byte("victim-browser-1")
	thief  = []byte("thief-elsewhere1")
)

// race runs call(0) … call(n-1) in n goroutines released at once, and
// returns when all have returned.
func race(n int, call func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			call(i)
		})
	}
	close(start)
	wg.Wait()
}

func testUsers(t *testing.T, s Store) {
	ctx := context.Background()
	f := create(t, s, "ada@example.com")

	got, hash, err := s.FindCredentials(ctx, "ada@example.com")
	require.NoError(t, err)
	assert.Equal(t, testHash, hash)
	assert.Equal(t, f.user, got, "round trip keeps every field, times to the microsecond")
	assert.Nil(t, got.Profile)

	_, _, err = s.FindCredentials(ctx, "nobody@example.com")
	assert.ErrorIs(t, err, identity.ErrNotFound)

	byID, err := s.UserByID(ctx, f.user.ID)
	require.NoError(t, err)
	assert.Equal(t, f.user, byID)
	for _, id := range []string{uuid.NewString(), "not-a-uuid", "'; DROP TABLE users; --"} {
		_, err = s.UserByID(ctx, id)
		assert.ErrorIs(t, err, identity.ErrNotFound, id)
		_, err = s.PasswordHashByID(ctx, id)
		assert.ErrorIs(t, err, identity.ErrNotFound, id)
	}

	// The unique index ignores case even if a writer forgot to normalise.
	dup := newFixture("ADA@example.com")
	assert.ErrorIs(t, s.CreateUser(ctx, dup.user, testHash), identity.ErrEmailTaken)
	_, err = s.UserByID(ctx, dup.user.ID)
	assert.ErrorIs(t, err, identity.ErrNotFound)

	// A session for a user that does not exist is refused.
	orphan := newFixture("orphan@example.com")
	assert.Error(t, s.CreateSession(ctx, orphan.session))
	assert.False(t, exists(t, s, orphan.session))

	// Compare-and-swap of the password hash.
	require.NoError(t, s.SwapPasswordHash(ctx, f.user.ID, testHash+"x", testHash, t0))
	assert.ErrorIs(t, s.SwapPasswordHash(ctx, f.user.ID, testHash+"y", testHash, t0), identity.ErrStaleCredentials, "a stale swap writes nothing")
	hash, err = s.PasswordHashByID(ctx, f.user.ID)
	require.NoError(t, err)
	assert.Equal(t, testHash+"x", hash)

	// A login's session is stored only while the hash it checked is current.
	stale := newSession(f.user.ID, t0)
	stale.UserAgent, stale.IP = "login-agent/2.0", "192.0.2.7"
	assert.ErrorIs(t, s.CreateSessionIfPassword(ctx, stale, testHash, testEvent(identity.AuditLoginSucceeded)), identity.ErrStaleCredentials)
	assert.False(t, exists(t, s, stale), "no session for a password that changed meanwhile")
	require.NoError(t, s.CreateSessionIfPassword(ctx, stale, testHash+"x", testEvent(identity.AuditLoginSucceeded)))
	st, err := s.SessionState(ctx, stale.ID, stale.SecretHash)
	require.NoError(t, err)
	assert.Equal(t, stale.ExpiresAt, st.ExpiresAt)
	assert.Equal(t, stale.CreatedAt, st.LastUsedAt)
	list, err := s.ListSessions(ctx, f.user.ID, t0.Add(time.Second), t0.Add(-time.Hour))
	require.NoError(t, err)
	var stored *identity.SessionInfo
	for i := range list {
		if list[i].ID == stale.ID {
			stored = &list[i]
		}
	}
	require.NotNil(t, stored, "the login's session is live")
	assert.Equal(t, "login-agent/2.0", *stored.UserAgent)
	assert.Equal(t, "192.0.2.7", *stored.IP)
	r, err := rotate(s, fixture{user: f.user, session: stale}, 0, t0.Add(time.Second))
	require.NoError(t, err, "and it refreshes")
	assert.Equal(t, int64(1), r.Generation)
	orphanLogin := newSession(uuid.NewString(), t0)
	assert.ErrorIs(t, s.CreateSessionIfPassword(ctx, orphanLogin, testHash, testEvent(identity.AuditLoginSucceeded)), identity.ErrStaleCredentials, "no such user")
}

// testTransactions: Atomically commits all of fn's writes or none.
func testTransactions(t *testing.T, s Store) {
	ctx := context.Background()
	f := newFixture("tx@example.com")
	stop := assert.AnError
	err := s.Atomically(ctx, func(tx identity.Tx) error {
		require.NoError(t, tx.CreateUser(ctx, f.user, testHash))
		require.NoError(t, tx.CreateSession(ctx, f.session))
		// Reads inside the transaction see its own writes.
		_, err := tx.UserByID(ctx, f.user.ID)
		require.NoError(t, err)
		return stop
	})
	assert.ErrorIs(t, err, stop, "fn's error comes back")
	_, err = s.UserByID(ctx, f.user.ID)
	assert.ErrorIs(t, err, identity.ErrNotFound, "a failed transaction leaves no user")
	assert.False(t, exists(t, s, f.session), "nor its session")

	// A sentinel from inside comes back as itself, and rolls back too.
	g := create(t, s, "tx2@example.com")
	err = s.Atomically(ctx, func(tx identity.Tx) error {
		if err := tx.SwapPasswordHash(ctx, g.user.ID, testHash+"new", testHash, t0); err != nil {
			return err
		}
		_, err := tx.ReplaceSessionSecret(ctx, g.user.ID, uuid.NewString(), make([]byte, 32), t0)
		return err
	})
	assert.ErrorIs(t, err, identity.ErrNotFound)
	hash, err := s.PasswordHashByID(ctx, g.user.ID)
	require.NoError(t, err)
	assert.Equal(t, testHash, hash, "the swap before the failure was rolled back")

	// The whole transaction shares ctx: a cancelled one commits nothing.
	h := newFixture("tx3@example.com")
	cctx, cancel := context.WithCancel(ctx)
	err = s.Atomically(cctx, func(tx identity.Tx) error {
		require.NoError(t, tx.CreateUser(cctx, h.user, testHash))
		cancel()
		return tx.CreateSession(cctx, h.session)
	})
	require.Error(t, err)
	assert.ErrorIs(t, err, identity.ErrUnavailable, "cancelled work is the database's failure to answer in time, not a bug")
	_, err = s.UserByID(ctx, h.user.ID)
	assert.ErrorIs(t, err, identity.ErrNotFound)
}

func testRotation(t *testing.T, s Store) {
	ctx := context.Background()
	f := create(t, s, "rot@example.com")

	r, err := rotate(s, f, 0, t0.Add(time.Minute))
	require.NoError(t, err)
	assert.Equal(t, int64(1), r.Generation)
	assert.False(t, r.Reused)
	assert.Equal(t, f.session.ExpiresAt, r.ExpiresAt, "rotation never extends the absolute lifetime")
	assert.Equal(t, f.user, r.User)

	// The immediate parent inside grace gets the live generation back, unchanged.
	r, err = rotate(s, f, 0, t0.Add(time.Minute+9*time.Second))
	require.NoError(t, err)
	assert.Equal(t, int64(1), r.Generation)
	assert.False(t, r.Reused)

	// Refresh re-reads the profile.
	done := t0.Add(2 * time.Minute)
	_, err = s.UpsertProfile(ctx, f.user.ID, identity.Profile{PythonProficiency: "advanced", DeveloperRole: "researcher"}, done)
	require.NoError(t, err)
	r, err = rotate(s, f, 1, t0.Add(3*time.Minute))
	require.NoError(t, err)
	assert.Equal(t, int64(2), r.Generation)
	require.NotNil(t, r.User.Profile)
	assert.True(t, r.User.ProfileComplete())
	assert.Equal(t, "advanced", r.User.Profile.PythonProficiency)
	assert.Equal(t, "researcher", r.User.Profile.DeveloperRole)
	assert.Equal(t, done, *r.User.Profile.CompletedAt)

	// A wrong secret hash matches nothing and changes nothing.
	wrong := f
	wrong.session.SecretHash = make([]byte, 32)
	_, err = rotate(s, wrong, 2, t0.Add(4*time.Minute))
	assert.ErrorIs(t, err, identity.ErrNotFound)
	assert.Empty(t, revokeReason(t, s, f.session))

	// The parent after grace is reuse: the session is revoked.
	r, err = rotate(s, f, 1, t0.Add(3*time.Minute+11*time.Second))
	require.NoError(t, err)
	assert.True(t, r.Reused)
	_, err = rotate(s, f, 2, t0.Add(4*time.Minute))
	assert.ErrorIs(t, err, identity.ErrNotFound, "the live token dies with its session")
	assert.Equal(t, "reuse", revokeReason(t, s, f.session))

	// Two generations old, even within grace, is reuse.
	g := create(t, s, "grand@example.com")
	for gen := int64(0); gen < 2; gen++ {
		_, err = rotate(s, g, gen, t0.Add(time.Duration(gen+1)*time.Second))
		require.NoError(t, err)
	}
	r, err = rotate(s, g, 0, t0.Add(3*time.Second))
	require.NoError(t, err)
	assert.True(t, r.Reused)

	// A rotation whose deadline (on the database's clock) has passed when it
	// would take effect changes nothing.
	late := create(t, s, "late@example.com")
	dbNow, err := s.DatabaseNow(ctx)
	require.NoError(t, err)
	req := identity.RotateRequest{
		SessionID: late.session.ID, SecretHash: late.session.SecretHash, Generation: 0,
		Now: t0.Add(time.Second), GraceStart: t0.Add(-9 * time.Second), IdleCutoff: t0.Add(-168 * time.Hour),
		NotAfter: dbNow.Add(-time.Second),
	}
	_, err = s.RotateSession(ctx, req)
	assert.ErrorIs(t, err, identity.ErrNotFound)
	st, err := s.SessionState(ctx, late.session.ID, late.session.SecretHash)
	require.NoError(t, err)
	assert.Equal(t, t0, st.LastUsedAt, "nothing changed")
	req.NotAfter = dbNow.Add(time.Minute)
	r, err = s.RotateSession(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, int64(1), r.Generation, "in time, it rotates")

	// Lifetimes: past the absolute end, or idle too long, nothing matches.
	e := create(t, s, "expiry@example.com")
	_, err = rotate(s, e, 0, e.session.ExpiresAt)
	assert.ErrorIs(t, err, identity.ErrNotFound)
	_, err = rotate(s, e, 0, t0.Add(168*time.Hour))
	assert.ErrorIs(t, err, identity.ErrNotFound)
	_, err = rotate(s, e, 0, t0.Add(168*time.Hour-time.Microsecond))
	assert.NoError(t, err, "one microsecond before the idle cutoff still rotates")
	st, err = s.SessionState(ctx, e.session.ID, e.session.SecretHash)
	require.NoError(t, err)
	assert.Equal(t, t0.Add(168*time.Hour-time.Microsecond), st.LastUsedAt)
	assert.Equal(t, e.session.ExpiresAt, st.ExpiresAt)
}

func testRevocation(t *testing.T, s Store) {
	ctx := context.Background()
	f := create(t, s, "rev@example.com")
	require.NoError(t, s.RevokeSession(ctx, f.session.ID, make([]byte, 32), "logout", t0, testEvent(identity.AuditSessionEnded)))
	assert.Empty(t, revokeReason(t, s, f.session), "a wrong secret does not end someone else's session")

	require.NoError(t, s.RevokeSession(ctx, f.session.ID, f.session.SecretHash, "logout", t0.Add(time.Second), testEvent(identity.AuditSessionEnded)))
	require.NoError(t, s.RevokeSession(ctx, f.session.ID, f.session.SecretHash, "logout", t0.Add(2*time.Second), testEvent(identity.AuditSessionEnded)), "idempotent")
	assert.Equal(t, "logout", revokeReason(t, s, f.session))
	_, err := rotate(s, f, 0, t0.Add(3*time.Second))
	assert.ErrorIs(t, err, identity.ErrNotFound)

	_, err = s.SessionState(ctx, uuid.NewString(), f.session.SecretHash)
	assert.ErrorIs(t, err, identity.ErrNotFound)
}

// testGraceBinding: inside the grace window the parent gets the successor
// only from the client that rotated it; from another it is reuse.
func testGraceBinding(t *testing.T, s Store) {
	// The victim refreshes; the response is lost and retried, and a second
	// tab of the same browser presents the parent too: all get generation 1.
	f := create(t, s, "bound@example.com")
	for i, at := range []time.Duration{time.Second, 2 * time.Second, 9 * time.Second} {
		r, err := rotateAs(s, f, 0, t0.Add(at), victim)
		require.NoError(t, err)
		assert.False(t, r.Reused, "attempt %d", i)
		assert.Equal(t, int64(1), r.Generation, "attempt %d", i)
	}

	// The ride-along: a thief with the copied pair presents the parent inside
	// grace from elsewhere. The session is revoked, the victim's token with it.
	r, err := rotateAs(s, f, 0, t0.Add(10*time.Second), thief)
	require.NoError(t, err)
	assert.True(t, r.Reused, "another client inside grace is reuse")
	_, err = rotateAs(s, f, 1, t0.Add(11*time.Second), victim)
	assert.ErrorIs(t, err, identity.ErrNotFound, "the victim's live token dies with the session")
	assert.Equal(t, "reuse", revokeReason(t, s, f.session))

	// The thief rotates first: it cannot be told from the owner, but the
	// owner's parent then comes from another client, and the session ends.
	g := create(t, s, "bound-first@example.com")
	r, err = rotateAs(s, g, 0, t0.Add(time.Second), thief)
	require.NoError(t, err)
	assert.False(t, r.Reused)
	r, err = rotateAs(s, g, 0, t0.Add(2*time.Second), victim)
	require.NoError(t, err)
	assert.True(t, r.Reused)
	_, err = rotateAs(s, g, 1, t0.Add(3*time.Second), thief)
	assert.ErrorIs(t, err, identity.ErrNotFound)

	// Unbound (LANYARD_REFRESH_GRACE_BINDING=none): any client's parent is
	// honoured, as before.
	h := create(t, s, "unbound@example.com")
	_, err = rotateAs(s, h, 0, t0.Add(time.Second), victim)
	require.NoError(t, err)
	r, err = rotateAs(s, h, 0, t0.Add(2*time.Second), nil)
	require.NoError(t, err)
	assert.False(t, r.Reused)
	assert.Equal(t, int64(1), r.Generation)
	// A rotation that recorded no client (binding off then, or before the
	// column existed) binds nothing: switching binding on signs no one out.
	r, err = rotateAs(s, h, 1, t0.Add(3*time.Second), nil)
	require.NoError(t, err)
	require.Equal(t, int64(2), r.Generation)
	r, err = rotateAs(s, h, 1, t0.Add(4*time.Second), thief)
	require.NoError(t, err)
	assert.False(t, r.Reused)
	assert.Equal(t, int64(2), r.Generation)

	// Binding never extends grace: the rotating client's own parent after
	// the window is reuse.
	k := create(t, s, "bound-late@example.com")
	_, err = rotateAs(s, k, 0, t0.Add(time.Second), victim)
	require.NoError(t, err)
	r, err = rotateAs(s, k, 0, t0.Add(12*time.Second), victim)
	require.NoError(t, err)
	assert.True(t, r.Reused)
}

// testReplaceSecret: a session given a new secret (password change) refuses
// every refresh token of its old secret and starts a new chain.
func testReplaceSecret(t *testing.T, s Store) {
	ctx := context.Background()
	f := create(t, s, "rekey@example.com")
	_, err := rotateAs(s, f, 0, t0.Add(time.Second), victim)
	require.NoError(t, err)
	_, err = rotateAs(s, f, 1, t0.Add(2*time.Second), victim)
	require.NoError(t, err)

	fresh := f
	fresh.session.SecretHash = newSession(f.user.ID, t0).SecretHash
	at := t0.Add(3 * time.Second)
	expires, err := s.ReplaceSessionSecret(ctx, f.user.ID, f.session.ID, fresh.session.SecretHash, at)
	require.NoError(t, err)
	assert.Equal(t, f.session.ExpiresAt, expires, "the absolute end is kept")

	assert.False(t, exists(t, s, f.session), "the old secret matches nothing")
	for gen := int64(0); gen <= 2; gen++ {
		_, err = rotateAs(s, f, gen, at.Add(time.Second), victim)
		assert.ErrorIs(t, err, identity.ErrNotFound, "old generation %d, even inside grace from the rotating client", gen)
	}
	st, err := s.SessionState(ctx, fresh.session.ID, fresh.session.SecretHash)
	require.NoError(t, err)
	assert.Empty(t, st.RevokeReason, "the session lives on")
	assert.Equal(t, at, st.LastUsedAt)
	r, err := rotateAs(s, fresh, 0, at.Add(time.Second), victim)
	require.NoError(t, err)
	assert.Equal(t, int64(1), r.Generation, "the new chain starts at generation 0")

	// Only a live session of that user is re-keyed.
	other := create(t, s, "rekey-other@example.com")
	secret := make([]byte, 32)
	_, err = s.ReplaceSessionSecret(ctx, other.user.ID, f.session.ID, secret, at)
	assert.ErrorIs(t, err, identity.ErrNotFound, "not another user's session")
	_, err = s.ReplaceSessionSecret(ctx, f.user.ID, "not-a-uuid", secret, at)
	assert.ErrorIs(t, err, identity.ErrNotFound)
	_, err = s.ReplaceSessionSecret(ctx, other.user.ID, other.session.ID, secret, other.session.ExpiresAt)
	assert.ErrorIs(t, err, identity.ErrNotFound, "not past its absolute end")
	require.NoError(t, s.RevokeSession(ctx, other.session.ID, other.session.SecretHash, "logout", at, testEvent(identity.AuditSessionEnded)))
	_, err = s.ReplaceSessionSecret(ctx, other.user.ID, other.session.ID, secret, at)
	assert.ErrorIs(t, err, identity.ErrNotFound, "not an ended one")
	assert.True(t, exists(t, s, other.session), "and a refused re-key writes nothing")
}

func testSigningKeys(t *testing.T, s Store) {
	ctx := context.Background()
	now := t0
	k := identity.SigningKeyRecord{KID: "kid-1", Alg: "ES256", State: identity.KeyStateCurrent, Sealed: []byte{1, 2, 3}, CreatedAt: now, ActivatedAt: &now}
	require.NoError(t, s.InsertSigningKey(ctx, k))
	second := k
	second.KID = "kid-2"
	assert.ErrorIs(t, s.InsertSigningKey(ctx, second), identity.ErrKeyConflict, "only one current key")
	assert.ErrorIs(t, s.InsertSigningKey(ctx, k), identity.ErrKeyConflict, "kid is unique")
	bad := second
	bad.State = "bogus"
	assert.Error(t, s.InsertSigningKey(ctx, bad))

	next := second
	next.State, next.ActivatedAt = identity.KeyStateNext, nil
	require.NoError(t, s.InsertSigningKey(ctx, next))
	third := next
	third.KID = "kid-3"
	assert.ErrorIs(t, s.InsertSigningKey(ctx, third), identity.ErrKeyConflict, "only one next key")

	got, err := s.SigningKeys(ctx)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, k.KID, got[0].KID)
	assert.Equal(t, k.Sealed, got[0].Sealed)
	assert.Equal(t, now, got[0].CreatedAt)
	require.NotNil(t, got[0].ActivatedAt)
	assert.True(t, now.Equal(*got[0].ActivatedAt))

	// Promotion inside the maintenance lock: retire the current key, then
	// the next one may become current.
	later := now.Add(time.Hour)
	require.NoError(t, s.WithKeyLock(ctx, func(tx identity.KeyMaintainer) error {
		if err := tx.UpdateSigningKeyState(ctx, k.KID, identity.KeyStateRetired, later); err != nil {
			return err
		}
		return tx.UpdateSigningKeyState(ctx, next.KID, identity.KeyStateCurrent, later)
	}))
	got, err = s.SigningKeys(ctx)
	require.NoError(t, err)
	assert.Equal(t, identity.KeyStateRetired, got[0].State)
	require.NotNil(t, got[0].RetiredAt)
	assert.True(t, later.Equal(*got[0].RetiredAt))
	assert.Equal(t, identity.KeyStateCurrent, got[1].State)
	assert.ErrorIs(t, s.UpdateSigningKeyState(ctx, "no-such-kid", identity.KeyStateRemoved, later), identity.ErrNotFound)

	// A failed maintenance transaction changes nothing.
	err = s.WithKeyLock(ctx, func(tx identity.KeyMaintainer) error {
		require.NoError(t, tx.UpdateSigningKeyState(ctx, k.KID, identity.KeyStateRemoved, later))
		return assert.AnError
	})
	assert.ErrorIs(t, err, assert.AnError)
	got, err = s.SigningKeys(ctx)
	require.NoError(t, err)
	assert.Equal(t, identity.KeyStateRetired, got[0].State)

	// Revocation stamps revoked_at; the schema allows the state only with
	// the time, so a revoked key without it cannot be stored.
	revokedAt := later.Add(time.Minute)
	require.NoError(t, s.UpdateSigningKeyState(ctx, k.KID, identity.KeyStateRevoked, revokedAt))
	got, err = s.SigningKeys(ctx)
	require.NoError(t, err)
	assert.Equal(t, identity.KeyStateRevoked, got[0].State)
	require.NotNil(t, got[0].RevokedAt)
	assert.True(t, revokedAt.Equal(*got[0].RevokedAt))
	assert.Nil(t, got[1].RevokedAt)
	untimed := third
	untimed.State = identity.KeyStateRevoked
	assert.Error(t, s.InsertSigningKey(ctx, untimed))
}

func testProfiles(t *testing.T, s Store) {
	ctx := context.Background()
	f := create(t, s, "profile@example.com")
	first := t0.Add(time.Hour)
	p, err := s.UpsertProfile(ctx, f.user.ID, identity.Profile{PythonProficiency: "beginner", DeveloperRole: "student"}, first)
	require.NoError(t, err)
	assert.Equal(t, "beginner", p.PythonProficiency)
	assert.Equal(t, "student", p.DeveloperRole)
	require.NotNil(t, p.CompletedAt)
	assert.Equal(t, first, *p.CompletedAt)

	p, err = s.UpsertProfile(ctx, f.user.ID, identity.Profile{PythonProficiency: "advanced", DeveloperRole: "researcher"}, first.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, "advanced", p.PythonProficiency)
	assert.Equal(t, first, *p.CompletedAt, "completion time is kept on later changes")

	u, err := s.UserByID(ctx, f.user.ID)
	require.NoError(t, err)
	require.NotNil(t, u.Profile)
	assert.Equal(t, p, *u.Profile)
	assert.True(t, u.ProfileComplete())

	_, err = s.UpsertProfile(ctx, uuid.NewString(), identity.Profile{PythonProficiency: "none", DeveloperRole: "other"}, first)
	assert.ErrorIs(t, err, identity.ErrNotFound, "no profile for a user that does not exist")
	_, err = s.UpsertProfile(ctx, f.user.ID, identity.Profile{PythonProficiency: "guru", DeveloperRole: "other"}, first)
	assert.Error(t, err, "a value outside the enumeration is refused")
	u, err = s.UserByID(ctx, f.user.ID)
	require.NoError(t, err)
	assert.Equal(t, "advanced", u.Profile.PythonProficiency, "and writes nothing")
}

func testUserSessions(t *testing.T, s Store) {
	ctx := context.Background()
	now := t0.Add(time.Hour)
	idle := now.Add(-168 * time.Hour)
	a := create(t, s, "sessions-a@example.com")
	b := create(t, s, "sessions-b@example.com")
	a2 := addSession(t, s, a.user.ID, t0.Add(time.Minute))

	live := func(ns identity.NewSession, userID string) bool {
		t.Helper()
		ok, err := s.SessionActive(ctx, ns.ID, userID, now, idle)
		require.NoError(t, err)
		return ok
	}
	assert.True(t, live(a.session, a.user.ID))
	assert.False(t, live(a.session, b.user.ID), "a session belongs to one user")
	ok, err := s.SessionActive(ctx, "not-a-uuid", a.user.ID, now, idle)
	require.NoError(t, err)
	assert.False(t, ok)
	ok, err = s.SessionActive(ctx, a.session.ID, a.user.ID, a.session.ExpiresAt, idle)
	require.NoError(t, err)
	assert.False(t, ok, "not past its absolute end")
	ok, err = s.SessionActive(ctx, a.session.ID, a.user.ID, now, t0)
	require.NoError(t, err)
	assert.False(t, ok, "not when idle since the cutoff")

	list, err := s.ListSessions(ctx, a.user.ID, now, idle)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, a2.ID, list[0].ID, "most recently used first")
	assert.Equal(t, a.session.ID, list[1].ID)
	require.NotNil(t, list[1].UserAgent)
	assert.Equal(t, "test-agent/1.0", *list[1].UserAgent)
	assert.Equal(t, "127.0.0.1", *list[1].IP)
	assert.Nil(t, list[0].UserAgent)

	_, err = s.EndSession(ctx, b.user.ID, a.session.ID, "logout", now)
	assert.ErrorIs(t, err, identity.ErrNotFound, "not another user's session")
	_, err = s.EndSession(ctx, a.user.ID, uuid.NewString(), "logout", now)
	assert.ErrorIs(t, err, identity.ErrNotFound)
	assert.True(t, live(a.session, a.user.ID))
	justEnded, err := s.EndSession(ctx, a.user.ID, a2.ID, "logout", now)
	require.NoError(t, err)
	assert.True(t, justEnded)
	justEnded, err = s.EndSession(ctx, a.user.ID, a2.ID, "logout", now)
	require.NoError(t, err, "ending an ended session is fine")
	assert.False(t, justEnded, "and reports that it ended nothing")
	assert.False(t, live(a2, a.user.ID))

	a3 := addSession(t, s, a.user.ID, t0.Add(2*time.Minute))
	ended, err := s.EndOtherSessions(ctx, a.user.ID, a3.ID, "logout_others", now)
	require.NoError(t, err)
	assert.EqualValues(t, 1, ended, "a2 had ended already; a3 is kept")
	ended, err = s.EndOtherSessions(ctx, a.user.ID, a3.ID, "logout_others", now)
	require.NoError(t, err)
	assert.Zero(t, ended, "nothing left to end")
	list, err = s.ListSessions(ctx, a.user.ID, now, idle)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, a3.ID, list[0].ID)
	assert.Equal(t, "logout_others", revokeReason(t, s, a.session))
	assert.True(t, live(b.session, b.user.ID), "other users' sessions are untouched")
}

func testDatabaseClock(t *testing.T, s Store) {
	before := time.Now()
	now, err := s.DatabaseNow(context.Background())
	after := time.Now()
	require.NoError(t, err)
	assert.Equal(t, time.UTC, now.Location())
	// The database runs on this machine: its clock reads between the two
	// local readings, give or take its precision.
	assert.False(t, now.Before(before.Add(-time.Millisecond)), "database clock %v before local %v", now, before)
	assert.False(t, now.After(after.Add(time.Millisecond)), "database clock %v after local %v", now, after)
}

func testPurge(t *testing.T, s Store) {
	ctx := context.Background()
	u := create(t, s, "purge@example.com")
	now := t0.Add(800 * time.Hour) // past the fixture session's absolute end
	fresh := addSession(t, s, u.user.ID, now.Add(-time.Hour))
	recentlyEnded := addSession(t, s, u.user.ID, now.Add(-time.Hour))
	require.NoError(t, s.RevokeSession(ctx, recentlyEnded.ID, recentlyEnded.SecretHash, "logout", now.Add(-time.Hour), testEvent(identity.AuditSessionEnded)))
	longEnded := addSession(t, s, u.user.ID, now.Add(-100*time.Hour))
	require.NoError(t, s.RevokeSession(ctx, longEnded.ID, longEnded.SecretHash, "logout", now.Add(-48*time.Hour), testEvent(identity.AuditSessionEnded)))
	idle := addSession(t, s, u.user.ID, now.Add(-200*time.Hour)) // unused for more than 168h

	purge := func() int64 {
		t.Helper()
		n, err := s.PurgeSessions(ctx, now, now.Add(-168*time.Hour), now.Add(-24*time.Hour), 2)
		require.NoError(t, err)
		return n
	}
	assert.EqualValues(t, 2, purge(), "a batch is bounded")
	assert.EqualValues(t, 1, purge())
	assert.Zero(t, purge())

	assert.True(t, exists(t, s, fresh), "a live session stays")
	assert.True(t, exists(t, s, recentlyEnded), "a recently ended session stays, so a replay is still reported precisely")
	assert.False(t, exists(t, s, u.session), "past its absolute end")
	assert.False(t, exists(t, s, idle), "idle past the cutoff")
	assert.False(t, exists(t, s, longEnded), "ended long ago")
}

// testRacingRotations: twenty racing refreshes of one token from one client
// (tabs of one browser) make one advance and nineteen grace answers, and
// never revoke: the losers see the winner's fingerprint once it commits.
func testRacingRotations(t *testing.T, s Store) {
	f := create(t, s, "race@example.com")
	const n = 20
	gens := make([]int64, n)
	errs := make([]error, n)
	race(n, func(i int) {
		r, err := rotateAs(s, f, 0, t0.Add(time.Second), victim)
		gens[i], errs[i] = r.Generation, err
		if err == nil && r.Reused {
			gens[i] = -1
		}
	})
	for i := range n {
		require.NoError(t, errs[i])
		assert.Equal(t, int64(1), gens[i], "caller %d", i)
	}
	r, err := rotate(s, f, 1, t0.Add(2*time.Second))
	require.NoError(t, err)
	assert.Equal(t, int64(2), r.Generation, "the one successor is live")
}

// testRacingSwaps: of several password changes racing from one old hash,
// exactly one wins, and the sessions it ends are ended once.
func testRacingSwaps(t *testing.T, s Store) {
	ctx := context.Background()
	f := create(t, s, "swap@example.com")
	other := addSession(t, s, f.user.ID, t0)
	const n = 8
	errs := make([]error, n)
	secrets := make([][]byte, n)
	race(n, func(i int) {
		secrets[i] = newSession(f.user.ID, t0).SecretHash
		errs[i] = s.Atomically(ctx, func(tx identity.Tx) error {
			if err := tx.SwapPasswordHash(ctx, f.user.ID, testHash+string(rune('a'+i)), testHash, t0); err != nil {
				return err
			}
			if _, err := tx.ReplaceSessionSecret(ctx, f.user.ID, f.session.ID, secrets[i], t0); err != nil {
				return err
			}
			_, err := tx.EndOtherSessions(ctx, f.user.ID, f.session.ID, "password_change", t0)
			return err
		})
	})
	won := -1
	for i, err := range errs {
		if err == nil {
			assert.Equal(t, -1, won, "only one change wins")
			won = i
			continue
		}
		assert.ErrorIs(t, err, identity.ErrStaleCredentials, "change %d", i)
	}
	require.NotEqual(t, -1, won, "one change wins")
	hash, err := s.PasswordHashByID(ctx, f.user.ID)
	require.NoError(t, err)
	assert.Equal(t, testHash+string(rune('a'+won)), hash)
	assert.Equal(t, "password_change", revokeReason(t, s, other))
	assert.False(t, exists(t, s, f.session), "the current session's old secret is gone")
	current := f.session
	current.SecretHash = secrets[won]
	assert.Empty(t, revokeReason(t, s, current), "it lives on under the winner's secret")
}

func counter(scope string, limit int64, window time.Duration) identity.ThrottleCounter {
	key := sha256.Sum256([]byte(scope + uuid.NewString()))
	return identity.ThrottleCounter{Scope: scope, Key: key[:], Limit: limit, Window: window}
}

// charge charges the counters at now and returns which were charged.
func charge(t *testing.T, s Store, now time.Time, counters ...identity.ThrottleCounter) []bool {
	t.Helper()
	charged, err := s.ChargeThrottles(context.Background(), counters, now, 40*time.Minute)
	require.NoError(t, err)
	return charged
}

func blockedUntil(t *testing.T, s Store, c identity.ThrottleCounter) time.Time {
	t.Helper()
	ends, err := s.ThrottleBlocks(context.Background(), []identity.ThrottleCounter{c})
	require.NoError(t, err)
	return ends[0]
}

// testThrottles: a counter admits its limit per window, then blocks until
// the window ends, then escalates (a window, twice that, capped at the
// maximum delay), and starts afresh after a quiet window; refunds lift the
// block they caused; counters charged together are judged each on its own.
func testThrottles(t *testing.T, s Store) {
	ctx := context.Background()
	ms := time.Millisecond
	now := t0.Truncate(ms)
	const window = 10 * time.Minute
	c := counter("login_account_ip", 3, window)
	for i := range 3 {
		assert.Equal(t, []bool{true}, charge(t, s, now.Add(time.Duration(i)*time.Second), c), "attempt %d is within the limit", i+1)
	}
	assert.Equal(t, now.Add(window), blockedUntil(t, s, c), "the attempt reaching the limit blocks until the window ends")
	assert.Equal(t, []bool{false}, charge(t, s, now.Add(5*time.Minute), c), "blocked")
	assert.Equal(t, now.Add(window), blockedUntil(t, s, c), "a refused attempt changes nothing")

	// Escalation: after the window, one attempt at a time, each blocking for
	// a doubling delay up to the maximum (40 min here).
	at := now.Add(window)
	for _, delay := range []time.Duration{window, 2 * window, 4 * window, 4 * window} {
		assert.Equal(t, []bool{true}, charge(t, s, at, c), "the block is over at %s", at)
		assert.Equal(t, at.Add(delay), blockedUntil(t, s, c))
		assert.Equal(t, []bool{false}, charge(t, s, at.Add(delay-ms), c))
		at = at.Add(delay)
	}
	// A full quiet window after the last block: a fresh start.
	at = at.Add(window)
	for i := range 3 {
		assert.Equal(t, []bool{true}, charge(t, s, at, c), "fresh attempt %d", i+1)
	}
	assert.Equal(t, []bool{false}, charge(t, s, at, c))

	// Refunds: a refunded charge lifts the block it set.
	r := counter("login_ip", 2, window)
	assert.Equal(t, []bool{true}, charge(t, s, now, r))
	assert.Equal(t, []bool{true}, charge(t, s, now, r))
	assert.Equal(t, now.Add(window), blockedUntil(t, s, r))
	require.NoError(t, s.SettleThrottles(ctx, nil, []identity.ThrottleCounter{r}))
	assert.True(t, blockedUntil(t, s, r).IsZero(), "below the limit again, nothing blocks")
	assert.Equal(t, []bool{true}, charge(t, s, now.Add(time.Second), r))
	assert.Equal(t, []bool{false}, charge(t, s, now.Add(2*time.Second), r))

	// Several counters in one statement: each is judged on its own.
	fresh := counter("login_account", 5, time.Hour)
	assert.Equal(t, []bool{false, true}, charge(t, s, now.Add(3*time.Second), r, fresh))

	// Clearing and refunding at once; an unknown counter has no block.
	require.NoError(t, s.SettleThrottles(ctx, []identity.ThrottleCounter{r}, []identity.ThrottleCounter{fresh}))
	assert.True(t, blockedUntil(t, s, r).IsZero())
	assert.Equal(t, []bool{true, true}, charge(t, s, now.Add(4*time.Second), r, fresh))
	assert.Equal(t, []bool{true}, charge(t, s, now.Add(5*time.Second), r), "cleared: the limit applies afresh")
	assert.Equal(t, []bool{false}, charge(t, s, now.Add(5*time.Second), r))
	fresh.Limit = 2
	assert.Equal(t, []bool{true}, charge(t, s, now.Add(5*time.Second), fresh), "refunded: one charge of two, then the second")
	assert.Equal(t, []bool{false}, charge(t, s, now.Add(5*time.Second), fresh))
	assert.True(t, blockedUntil(t, s, counter("login_ip", 1, window)).IsZero(), "an unknown counter has no block")

	// A limit of one blocks at the first attempt.
	one := counter("signup_ip", 1, window)
	assert.Equal(t, []bool{true, false}, []bool{charge(t, s, now, one)[0], charge(t, s, now, one)[0]})
}

// testThrottlePurge: cleanup deletes only counters whose window and block
// are a quiet window in the past, in bounded batches.
func testThrottlePurge(t *testing.T, s Store) {
	ctx := context.Background()
	now := t0.Truncate(time.Millisecond)
	const window = time.Minute
	var old []identity.ThrottleCounter
	for range 3 {
		c := counter("login_ip", 5, window)
		charge(t, s, now, c)
		old = append(old, c)
	}
	blocked := counter("login_ip", 1, window)
	charge(t, s, now, blocked) // blocked until now + window: kept until now + 2 windows
	live := counter("login_ip", 5, window)
	charge(t, s, now.Add(window), live)

	at := now.Add(window)
	n, err := s.PurgeThrottles(ctx, at, 2)
	require.NoError(t, err)
	assert.EqualValues(t, 2, n, "a batch is bounded")
	n, err = s.PurgeThrottles(ctx, at, 2)
	require.NoError(t, err)
	assert.EqualValues(t, 1, n)
	n, err = s.PurgeThrottles(ctx, at, 2)
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Equal(t, now.Add(window), blockedUntil(t, s, blocked), "a blocked counter stays a window past its block")
	n, err = s.PurgeThrottles(ctx, now.Add(2*window), 10)
	require.NoError(t, err)
	assert.EqualValues(t, 2, n)
	assert.True(t, blockedUntil(t, s, blocked).IsZero())
}

// testRacingCharges: of many attempts charging one counter at once, exactly
// the limit is admitted.
func testRacingCharges(t *testing.T, s Store) {
	const n, limit = 20, 5
	c := counter("login_account_ip", limit, time.Hour)
	charged := make([]bool, n)
	errs := make([]error, n)
	race(n, func(i int) {
		got, err := s.ChargeThrottles(context.Background(), []identity.ThrottleCounter{c}, t0, time.Hour)
		errs[i] = err
		if err == nil {
			charged[i] = got[0]
		}
	})
	admitted := 0
	for i := range n {
		require.NoError(t, errs[i])
		if charged[i] {
			admitted++
		}
	}
	assert.Equal(t, limit, admitted)
}
