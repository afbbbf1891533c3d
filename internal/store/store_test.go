package store_test

import (
	"context"
	"crypto/sha256"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/store"
	"github.com/lanyard-id/lanyard/internal/testdb"
)

const testHash = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 123456000, time.UTC)

// TestConformance runs one suite against every database Lanyard supports.
func TestConformance(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			s := testdb.Open(t, d)
			t.Run("users", func(t *testing.T) { testUsers(t, s) })
			t.Run("rotation", func(t *testing.T) { testRotation(t, s) })
			t.Run("revocation", func(t *testing.T) { testRevocation(t, s) })
			t.Run("signing keys", func(t *testing.T) { testSigningKeys(t, s) })
			t.Run("profiles", func(t *testing.T) { testProfiles(t, s) })
			t.Run("user sessions", func(t *testing.T) { testUserSessions(t, s) })
			t.Run("purge", func(t *testing.T) { testPurge(t, testdb.Open(t, d)) }) // counts rows: a database of its own
		})
	}
}

type fixture struct {
	user    identity.User
	session identity.NewSession
}

func newFixture(email string) fixture {
	secret := sha256.Sum256([]byte(uuid.NewString()))
	name := "Ada Lovelace"
	u := identity.User{ID: uuid.NewString(), Email: email, Name: &name, CreatedAt: t0}
	return fixture{user: u, session: identity.NewSession{
		ID: uuid.NewString(), UserID: u.ID, SecretHash: secret[:],
		CreatedAt: t0, ExpiresAt: t0.Add(720 * time.Hour), UserAgent: "test-agent/1.0", IP: "127.0.0.1",
	}}
}

func create(t *testing.T, s *store.Store, email string) fixture {
	t.Helper()
	f := newFixture(email)
	require.NoError(t, s.CreateUser(context.Background(), f.user, testHash, f.session))
	return f
}

func countRows(t *testing.T, s *store.Store, table, where string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, s.DB().Table(table).Where(where, args...).Count(&n).Error)
	return n
}

func testUsers(t *testing.T, s *store.Store) {
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
	}

	// The unique index ignores case even if a writer forgot to normalise, and
	// a rejected signup leaves neither the user nor its session behind.
	dup := newFixture("ADA@example.com")
	assert.ErrorIs(t, s.CreateUser(ctx, dup.user, testHash, dup.session), identity.ErrEmailTaken)
	assert.Zero(t, countRows(t, s, "users", "id = ?", dup.user.ID))
	assert.Zero(t, countRows(t, s, "sessions", "id = ?", dup.session.ID))

	// A session for a user that does not exist violates the foreign key.
	orphan := newFixture("orphan@example.com")
	assert.Error(t, s.CreateSession(ctx, orphan.session))

	// CHECK constraints hold even against a buggy writer.
	assert.Error(t, s.DB().Exec(`INSERT INTO profiles (user_id, python_proficiency, updated_at) VALUES (?, 'guru', ?)`, f.user.ID, t0).Error)
	assert.Error(t, s.DB().Exec(`INSERT INTO profiles (user_id, python_proficiency, developer_role, updated_at) VALUES (?, 'none', 'student', ?)`, f.user.ID, t0).Error,
		"completed_at must be set when both answers are")

	require.NoError(t, s.SetPasswordHash(ctx, f.user.ID, testHash+"x", testHash, t0))
	assert.ErrorIs(t, s.SetPasswordHash(ctx, f.user.ID, testHash+"y", testHash, t0), identity.ErrStaleCredentials, "a stale swap writes nothing")

	login := newFixture("unused@example.com").session
	login.UserID = f.user.ID
	assert.ErrorIs(t, s.CreateLoginSession(ctx, login, testHash), identity.ErrStaleCredentials, "no session for a password that changed meanwhile")
	assert.Zero(t, countRows(t, s, "sessions", "id = ?", login.ID))
	require.NoError(t, s.CreateLoginSession(ctx, login, testHash+"x"))
	assert.EqualValues(t, 1, countRows(t, s, "sessions", "id = ?", login.ID))
	_, hash, err = s.FindCredentials(ctx, "ada@example.com")
	require.NoError(t, err)
	assert.Equal(t, testHash+"x", hash)
}

func rotate(s *store.Store, f fixture, gen int64, now time.Time) (identity.Rotation, error) {
	return s.RotateSession(context.Background(), identity.RotateRequest{
		SessionID: f.session.ID, SecretHash: f.session.SecretHash, Generation: gen,
		Now: now, GraceStart: now.Add(-10 * time.Second), IdleCutoff: now.Add(-168 * time.Hour),
	})
}

