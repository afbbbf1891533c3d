package verifier

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/tokentest"
)

// benchToken is a Lanyard-shaped ES256 token and the verifier that trusts it.
func benchToken(b *testing.B) (*Verifier, *tokentest.Key, string) {
	b.Helper()
	key := tokentest.NewKey("ES256")
	srv := tokentest.NewServer(key)
	b.Cleanup(srv.Close)
	clock := tokentest.NewClock(t0)
	v, err := New(context.Background(), Config{JWKSURL: srv.URL(), Issuer: testIssuer, Audience: testAudience, Now: clock.Now})
	require.NoError(b, err)
	tok := key.Sign(tokentest.Claims(testIssuer, testAudience, t0))
	return v, key, tok
}

// BenchmarkVerify is the hot path: a cached ES256 key, every check.
func BenchmarkVerify(b *testing.B) {
	v, _, tok := benchToken(b)
	ctx := context.Background()
	_, err := v.Verify(ctx, tok)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawECDSAVerify is the floor: SHA-256 and crypto/ecdsa.Verify of
// the same signing input, r and s already decoded, no JOSE or JSON at all.
func BenchmarkRawECDSAVerify(b *testing.B) {
	_, key, tok := benchToken(b)
	dot := strings.LastIndexByte(tok, '.')
	in := []byte(tok[:dot])
	sig, err := base64.RawURLEncoding.DecodeString(tok[dot+1:])
	require.NoError(b, err)
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	pub := key.Signer.Public().(*ecdsa.PublicKey)
	b.ReportAllocs()
	for b.Loop() {
		d := sha256.Sum256(in)
		if !ecdsa.Verify(pub, d[:], r, s) {
			b.Fatal("verify failed")
		}
	}
}
