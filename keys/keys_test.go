package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var algs = []Algorithm{ES256, EdDSA, RS256}

// testKey returns the n-th cached key for alg; RSA generation is slow
// enough that tests share keys instead of generating per case.
var (
	keyCacheMu sync.Mutex
	keyCache   = map[Algorithm][]*SigningKey{}
)

func testKey(t testing.TB, alg Algorithm, n int) *SigningKey {
	t.Helper()
	keyCacheMu.Lock()
	defer keyCacheMu.Unlock()
	for len(keyCache[alg]) <= n {
		k, err := Generate(alg)
		require.NoError(t, err)
		keyCache[alg] = append(keyCache[alg], k)
	}
	return keyCache[alg][n]
}

var testClaims = []byte(`{"iss":"https://id.example.com","sub":"user-123","aud":"api","exp":1900000000,"iat":1700000000}`)

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// forge builds a compact JWS with an arbitrary header (raw JSON) signed by
// sign. It lets a test change exactly one thing about an otherwise valid
// token.
func forge(t *testing.T, hdr string, payload []byte, sign func([]byte) ([]byte, error)) string {
	t.Helper()
	in := enc([]byte(hdr)) + "." + enc(payload)
	sig, err := sign([]byte(in))
	require.NoError(t, err)
	return in + "." + enc(sig)
}

