package password

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/scrypt"
)

// vector is one hash made by Better-Auth's own hashPassword (see
// testdata/better-auth-vectors.mjs): hashes of test passwords, not secrets.
type vector struct {
	Name       string   `json:"name"`
	Password   string   `json:"password"`
	Equivalent []string `json:"equivalent"` // other spellings, same NFKC form
	Hash       string   `json:"hash"`       // account.password as Better-Auth stores it
}

func loadVectors(tb testing.TB) []vector {
	tb.Helper()
	b, err := os.ReadFile("testdata/better-auth-vectors.json")
	require.NoError(tb, err)
	var file struct {
		Vectors []vector `json:"vectors"`
	}
	require.NoError(tb, json.Unmarshal(b, &file))
	require.NotEmpty(tb, file.Vectors)
	return file.Vectors
}

// cheapScrypt keeps the cap and padding tests quick under the race
// detector; the code path is the same at any cost.
var cheapScrypt = scryptParams{n: 16, r: 1, p: 1}

// newCheap is newFast with cheap scrypt too.
func newCheap(t *testing.T, maxConcurrent int, maxWait time.Duration) *Hasher {
	t.Helper()
	h := newFast(t, maxConcurrent, maxWait)
	h.scrypt = cheapScrypt
	return h
}

// importedFor returns a stored imported hash of pw at h's scrypt parameters,
// made the way Better-Auth makes one (lowercase hex salt, its text as salt).
func importedFor(t *testing.T, h *Hasher, pw string) string {
	t.Helper()
	var b [16]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	salt := hex.EncodeToString(b[:])
	p := h.scrypt
	key, err := scrypt.Key([]byte(Normalize(pw)), []byte(salt), p.n, p.r, p.p, betterAuthKeyLen)
	require.NoError(t, err)
	stored, err := ImportBetterAuthHash(salt + ":" + hex.EncodeToString(key))
	require.NoError(t, err)
	return stored
}

// TestBetterAuthVectors checks real Better-Auth hashes at Better-Auth's
// parameters: the password and every NFKC-equivalent spelling verify and ask
// for a rehash; a wrong password does not verify and never asks.
func TestBetterAuthVectors(t *testing.T) {
	ctx := context.Background()
	h := newFast(t, 0, time.Minute) // fast argon2 for the dummy; real scrypt
	require.Equal(t, scryptParams{n: 16384, r: 16, p: 1}, h.scrypt, "Better-Auth's parameters by default")
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			stored, err := ImportBetterAuthHash(v.Hash)
			require.NoError(t, err)
			assert.Equal(t, BetterAuthScryptPrefix+v.Hash, stored, "kept as it is, behind the marker")

			for _, pw := range append([]string{v.Password}, v.Equivalent...) {
				ok, rehash, err := h.Verify(ctx, pw, stored)
				require.NoError(t, err)
				assert.True(t, ok, "%+q", pw)
				assert.True(t, rehash, "an imported hash is always replaced by argon2id")
			}

			ok, rehash, err := h.Verify(ctx, v.Password+"x", stored)
			require.NoError(t, err)
			assert.False(t, ok)
			assert.False(t, rehash)
		})
	}
}

// TestBetterAuthVectorsNeedNFKC shows the vectors exercise normalisation:
// without NFKC the ligature password's key would not match, so a verifier
// that skipped it would fail TestBetterAuthVectors.
func TestBetterAuthVectorsNeedNFKC(t *testing.T) {
	for _, v := range loadVectors(t) {
		if v.Name != "umlaut and fi ligature" {
			continue
		}
		require.NotEqual(t, v.Password, Normalize(v.Password))
		salt, keyHex, _ := strings.Cut(v.Hash, ":")
		raw, err := scrypt.Key([]byte(v.Password), []byte(salt), betterAuthN, betterAuthR, betterAuthP, betterAuthKeyLen)
		require.NoError(t, err)
		assert.NotEqual(t, keyHex, hex.EncodeToString(raw))
		return
	}
	t.Fatal("vector not found")
}

