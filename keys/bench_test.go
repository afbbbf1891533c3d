package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/accesstoken"
)

// benchClaims is a representative ~350-byte access-token claims set.
var benchClaims = []byte(`{"iss":"https://id.lanyard.example.com","sub":"usr_01HZX4K9V3QW8T2M6N5B7C0D1E","aud":["https://api.lanyard.example.com"],"exp":1767225600,"iat":1767224700,"nbf":1767224700,"jti":"tok_01HZX4KA2B3C4D5E6F7G8H9J0K","client_id":"cli_web_dashboard","scope":"openid profile email offline_access","sid":"ses_01HZX4K9V3QW8T2M6N5B7C0D1F","auth_time":1767224690,"amr":["pwd","otp"]}`)

func benchRing(b *testing.B, alg Algorithm) (*Ring, *SigningKey) {
	b.Helper()
	k := testKey(b, alg, 0)
	r, err := NewRing(k)
	require.NoError(b, err)
	return r, k
}

// rawSigningInput is the exact byte string Ring.Sign signs for benchClaims.
func rawSigningInput(k *SigningKey) []byte {
	return b64.AppendEncode([]byte(k.hdrPrefix), benchClaims)
}

func TestBenchClaimsSize(t *testing.T) {
	require.InDelta(t, 350, len(benchClaims), 25)
}

// BenchmarkRawECDSASign is the floor: SHA-256 plus crypto/ecdsa.Sign over
// the same signing input, with no JOSE work at all.
func BenchmarkRawECDSASign(b *testing.B) {
	_, k := benchRing(b, ES256)
	priv := k.signer.(*ecdsa.PrivateKey)
	in := rawSigningInput(k)
	b.ReportAllocs()
	for b.Loop() {
		d := sha256.Sum256(in)
		if _, _, err := ecdsa.Sign(rand.Reader, priv, d[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRingSignES256(b *testing.B) { benchSign(b, ES256) }
func BenchmarkRingSignEdDSA(b *testing.B) { benchSign(b, EdDSA) }
func BenchmarkRingSignRS256(b *testing.B) { benchSign(b, RS256) }

func benchSign(b *testing.B, alg Algorithm) {
	r, _ := benchRing(b, alg)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Sign(benchClaims); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJWXSignES256 is jwx's high-level jws.Sign with the same header,
// kept to show why Ring.Sign uses jwsbb instead.
func BenchmarkJWXSignES256(b *testing.B) {
	_, k := benchRing(b, ES256)
	hdr := jws.NewHeaders()
	require.NoError(b, hdr.Set(jws.KeyIDKey, k.kid))
	require.NoError(b, hdr.Set(jws.TypeKey, accesstoken.Type))
	opt := jws.WithKey(jwa.ES256(), k.signer, jws.WithProtectedHeaders(hdr))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := jws.Sign(benchClaims, opt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawECDSAVerify is the verify floor: SHA-256 plus
// crypto/ecdsa.Verify of r, s already split out of the signature.
func BenchmarkRawECDSAVerify(b *testing.B) {
	_, k := benchRing(b, ES256)
	priv := k.signer.(*ecdsa.PrivateKey)
	in := rawSigningInput(k)
	sig, err := jwsbb.SignECDSA(priv, in, crypto.SHA256, nil)
	require.NoError(b, err)
	rr, ss := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	b.ReportAllocs()
	for b.Loop() {
		d := sha256.Sum256(in)
		if !ecdsa.Verify(&priv.PublicKey, d[:], rr, ss) {
			b.Fatal("verify failed")
		}
	}
}

func BenchmarkRingVerifyES256(b *testing.B) { benchVerify(b, ES256) }
func BenchmarkRingVerifyEdDSA(b *testing.B) { benchVerify(b, EdDSA) }
func BenchmarkRingVerifyRS256(b *testing.B) { benchVerify(b, RS256) }

func benchVerify(b *testing.B, alg Algorithm) {
	r, _ := benchRing(b, alg)
	tok, err := r.Sign(benchClaims)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}
