package identity

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestThrottledBlocksFirst: a block is recorded once per replica; the next
// block of the same counter, or a block of another counter, is recorded
// again; the memory stays bounded.
func TestThrottledBlocksFirst(t *testing.T) {
	var b throttledBlocks
	end := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	ip := ThrottleCounter{Scope: ScopeLoginIP, Key: []byte("k1")}
	account := ThrottleCounter{Scope: ScopeLoginAccount, Key: []byte("k1")}
	assert.True(t, b.first(ip, end))
	assert.False(t, b.first(ip, end), "the same block again")
	assert.True(t, b.first(account, end), "another counter")
	assert.True(t, b.first(ip, end.Add(time.Minute)), "the next block")
	assert.False(t, b.first(ip, end.Add(time.Minute)))
	for i := range maxThrottledBlocks + 5 {
		b.first(ThrottleCounter{Scope: ScopeLoginIP, Key: []byte{byte(i), byte(i >> 8), byte(i >> 16)}}, end)
	}
	assert.LessOrEqual(t, len(b.seen), maxThrottledBlocks)
}