// malformedImports are raw values ImportBetterAuthHash must refuse, and that
// Verify must refuse behind the marker.
func malformedImports() []struct{ name, raw string } {
	salt := strings.Repeat("0a", 16)
	key := strings.Repeat("b1", 64)
	return []struct{ name, raw string }{
		{"empty", ""},
		{"colon only", ":"},
		{"salt only", salt},
		{"salt and colon", salt + ":"},
		{"key only", ":" + key},
		{"missing colon", salt + "0" + key},
		{"no separator at all", salt + key},
		{"other separator", salt + "$" + key},
		{"colon one early", salt[:31] + ":" + salt[31:] + key[1:]},
		{"colon one late", salt + key[:1] + ":" + key[1:]},
		{"two colons", salt + ":" + key[:63] + ":" + key[64:]},
		{"salt 31", salt[:31] + ":" + key},
		{"salt 33", salt + "0:" + key},
		{"key 127", salt + ":" + key[:127]},
		{"key 129", salt + ":" + key + "0"},
		{"key 126", salt + ":" + key[:126]},
		{"non-hex salt", "g" + salt[1:] + ":" + key},
		{"non-hex key", salt + ":" + key[:127] + "z"},
		{"space in key", salt + ":" + key[:64] + " " + key[65:]},
		{"0x salt", "0x" + salt[2:] + ":" + key},
		{"base64 salt", "AAAAAAAAAAAAAAAAAAAAAA==AAAAAAAA:" + key},
		{"leading space", " " + salt + ":" + key},
		{"trailing newline", salt + ":" + key + "\n"},
		{"multibyte in salt", "é" + salt[2:] + ":" + key},
		{"already marked", BetterAuthScryptPrefix + salt + ":" + key},
		{"argon2 PHC", "$argon2id$v=19$m=64,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"huge", salt + ":" + strings.Repeat(key, 1000)},
	}
}

func TestImportBetterAuthHash(t *testing.T) {
	for _, v := range loadVectors(t) {
		stored, err := ImportBetterAuthHash(v.Hash)
		require.NoError(t, err, v.Name)
		assert.Equal(t, BetterAuthScryptPrefix+v.Hash, stored)
	}
	got, err := ImportBetterAuthHash(strings.Repeat("Ab", 16) + ":" + strings.Repeat("cD", 64))
	require.NoError(t, err, "either case, even mixed")
	assert.Equal(t, "$ba-scrypt$"+strings.Repeat("Ab", 16)+":"+strings.Repeat("cD", 64), got, "case kept: the salt's text is the salt")

	for _, tt := range malformedImports() {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ImportBetterAuthHash(tt.raw)
			require.Error(t, err)
			assert.ErrorIs(t, err, errMalformed)
			assert.Empty(t, got)
			assertNotQuoted(t, err.Error(), tt.raw)
		})
	}
}

// assertNotQuoted: msg shows no run of 8 or more bytes of input, so a
// password pasted into the hash column never reaches a log.
func assertNotQuoted(t *testing.T, msg, input string) {
	t.Helper()
	for i := 0; i+8 <= len(input); i++ {
		if chunk := input[i : i+8]; strings.Contains(msg, chunk) {
			t.Errorf("error %q quotes input bytes %q", msg, chunk)
			return
		}
	}
}

// TestVerifyBetterAuthMalformed: a corrupt imported hash is an error before
// any slot or hash work, never a panic, a match or a rehash.
func TestVerifyBetterAuthMalformed(t *testing.T) {
	ctx := context.Background()
	h := newCheap(t, 1, time.Second)
	var work atomic.Int32
	h.testHook = func() { work.Add(1) }
	h.kdfHook = func(string, Params) { work.Add(1) }
	cases := malformedImports()
	cases = append(cases, struct{ name, raw string }{"marker alone", ""})
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			var ok, rehash bool
			var err error
			stored := BetterAuthScryptPrefix + tt.raw
			require.NotPanics(t, func() { ok, rehash, err = h.Verify(ctx, "pw", stored) })
			require.Error(t, err)
			assert.ErrorIs(t, err, errMalformed)
			assert.False(t, ok)
			assert.False(t, rehash)
			assertNotQuoted(t, err.Error(), tt.raw)
		})
	}
	assert.Zero(t, work.Load(), "no slot taken, no key derived")
	assert.False(t, h.LegacyScrypt(), "a corrupt hash proves nothing about imports")

	// Near misses of the marker are not imported hashes; they fail as PHC.
	good := importedFor(t, h, "pw")
	for _, stored := range []string{
		strings.ToUpper(BetterAuthScryptPrefix) + strings.TrimPrefix(good, BetterAuthScryptPrefix),
		strings.TrimPrefix(good, "$"),
		strings.TrimPrefix(good, BetterAuthScryptPrefix),
		"$scrypt$" + strings.TrimPrefix(good, BetterAuthScryptPrefix),
	} {
		ok, _, err := h.Verify(ctx, "pw", stored)
		assert.Error(t, err)
		assert.False(t, ok)
	}
	ok, rehash, err := h.Verify(ctx, "pw", good)
	require.NoError(t, err, "sanity: the hash the near misses came from is valid")
	assert.True(t, ok)
	assert.True(t, rehash)
}

