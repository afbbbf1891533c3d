package password

import (
	"context"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fast keeps tests quick; the algorithm is the same at any cost.
var fast = Params{MemoryKiB: 64, Time: 1, Threads: 1}

func newFast(t *testing.T, maxConcurrent int, maxWait time.Duration) *Hasher {
	t.Helper()
	h, err := NewHasher(fast, maxConcurrent, maxWait)
	require.NoError(t, err)
	return h
}

func TestDefaultParams(t *testing.T) {
	p := DefaultParams()
	assert.Equal(t, Params{MemoryKiB: 19456, Time: 2, Threads: 1}, p)
	assert.NoError(t, p.Validate())
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		p    Params
		ok   bool
	}{
		{"default", DefaultParams(), true},
		{"minimum", Params{MemoryKiB: 8, Time: 1, Threads: 1}, true},
		{"8 per lane", Params{MemoryKiB: 32, Time: 1, Threads: 4}, true},
		{"4 GiB", Params{MemoryKiB: 4 * 1024 * 1024, Time: 1, Threads: 1}, true},
		{"under 8 per lane", Params{MemoryKiB: 31, Time: 1, Threads: 4}, false},
		{"over 4 GiB", Params{MemoryKiB: 4*1024*1024 + 1, Time: 1, Threads: 1}, false},
		{"zero time", Params{MemoryKiB: 64, Time: 0, Threads: 1}, false},
		{"zero threads", Params{MemoryKiB: 64, Time: 1, Threads: 0}, false},
		{"zero value", Params{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.ok {
				assert.NoError(t, tt.p.Validate())
			} else {
				assert.Error(t, tt.p.Validate())
			}
		})
	}
}

func TestNewHasher(t *testing.T) {
	_, err := NewHasher(Params{}, 1, time.Second)
	assert.Error(t, err, "invalid params")

	_, err = NewHasher(fast, 1, -time.Second)
	assert.Error(t, err, "negative maxWait")

	h := newFast(t, 0, time.Second)
	assert.Equal(t, runtime.NumCPU(), h.slots.free, "maxConcurrent <= 0 means NumCPU")
	h = newFast(t, -3, time.Second)
	assert.Equal(t, runtime.NumCPU(), h.slots.free)
	h = newFast(t, 5, time.Second)
	assert.Equal(t, 5, h.slots.free)
}

var phcRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashFormatDefaultParams(t *testing.T) {
	h, err := NewHasher(DefaultParams(), 1, time.Second)
	require.NoError(t, err)
	phc, err := h.Hash(context.Background(), "correct horse")
	require.NoError(t, err)
	m := phcRE.FindStringSubmatch(phc)
	require.NotNil(t, m, phc)
	assert.Equal(t, []string{"19456", "2", "1"}, m[1:])
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	h := newFast(t, 1, time.Second)

	phc, err := h.Hash(ctx, "correct horse battery staple")
	require.NoError(t, err)
	assert.Regexp(t, phcRE, phc)
	assert.True(t, strings.HasPrefix(phc, "$argon2id$v=19$m=64,t=1,p=1$"), phc)

	ok, rehash, err := h.Verify(ctx, "correct horse battery staple", phc)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.False(t, rehash)

	// Random salt: same password, different string.
	phc2, err := h.Hash(ctx, "correct horse battery staple")
	require.NoError(t, err)
	assert.NotEqual(t, phc, phc2)
	assert.Zero(t, h.InFlight())
}

func TestWrongPassword(t *testing.T) {
	ctx := context.Background()
	h := newFast(t, 1, time.Second)
	phc, err := h.Hash(ctx, "hunter2")
	require.NoError(t, err)

	for _, pw := range []string{"hunter3", "Hunter2", "hunter2 ", "", "hunter"} {
		ok, rehash, err := h.Verify(ctx, pw, phc)
		require.NoError(t, err, pw)
		assert.False(t, ok, pw)
		assert.False(t, rehash, pw)
	}
}