func testRotation(t *testing.T, s *store.Store) {
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
	require.NoError(t, s.DB().Exec(`INSERT INTO profiles (user_id, python_proficiency, developer_role, completed_at, updated_at) VALUES (?, 'advanced', 'researcher', ?, ?)`,
		f.user.ID, done, done).Error)
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
	st, err := s.SessionState(ctx, f.session.ID, f.session.SecretHash)
	require.NoError(t, err)
	assert.Empty(t, st.RevokeReason)

	// The parent after grace is reuse: the session is revoked.
	r, err = rotate(s, f, 1, t0.Add(3*time.Minute+11*time.Second))
	require.NoError(t, err)
	assert.True(t, r.Reused)
	_, err = rotate(s, f, 2, t0.Add(4*time.Minute))
	assert.ErrorIs(t, err, identity.ErrNotFound, "the live token dies with its session")
	st, err = s.SessionState(ctx, f.session.ID, f.session.SecretHash)
	require.NoError(t, err)
	assert.Equal(t, "reuse", st.RevokeReason)

	// Two generations old, even within grace, is reuse.
	g := create(t, s, "grand@example.com")
	for gen := int64(0); gen < 2; gen++ {
		_, err = rotate(s, g, gen, t0.Add(time.Duration(gen+1)*time.Second))
		require.NoError(t, err)
	}
	r, err = rotate(s, g, 0, t0.Add(3*time.Second))
	require.NoError(t, err)
	assert.True(t, r.Reused)

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
}

func testRevocation(t *testing.T, s *store.Store) {
	ctx := context.Background()
	f := create(t, s, "rev@example.com")
	wrong := make([]byte, 32)
	require.NoError(t, s.RevokeSession(ctx, f.session.ID, wrong, "logout", t0))
	st, err := s.SessionState(ctx, f.session.ID, f.session.SecretHash)
	require.NoError(t, err)
	assert.Empty(t, st.RevokeReason, "a wrong secret does not end someone else's session")

	require.NoError(t, s.RevokeSession(ctx, f.session.ID, f.session.SecretHash, "logout", t0.Add(time.Second)))
	require.NoError(t, s.RevokeSession(ctx, f.session.ID, f.session.SecretHash, "logout", t0.Add(2*time.Second)), "idempotent")
	st, err = s.SessionState(ctx, f.session.ID, f.session.SecretHash)
	require.NoError(t, err)
	assert.Equal(t, "logout", st.RevokeReason)
	_, err = rotate(s, f, 0, t0.Add(3*time.Second))
	assert.ErrorIs(t, err, identity.ErrNotFound)

	_, err = s.SessionState(ctx, uuid.NewString(), f.session.SecretHash)
	assert.ErrorIs(t, err, identity.ErrNotFound)
}

func testSigningKeys(t *testing.T, s *store.Store) {
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

	got, err := s.SigningKeys(ctx)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, k.KID, got[0].KID)
	assert.Equal(t, k.Sealed, got[0].Sealed)
	assert.Equal(t, now, got[0].CreatedAt)
	require.NotNil(t, got[0].ActivatedAt)
	assert.True(t, now.Equal(*got[0].ActivatedAt))
}

// TestConcurrentRotationPostgres: twenty racing refreshes of one token make
// one advance and nineteen grace answers, and never revoke.
func TestConcurrentRotationPostgres(t *testing.T) {
	s := testdb.Open(t, store.Postgres)
	f := create(t, s, "race@example.com")
	const n = 20
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		gens  = make([]int64, n)
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := rotate(s, f, 0, t0.Add(time.Second))
			gens[i], errs[i] = r.Generation, err
			if err == nil && r.Reused {
				gens[i] = -1
			}
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		assert.Equal(t, int64(1), gens[i], "caller %d", i)
	}
	r, err := rotate(s, f, 1, t0.Add(2*time.Second))
	require.NoError(t, err)
	assert.Equal(t, int64(2), r.Generation, "the one successor is live")
}

func testProfiles(t *testing.T, s *store.Store) {
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
	assert.Error(t, err, "the CHECK constraint holds")
}

func addSession(t *testing.T, s *store.Store, userID string, created time.Time) identity.NewSession {
	t.Helper()
	secret := sha256.Sum256([]byte(uuid.NewString()))
	ns := identity.NewSession{ID: uuid.NewString(), UserID: userID, SecretHash: secret[:], CreatedAt: created, ExpiresAt: created.Add(720 * time.Hour)}
	require.NoError(t, s.CreateSession(context.Background(), ns))
	return ns
}

