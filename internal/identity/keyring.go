package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lanyard-id/lanyard/keys"
)

// Signing key states, as stored.
const (
	KeyStateNext    = "next"
	KeyStateCurrent = "current"
	KeyStateRetired = "retired"
	KeyStateRemoved = "removed"
	// KeyStateRevoked is a key withdrawn at once because it may be
	// compromised: never published or trusted again, whatever its tokens'
	// expiry.
	KeyStateRevoked = "revoked"
)

// SigningKeyRecord is a signing key as stored: the private part sealed.
type SigningKeyRecord struct {
	KID         string
	Alg         string
	State       string
	Sealed      []byte
	CreatedAt   time.Time
	ActivatedAt *time.Time
	RetiredAt   *time.Time
	RemovedAt   *time.Time
	RevokedAt   *time.Time
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
	ring        atomic.Pointer[keys.Ring]
	mu          sync.Mutex // guards fingerprint during reloads
	fingerprint string
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
				warnings = append(warnings, fmt.Sprintf("LANYARD_SIGNING_ALG is %s but the current signing key is %s: a rotation to %s starts now and completes after the publication lead", alg, ring.Algorithm(), alg))
			}
			kr := &KeyRing{fingerprint: fingerprint(records)}
			kr.ring.Store(ring)
			return kr, warnings, nil
		}
		first, err := newKeyRecord(sealer, alg, KeyStateCurrent, now)
		if err != nil {
			return nil, nil, err
		}
		err = store.InsertSigningKey(ctx, first)
		if err != nil && !errors.Is(err, ErrKeyConflict) {
			return nil, nil, fmt.Errorf("store signing key: %w", err)
		}
		// Either ours is stored or another replica's is: read back whichever won.
	}
	return nil, nil, errors.New("no current signing key after creating one")
}

// ErrKeyRevoked reports that the key was revoked already.
var ErrKeyRevoked = errors.New("already revoked")

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

// KeyMaintainer is the storage key rotation needs: the key rows, state
// changes, and a lock that serialises maintenance across replicas.
type KeyMaintainer interface {
	KeyStore
	// AuditLog records key_rotated and key_revoked in the transaction of
	// the change.
	AuditLog
	UpdateSigningKeyState(ctx context.Context, kid, state string, at time.Time) error
	WithKeyLock(ctx context.Context, fn func(KeyMaintainer) error) error
}

// KeyPolicy is when keys rotate.
type KeyPolicy struct {
	Algorithm keys.Algorithm
	// RotationInterval is how long a key signs before the next takes over;
	// 0 turns scheduled rotation off (manual and algorithm-change rotations
	// still happen).
	RotationInterval time.Duration
	// PublicationLead is how long a new key is published before it signs:
	// longer than verifiers cache the JWKS (jose 10 min, PyJWKClient 5 min).
	PublicationLead time.Duration
	// AccessTTL bounds how long a retired key must stay published: until the
	// last token it signed has expired (plus leeway).
	AccessTTL time.Duration
}

// retiredKeyLeeway covers verifier clock leeway (the contract allows 60 s).
const retiredKeyLeeway = time.Minute

// Maintain performs every key transition that is due at now (create the
// next key ahead of a scheduled or algorithm-change rotation, promote it
// once published for the lead time, remove retired keys whose tokens have
// all expired), then reloads the ring if the key set changed. Every replica
// calls it periodically; the lock makes exactly one of them act.
func (k *KeyRing) Maintain(ctx context.Context, st KeyMaintainer, sealer *keys.Sealer, p KeyPolicy, now time.Time) (changed bool, err error) {
	err = st.WithKeyLock(ctx, func(tx KeyMaintainer) error {
		return transition(ctx, tx, sealer, p, now, false, false, ActorSystem, "")
	})
	if err != nil {
		return false, err
	}
	return k.reload(ctx, st, sealer)
}

