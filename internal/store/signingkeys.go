package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/lanyard-id/lanyard/internal/identity"
)

type signingKeyRow struct {
	KID           string `gorm:"column:kid;primaryKey"`
	Alg           string
	State         string
	PrivateSealed []byte
	CreatedAt     time.Time
	ActivatedAt   *time.Time
	RetiredAt     *time.Time
	RemovedAt     *time.Time
	RevokedAt     *time.Time
}

func (signingKeyRow) TableName() string { return "lanyard.signing_keys" }

// SigningKeys returns every stored key, oldest first.
func (s *Store) SigningKeys(ctx context.Context) ([]identity.SigningKeyRecord, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var rows []signingKeyRow
	if err := s.db.WithContext(ctx).Order("created_at, kid").Find(&rows).Error; err != nil {
		return nil, s.fail(err)
	}
	out := make([]identity.SigningKeyRecord, len(rows))
	for i, r := range rows {
		out[i] = identity.SigningKeyRecord{
			KID: r.KID, Alg: r.Alg, State: r.State, Sealed: r.PrivateSealed,
			CreatedAt: r.CreatedAt.UTC(), ActivatedAt: utc(r.ActivatedAt), RetiredAt: utc(r.RetiredAt), RemovedAt: utc(r.RemovedAt),
			RevokedAt: utc(r.RevokedAt),
		}
	}
	return out, nil
}

// InsertSigningKey stores a key; identity.ErrKeyConflict when its kid or the
// one-current-key rule is already taken.
func (s *Store) InsertSigningKey(ctx context.Context, k identity.SigningKeyRecord) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	err := s.db.WithContext(ctx).Create(&signingKeyRow{
		KID: k.KID, Alg: k.Alg, State: k.State, PrivateSealed: k.Sealed,
		CreatedAt: k.CreatedAt, ActivatedAt: k.ActivatedAt,
	}).Error
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return identity.ErrKeyConflict
	}
	return s.fail(err)
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// keyLockID names the Postgres advisory lock that serialises key
// maintenance across replicas ("lanyard" in ASCII).
const keyLockID = 0x6c616e79617264

// WithKeyLock runs fn in a transaction holding the key-maintenance lock, so
// when several replicas find a rotation due at once, exactly one performs it
// and the others then see its result. (SQLite serialises writers anyway.)
func (s *Store) WithKeyLock(ctx context.Context, fn func(identity.KeyMaintainer) error) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.fail(s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if s.dialect == Postgres {
			if err := tx.Exec(`SELECT pg_advisory_xact_lock(?)`, keyLockID).Error; err != nil {
				return err
			}
		}
		return fn(s.in(tx))
	}))
}

// UpdateSigningKeyState moves a key to state and stamps the matching time.
func (s *Store) UpdateSigningKeyState(ctx context.Context, kid, state string, at time.Time) error {
	column := map[string]string{
		identity.KeyStateCurrent: "activated_at",
		identity.KeyStateRetired: "retired_at",
		identity.KeyStateRemoved: "removed_at",
		identity.KeyStateRevoked: "revoked_at",
	}[state]
	if column == "" {
		return fmt.Errorf("store: no transition into key state %q", state)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	res := s.db.WithContext(ctx).Exec(`UPDATE lanyard.signing_keys SET state = ?, `+column+` = ? WHERE kid = ?`, state, at, kid)
	if errors.Is(s.translate(res.Error), gorm.ErrDuplicatedKey) {
		return identity.ErrKeyConflict
	}
	if res.Error == nil && res.RowsAffected == 0 {
		return identity.ErrNotFound
	}
	return s.fail(res.Error)
}

// ResealSigningKey replaces a key's sealed private part (secret rotation).
func (s *Store) ResealSigningKey(ctx context.Context, kid string, sealed []byte) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	res := s.db.WithContext(ctx).Exec(`UPDATE lanyard.signing_keys SET private_sealed = ? WHERE kid = ?`, sealed, kid)
	if res.Error == nil && res.RowsAffected == 0 {
		return identity.ErrNotFound
	}
	return s.fail(res.Error)
}
