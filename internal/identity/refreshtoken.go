package identity

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strings"

	"github.com/google/uuid"
)

// A refresh token is
//
//	"lrt_" + base64url(version | session id (16) | generation (8) | session secret (32) | tag (32))
//
// The session secret is 256 random bits, fixed for the session's life, and
// only its SHA-256 is stored. The tag is HMAC-SHA256 under a key derived from
// LANYARD_SECRET over everything before it, so it binds the generation: a
// stolen old token cannot be advanced to the live generation, and the token of
// any generation can be re-derived from its parent. That is what lets one
// UPDATE both rotate and answer a racing or retried parent with the very same
// successor, with no token rows and no plaintext at rest. Forging a token needs
// both the client-held secret and the server-held key; a leaked database alone
// yields neither.
const (
	refreshTokenPrefix  = "lrt_"
	refreshTokenVersion = 1
	sessionSecretLen    = 32
	refreshTagLen       = sha256.Size
	refreshTokenBodyLen = 1 + 16 + 8 + sessionSecretLen + refreshTagLen
)

// Strict decoding: one token has exactly one spelling.
var refreshTokenEncoding = base64.RawURLEncoding.Strict()

type refreshToken struct {
	sessionID  uuid.UUID
	generation int64
	secret     [sessionSecretLen]byte
}

// newSessionSecret returns a fresh random session secret.
func newSessionSecret() ([sessionSecretLen]byte, error) {
	var s [sessionSecretLen]byte
	_, err := rand.Read(s[:])
	return s, err
}

// secretHash is what the store keeps of a session secret. The secret carries
// 256 bits of entropy, so a plain hash is enough: there is nothing to brute-force.
func (t refreshToken) secretHash() []byte {
	h := sha256.Sum256(t.secret[:])
	return h[:]
}

// refreshTokenCodec encodes and authenticates refresh tokens. It signs with
// key and, during a secret rotation, also accepts tags made with previous;
// the next refresh re-derives the token under key.
type refreshTokenCodec struct {
	key      []byte
	previous []byte
}

func (c refreshTokenCodec) body(t refreshToken) []byte { return t.body(c.key) }

func (t refreshToken) body(key []byte) []byte {
	b := make([]byte, 0, refreshTokenBodyLen)
	b = append(b, refreshTokenVersion)
	b = append(b, t.sessionID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(t.generation))
	b = append(b, t.secret[:]...)
	mac := hmac.New(sha256.New, key)
	mac.Write(b)
	return mac.Sum(b)
}

func (c refreshTokenCodec) encode(t refreshToken) string {
	return refreshTokenPrefix + refreshTokenEncoding.EncodeToString(c.body(t))
}

// decode parses and authenticates a token without touching the database, so
// garbage and forgeries cost one HMAC, not a query.
func (c refreshTokenCodec) decode(s string) (refreshToken, bool) {
	rest, ok := strings.CutPrefix(s, refreshTokenPrefix)
	if !ok || refreshTokenEncoding.DecodedLen(len(rest)) != refreshTokenBodyLen {
		return refreshToken{}, false
	}
	raw, err := refreshTokenEncoding.DecodeString(rest)
	if err != nil || len(raw) != refreshTokenBodyLen || raw[0] != refreshTokenVersion {
		return refreshToken{}, false
	}
	var t refreshToken
	copy(t.sessionID[:], raw[1:17])
	gen := binary.BigEndian.Uint64(raw[17:25])
	if gen > 1<<62 {
		return refreshToken{}, false
	}
	t.generation = int64(gen)
	copy(t.secret[:], raw[25:25+sessionSecretLen])
	if hmac.Equal(t.body(c.key), raw) || (c.previous != nil && hmac.Equal(t.body(c.previous), raw)) {
		return t, true
	}
	return refreshToken{}, false
}