func hdrJSON(alg, kid, typ string) string {
	m := map[string]string{}
	if alg != "" {
		m["alg"] = alg
	}
	if kid != "" {
		m["kid"] = kid
	}
	if typ != "" {
		m["typ"] = typ
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func TestParseAlgorithm(t *testing.T) {
	for _, a := range algs {
		got, err := ParseAlgorithm(string(a))
		require.NoError(t, err)
		assert.Equal(t, a, got)
	}
	for _, bad := range []string{"", "none", "HS256", "es256", "EDDSA", "ES256 ", "RS512", "Ed25519"} {
		_, err := ParseAlgorithm(bad)
		assert.Error(t, err, bad)
	}
	_, err := Generate("HS256")
	assert.Error(t, err)
}

func TestGenerate(t *testing.T) {
	members := map[Algorithm][]string{
		ES256: {"alg", "crv", "kid", "kty", "use", "x", "y"},
		EdDSA: {"alg", "crv", "kid", "kty", "use", "x"},
		RS256: {"alg", "e", "kid", "kty", "n", "use"},
	}
	for _, alg := range algs {
		t.Run(string(alg), func(t *testing.T) {
			k := testKey(t, alg, 0)
			assert.Equal(t, alg, k.Algorithm())

			js, err := k.PublicJWKJSON()
			require.NoError(t, err)
			var m map[string]any
			require.NoError(t, json.Unmarshal(js, &m))
			var got []string
			for name := range m {
				got = append(got, name)
			}
			assert.ElementsMatch(t, members[alg], got)
			assert.Equal(t, string(alg), m["alg"])
			assert.Equal(t, "sig", m["use"])
			assert.Equal(t, k.ID(), m["kid"])

			// kid is the RFC 7638 thumbprint as jwx computes it independently.
			pk, err := jwk.ParseKey(js)
			require.NoError(t, err)
			tp, err := pk.Thumbprint(crypto.SHA256)
			require.NoError(t, err)
			assert.Equal(t, enc(tp), k.ID())

			// The returned JSON is a copy.
			js[0] = 'X'
			again, _ := k.PublicJWKJSON()
			assert.Equal(t, byte('{'), again[0])

			if alg == RS256 {
				assert.GreaterOrEqual(t, k.signer.(*rsa.PrivateKey).N.BitLen(), 2048)
			}
		})
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	for _, alg := range algs {
		t.Run(string(alg), func(t *testing.T) {
			k := testKey(t, alg, 0)
			r, err := NewRing(k)
			require.NoError(t, err)
			assert.Equal(t, k.ID(), r.SigningKeyID())
			assert.Equal(t, alg, r.Algorithm())

			tok, err := r.Sign(testClaims)
			require.NoError(t, err)
			parts := strings.Split(tok, ".")
			require.Len(t, parts, 3)

			hdr, err := base64.RawURLEncoding.DecodeString(parts[0])
			require.NoError(t, err)
			assert.JSONEq(t, hdrJSON(string(alg), k.ID(), "at+jwt"), string(hdr))
			sig, err := base64.RawURLEncoding.DecodeString(parts[2])
			require.NoError(t, err)
			if alg == ES256 {
				assert.Len(t, sig, 64, "ES256 must be JOSE r||s, not ASN.1")
			}

			got, err := r.Verify(tok)
			require.NoError(t, err)
			assert.Equal(t, testClaims, got)

			// Interoperability: jwx's own high-level verifier, fed only the
			// published JWKS, accepts the token.
			set, err := jwk.Parse(r.JWKS())
			require.NoError(t, err)
			got, err = jws.Verify([]byte(tok), jws.WithKeySet(set, jws.WithRequireKid(true)))
			require.NoError(t, err)
			assert.Equal(t, testClaims, got)

			// And a ring that only publishes k (rotated away) still verifies.
			other := testKey(t, alg, 1)
			r2, err := NewRing(other, k)
			require.NoError(t, err)
			got, err = r2.Verify(tok)
			require.NoError(t, err)
			assert.Equal(t, testClaims, got)
		})
	}
}

// Headers that are not byte-identical to ours take the parsing slow path;
// valid ones must still verify.
func TestVerifyAcceptsEquivalentHeaders(t *testing.T) {
	for _, alg := range algs {
		t.Run(string(alg), func(t *testing.T) {
			k := testKey(t, alg, 0)
			r, err := NewRing(k)
			require.NoError(t, err)
			for _, hdr := range []string{
				`{"typ":"at+jwt","kid":"` + k.ID() + `","alg":"` + string(alg) + `"}`,
				`{ "alg" : "` + string(alg) + `", "kid":"` + k.ID() + `", "typ":"at+jwt" }`,
				hdrJSON(string(alg), k.ID(), "application/at+jwt"),
				hdrJSON(string(alg), k.ID(), "AT+JWT"),
			} {
				tok := forge(t, hdr, testClaims, k.sign)
				got, err := r.Verify(tok)
				require.NoError(t, err, hdr)
				assert.Equal(t, testClaims, got)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	// A ring holding one key of every algorithm, so alg-confusion cases
	// have a published key of another type to aim at.
	ringKeys := map[Algorithm]*SigningKey{}
	for _, a := range algs {
		ringKeys[a] = testKey(t, a, 0)
	}

	for _, alg := range algs {
		t.Run(string(alg), func(t *testing.T) {
			k := ringKeys[alg]
			var published []*SigningKey
			for _, a := range algs {
				published = append(published, ringKeys[a])
			}
			r, err := NewRing(k, published...)
			require.NoError(t, err)
			kid := k.ID()
			good, err := r.Sign(testClaims)
			require.NoError(t, err)
			_, err = r.Verify(good)
			require.NoError(t, err)
			parts := strings.Split(good, ".")

			foreign := testKey(t, alg, 2) // same alg, not in the ring
			foreignRing, err := NewRing(foreign)
			require.NoError(t, err)
			foreignTok, err := foreignRing.Sign(testClaims)
			require.NoError(t, err)

			sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
			sig[len(sig)/2] ^= 0x01

			pubJWK, _ := k.PublicJWKJSON()
			pubDER, err := x509.MarshalPKIXPublicKey(k.signer.Public())
			require.NoError(t, err)
			hmacWith := func(secret []byte) func([]byte) ([]byte, error) {
				return func(in []byte) ([]byte, error) { return jwsbb.Sign(secret, "HS256", in, nil) }
			}
			h := func(a, kid, typ string) string { return hdrJSON(a, kid, typ) }

			cases := map[string]string{
				"tampered payload":    parts[0] + "." + enc([]byte(`{"sub":"admin"}`)) + "." + parts[2],
				"tampered signature":  parts[0] + "." + parts[1] + "." + enc(sig),
				"alg none unsigned":   enc([]byte(h("none", kid, "at+jwt"))) + "." + parts[1] + ".",
				"alg none with sig":   enc([]byte(h("none", kid, "at+jwt"))) + "." + parts[1] + "." + parts[2],
				"HS256 jwk secret":    forge(t, h("HS256", kid, "at+jwt"), testClaims, hmacWith(pubJWK)),
				"HS256 der secret":    forge(t, h("HS256", kid, "at+jwt"), testClaims, hmacWith(pubDER)),
				"unknown kid":         forge(t, h(string(alg), "no-such-kid", "at+jwt"), testClaims, k.sign),
				"missing kid":         forge(t, h(string(alg), "", "at+jwt"), testClaims, k.sign),
				"wrong typ":           forge(t, h(string(alg), kid, "JWT"), testClaims, k.sign),
				"missing typ":         forge(t, h(string(alg), kid, ""), testClaims, k.sign),
				"missing alg":         forge(t, h("", kid, "at+jwt"), testClaims, k.sign),
				"uppercase ALG":       forge(t, `{"ALG":"`+string(alg)+`","kid":"`+kid+`","typ":"at+jwt"}`, testClaims, k.sign),
				"alg twice":           forge(t, `{"alg":"none","kid":"`+kid+`","typ":"at+jwt","alg":"`+string(alg)+`"}`, testClaims, k.sign),
				"kid and KID":         forge(t, `{"alg":"`+string(alg)+`","KID":"other","kid":"`+kid+`","typ":"at+jwt"}`, testClaims, k.sign),
				"crit header":         forge(t, `{"alg":"`+string(alg)+`","kid":"`+kid+`","typ":"at+jwt","crit":["exp"],"exp":1}`, testClaims, k.sign),
				"b64 false":           forge(t, `{"alg":"`+string(alg)+`","kid":"`+kid+`","typ":"at+jwt","b64":false,"crit":["b64"]}`, testClaims, k.sign),
				"key not in ring":     foreignTok,
				"foreign key our kid": forge(t, h(string(alg), kid, "at+jwt"), testClaims, foreign.sign),
				"header not JSON":     forge(t, `not json`, testClaims, k.sign),
				"padded signature":    good + "=",
				"trailing dot":        good + ".",
				"":                    "",
				"a.b":                 "a.b",
				"a.b.c":               "a.b.c",
				"a.b.c.d":             "a.b.c.d",
				"dots":                "..",
			}
			if alg == EdDSA {
				raw := k.signer.Public().(ed25519.PublicKey)
				cases["HS256 raw secret"] = forge(t, h("HS256", kid, "at+jwt"), testClaims, hmacWith(raw))
			}
			// Alg confusion: a published key's kid under any other algorithm,
			// signed both by the real key and by a key of the claimed alg.
			for _, other := range algs {
				if other == alg {
					continue
				}
				hdr := h(string(other), kid, "at+jwt")
				cases["alg "+string(other)+" on "+string(alg)+" key, real key"] = forge(t, hdr, testClaims, k.sign)
				cases["alg "+string(other)+" on "+string(alg)+" key, "+string(other)+" key"] = forge(t, hdr, testClaims, testKey(t, other, 2).sign)
			}

			for name, tok := range cases {
				got, err := r.Verify(tok)
				assert.ErrorIs(t, err, ErrInvalidToken, "case %q", name)
				assert.Nil(t, got, "case %q", name)
			}
		})
	}
}

func TestJWKS(t *testing.T) {
	es, ed, rs := testKey(t, ES256, 0), testKey(t, EdDSA, 0), testKey(t, RS256, 0)
	for _, signing := range []*SigningKey{es, ed, rs} {
		t.Run(string(signing.Algorithm()), func(t *testing.T) {
			// Duplicates (including the signing key itself) collapse.
			r, err := NewRing(signing, es, ed, rs, signing, es)
			require.NoError(t, err)
			js := r.JWKS()

			var raw struct {
				Keys []map[string]any `json:"keys"`
			}
			require.NoError(t, json.Unmarshal(js, &raw))
			require.Len(t, raw.Keys, 3)
			assert.Equal(t, signing.ID(), raw.Keys[0]["kid"], "signing key leads")

			want := map[string]Algorithm{es.ID(): ES256, ed.ID(): EdDSA, rs.ID(): RS256}
			seen := map[string]bool{}
			for _, k := range raw.Keys {
				kid, _ := k["kid"].(string)
				alg, ok := want[kid]
				require.True(t, ok, "unexpected kid %q", kid)
				assert.False(t, seen[kid], "kid %q twice", kid)
				seen[kid] = true
				assert.Equal(t, string(alg), k["alg"])
				assert.Equal(t, "sig", k["use"])
				assert.NotEmpty(t, k["kty"])
				for _, priv := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"} {
					assert.NotContains(t, k, priv, "private member %q published", priv)
				}
			}

			set, err := jwk.Parse(js)
			require.NoError(t, err)
			assert.Equal(t, 3, set.Len())
			for i := range set.Len() {
				k, _ := set.Key(i)
				isPriv, err := jwk.IsPrivateKey(k)
				require.NoError(t, err)
				assert.False(t, isPriv)
			}

			// Prepared once: the very same backing array every call.
			again := r.JWKS()
			assert.Equal(t, js, again)
			assert.Same(t, &js[0], &again[0])
		})
	}

	// Only published keys appear.
	r, err := NewRing(es)
	require.NoError(t, err)
	assert.NotContains(t, string(r.JWKS()), ed.ID())
	assert.NotContains(t, string(r.JWKS()), rs.ID())
}

func TestNewRingErrors(t *testing.T) {
	_, err := NewRing(nil)
	assert.Error(t, err)
	_, err = NewRing(testKey(t, ES256, 0), nil)
	assert.Error(t, err)
}

func TestSealerAcceptPrevious(t *testing.T) {
	old, err := NewSealer(bytes.Repeat([]byte("o"), 32))
	require.NoError(t, err)
	current, err := NewSealer(bytes.Repeat([]byte("n"), 32))
	require.NoError(t, err)
	k, err := Generate(ES256)
	require.NoError(t, err)
	sealedOld, err := old.Seal(k)
	require.NoError(t, err)

	_, err = current.Open(k.ID(), ES256, sealedOld)
	assert.Error(t, err, "the new secret alone cannot open the old blob")
	rotating, err := current.AcceptPrevious(bytes.Repeat([]byte("o"), 32))
	require.NoError(t, err)
	opened, err := rotating.Open(k.ID(), ES256, sealedOld)
	require.NoError(t, err)
	assert.Equal(t, k.ID(), opened.ID())

	resealed, err := rotating.Seal(opened)
	require.NoError(t, err)
	_, err = current.Open(k.ID(), ES256, resealed)
	assert.NoError(t, err, "resealing uses the new secret")
	_, err = old.Open(k.ID(), ES256, resealed)
	assert.Error(t, err)
	_, err = rotating.Open(k.ID(), ES256, resealed[:len(resealed)-1])
	assert.Error(t, err, "tampering still fails under both secrets")
	_, err = current.AcceptPrevious([]byte("short"))
	assert.Error(t, err)
}

func TestNewSealer(t *testing.T) {
	_, err := NewSealer(nil)
	assert.Error(t, err)
	_, err = NewSealer(make([]byte, 31))
	assert.Error(t, err)
	_, err = NewSealer(make([]byte, 32))
	assert.NoError(t, err)
}

func newSecret(t *testing.T) []byte {
	s := make([]byte, 32)
	_, err := rand.Read(s)
	require.NoError(t, err)
	return s
}

func TestSealOpen(t *testing.T) {
	s, err := NewSealer(newSecret(t))
	require.NoError(t, err)
	for _, alg := range algs {
		t.Run(string(alg), func(t *testing.T) {
			k := testKey(t, alg, 0)
			sealed, err := s.Seal(k)
			require.NoError(t, err)

			der, _ := x509.MarshalPKCS8PrivateKey(k.signer)
			assert.False(t, bytes.Contains(sealed, der), "plaintext leaked")
			sealed2, err := s.Seal(k)
			require.NoError(t, err)
			assert.NotEqual(t, sealed, sealed2, "nonce must be random")

			opened, err := s.Open(k.ID(), alg, sealed)
			require.NoError(t, err)
			assert.Equal(t, k.ID(), opened.ID())
			assert.Equal(t, alg, opened.Algorithm())
			pubA, _ := k.PublicJWKJSON()
			pubB, _ := opened.PublicJWKJSON()
			assert.JSONEq(t, string(pubA), string(pubB))

			// The opened key signs tokens the original ring accepts.
			r, err := NewRing(k)
			require.NoError(t, err)
			ro, err := NewRing(opened)
			require.NoError(t, err)
			tok, err := ro.Sign(testClaims)
			require.NoError(t, err)
			_, err = r.Verify(tok)
			require.NoError(t, err)
		})
	}
}

func TestOpenFails(t *testing.T) {
	secret := newSecret(t)
	s, err := NewSealer(secret)
	require.NoError(t, err)
	wrong, err := NewSealer(newSecret(t))
	require.NoError(t, err)

	for _, alg := range algs {
		t.Run(string(alg), func(t *testing.T) {
			k := testKey(t, alg, 0)
			sealed, err := s.Seal(k)
			require.NoError(t, err)
			sameAlgOther := testKey(t, alg, 1)

			_, err = wrong.Open(k.ID(), alg, sealed)
			assert.Error(t, err, "wrong secret")

			for _, i := range []int{0, 23, 24, len(sealed) / 2, len(sealed) - 1} {
				flipped := bytes.Clone(sealed)
				flipped[i] ^= 0x01
				_, err = s.Open(k.ID(), alg, flipped)
				assert.Error(t, err, "flipped byte %d", i)
			}
			_, err = s.Open(k.ID(), alg, sealed[:len(sealed)-1])
			assert.Error(t, err, "truncated")
			_, err = s.Open(k.ID(), alg, sealed[:10])
			assert.Error(t, err, "too short")

			_, err = s.Open(sameAlgOther.ID(), alg, sealed)
			assert.Error(t, err, "swapped kid")
			for _, other := range algs {
				if other != alg {
					_, err = s.Open(k.ID(), other, sealed)
					assert.Error(t, err, "swapped alg %s", other)
				}
			}
			_, err = s.Open(k.ID(), "HS256", sealed)
			assert.Error(t, err, "unsupported alg")

			// Still opens with the right inputs after all that.
			_, err = s.Open(k.ID(), alg, sealed)
			assert.NoError(t, err)
		})
	}
}

// A sealed key whose kid was recorded wrongly when sealed is still caught
// by the thumbprint check, not only by the AAD.
func TestOpenChecksThumbprint(t *testing.T) {
	s, err := NewSealer(newSecret(t))
	require.NoError(t, err)
	k := testKey(t, ES256, 0)
	mislabelled := *k
	mislabelled.kid = testKey(t, ES256, 1).ID()
	sealed, err := s.Seal(&mislabelled)
	require.NoError(t, err)
	_, err = s.Open(mislabelled.kid, ES256, sealed)
	assert.Error(t, err)
}

// Keys of the wrong shape are refused even when the AEAD opens them.
func TestNewSigningKeyRejectsBadKeys(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	_, err = NewSigningKey(ES256, p384)
	assert.Error(t, err)

	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err == nil {
		_, err = NewSigningKey(RS256, small)
		assert.Error(t, err)
	}

	_, err = NewSigningKey(EdDSA, testKey(t, ES256, 0).signer)
	assert.Error(t, err)
}

func TestConcurrentUse(t *testing.T) {
	r, err := NewRing(testKey(t, ES256, 0), testKey(t, EdDSA, 0))
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 20 {
				tok, err := r.Sign(testClaims)
				if err == nil {
					_, err = r.Verify(tok)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Sanity check that the interop path really is jwx's verifier rejecting
// a bad token too, so the round-trip interop assertion is meaningful.
func TestInteropRejectsTampered(t *testing.T) {
	k := testKey(t, ES256, 0)
	r, err := NewRing(k)
	require.NoError(t, err)
	tok, err := r.Sign(testClaims)
	require.NoError(t, err)
	parts := strings.Split(tok, ".")
	bad := parts[0] + "." + enc([]byte(`{"sub":"admin"}`)) + "." + parts[2]
	set, err := jwk.Parse(r.JWKS())
	require.NoError(t, err)
	_, err = jws.Verify([]byte(bad), jws.WithKeySet(set))
	assert.Error(t, err)
	_, err = jws.Verify([]byte(tok), jws.WithKeySet(set))
	assert.NoError(t, err)
}
