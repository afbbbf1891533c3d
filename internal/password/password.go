// Package password hashes and verifies user passwords with argon2id, stored
// as PHC strings, behind a cap on how many hashes may run at once that is
// shared fairly between clients.
//
// # Imported Better-Auth hashes
//
// Hashes imported from Better-Auth are stored as BetterAuthScryptPrefix
// followed by Better-Auth's own "<salt hex>:<key hex>" (see
// ImportBetterAuthHash). Verify checks them with Better-Auth's scrypt
// (N=16384, r=16, p=1, 64-byte key, NFKC password, the salt's hex text as
// the salt) under the same slot cap and wait as argon2id, and asks for a
// rehash on every success, so the first login replaces the hash with
// argon2id and the scrypt hashes die out.
//
// Scrypt at those parameters costs about 3x argon2id at the defaults (on a
// 2-core box: 67-76 ms against 21-23 ms; BenchmarkRawScryptBetterAuth
// against BenchmarkRawArgon2id), so a wrong password for an imported account
// would answer visibly more slowly than one for a native account or an
// unknown email, and an attacker could list the imported accounts, i.e. the
// users who have not logged in since the move. While any imported hash may
// remain, the hasher runs in legacy mode (SetLegacyScrypt): every check does
// the work of both algorithms, in the same order, the real one and a dummy
// of the other, so an argon2id check, an scrypt check and an unknown email
// (VerifyDummy) all cost one argon2id run at the slowest parameters seen
// plus one Better-Auth scrypt run (measured interleaved: medians within
// 1.5 %, 94-96 ms each).
//
// The price is that, during the migration, every login costs about 4.4x an
// argon2id check alone (93 ms against 21 ms) and holds its slot that long,
// so the cap admits about a quarter as many logins per second (on paper
// about 21 a second on 2 cores, where Better-Auth measured 15). A check
// allocates 53 MB instead of 20 MB, and a slot's peak may hold both buffers
// if the collector has not reclaimed the argon2 one when scrypt allocates.
// Padding only the cheaper algorithm up to the dearer one would cost about a
// quarter less, but it needs the ratio between two different algorithms
// calibrated for each machine, and a miscalibration leaks; running both
// makes the paths equal by construction. Legacy mode is switched off once
// the store holds no imported hash, and then costs nothing. Verifying an
// imported hash switches it on (the hash proves the mode is needed, e.g.
// after an import ran while the server was up), so a hasher that was never
// told still pads from the first imported login on.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// Params are argon2id cost parameters.
type Params struct {
	MemoryKiB uint32 // default 19456 (OWASP / contract)
	Time      uint32 // default 2
	Threads   uint8  // default 1
}

const (
	saltLen = 16
	keyLen  = 32

	// maxMemoryKiB is 4 GiB: the most a sane configuration could ask for.
	maxMemoryKiB = 4 * 1024 * 1024

	// Limits on what a stored PHC string may ask of us. A stored string is
	// input we did not necessarily produce (imports, a tampered row), and
	// its m/t/p decide how much memory and CPU one Verify burns while
	// holding a slot. The limits sit far above any cost a login path can
	// afford (1 GiB is ~54x the 19 MiB default; t=16 is 8x the default),
	// so they never reject an honest hash, yet one hostile row costs at
	// most 1 GiB instead of the 4 GiB argon2's uint32 KiB allows. A hasher
	// configured above a limit still accepts its own parameters.
	parseMaxMemoryKiB = 1024 * 1024
	parseMaxTime      = 16
	parseMaxThreads   = 16

	// Salt and key lengths accepted from stored strings: 8 bytes is the
	// argon2 minimum salt, 16 the usual minimum tag; 64 bounds both.
	minSaltLen, maxSaltLen = 8, 64
	minKeyLen, maxKeyLen   = 16, 64

	// maxPHCLen bounds the input before any splitting or decoding; the
	// longest acceptable string is well under 200 bytes.
	maxPHCLen = 256
)

// DefaultParams returns the OWASP-recommended argon2id parameters
// (19 MiB, 2 passes, 1 lane) that the service contract specifies.
func DefaultParams() Params {
	return Params{MemoryKiB: 19456, Time: 2, Threads: 1}
}