// TestVerifyBetterAuthCheap covers the verify contract at cheap scrypt
// parameters, including upper-case salts (the text is the salt, so an
// upper-cased copy is a different salt and must not verify).
func TestVerifyBetterAuthCheap(t *testing.T) {
	ctx := context.Background()
	h := newCheap(t, 1, time.Second)
	stored := importedFor(t, h, "caf\u00e9 \ufb01")

	ok, rehash, err := h.Verify(ctx, "cafe\u0301 fi", stored)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.True(t, rehash)

	for _, pw := range []string{"", "café", "CAFÉ ﬁ", "café fi "} {
		ok, rehash, err := h.Verify(ctx, pw, stored)
		require.NoError(t, err)
		assert.False(t, ok, "%+q", pw)
		assert.False(t, rehash, "never a rehash on a wrong password")
	}

	raw := strings.TrimPrefix(stored, BetterAuthScryptPrefix)
	salt, key, _ := strings.Cut(raw, ":")
	upperKey := BetterAuthScryptPrefix + salt + ":" + strings.ToUpper(key)
	ok, _, err = h.Verify(ctx, "café fi", upperKey)
	require.NoError(t, err)
	assert.True(t, ok, "the key is bytes: its case does not matter")

	if strings.ToUpper(salt) != salt {
		upperSalt := BetterAuthScryptPrefix + strings.ToUpper(salt) + ":" + key
		ok, _, err = h.Verify(ctx, "café fi", upperSalt)
		require.NoError(t, err)
		assert.False(t, ok, "the salt is text: its case does matter")
	}
	assert.Zero(t, h.InFlight())
}

// TestBetterAuthSlots: imported hashes wait for, and give up on, the same
// slots as argon2id.
func TestBetterAuthSlots(t *testing.T) {
	ctx := context.Background()
	h := newCheap(t, 1, 20*time.Millisecond)
	stored := importedFor(t, h, "pw")

	release := holdSlot(t, h)
	assert.Equal(t, 1, h.InFlight())
	ok, rehash, err := h.Verify(ctx, "pw", stored)
	assert.ErrorIs(t, err, ErrBusy)
	assert.False(t, ok)
	assert.False(t, rehash)
	release()

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	ok, _, err = h.Verify(cancelled, "pw", stored)
	assert.ErrorIs(t, err, context.Canceled)
	assert.False(t, ok)

	ok, _, err = h.Verify(ctx, "pw", stored)
	require.NoError(t, err, "slot is free again")
	assert.True(t, ok)
	assert.Zero(t, h.InFlight())
}