func TestNFKCEquivalence(t *testing.T) {
	tests := []struct {
		name, stored, typed string
	}{
		{"ligature", "\ufb01le", "file"},                  // "ﬁle" vs "file"
		{"fullwidth", "Ｐａｓｓ１２３", "Pass123"},               // fullwidth vs ASCII
		{"decomposed e-acute", "cafe\u0301", "caf\u00e9"}, // e + combining acute vs é
		{"superscript", "x\u00b2", "x2"},                  // compatibility mapping
	}
	ctx := context.Background()
	h := newFast(t, 1, time.Second)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NotEqual(t, tt.stored, tt.typed)
			assert.Equal(t, Normalize(tt.stored), Normalize(tt.typed))

			phc, err := h.Hash(ctx, tt.stored)
			require.NoError(t, err)
			ok, _, err := h.Verify(ctx, tt.typed, phc)
			require.NoError(t, err)
			assert.True(t, ok, "typed form should match stored form")

			phc, err = h.Hash(ctx, tt.typed)
			require.NoError(t, err)
			ok, _, err = h.Verify(ctx, tt.stored, phc)
			require.NoError(t, err)
			assert.True(t, ok, "and the other way round")
		})
	}
}

func TestUnicodePasswords(t *testing.T) {
	long := strings.Repeat("ä🔑", 500)
	require.Equal(t, 1000, utf8.RuneCountInString(long))

	tests := []struct{ name, pw string }{
		{"emoji", "😀🔒👩‍👩‍👧 secret"},
		{"1000 code points", long},
		{"cjk", "パスワード正しい"},
	}
	ctx := context.Background()
	h := newFast(t, 1, time.Second)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			phc, err := h.Hash(ctx, tt.pw)
			require.NoError(t, err)
			ok, _, err := h.Verify(ctx, tt.pw, phc)
			require.NoError(t, err)
			assert.True(t, ok)
			ok, _, err = h.Verify(ctx, tt.pw[:len(tt.pw)-1], phc)
			require.NoError(t, err)
			assert.False(t, ok)
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	ctx := context.Background()
	h := newFast(t, 1, time.Second)
	good, err := h.Hash(ctx, "pw")
	require.NoError(t, err)
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	with := func(alg, ver, params, s, k string) string {
		return strings.Join([]string{"", alg, ver, params, s, k}, "$")
	}
	const ps = "m=64,t=1,p=1"

	tests := []struct{ name, phc string }{
		{"empty", ""},
		{"garbage", "not a hash"},
		{"argon2i", with("argon2i", "v=19", ps, salt, key)},
		{"argon2d", with("argon2d", "v=19", ps, salt, key)},
		{"bcrypt", "$2b$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"},
		{"v=16", with("argon2id", "v=16", ps, salt, key)},
		{"no version", "$argon2id$" + ps + "$" + salt + "$" + key},
		{"missing hash", "$argon2id$v=19$" + ps + "$" + salt},
		{"missing salt and hash", "$argon2id$v=19$" + ps},
		{"trailing field", good + "$x"},
		{"trailing dollar", good + "$"},
		{"no leading dollar", good[1:]},
		{"empty salt", with("argon2id", "v=19", ps, "", key)},
		{"empty hash", with("argon2id", "v=19", ps, salt, "")},
		{"bad base64 salt", with("argon2id", "v=19", ps, "!!!!"+salt[4:], key)},
		{"bad base64 hash", with("argon2id", "v=19", ps, salt, key[:10]+"*"+key[11:])},
		{"padded base64", with("argon2id", "v=19", ps, salt+"==", key)},
		{"url base64", with("argon2id", "v=19", ps, salt, strings.NewReplacer("+", "-", "/", "_").Replace(key)+"-_")},
		{"newline in base64", with("argon2id", "v=19", ps, salt[:5]+"\n"+salt[5:], key)},
		{"short salt", with("argon2id", "v=19", ps, "AAAAAA", key)},
		{"short hash", with("argon2id", "v=19", ps, salt, "AAAAAAAAAA")},
		{"absurd m", with("argon2id", "v=19", "m=4294967295,t=1,p=1", salt, key)},
		{"m over 4 GiB", with("argon2id", "v=19", "m=4194305,t=1,p=1", salt, key)},
		{"m 2 GiB", with("argon2id", "v=19", "m=2097152,t=1,p=1", salt, key)},
		{"m overflow", with("argon2id", "v=19", "m=99999999999999999999,t=1,p=1", salt, key)},
		{"absurd t", with("argon2id", "v=19", "m=64,t=1000000,p=1", salt, key)},
		{"absurd p", with("argon2id", "v=19", "m=4096,t=1,p=255", salt, key)},
		{"t=0", with("argon2id", "v=19", "m=64,t=0,p=1", salt, key)},
		{"p=0", with("argon2id", "v=19", "m=64,t=1,p=0", salt, key)},
		{"m below 8*p", with("argon2id", "v=19", "m=8,t=1,p=2", salt, key)},
		{"negative m", with("argon2id", "v=19", "m=-64,t=1,p=1", salt, key)},
		{"plus sign", with("argon2id", "v=19", "m=+64,t=1,p=1", salt, key)},
		{"leading zero", with("argon2id", "v=19", "m=064,t=1,p=1", salt, key)},
		{"empty value", with("argon2id", "v=19", "m=,t=1,p=1", salt, key)},
		{"params out of order", with("argon2id", "v=19", "t=1,m=64,p=1", salt, key)},
		{"missing param", with("argon2id", "v=19", "m=64,t=1", salt, key)},
		{"extra param", with("argon2id", "v=19", "m=64,t=1,p=1,keyid=AA", salt, key)},
		{"spaces", with("argon2id", "v=19", "m=64, t=1, p=1", salt, key)},
		{"huge", good + strings.Repeat("A", 10000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ok, rehash bool
			var err error
			require.NotPanics(t, func() { ok, rehash, err = h.Verify(ctx, "pw", tt.phc) })
			require.Error(t, err)
			t.Log(err)
			assert.False(t, ok)
			assert.False(t, rehash)
		})
	}

	// Sanity: the pieces the cases were built from are valid.
	ok, _, err := h.Verify(ctx, "pw", with("argon2id", "v=19", ps, salt, key))
	require.NoError(t, err)
	assert.True(t, ok)
}