// Validate reports whether p is usable: argon2 needs at least 8 KiB per lane
// and at least one pass and lane; more than 4 GiB is treated as a typo.
func (p Params) Validate() error {
	switch {
	case p.Threads < 1:
		return errors.New("password: Threads must be at least 1")
	case p.Time < 1:
		return errors.New("password: Time must be at least 1")
	case p.MemoryKiB < 8*uint32(p.Threads):
		return fmt.Errorf("password: MemoryKiB must be at least 8*Threads (%d)", 8*uint32(p.Threads))
	case p.MemoryKiB > maxMemoryKiB:
		return fmt.Errorf("password: MemoryKiB must be at most %d (4 GiB)", maxMemoryKiB)
	}
	return nil
}

// ErrBusy is returned when the bounded wait for a hashing slot expires, so
// overload turns into a fast 503 instead of an ever-growing queue.
var ErrBusy = errors.New("password: too many hashes in progress")

// Hasher hashes and verifies passwords. It is safe for concurrent use.
type Hasher struct {
	params  Params
	slots   *fairSlots
	maxWait time.Duration

	// Parse limits: the package limits, raised to the hasher's own
	// parameters so it can always verify what it produced.
	limMemory  uint32
	limTime    uint32
	limThreads uint32

	// dummy is what VerifyDummy checks against: a random salt and key
	// nobody can match.
	dummy decoded
	// slowest is the costliest parameter set seen: the hasher's own, or any
	// stored hash verified since start. Every check is made to cost as much
	// (see Verify), so response time does not tell an unknown email from a
	// dormant account whose hash predates a parameter change.
	slowest  atomic.Pointer[Params]
	inFlight atomic.Int64

	// scrypt are the parameters imported hashes are checked with, and
	// scryptDummy what legacy mode's added scrypt work checks against.
	scrypt      scryptParams
	scryptDummy scryptHash
	// legacy: every check runs both algorithms (see the package doc).
	legacy atomic.Bool

	// testHook, if set, runs while a slot is held, before the argon2 work.
	// Tests use it to hold slots and observe InFlight without sleeping.
	testHook func()
	// kdfHook, if set, is told each key derivation a check runs (with the
	// argon2 parameters; zero for scrypt), so tests can see which work every
	// path does without timing it.
	kdfHook func(kdf string, p Params)
}

// Names passed to kdfHook.
const (
	kdfArgon2    = "argon2id"
	kdfArgon2Pad = "argon2id pad"
	kdfScrypt    = "scrypt"
)

func (h *Hasher) ranKDF(kdf string, p Params) {
	if h.kdfHook != nil {
		h.kdfHook(kdf, p)
	}
}

// NewHasher returns a Hasher using p. maxConcurrent is how many hashes may
// run at once (<= 0 means runtime.NumCPU()), because each hash pins a core
// and MemoryKiB of RAM. maxWait is how long a caller waits for a slot before
// ErrBusy; 0 means do not wait at all, negative is an error.
func NewHasher(p Params, maxConcurrent int, maxWait time.Duration) (*Hasher, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if maxWait < 0 {
		return nil, errors.New("password: maxWait must not be negative")
	}
	if maxConcurrent <= 0 {
		maxConcurrent = runtime.NumCPU()
	}
	h := &Hasher{
		slots:   newFairSlots(maxConcurrent),
		maxWait: maxWait,
	}
	h.setParams(p)
	h.slowest.Store(&p)
	// A random salt and key: no password matches them, so VerifyDummy can
	// never succeed.
	h.dummy = decoded{salt: make([]byte, saltLen), key: make([]byte, keyLen)}
	if _, err := rand.Read(h.dummy.salt); err != nil {
		return nil, fmt.Errorf("password: reading random salt: %w", err)
	}
	if _, err := rand.Read(h.dummy.key); err != nil {
		return nil, fmt.Errorf("password: reading random key: %w", err)
	}
	h.scrypt = betterAuthScrypt()
	var err error
	if h.scryptDummy, err = newScryptDummy(); err != nil {
		return nil, err
	}
	return h, nil
}

// cost is the time argon2 takes with p, in quarter KiB-passes: time grows
// with memory times passes, and the first pass, over freshly allocated
// memory, costs about a quarter pass more than the others (page faults and
// zeroing; measured with bench/enumeration: counting it as one pass made
// padded checks 15-25 % slower than unpadded ones, as 1.5 passes 2-18 %
// faster).
func (p Params) cost() uint64 { return uint64(p.MemoryKiB) * (4*uint64(p.Time) + 1) }

// setParams sets the parameters and the parse limits derived from them.
func (h *Hasher) setParams(p Params) {
	h.params = p
	h.limMemory = max(parseMaxMemoryKiB, p.MemoryKiB)
	h.limTime = max(parseMaxTime, p.Time)
	h.limThreads = max(parseMaxThreads, uint32(p.Threads))
}