// TestBetterAuthInFlightNeverExceedsCap: like TestInFlightNeverExceedsCap,
// with imported, native and unknown-email checks mixed and legacy mode
// flipping meanwhile (which also gives the race detector the flag to
// watch).
func TestBetterAuthInFlightNeverExceedsCap(t *testing.T) {
	const limit, callers = 2, 40
	h := newCheap(t, limit, time.Minute)
	imported := importedFor(t, h, "pw")
	native, err := h.Hash(context.Background(), "pw")
	require.NoError(t, err)

	maxSeen, entered := watchCap(h, limit)

	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Go(func() {
			var err error
			var ok bool
			switch i % 4 {
			case 0:
				ok, _, err = h.Verify(context.Background(), "pw", imported)
			case 1:
				ok, _, err = h.Verify(context.Background(), "pw", native)
			case 2:
				ok, err = true, h.VerifyDummy(context.Background(), "pw")
			case 3:
				h.SetLegacyScrypt(i%8 == 3)
				ok, _, err = h.Verify(context.Background(), "wrong", imported)
				ok = !ok
			}
			if err == nil && !ok {
				err = assert.AnError
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, int64(callers), entered.Load(), "every check took a slot")
	assert.Equal(t, int64(limit), maxSeen.Load())
	assert.Zero(t, h.InFlight())
}

// kdfRun is one key derivation a check ran.
type kdfRun struct {
	kdf string
	p   Params
}

// recordKDFs makes h record its key derivations; the returned func returns
// and clears what was recorded. Checks here run one at a time.
func recordKDFs(h *Hasher) (taken func() []kdfRun) {
	var mu sync.Mutex
	var runs []kdfRun
	h.kdfHook = func(kdf string, p Params) {
		mu.Lock()
		defer mu.Unlock()
		runs = append(runs, kdfRun{kdf, p})
	}
	return func() []kdfRun {
		mu.Lock()
		defer mu.Unlock()
		r := runs
		runs = nil
		return r
	}
}

// TestLegacyScryptPadding: off, argon2id checks and unknown emails do what
// they did before imports existed; on, a native check, an imported check and
// an unknown email each run one argon2id at the slowest parameters seen and
// one scrypt, right or wrong password alike, so none can be told apart by
// the work done. Asserted on the work itself, not on the clock.
func TestLegacyScryptPadding(t *testing.T) {
	ctx := context.Background()
	h := newCheap(t, 1, time.Second)
	taken := recordKDFs(h)
	native, err := h.Hash(ctx, "pw")
	require.NoError(t, err)
	imported := importedFor(t, h, "pw")
	taken()

	argon := func(p Params) kdfRun { return kdfRun{kdfArgon2, p} }
	scr := kdfRun{kdfScrypt, Params{}}
	verify := func(pw, stored string, wantOK, wantRehash bool) []kdfRun {
		t.Helper()
		ok, rehash, err := h.Verify(ctx, pw, stored)
		require.NoError(t, err)
		assert.Equal(t, wantOK, ok)
		assert.Equal(t, wantRehash, rehash)
		return taken()
	}
	dummy := func() []kdfRun {
		t.Helper()
		require.NoError(t, h.VerifyDummy(ctx, "pw"))
		return taken()
	}

	// Off (the default): unchanged.
	require.False(t, h.LegacyScrypt())
	assert.Equal(t, []kdfRun{argon(fast)}, verify("pw", native, true, false))
	assert.Equal(t, []kdfRun{argon(fast)}, verify("no", native, false, false))
	assert.Equal(t, []kdfRun{argon(fast)}, dummy())

	// On: both algorithms everywhere; answers unchanged.
	h.SetLegacyScrypt(true)
	require.True(t, h.LegacyScrypt())
	both := []kdfRun{argon(fast), scr}
	assert.Equal(t, both, verify("pw", native, true, false))
	assert.Equal(t, both, verify("no", native, false, false))
	assert.Equal(t, both, dummy())
	assert.Equal(t, both, verify("pw", imported, true, true))
	assert.Equal(t, both, verify("no", imported, false, false))

	// Off again, then an imported hash turns up: it is padded anyway, and
	// switches the mode back on for everyone.
	h.SetLegacyScrypt(false)
	assert.Equal(t, []kdfRun{argon(fast)}, dummy())
	assert.Equal(t, both, verify("no", imported, false, false))
	assert.True(t, h.LegacyScrypt(), "an imported hash proves legacy mode is needed")
	assert.Equal(t, both, dummy())
	assert.Equal(t, both, verify("no", native, false, false))

	// A costlier argon2 hash seen: the imported check's and the unknown
	// email's argon2 work rise to it, and a native check is padded to it,
	// still beside one scrypt each.
	slow := Params{MemoryKiB: 256, Time: 2, Threads: 1}
	older := newFast(t, 1, time.Second)
	older.setParams(slow)
	dormant, err := older.Hash(ctx, "pw")
	require.NoError(t, err)
	assert.Equal(t, []kdfRun{argon(slow), scr}, verify("no", dormant, false, false))
	assert.Equal(t, []kdfRun{argon(slow), scr}, dummy())
	assert.Equal(t, []kdfRun{argon(slow), scr}, verify("no", imported, false, false))
	assert.Equal(t, []kdfRun{
		argon(fast),
		{kdfArgon2Pad, Params{MemoryKiB: h.padding(fast), Time: 1, Threads: 1}},
		scr,
	}, verify("no", native, false, false))
	assert.Zero(t, h.InFlight())
}

// TestScryptErrorIsReturned: scrypt refusing its parameters (impossible with
// Better-Auth's constants) fails the check with an error, on every path
// that runs scrypt, instead of panicking inside a login.
func TestScryptErrorIsReturned(t *testing.T) {
	ctx := context.Background()
	h := newCheap(t, 1, time.Second)
	imported := importedFor(t, h, "pw")
	native, err := h.Hash(ctx, "pw")
	require.NoError(t, err)
	h.scrypt = scryptParams{n: 15, r: 1, p: 1} // N must be a power of two
	h.SetLegacyScrypt(true)

	ok, rehash, err := h.Verify(ctx, "pw", imported)
	assert.Error(t, err)
	assert.False(t, ok)
	assert.False(t, rehash)
	ok, _, err = h.Verify(ctx, "pw", native)
	assert.Error(t, err, "legacy padding fails the check rather than pass it unpadded")
	assert.False(t, ok)
	assert.Error(t, h.VerifyDummy(ctx, "pw"))
	assert.Zero(t, h.InFlight())
}
