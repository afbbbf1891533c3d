package password

import (
	"context"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
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