// Normalize returns the NFKC form of password, so that visually identical
// input (ligatures, fullwidth forms, composed vs decomposed accents) typed on
// different keyboards hashes the same.
func Normalize(password string) string {
	return norm.NFKC.String(password)
}

// InFlight returns how many hashes are running now.
func (h *Hasher) InFlight() int {
	return int(h.inFlight.Load())
}

// Hash NFKC-normalises password and returns its PHC string:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>. Like Verify, it waits for a
// slot fairly among the clients named by WithClientKey.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	release, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	return h.hash(password)
}

// Verify NFKC-normalises password and checks it against phc in constant
// time. phc is an argon2id PHC string or an imported Better-Auth hash
// (BetterAuthScryptPrefix). needsRehash is true when ok and the hash is an
// imported one, or its argon2 parameters (or salt/key length) differ from
// the hasher's; it is never true for a wrong password, so a caller cannot be
// tricked into storing an attacker's password as a rehash. A malformed or
// unsupported phc returns an error before taking a slot.
//
// Every check costs as much as the slowest parameter set seen (the
// hasher's own or a stored hash's): a hash made with cheaper parameters is
// followed by padding argon2 work for the difference, so a dormant account
// whose hash predates a parameter change answers as slowly as an unknown
// email (VerifyDummy) does. In legacy mode every check also costs one
// Better-Auth scrypt run (see the package doc).
func (h *Hasher) Verify(ctx context.Context, password, phc string) (ok bool, needsRehash bool, err error) {
	if raw, imported := strings.CutPrefix(phc, BetterAuthScryptPrefix); imported {
		return h.verifyScrypt(ctx, password, raw)
	}
	d, err := h.parse(phc)
	if err != nil {
		return false, false, err
	}
	h.observe(d.params)
	legacy := h.legacy.Load()
	release, err := h.acquire(ctx)
	if err != nil {
		return false, false, err
	}
	defer release()
	ok = h.check(password, d)
	h.pad(password, d.params)
	if legacy {
		if _, err := h.checkScrypt(password, h.scryptDummy); err != nil {
			return false, false, err
		}
	}
	if !ok {
		return false, false, nil
	}
	return true, d.params != h.params || len(d.salt) != saltLen || len(d.key) != keyLen, nil
}

// verifyScrypt is Verify for an imported hash, raw being what follows the
// prefix. It always adds the argon2 dummy, and switches legacy mode on for
// later checks: the hash proves imported accounts exist, so from now on the
// native and unknown-email paths must pay for scrypt too.
func (h *Hasher) verifyScrypt(ctx context.Context, password, raw string) (ok bool, needsRehash bool, err error) {
	s, err := parseBetterAuth(raw)
	if err != nil {
		return false, false, err
	}
	h.legacy.Store(true)
	release, err := h.acquire(ctx)
	if err != nil {
		return false, false, err
	}
	defer release()
	// The argon2 dummy first, as every path runs argon2 then scrypt: the
	// same order keeps allocation and collection the same too.
	h.checkDummy(password)
	ok, err = h.checkScrypt(password, s)
	if err != nil {
		return false, false, err
	}
	// Every successful check asks for a rehash: argon2id replaces scrypt on
	// the first login, whatever the hasher's parameters.
	return ok, ok, nil
}

// VerifyDummy does the work of Verify against the slowest parameter set
// seen (and, in legacy mode, an imported hash) and always reports a
// mismatch. Used for unknown accounts so they cost the same as wrong
// passwords and response time does not reveal which emails exist.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	legacy := h.legacy.Load()
	release, err := h.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	h.checkDummy(password)
	if legacy {
		if _, err := h.checkScrypt(password, h.scryptDummy); err != nil {
			return err
		}
	}
	return nil
}

// checkDummy does the argon2 work of a check at the slowest parameter set
// seen, against a key nobody can match.
func (h *Hasher) checkDummy(password string) {
	d := h.dummy
	d.params = *h.slowest.Load()
	h.check(password, d)
}

// SetLegacyScrypt switches legacy mode, in which every check (Verify of
// either kind of hash, VerifyDummy) runs both argon2id and Better-Auth's
// scrypt so that imported accounts cannot be told apart by response time.
// Turn it on while the store holds any imported hash (at start, and after
// an import) and off once none remains; off, argon2id checks cost what they
// did before imports existed. Verifying an imported hash turns it on again.
// Checks already running keep the mode they started with.
func (h *Hasher) SetLegacyScrypt(on bool) { h.legacy.Store(on) }