// Rotate starts a rotation now: it publishes a next key (unless one waits
// already) that signs after the publication lead. With immediately, the next
// key signs at once, which verifiers that cached the old JWKS reject until
// they refetch it.
func (k *KeyRing) Rotate(ctx context.Context, st KeyMaintainer, sealer *keys.Sealer, p KeyPolicy, now time.Time, immediately bool) error {
	err := st.WithKeyLock(ctx, func(tx KeyMaintainer) error {
		return transition(ctx, tx, sealer, p, now, true, immediately, ActorAdmin, "manual")
	})
	if err != nil {
		return err
	}
	_, err = k.reload(ctx, st, sealer)
	return err
}

// Revoke withdraws the key kid at once, whatever its state: it leaves this
// ring now and every replica's at its next maintenance tick, so its tokens
// stop verifying everywhere. When kid is the signing key, a successor takes
// over in the same locked transaction (the waiting next key, else a new
// one), so there is always exactly one signing key and never a moment in
// which the revoked one still signs. It returns the kid that signs
// afterwards. Unknown kids wrap ErrNotFound, revoked ones ErrKeyRevoked.
func (k *KeyRing) Revoke(ctx context.Context, st KeyMaintainer, sealer *keys.Sealer, p KeyPolicy, kid string, now time.Time) (signing string, err error) {
	err = st.WithKeyLock(ctx, func(tx KeyMaintainer) error {
		records, err := tx.SigningKeys(ctx)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(records, func(r SigningKeyRecord) bool { return r.KID == kid })
		switch {
		case i < 0:
			return fmt.Errorf("no signing key with kid %q: %w", kid, ErrNotFound)
		case records[i].State == KeyStateRevoked:
			return fmt.Errorf("key %q: %w at %s", kid, ErrKeyRevoked, records[i].RevokedAt.UTC().Format(time.RFC3339))
		case records[i].State == KeyStateCurrent:
			// Promote first: the revoked key passes through retired and
			// then leaves the published set, all before the commit.
			if err := transition(ctx, tx, sealer, p, now, true, true, ActorAdmin, "revocation"); err != nil {
				return err
			}
		}
		if err := tx.UpdateSigningKeyState(ctx, kid, KeyStateRevoked, now); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, keyEvent(AuditKeyRevoked, ActorAdmin, now, map[string]string{
			"kid": kid, "previous_state": records[i].State}))
	})
	if err != nil {
		return "", err
	}
	if _, err := k.reload(ctx, st, sealer); err != nil {
		return "", err
	}
	return k.Ring().SigningKeyID(), nil
}

// keyEvent is an audit event about signing keys: no user, no client (the
// `lanyard keys` commands and the maintenance loop run on the server).
func keyEvent(typ, actor string, now time.Time, details map[string]string) AuditEvent {
	return AuditEvent{At: now, Type: typ, Actor: actor, Details: details}
}