func TestParseAcceptsOwnParamsAboveLimits(t *testing.T) {
	// A hasher configured above the parse limits must still verify its own
	// hashes; checked via parse only, to avoid a 2 GiB allocation.
	p := Params{MemoryKiB: 2 * 1024 * 1024, Time: 20, Threads: 32}
	var h Hasher
	h.setParams(p)
	d, err := h.parse("$argon2id$v=19$m=2097152,t=20,p=32$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	require.NoError(t, err)
	assert.Equal(t, p, d.params)
}

func TestNeedsRehash(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		stored Params
		want   bool
	}{
		{"same", fast, false},
		{"memory differs", Params{MemoryKiB: 128, Time: 1, Threads: 1}, true},
		{"time differs", Params{MemoryKiB: 64, Time: 2, Threads: 1}, true},
		{"threads differ", Params{MemoryKiB: 64, Time: 1, Threads: 2}, true},
	}
	current := newFast(t, 1, time.Second)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, err := NewHasher(tt.stored, 1, time.Second)
			require.NoError(t, err)
			phc, err := old.Hash(ctx, "pw")
			require.NoError(t, err)

			ok, rehash, err := current.Verify(ctx, "pw", phc)
			require.NoError(t, err)
			assert.True(t, ok)
			assert.Equal(t, tt.want, rehash)

			// Never ask to rehash on a wrong password.
			ok, rehash, err = current.Verify(ctx, "wrong", phc)
			require.NoError(t, err)
			assert.False(t, ok)
			assert.False(t, rehash)
		})
	}
}