// LegacyScrypt reports whether legacy mode is on.
func (h *Hasher) LegacyScrypt() bool { return h.legacy.Load() }

// observe records p as the slowest parameter set if it costs more than any
// seen so far.
func (h *Hasher) observe(p Params) {
	for {
		cur := h.slowest.Load()
		if p.cost() <= cur.cost() || h.slowest.CompareAndSwap(cur, &p) {
			return
		}
	}
}

// pad runs the argon2 work a check with p lacks to cost as much as the
// slowest parameter set.
func (h *Hasher) pad(password string, p Params) {
	if memory := h.padding(p); memory > 0 {
		h.ranKDF(kdfArgon2Pad, Params{MemoryKiB: memory, Time: 1, Threads: 1})
		argon2.IDKey([]byte(Normalize(password)), h.dummy.salt, 1, memory, 1, keyLen)
	}
}

// padding is the memory (KiB) of the one-pass argon2 run that makes a check
// with p cost as much as one with the slowest parameters; 0 when p is the
// slowest.
func (h *Hasher) padding(p Params) uint32 {
	slowest := h.slowest.Load()
	if p.cost() >= slowest.cost() {
		return 0
	}
	onePass := Params{MemoryKiB: 1, Time: 1}.cost()
	return max(uint32((slowest.cost()-p.cost())/onePass), 8) // 8 KiB: argon2's minimum
}

// acquire takes a slot, waiting at most maxWait. A context that is already
// done wins even if a slot is free, so cancelled requests do no work.
func (h *Hasher) acquire(ctx context.Context) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := h.slots.acquire(ctx, clientKeyOf(ctx), h.maxWait); err != nil {
		return nil, err
	}
	// Counted only while the slot is held, so InFlight never exceeds the cap.
	h.inFlight.Add(1)
	if h.testHook != nil {
		h.testHook()
	}
	return func() {
		h.inFlight.Add(-1)
		h.slots.release()
	}, nil
}

type clientKey struct{}

// WithClientKey names the client a hash is for (its address, say). Waiting
// hashes get free slots in turn by client, so one client flooding the
// hasher cannot keep the others waiting: each waiting client is served
// before any gets a second turn.
func WithClientKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, clientKey{}, key)
}

func clientKeyOf(ctx context.Context) string {
	key, _ := ctx.Value(clientKey{}).(string)
	return key
}

// fairSlots is a counting semaphore whose waiters are served round-robin
// by client key: a released slot goes to the next client in turn with
// someone waiting (first come, first served within one client), not to
// whoever asked first.
type fairSlots struct {
	mu     sync.Mutex
	free   int
	queues map[string][]*slotWaiter // per client, in arrival order
	turns  []string                 // clients with waiters, in the order they are served
	next   int                      // index in turns of the client served next
}

type slotWaiter struct {
	ready   chan struct{} // closed when granted
	granted bool
}

func newFairSlots(n int) *fairSlots {
	return &fairSlots{free: n, queues: map[string][]*slotWaiter{}}
}

// acquire takes a slot now if one is free and nobody waits, else waits in
// key's queue for at most maxWait.
func (f *fairSlots) acquire(ctx context.Context, key string, maxWait time.Duration) error {
	f.mu.Lock()
	if f.free > 0 && len(f.turns) == 0 {
		f.free--
		f.mu.Unlock()
		return nil
	}
	if maxWait == 0 {
		f.mu.Unlock()
		return ErrBusy
	}
	w := &slotWaiter{ready: make(chan struct{})}
	if len(f.queues[key]) == 0 {
		f.turns = append(f.turns, key)
	}
	f.queues[key] = append(f.queues[key], w)
	f.mu.Unlock()

	t := time.NewTimer(maxWait)
	defer t.Stop()
	var err error
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-t.C:
		err = ErrBusy
	}
	f.mu.Lock()
	if w.granted {
		// Granted while giving up: pass the slot on.
		f.mu.Unlock()
		f.release()
		return err
	}
	f.leave(key, w)
	f.mu.Unlock()
	return err
}

