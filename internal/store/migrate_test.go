package store_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/store"
	"github.com/lanyard-id/lanyard/internal/testdb"
)

// TestOpaqueUserIDMigration: 00008 turns user ids into opaque text on a
// database that already holds users, profiles, sessions and mail tokens,
// and keeps every row and every foreign key (on SQLite the users table is
// rebuilt, which must not cascade to its children).
func TestOpaqueUserIDMigration(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			opts := store.Options{SQLitePath: filepath.Join(t.TempDir(), "lanyard.db")}
			if d == store.Postgres {
				opts = store.Options{PostgresURL: testdb.PostgresURL(t)}
			}
			s, err := store.Open(ctx, opts)
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			_, err = s.MigrateUpTo(ctx, 7)
			require.NoError(t, err)

			t0 := time.Now().UTC().Truncate(time.Microsecond)
			u := identity.User{ID: uuid.NewString(), Email: "before@example.com", CreatedAt: t0}
			hash := "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
			require.NoError(t, s.CreateUser(ctx, u, hash))
			_, err = s.UpsertProfile(ctx, u.ID, identity.Profile{PythonProficiency: "advanced", DeveloperRole: "researcher"}, t0)
			require.NoError(t, err)
			secret := make([]byte, 32)
			ns := identity.NewSession{ID: uuid.NewString(), UserID: u.ID, SecretHash: secret, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
			require.NoError(t, s.CreateSession(ctx, ns))
			tok := identity.MailToken{Hash: make([]byte, 32), Purpose: identity.PurposeVerifyEmail, UserID: u.ID, Email: u.Email, State: make([]byte, 32), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
			require.NoError(t, s.CreateMailToken(ctx, tok))

			applied, err := s.Migrate(ctx)
			require.NoError(t, err)
			assert.Contains(t, applied, "00008_opaque_user_ids.sql")
			// A new process (pgx caches each statement's parameter types per
			// connection: the old pool still knows the ids as uuid).
			require.NoError(t, s.Close())
			s, err = store.Open(ctx, opts)
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })

			got, err := s.UserByID(ctx, u.ID)
			require.NoError(t, err)
			assert.True(t, got.ProfileComplete(), "the profile survived")
			active, err := s.SessionActive(ctx, ns.ID, u.ID, t0, t0.Add(-time.Hour))
			require.NoError(t, err)
			assert.True(t, active, "the session survived")
			_, err = s.UseMailToken(ctx, tok.Hash, identity.PurposeVerifyEmail, t0)
			require.NoError(t, err, "the mail token survived")

			// An imported id: any text up to 64 characters; not 65.
			imported := identity.User{ID: "aB3dE5fG7hJ9kL1mN3pQ5rS7tV9wX1yZ", Email: "imported@example.com", CreatedAt: t0}
			require.NoError(t, s.CreateUser(ctx, imported, "$ba-scrypt$"+strings.Repeat("a", 32)+":"+strings.Repeat("b", 128)))
			got, err = s.UserByID(ctx, imported.ID)
			require.NoError(t, err)
			assert.Equal(t, imported.ID, got.ID)
			require.NoError(t, s.CreateSession(ctx, identity.NewSession{ID: uuid.NewString(), UserID: imported.ID, SecretHash: secret, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
			assert.Error(t, s.CreateUser(ctx, identity.User{ID: strings.Repeat("x", 65), Email: "long@example.com", CreatedAt: t0}, hash))
			assert.Error(t, s.CreateUser(ctx, identity.User{ID: "plain", Email: "plain@example.com", CreatedAt: t0}, "plaintext"),
				"only argon2id and marked Better-Auth hashes are stored")

			// The foreign keys hold: a session of no user is refused.
			assert.Error(t, s.CreateSession(ctx, identity.NewSession{ID: uuid.NewString(), UserID: "nobody", SecretHash: secret, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
		})
	}
}