// transition applies the due state changes inside the maintenance lock.
// force creates a next key even if no rotation is due; immediately also
// promotes it without waiting for the publication lead. actor is who asked
// (ActorAdmin for the keys command, ActorSystem for the maintenance loop)
// and trigger why a forced rotation happens ("manual", "revocation"; ""
// when only the policy decides). A key published and a key that starts
// signing are each recorded as key_rotated, with stage "published" or
// "signing".
func transition(ctx context.Context, tx KeyMaintainer, sealer *keys.Sealer, p KeyPolicy, now time.Time, force, immediately bool, actor, trigger string) error {
	records, err := tx.SigningKeys(ctx)
	if err != nil {
		return err
	}
	var current, next *SigningKeyRecord
	var retired []SigningKeyRecord
	for i, r := range records {
		switch r.State {
		case KeyStateCurrent:
			current = &records[i]
		case KeyStateNext:
			next = &records[i]
		case KeyStateRetired:
			retired = append(retired, r)
		}
	}
	if current == nil {
		return errors.New("no current signing key")
	}
	activated := current.CreatedAt
	if current.ActivatedAt != nil {
		activated = *current.ActivatedAt
	}
	due := p.RotationInterval > 0 && !now.Before(activated.Add(p.RotationInterval-p.PublicationLead))
	if next == nil && (force || due || keys.Algorithm(current.Alg) != p.Algorithm) {
		created, err := newKeyRecord(sealer, p.Algorithm, KeyStateNext, now)
		if err != nil {
			return err
		}
		if err := tx.InsertSigningKey(ctx, created); err != nil {
			return err
		}
		switch {
		case force && trigger != "":
		case keys.Algorithm(current.Alg) != p.Algorithm:
			trigger = "algorithm_change"
		default:
			trigger = "scheduled"
		}
		if err := tx.AppendAudit(ctx, keyEvent(AuditKeyRotated, actor, now, map[string]string{
			"kid": created.KID, "alg": created.Alg, "stage": "published", "trigger": trigger})); err != nil {
			return err
		}
		next = &created
	}
	if next != nil && (immediately || !now.Before(next.CreatedAt.Add(p.PublicationLead))) {
		// Retire first: at most one key may be current at any instant.
		if err := tx.UpdateSigningKeyState(ctx, current.KID, KeyStateRetired, now); err != nil {
			return err
		}
		if err := tx.UpdateSigningKeyState(ctx, next.KID, KeyStateCurrent, now); err != nil {
			return err
		}
		if err := tx.AppendAudit(ctx, keyEvent(AuditKeyRotated, actor, now, map[string]string{
			"kid": next.KID, "alg": next.Alg, "previous_kid": current.KID, "stage": "signing"})); err != nil {
			return err
		}
		retiredNow := *current
		retiredNow.RetiredAt = &now
		retired = append(retired, retiredNow)
	}
	for _, r := range retired {
		if r.RetiredAt != nil && !now.Before(r.RetiredAt.Add(p.AccessTTL+retiredKeyLeeway)) {
			if err := tx.UpdateSigningKeyState(ctx, r.KID, KeyStateRemoved, now); err != nil {
				return err
			}
		}
	}
	return nil
}

func newKeyRecord(sealer *keys.Sealer, alg keys.Algorithm, state string, now time.Time) (SigningKeyRecord, error) {
	key, err := keys.Generate(alg)
	if err != nil {
		return SigningKeyRecord{}, fmt.Errorf("generate signing key: %w", err)
	}
	sealed, err := sealer.Seal(key)
	if err != nil {
		return SigningKeyRecord{}, fmt.Errorf("seal signing key: %w", err)
	}
	r := SigningKeyRecord{KID: key.ID(), Alg: string(key.Algorithm()), State: state, Sealed: sealed, CreatedAt: now}
	if state == KeyStateCurrent {
		r.ActivatedAt = &now
	}
	return r, nil
}

// reload rebuilds the ring when the published key set changed; the JWKS
// bytes are therefore rebuilt only on change.
func (k *KeyRing) reload(ctx context.Context, st KeyStore, sealer *keys.Sealer) (bool, error) {
	records, err := st.SigningKeys(ctx)
	if err != nil {
		return false, err
	}
	fp := fingerprint(records)
	k.mu.Lock()
	defer k.mu.Unlock()
	if fp == k.fingerprint {
		return false, nil
	}
	ring, err := ringFromRecords(records, sealer)
	if err != nil {
		return false, err
	}
	if ring == nil {
		return false, errors.New("no current signing key")
	}
	k.ring.Store(ring)
	k.fingerprint = fp
	return true, nil
}

// fingerprint identifies the published key set and which key signs.
func fingerprint(records []SigningKeyRecord) string {
	var b strings.Builder
	for _, r := range records {
		if r.State == KeyStateRemoved || r.State == KeyStateRevoked {
			continue
		}
		b.WriteString(r.KID)
		b.WriteByte(':')
		b.WriteString(r.State)
		b.WriteByte(';')
	}
	return b.String()
}
