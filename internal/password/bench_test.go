package password

import (
	"context"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/scrypt"
)

// BenchmarkRawArgon2id is the baseline: the bare KDF at default params.
func BenchmarkRawArgon2id(b *testing.B) {
	p := DefaultParams()
	pw := []byte("correct horse battery staple")
	salt := make([]byte, saltLen)
	for b.Loop() {
		argon2.IDKey(pw, salt, p.Time, p.MemoryKiB, p.Threads, keyLen)
	}
}

// BenchmarkHasherVerify measures Verify at default params, so its ratio to
// BenchmarkRawArgon2id is the overhead of parsing, NFKC and the cap.
func BenchmarkHasherVerify(b *testing.B) {
	h, err := NewHasher(DefaultParams(), 1, time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	phc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		ok, _, err := h.Verify(ctx, "correct horse battery staple", phc)
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

// benchPassword has a Better-Auth vector, so the scrypt benchmarks check
// what an imported user really costs.
const benchPassword = "correct horse battery staple"

// benchImported returns the stored form of Better-Auth's hash of
// benchPassword.
func benchImported(b *testing.B) string {
	b.Helper()
	for _, v := range loadVectors(b) {
		if v.Password == benchPassword {
			return BetterAuthScryptPrefix + v.Hash
		}
	}
	b.Fatal("no vector for the benchmark password")
	return ""
}

// BenchmarkRawScryptBetterAuth is the bare KDF at Better-Auth's parameters;
// its ratio to BenchmarkRawArgon2id is what an imported user's check would
// cost over a native one's without legacy mode's padding.
func BenchmarkRawScryptBetterAuth(b *testing.B) {
	pw := []byte(benchPassword)
	salt := []byte("0123456789abcdef0123456789abcdef")
	for b.Loop() {
		if _, err := scrypt.Key(pw, salt, betterAuthN, betterAuthR, betterAuthP, betterAuthKeyLen); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyScryptBetterAuth is Verify of an imported hash: scrypt plus
// the argon2 dummy it always adds (legacy mode).
func BenchmarkVerifyScryptBetterAuth(b *testing.B) {
	h, err := NewHasher(DefaultParams(), 1, time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	stored := benchImported(b)
	for b.Loop() {
		ok, rehash, err := h.Verify(ctx, benchPassword, stored)
		if err != nil || !ok || !rehash {
			b.Fatal(ok, rehash, err)
		}
	}
}

// BenchmarkHasherVerifyLegacy is BenchmarkHasherVerify in legacy mode
// (argon2 plus the scrypt dummy); it should match
// BenchmarkVerifyScryptBetterAuth and BenchmarkVerifyDummy/legacy.
func BenchmarkHasherVerifyLegacy(b *testing.B) {
	h, err := NewHasher(DefaultParams(), 1, time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	h.SetLegacyScrypt(true)
	ctx := context.Background()
	phc, err := h.Hash(ctx, benchPassword)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		ok, _, err := h.Verify(ctx, benchPassword, phc)
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkVerifyDummy is an unknown email, with legacy mode off and on.
func BenchmarkVerifyDummy(b *testing.B) {
	for _, legacy := range []bool{false, true} {
		name := "off"
		if legacy {
			name = "legacy"
		}
		b.Run(name, func(b *testing.B) {
			h, err := NewHasher(DefaultParams(), 1, time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			h.SetLegacyScrypt(legacy)
			ctx := context.Background()
			for b.Loop() {
				if err := h.VerifyDummy(ctx, benchPassword); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