// leave removes a waiter that gave up. f.mu is held.
func (f *fairSlots) leave(key string, w *slotWaiter) {
	q := f.queues[key]
	for i, x := range q {
		if x == w {
			q = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	if len(q) > 0 {
		f.queues[key] = q
		return
	}
	delete(f.queues, key)
	for i, k := range f.turns {
		if k == key {
			f.turns = append(f.turns[:i:i], f.turns[i+1:]...)
			if i < f.next {
				f.next--
			}
			break
		}
	}
}

// release hands the slot to the next client in turn, or frees it.
func (f *fairSlots) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.turns) == 0 {
		f.free++
		return
	}
	if f.next >= len(f.turns) {
		f.next = 0
	}
	key := f.turns[f.next]
	q := f.queues[key]
	w := q[0]
	if len(q) == 1 {
		// The client's queue is empty: it leaves the turns, and the next
		// client slides into this index.
		delete(f.queues, key)
		f.turns = append(f.turns[:f.next:f.next], f.turns[f.next+1:]...)
	} else {
		f.queues[key] = q[1:]
		f.next++
	}
	w.granted = true
	close(w.ready)
}

// hash does the argon2 work without the cap.
func (h *Hasher) hash(password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: reading salt: %w", err)
	}
	p := h.params
	key := argon2.IDKey([]byte(Normalize(password)), salt, p.Time, p.MemoryKiB, p.Threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// decoded is a parsed PHC string.
type decoded struct {
	params Params
	salt   []byte
	key    []byte
}

// check recomputes the key with the stored parameters and salt.
func (h *Hasher) check(password string, d decoded) bool {
	p := d.params
	h.ranKDF(kdfArgon2, p)
	got := argon2.IDKey([]byte(Normalize(password)), d.salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(d.key)))
	return subtle.ConstantTimeCompare(got, d.key) == 1
}

// b64 is the PHC encoding. Strict rejects non-zero trailing bits; the
// re-encode check in decodeB64 also rejects the CR/LF it would skip.
var b64 = base64.RawStdEncoding.Strict()

// errMalformed wraps every parse failure so callers can tell bad data apart.
var errMalformed = errors.New("password: malformed PHC string")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// parse accepts exactly $argon2id$v=19$m=M,t=T,p=P$salt$key, with canonical
// decimals and base64, and parameters within the hasher's limits.
func (h *Hasher) parse(phc string) (decoded, error) {
	var d decoded
	if len(phc) > maxPHCLen {
		return d, malformed("longer than %d bytes", maxPHCLen)
	}
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" {
		return d, malformed("want 5 '$'-separated fields")
	}
	if parts[1] != "argon2id" {
		return d, fmt.Errorf("password: unsupported algorithm %q", parts[1])
	}
	if parts[2] != "v=19" {
		return d, fmt.Errorf("password: unsupported argon2 version %q", parts[2])
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return d, malformed("want parameters m,t,p")
	}
	m, err := param(kv[0], "m", h.limMemory)
	if err != nil {
		return d, err
	}
	t, err := param(kv[1], "t", h.limTime)
	if err != nil {
		return d, err
	}
	p, err := param(kv[2], "p", h.limThreads)
	if err != nil {
		return d, err
	}
	// param already rejected t or p of zero, on which argon2.IDKey panics.
	if m < 8*p {
		return d, malformed("m=%d below 8*p", m)
	}
	d.params = Params{MemoryKiB: m, Time: t, Threads: uint8(p)} // p <= limThreads <= 255
	if d.salt, err = decodeB64(parts[4], "salt", minSaltLen, maxSaltLen); err != nil {
		return d, err
	}
	if d.key, err = decodeB64(parts[5], "hash", minKeyLen, maxKeyLen); err != nil {
		return d, err
	}
	return d, nil
}

// param parses "name=N" with N a canonical decimal (no sign, no leading
// zeros) in [1, limit].
func param(s, name string, limit uint32) (uint32, error) {
	v, ok := strings.CutPrefix(s, name+"=")
	if !ok {
		return 0, malformed("want %s= in %q", name, s)
	}
	if v == "" || (len(v) > 1 && v[0] == '0') {
		return 0, malformed("non-canonical %s value %q", name, v)
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, malformed("bad %s value %q", name, v)
	}
	if n < 1 || n > uint64(limit) {
		return 0, malformed("%s=%d outside [1, %d]", name, n, limit)
	}
	return uint32(n), nil
}

// decodeB64 decodes canonical unpadded standard base64 of a bounded length.
func decodeB64(s, what string, minLen, maxLen int) ([]byte, error) {
	b, err := b64.DecodeString(s)
	if err != nil || b64.EncodeToString(b) != s {
		return nil, malformed("bad base64 %s", what)
	}
	if len(b) < minLen || len(b) > maxLen {
		return nil, malformed("%s length %d outside [%d, %d]", what, len(b), minLen, maxLen)
	}
	return b, nil
}
