package identity

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRefreshTokenCodec(t *testing.T) {
	codec := refreshTokenCodec{key: []byte("0123456789abcdef0123456789abcdef")}
	secret, err := newSessionSecret()
	require.NoError(t, err)
	tok := refreshToken{sessionID: uuid.New(), generation: 41, secret: secret}

	s := codec.encode(tok)
	assert.True(t, strings.HasPrefix(s, "lrt_"))
	got, ok := codec.decode(s)
	require.True(t, ok)
	assert.Equal(t, tok, got)
	assert.Equal(t, s, codec.encode(got), "deterministic: the successor can be re-derived")

	next := tok
	next.generation++
	assert.NotEqual(t, s, codec.encode(next), "each generation has its own token")

	other := refreshTokenCodec{key: []byte("another key, another key, anothe")}
	_, ok = other.decode(s)
	assert.False(t, ok, "a token from another secret is rejected")
	rotating := refreshTokenCodec{key: other.key, previous: codec.key}
	got, ok = rotating.decode(s)
	require.True(t, ok, "during a secret rotation the previous secret's tokens still verify")
	assert.NotEqual(t, s, rotating.encode(got), "and the successor is made under the new secret")
	_, ok = codec.decode(rotating.encode(got))
	assert.False(t, ok)

	for _, bad := range []string{"", "lrt_", s[:len(s)-1], s + "A", "xyz_" + s[4:], strings.ToUpper(s), s[:10] + "!" + s[11:]} {
		_, ok := codec.decode(bad)
		assert.False(t, ok, bad)
	}
}

func TestNormaliseEmail(t *testing.T) {
	for in, want := range map[string]string{
		"ada@example.com":             "ada@example.com",
		"  Ada.Lovelace@Example.COM ": "ada.lovelace@example.com",
		"a+tag@sub.example.co.uk":     "a+tag@sub.example.co.uk",
	} {
		got, err := normaliseEmail(in)
		assert.Nil(t, err, in)
		assert.Equal(t, want, got)
	}
	for _, bad := range []string{
		"", "ada", "ada@", "@example.com", "ada@localhost", "Ada <ada@example.com>", "ada@example.com.",
		"ada@@example.com", "a\nb@example.com", strings.Repeat("a", 65) + "@example.com",
		strings.Repeat("a", 60) + "@" + strings.Repeat("b", 190) + ".com",
		"a@[127.0.0.1]", "ad\u200ba@example.com", "ada\U000E0041@example.com", "\u202eada@example.com",
	} {
		_, err := normaliseEmail(bad)
		require.NotNil(t, err, bad)
		assert.Equal(t, "email", err.Field)
		if bad != "" {
			assert.NotContains(t, err.Message, bad)
		}
	}
}

// FuzzRefreshTokenDecode: decoding never panics; whatever it accepts is the
// one spelling of a token under the current or the previous key (so a
// token has exactly one accepted form); and every token the codec makes,
// from any session id, generation and secret, decodes back to itself.
func FuzzRefreshTokenDecode(f *testing.F) {
	codec := refreshTokenCodec{key: []byte("0123456789abcdef0123456789abcdef"), previous: []byte("the previous secret, 32 bytes...")}
	previous := refreshTokenCodec{key: codec.previous}
	seed := refreshToken{sessionID: uuid.MustParse("0b6f1c9e-3d5a-4c1e-9f7a-2b8d6e4c1a30"), generation: 7}
	good, old := codec.encode(seed), previous.encode(seed)
	for _, s := range []string{good, old, "", "lrt_", good[:len(good)-1], good + "A", strings.ToUpper(good), "lrt_" + strings.Repeat("A", len(good)-4)} {
		f.Add(s, seed.sessionID[:], uint64(seed.generation), seed.secret[:])
	}
	f.Fuzz(func(t *testing.T, s string, id []byte, generation uint64, secret []byte) {
		if tok, ok := codec.decode(s); ok {
			require.True(t, s == codec.encode(tok) || s == previous.encode(tok), "accepted another spelling: %q", s)
			require.GreaterOrEqual(t, tok.generation, int64(0))
		} else {
			require.Equal(t, refreshToken{}, tok)
		}

		var tok refreshToken
		copy(tok.sessionID[:], id)
		copy(tok.secret[:], secret)
		tok.generation = int64(generation % (1<<62 + 1))
		got, ok := codec.decode(codec.encode(tok))
		require.True(t, ok)
		require.Equal(t, tok, got)
	})
}