func TestVerifyDummy(t *testing.T) {
	h := newFast(t, 1, time.Second)
	assert.Equal(t, fast, *h.slowest.Load(), "the dummy uses the current params until a slower hash is seen")

	var ran atomic.Int32
	h.testHook = func() { ran.Add(1) }
	for _, pw := range []string{"", "pw", "anything at all"} {
		assert.NoError(t, h.VerifyDummy(context.Background(), pw))
	}
	assert.Equal(t, int32(3), ran.Load(), "VerifyDummy goes through the cap")
}

// holdSlot makes h's next hash block inside its slot until the returned
// release func is called, and waits until that hash holds the slot.
func holdSlot(t *testing.T, h *Hasher) (release func()) {
	t.Helper()
	entered := make(chan struct{})
	unblock := make(chan struct{})
	var once sync.Once
	h.testHook = func() {
		first := false
		once.Do(func() { first = true })
		if first {
			close(entered)
			<-unblock
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := h.Hash(context.Background(), "slow")
		done <- err
	}()
	<-entered
	return func() {
		close(unblock)
		require.NoError(t, <-done)
	}
}

func TestBusy(t *testing.T) {
	ctx := context.Background()
	h := newFast(t, 1, 20*time.Millisecond)
	phc, err := h.Hash(ctx, "pw")
	require.NoError(t, err)

	release := holdSlot(t, h)
	assert.Equal(t, 1, h.InFlight())

	_, err = h.Hash(ctx, "pw")
	assert.ErrorIs(t, err, ErrBusy)
	ok, rehash, err := h.Verify(ctx, "pw", phc)
	assert.ErrorIs(t, err, ErrBusy)
	assert.False(t, ok)
	assert.False(t, rehash)
	assert.ErrorIs(t, h.VerifyDummy(ctx, "pw"), ErrBusy)

	release()
	assert.Equal(t, 0, h.InFlight())
	ok, _, err = h.Verify(ctx, "pw", phc)
	require.NoError(t, err, "slot is free again")
	assert.True(t, ok)
}

func TestBusyNoWait(t *testing.T) {
	h := newFast(t, 1, 0)
	release := holdSlot(t, h)
	defer release()
	_, err := h.Hash(context.Background(), "pw")
	assert.ErrorIs(t, err, ErrBusy)
}

func TestContextCancelled(t *testing.T) {
	h := newFast(t, 1, time.Minute)
	phc, err := h.Hash(context.Background(), "pw")
	require.NoError(t, err)

	t.Run("already cancelled, slot free", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := h.Hash(ctx, "pw")
		assert.ErrorIs(t, err, context.Canceled)
		ok, _, err := h.Verify(ctx, "pw", phc)
		assert.ErrorIs(t, err, context.Canceled)
		assert.False(t, ok)
		assert.ErrorIs(t, h.VerifyDummy(ctx, "pw"), context.Canceled)
	})

	t.Run("ends while waiting for a slot", func(t *testing.T) {
		release := holdSlot(t, h)
		defer release()
		// maxWait is a minute, so only the context can end the wait.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		_, err := h.Hash(ctx, "pw")
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.NotErrorIs(t, err, ErrBusy)
	})
}

// watchCap makes h record, from inside each hash slot, the most hashes
// ever in flight (maxSeen) and how many entered; the first limit callers
// wait for each other, so the cap is certainly reached, not just possibly.
func watchCap(h *Hasher, limit int64) (maxSeen, entered *atomic.Int64) {
	maxSeen, entered = new(atomic.Int64), new(atomic.Int64)
	full := make(chan struct{})
	h.testHook = func() {
		n := int64(h.InFlight())
		for {
			m := maxSeen.Load()
			if n <= m || maxSeen.CompareAndSwap(m, n) {
				break
			}
		}
		if e := entered.Add(1); e <= limit {
			if e == limit {
				close(full)
			}
			<-full
		}
	}
	return maxSeen, entered
}

