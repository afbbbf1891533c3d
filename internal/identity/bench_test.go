package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lanyard-id/lanyard/keys"
)

func benchService(b *testing.B) *Service {
	b.Helper()
	key, err := keys.Generate(keys.ES256)
	if err != nil {
		b.Fatal(err)
	}
	ring, err := keys.NewRing(key)
	if err != nil {
		b.Fatal(err)
	}
	svc, err := NewService(Config{
		Issuer: "https://id.example.com", Audience: "https://id.example.com", AccessTTL: 15 * time.Minute,
		Secret: []byte("0123456789abcdef0123456789abcdef"),
	}, nil, nil, ring, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	return svc
}

var benchUser = User{
	ID: uuid.NewString(), Email: "ada.lovelace@example.com", CreatedAt: time.Now(),
	Profile: &Profile{PythonProficiency: "intermediate", DeveloperRole: "robotics_engineer"},
}

// BenchmarkMintAccessToken is the whole minting path: claims, jti, JSON,
// base64, ES256 signature. Compare with BenchmarkRawECDSASign.
func BenchmarkMintAccessToken(b *testing.B) {
	svc := benchService(b)
	sid := uuid.NewString()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.mintAccessToken(benchUser, sid, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawECDSASign is the floor: crypto/ecdsa over the same signing
// input (header.payload) that minting produces.
func BenchmarkRawECDSASign(b *testing.B) {
	svc := benchService(b)
	token, err := svc.mintAccessToken(benchUser, uuid.NewString(), time.Now())
	if err != nil {
		b.Fatal(err)
	}
	input := []byte(token[:strings.LastIndexByte(token, '.')])
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		digest := sha256.Sum256(input)
		if _, _, err := ecdsa.Sign(rand.Reader, priv, digest[:]); err != nil {
			b.Fatal(err)
		}
	}
}
