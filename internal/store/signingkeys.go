package store

import (
	"context"
	"errors"
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
}

func (signingKeyRow) TableName() string { return "signing_keys" }

// SigningKeys returns every stored key, oldest first.
func (s *Store) SigningKeys(ctx context.Context) ([]identity.SigningKeyRecord, error) {
	var rows []signingKeyRow
	if err := s.db.WithContext(ctx).Order("created_at, kid").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]identity.SigningKeyRecord, len(rows))
	for i, r := range rows {
		out[i] = identity.SigningKeyRecord{
			KID: r.KID, Alg: r.Alg, State: r.State, Sealed: r.PrivateSealed,
			CreatedAt: r.CreatedAt.UTC(), ActivatedAt: r.ActivatedAt,
		}
	}
	return out, nil
}

// InsertSigningKey stores a key; identity.ErrKeyConflict when its kid or the
// one-current-key rule is already taken.
func (s *Store) InsertSigningKey(ctx context.Context, k identity.SigningKeyRecord) error {
	err := s.db.WithContext(ctx).Create(&signingKeyRow{
		KID: k.KID, Alg: k.Alg, State: k.State, PrivateSealed: k.Sealed,
		CreatedAt: k.CreatedAt, ActivatedAt: k.ActivatedAt,
	}).Error
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return identity.ErrKeyConflict
	}
	return err
}
