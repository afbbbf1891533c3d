package identity

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/lanyard-id/lanyard/keys"
)

// Signing key states, as stored.
const (
	KeyStateNext    = "next"
	KeyStateCurrent = "current"
	KeyStateRetired = "retired"
)

// SigningKeyRecord is a signing key as stored: the private part sealed.
type SigningKeyRecord struct {
	KID         string
	Alg         string
	State       string
	Sealed      []byte
	CreatedAt   time.Time
	ActivatedAt *time.Time
}

// KeyStore persists signing keys. InsertSigningKey returns ErrKeyConflict when
// another replica won the race to create the current key.
type KeyStore interface {
	SigningKeys(ctx context.Context) ([]SigningKeyRecord, error)
	InsertSigningKey(ctx context.Context, k SigningKeyRecord) error
}

// ErrKeyConflict reports that a key in that state already exists.
var ErrKeyConflict = errors.New("identity: signing key conflict")

// KeyRing holds the key ring in use. The ring itself is immutable; the
// pointer swaps when keys change, so signing never takes a lock.
type KeyRing struct {
	ring atomic.Pointer[keys.Ring]
}

// LoadKeyRing reads the stored keys, creating the first signing key if there
// is none. Replicas racing at first start create one key between them: the
// unique index on the current state turns the losers into readers.
func LoadKeyRing(ctx context.Context, store KeyStore, sealer *keys.Sealer, alg keys.Algorithm, now time.Time) (*KeyRing, []string, error) {
	var warnings []string
	for attempt := 0; attempt < 2; attempt++ {
		records, err := store.SigningKeys(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("load signing keys: %w", err)
		}
		ring, err := ringFromRecords(records, sealer)
		if err != nil {
			return nil, nil, err
		}
		if ring != nil {
			if ring.Algorithm() != alg {
				warnings = append(warnings, fmt.Sprintf("LANYARD_SIGNING_ALG is %s but the current signing key is %s; tokens stay %s until the key is rotated", alg, ring.Algorithm(), ring.Algorithm()))
			}
			kr := &KeyRing{}
			kr.ring.Store(ring)
			return kr, warnings, nil
		}
		key, err := keys.Generate(alg)
		if err != nil {
			return nil, nil, fmt.Errorf("generate signing key: %w", err)
		}
		sealed, err := sealer.Seal(key)
		if err != nil {
			return nil, nil, fmt.Errorf("seal signing key: %w", err)
		}
		err = store.InsertSigningKey(ctx, SigningKeyRecord{
			KID: key.ID(), Alg: string(key.Algorithm()), State: KeyStateCurrent,
			Sealed: sealed, CreatedAt: now, ActivatedAt: &now,
		})
		if err != nil && !errors.Is(err, ErrKeyConflict) {
			return nil, nil, fmt.Errorf("store signing key: %w", err)
		}
		// Either ours is stored or another replica's is: read back whichever won.
	}
	return nil, nil, errors.New("no current signing key after creating one")
}

// ringFromRecords opens every published key; nil when no key is current yet.
func ringFromRecords(records []SigningKeyRecord, sealer *keys.Sealer) (*keys.Ring, error) {
	var current *keys.SigningKey
	var published []*keys.SigningKey
	for _, r := range records {
		if r.State != KeyStateCurrent && r.State != KeyStateNext && r.State != KeyStateRetired {
			continue
		}
		alg, err := keys.ParseAlgorithm(r.Alg)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", r.KID, err)
		}
		key, err := sealer.Open(r.KID, alg, r.Sealed)
		if err != nil {
			return nil, fmt.Errorf("open signing key %s (is LANYARD_SECRET the one it was sealed with?): %w", r.KID, err)
		}
		if r.State == KeyStateCurrent {
			current = key
		} else {
			published = append(published, key)
		}
	}
	if current == nil {
		return nil, nil
	}
	return keys.NewRing(current, published...)
}

// Ring returns the ring in use.
func (k *KeyRing) Ring() *keys.Ring { return k.ring.Load() }

// Sign implements Signer with the current key.
func (k *KeyRing) Sign(payload []byte) (string, error) { return k.ring.Load().Sign(payload) }

// Verify implements Signer against every published key.
func (k *KeyRing) Verify(token string) ([]byte, error) { return k.ring.Load().Verify(token) }
