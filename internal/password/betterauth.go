package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"

	"golang.org/x/crypto/scrypt"
)

// BetterAuthScryptPrefix marks a stored hash imported from Better-Auth: the
// prefix followed by Better-Auth's account.password value exactly as it was,
// "<32 hex salt>:<128 hex key>". The value is kept as it is, not re-encoded,
// because Better-Auth feeds the salt's hex text (not its bytes) to scrypt,
// so even the case of its letters is part of the salt.
const BetterAuthScryptPrefix = "$ba-scrypt$"

// Better-Auth's scrypt parameters (better-auth 1.7.25, @better-auth/utils
// password.ts): fixed in its code, not stored in the hash, so they are
// fixed here too.
const (
	betterAuthN      = 16384
	betterAuthR      = 16
	betterAuthP      = 1
	betterAuthKeyLen = 64

	betterAuthSaltHexLen = 32                                             // 16 random bytes, hex
	betterAuthKeyHexLen  = 2 * betterAuthKeyLen                           // 128
	betterAuthRawLen     = betterAuthSaltHexLen + 1 + betterAuthKeyHexLen // 161
)

// scryptParams are the scrypt cost parameters a Hasher verifies imported
// hashes with. Always Better-Auth's outside tests; tests lower them so that
// cap and padding tests do not run 32 MiB scrypt under the race detector.
type scryptParams struct{ n, r, p int }

func betterAuthScrypt() scryptParams {
	return scryptParams{n: betterAuthN, r: betterAuthR, p: betterAuthP}
}

// scryptHash is a parsed imported hash.
type scryptHash struct {
	salt []byte // the hex text as ASCII bytes, exactly as stored
	key  []byte // decoded
}

// ImportBetterAuthHash checks raw, a Better-Auth account.password value
// ("<32 hex salt>:<128 hex key>"), and returns the form to store:
// BetterAuthScryptPrefix + raw, unchanged. Anything else is an error wrapping
// the package's malformed-hash error; the message never quotes raw, since a
// corrupt row could hold a password typed into the wrong column.
func ImportBetterAuthHash(raw string) (string, error) {
	if _, err := parseBetterAuth(raw); err != nil {
		return "", err
	}
	return BetterAuthScryptPrefix + raw, nil
}

// parseBetterAuth parses the part after the prefix. Lengths are checked
// first, so nothing is decoded from an oversized input.
func parseBetterAuth(raw string) (scryptHash, error) {
	var h scryptHash
	if len(raw) != betterAuthRawLen {
		// Not even the length is shown: the column could hold a password.
		return h, malformed("Better-Auth hash has the wrong length, want %d bytes (32 hex digits, ':', 128 hex digits)", betterAuthRawLen)
	}
	salt, key, ok := strings.Cut(raw, ":")
	if !ok || len(salt) != betterAuthSaltHexLen || len(key) != betterAuthKeyHexLen {
		return h, malformed("Better-Auth hash: want 32 hex digits, ':', 128 hex digits")
	}
	if !isHex(salt) {
		return h, malformed("Better-Auth hash: salt is not hex")
	}
	k, err := hex.DecodeString(key)
	if err != nil {
		return h, malformed("Better-Auth hash: key is not hex")
	}
	return scryptHash{salt: []byte(salt), key: k}, nil
}

// isHex reports whether s is only hex digits, of either case. The salt is
// checked but never decoded: scrypt gets its text.
func isHex(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// newScryptDummy returns a random imported hash, for the scrypt work added
// to checks in legacy mode: a random key nobody can match.
func newScryptDummy() (scryptHash, error) {
	var b [betterAuthSaltHexLen/2 + betterAuthKeyLen]byte
	if _, err := rand.Read(b[:]); err != nil {
		return scryptHash{}, fmt.Errorf("password: reading random scrypt dummy: %w", err)
	}
	return scryptHash{
		salt: []byte(hex.EncodeToString(b[:betterAuthSaltHexLen/2])),
		key:  b[betterAuthSaltHexLen/2:],
	}, nil
}

// checkScrypt recomputes an imported key the way Better-Auth does: scrypt
// over the NFKC password, salted with the hex text, compared in constant
// time.
func (h *Hasher) checkScrypt(password string, s scryptHash) (bool, error) {
	h.ranKDF(kdfScrypt, Params{})
	p := h.scrypt
	got, err := scrypt.Key([]byte(Normalize(password)), s.salt, p.n, p.r, p.p, len(s.key))
	if err != nil {
		// Only parameters scrypt rejects get here, and they are constants
		// (or a test's), never stored input; an error rather than a panic
		// all the same, since it would be raised inside a login.
		return false, fmt.Errorf("password: scrypt: %w", err)
	}
	return subtle.ConstantTimeCompare(got, s.key) == 1, nil
}
