package keys

import (
	"crypto"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// sealInfo is the HKDF info string. It separates this key from anything
// else derived from the same service secret; bump the version to change
// the sealed format.
const sealInfo = "lanyard signing-key seal v1"

// minSecretLen is the shortest service secret accepted: 256 bits.
const minSecretLen = 32

var errOpen = errors.New("keys: cannot open sealed key")

// Sealer encrypts signing keys' private parts for storage at rest.
//
// It uses XChaCha20-Poly1305 rather than AES-256-GCM: its 192-bit nonce
// makes random nonces safe for any number of seals under one long-lived
// derived key (GCM's 96-bit nonce has a birthday budget), and it is
// constant-time in software whatever the CPU. Sealing is rare, so speed
// is irrelevant here.
//
// Sealed format: nonce (24 bytes) || ciphertext || tag (16 bytes), where
// the plaintext is the PKCS#8 DER private key.
type Sealer struct {
	aead     cipher.AEAD
	previous *Sealer // opens blobs sealed under the secret being rotated out
}

// AcceptPrevious returns a sealer that seals under s's secret and opens
// blobs sealed under either s's or the previous secret: the state during a
// secret rotation, until every key has been resealed.
func (s *Sealer) AcceptPrevious(previous []byte) (*Sealer, error) {
	prev, err := NewSealer(previous)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: s.aead, previous: prev}, nil
}

// NewSealer derives the sealing key from the service secret with
// HKDF-SHA256. The secret must be at least 32 bytes.
func NewSealer(secret []byte) (*Sealer, error) {
	if len(secret) < minSecretLen {
		return nil, fmt.Errorf("keys: seal secret is %d bytes, need >= %d", len(secret), minSecretLen)
	}
	key, err := hkdf.Key(sha256.New, secret, nil, sealInfo, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("keys: derive seal key: %w", err)
	}
	aead, err := chacha20poly1305.NewX(key)
	clear(key) // the AEAD keeps its own copy
	if err != nil {
		return nil, fmt.Errorf("keys: seal cipher: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts k's private key. The kid and alg are bound as associated
// data, so a blob only opens under the row it was sealed for.
func (s *Sealer) Seal(k *SigningKey) ([]byte, error) {
	if k == nil {
		return nil, errors.New("keys: seal nil key")
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.signer)
	if err != nil {
		return nil, fmt.Errorf("keys: marshal private key: %w", err)
	}
	defer clear(der)
	ns := s.aead.NonceSize()
	out := make([]byte, ns, ns+len(der)+s.aead.Overhead())
	rand.Read(out) // never fails (crypto/rand aborts the program instead)
	return s.aead.Seal(out, out[:ns], der, sealAAD(k.kid, k.alg)), nil
}

// Open decrypts a blob made by Seal and rebuilds the key. It fails if the
// secret is wrong, the blob was altered, or kid/alg are not the ones it
// was sealed with; the thumbprint of the recovered key must also equal kid.
func (s *Sealer) Open(kid string, alg Algorithm, sealed []byte) (*SigningKey, error) {
	if _, err := ParseAlgorithm(string(alg)); err != nil {
		return nil, err
	}
	ns := s.aead.NonceSize()
	if len(sealed) < ns+s.aead.Overhead() {
		return nil, fmt.Errorf("%w: too short", errOpen)
	}
	der, err := s.aead.Open(nil, sealed[:ns], sealed[ns:], sealAAD(kid, alg))
	if err != nil && s.previous != nil {
		return s.previous.Open(kid, alg, sealed)
	}
	if err != nil {
		// Wrong secret, tampering and kid/alg mismatch are indistinguishable
		// here by design of the AEAD.
		return nil, fmt.Errorf("%w: %v", errOpen, err)
	}
	defer clear(der)
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: parse PKCS#8: %v", errOpen, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %T is not a signer", errOpen, priv)
	}
	k, err := NewSigningKey(alg, signer)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errOpen, err)
	}
	// Defence in depth: the AAD already binds kid, but recomputing the
	// thumbprint catches a row whose kid was wrong when it was sealed.
	if k.kid != kid {
		return nil, fmt.Errorf("%w: key thumbprint %q does not match kid %q", errOpen, k.kid, kid)
	}
	return k, nil
}

// sealAAD encodes the domain, alg and kid length-prefixed, so no two
// (alg, kid) pairs share an encoding.
func sealAAD(kid string, alg Algorithm) []byte {
	aad := make([]byte, 0, len(sealInfo)+len(alg)+len(kid)+2*binary.MaxVarintLen64)
	aad = append(aad, sealInfo...)
	aad = binary.AppendUvarint(aad, uint64(len(alg)))
	aad = append(aad, alg...)
	aad = binary.AppendUvarint(aad, uint64(len(kid)))
	aad = append(aad, kid...)
	return aad
}