func TestInFlightNeverExceedsCap(t *testing.T) {
	const limit, callers = 3, 50
	h := newFast(t, limit, time.Minute)

	maxSeen, entered := watchCap(h, limit)

	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				_, err = h.Hash(context.Background(), "pw")
			} else {
				err = h.VerifyDummy(context.Background(), "pw")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, int64(callers), entered.Load())
	assert.Equal(t, int64(limit), maxSeen.Load())
	assert.Zero(t, h.InFlight())
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"\ufb01", "fi"},
		{"ＡＢＣ", "ABC"},
		{"e\u0301", "\u00e9"},
		{"😀", "😀"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Normalize(tt.in), "%q", tt.in)
	}
}

// TestSlowestParamsPadChecks: a stored hash with costlier parameters raises
// what every check costs: VerifyDummy then runs at those parameters, and a
// check of a cheaper hash is padded by the difference.
func TestSlowestParamsPadChecks(t *testing.T) {
	ctx := context.Background()
	h := newFast(t, 1, time.Second)
	own, err := h.Hash(ctx, "pw")
	require.NoError(t, err)
	assert.Zero(t, h.padding(fast), "nothing slower seen yet")

	slow := Params{MemoryKiB: 256, Time: 2, Threads: 1}
	older := newFast(t, 1, time.Second)
	older.setParams(slow)
	dormant, err := older.Hash(ctx, "pw")
	require.NoError(t, err)
	ok, rehash, err := h.Verify(ctx, "wrong", dormant)
	require.NoError(t, err)
	assert.False(t, ok)
	assert.False(t, rehash)

	assert.Equal(t, slow, *h.slowest.Load(), "unknown emails now cost the slowest stored parameters")
	assert.Equal(t, uint32((256*9-64*5)/5), h.padding(fast), "a check of a current hash is padded by the difference")
	assert.Zero(t, h.padding(slow))
	ok, _, err = h.Verify(ctx, "pw", own)
	require.NoError(t, err)
	assert.True(t, ok, "padding changes nothing about the answer")

	ok, _, err = h.Verify(ctx, "wrong", own) // a cheaper hash never lowers the bar
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Equal(t, slow, *h.slowest.Load())
}

// TestFairSlots: a released slot goes to the next client in turn, not to
// whoever asked first, so one client's queue of hashes cannot keep another
// client waiting for more than one turn.
func TestFairSlots(t *testing.T) {
	f := newFairSlots(1)
	ctx := context.Background()
	require.NoError(t, f.acquire(ctx, "flood", time.Minute))
	waiting := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		n := 0
		for _, q := range f.queues {
			n += len(q)
		}
		return n
	}
	granted := make(chan string, 4)
	enqueue := func(key string) {
		before := waiting()
		go func() {
			if f.acquire(ctx, key, time.Minute) == nil {
				granted <- key
			}
		}()
		// Wait until it is queued, so the arrival order is known.
		require.Eventually(t, func() bool { return waiting() == before+1 }, 5*time.Second, time.Millisecond)
	}
	enqueue("flood")
	enqueue("flood")
	enqueue("flood")
	enqueue("honest")
	var order []string
	for range 4 {
		f.release()
		order = append(order, <-granted)
	}
	assert.Equal(t, []string{"flood", "honest", "flood", "flood"}, order, "the honest client is served after at most one flood turn")
	f.release()
	assert.Equal(t, 1, f.free, "every slot is back")
	assert.Empty(t, f.turns)
}

// TestFairSlotsGiveUp: a waiter that gives up leaves its place, and the
// others keep their turns.
func TestFairSlotsGiveUp(t *testing.T) {
	f := newFairSlots(1)
	require.NoError(t, f.acquire(context.Background(), "a", time.Minute))
	assert.ErrorIs(t, f.acquire(context.Background(), "b", time.Millisecond), ErrBusy)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, f.acquire(ctx, "c", time.Minute), context.Canceled)
	f.mu.Lock()
	assert.Empty(t, f.turns)
	assert.Empty(t, f.queues)
	f.mu.Unlock()
	f.release()
	assert.Equal(t, 1, f.free)
}