func testUserSessions(t *testing.T, s *store.Store) {
	ctx := context.Background()
	now := t0.Add(time.Hour)
	idle := now.Add(-168 * time.Hour)
	a := create(t, s, "sessions-a@example.com")
	b := create(t, s, "sessions-b@example.com")
	a2 := addSession(t, s, a.user.ID, t0.Add(time.Minute))

	live, err := s.SessionActive(ctx, a.session.ID, a.user.ID, now, idle)
	require.NoError(t, err)
	assert.True(t, live)
	live, err = s.SessionActive(ctx, a.session.ID, b.user.ID, now, idle)
	require.NoError(t, err)
	assert.False(t, live, "a session belongs to one user")
	live, err = s.SessionActive(ctx, "not-a-uuid", a.user.ID, now, idle)
	require.NoError(t, err)
	assert.False(t, live)

	list, err := s.ListSessions(ctx, a.user.ID, now, idle)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, a2.ID, list[0].ID, "most recently used first")
	assert.Equal(t, a.session.ID, list[1].ID)
	require.NotNil(t, list[1].UserAgent)
	assert.Equal(t, "test-agent/1.0", *list[1].UserAgent)
	assert.Equal(t, "127.0.0.1", *list[1].IP)
	assert.Nil(t, list[0].UserAgent)

	assert.ErrorIs(t, s.EndSession(ctx, b.user.ID, a.session.ID, "logout", now), identity.ErrNotFound, "not another user's session")
	assert.ErrorIs(t, s.EndSession(ctx, a.user.ID, uuid.NewString(), "logout", now), identity.ErrNotFound)
	require.NoError(t, s.EndSession(ctx, a.user.ID, a2.ID, "logout", now))
	require.NoError(t, s.EndSession(ctx, a.user.ID, a2.ID, "logout", now), "ending an ended session is fine")
	live, err = s.SessionActive(ctx, a2.ID, a.user.ID, now, idle)
	require.NoError(t, err)
	assert.False(t, live)

	a3 := addSession(t, s, a.user.ID, t0.Add(2*time.Minute))
	require.NoError(t, s.EndOtherSessions(ctx, a.user.ID, a3.ID, "logout_others", now))
	list, err = s.ListSessions(ctx, a.user.ID, now, idle)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, a3.ID, list[0].ID)
	live, err = s.SessionActive(ctx, b.session.ID, b.user.ID, now, idle)
	require.NoError(t, err)
	assert.True(t, live, "other users' sessions are untouched")

	a4 := addSession(t, s, a.user.ID, t0.Add(3*time.Minute))
	assert.ErrorIs(t, s.ChangePassword(ctx, a.user.ID, testHash+"new", testHash+"stale", a3.ID, now), identity.ErrStaleCredentials)
	assert.ErrorIs(t, s.ChangePassword(ctx, a.user.ID, testHash+"new", testHash, a2.ID, now), identity.ErrNotFound, "an ended session cannot change the password")
	st, err := s.SessionState(ctx, a4.ID, a4.SecretHash)
	require.NoError(t, err)
	assert.Empty(t, st.RevokeReason, "failed changes end nothing")
	require.NoError(t, s.ChangePassword(ctx, a.user.ID, testHash+"new", testHash, a3.ID, now))
	hash, err := s.PasswordHashByID(ctx, a.user.ID)
	require.NoError(t, err)
	assert.Equal(t, testHash+"new", hash)
	st, err = s.SessionState(ctx, a4.ID, a4.SecretHash)
	require.NoError(t, err)
	assert.Equal(t, "password_change", st.RevokeReason)
	live, err = s.SessionActive(ctx, a3.ID, a.user.ID, now, idle)
	require.NoError(t, err)
	assert.True(t, live, "the current session survives a password change")
	_, err = s.PasswordHashByID(ctx, uuid.NewString())
	assert.ErrorIs(t, err, identity.ErrNotFound)
}

func testPurge(t *testing.T, s *store.Store) {
	ctx := context.Background()
	u := create(t, s, "purge@example.com")
	now := t0.Add(800 * time.Hour) // past the fixture session's absolute end
	fresh := addSession(t, s, u.user.ID, now.Add(-time.Hour))
	recentlyEnded := addSession(t, s, u.user.ID, now.Add(-time.Hour))
	require.NoError(t, s.RevokeSession(ctx, recentlyEnded.ID, recentlyEnded.SecretHash, "logout", now.Add(-time.Hour)))
	longEnded := addSession(t, s, u.user.ID, now.Add(-100*time.Hour))
	require.NoError(t, s.RevokeSession(ctx, longEnded.ID, longEnded.SecretHash, "logout", now.Add(-48*time.Hour)))
	idle := addSession(t, s, u.user.ID, now.Add(-200*time.Hour)) // unused for more than 168h

	n, err := s.PurgeSessions(ctx, now, now.Add(-168*time.Hour), now.Add(-24*time.Hour), 2)
	require.NoError(t, err)
	assert.EqualValues(t, 2, n, "a batch is bounded")
	n, err = s.PurgeSessions(ctx, now, now.Add(-168*time.Hour), now.Add(-24*time.Hour), 2)
	require.NoError(t, err)
	assert.EqualValues(t, 1, n)
	n, err = s.PurgeSessions(ctx, now, now.Add(-168*time.Hour), now.Add(-24*time.Hour), 2)
	require.NoError(t, err)
	assert.Zero(t, n)

	var left []string
	require.NoError(t, s.DB().Raw(`SELECT id FROM sessions WHERE user_id = ? ORDER BY id`, u.user.ID).Scan(&left).Error)
	want := []string{fresh.ID, recentlyEnded.ID}
	slices.Sort(want)
	assert.Equal(t, want, left, "expired, idle and long-ended sessions are gone; live and recently ended stay")
	assert.NotContains(t, left, idle.ID)
	assert.NotContains(t, left, longEnded.ID)
}
