package httpapi

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestFramingFollowsRequests: the parser finds request boundaries as
// net/http does (bodies by Content-Length or chunked, never read as headers)
// however the bytes are split into reads, and stops passing bytes at the
// end of the first header block with both Content-Length and
// Transfer-Encoding.
func TestFramingFollowsRequests(t *testing.T) {
	const (
		plain   = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
		sized   = "POST /b HTTP/1.1\r\nHost: x\r\ncontent-length: 35\r\n\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
		chunked = "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n19\r\nContent-Length: 3\r\n\r\nxyzw\r\n0\r\nX-Trailer: 1\r\n\r\n"
		http10  = "POST /d HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" // 1.0 ignores Transfer-Encoding: no body
		both    = "POST /e HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
		smuggle = "5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n"
	)
	for _, tc := range []struct {
		name, stream string
		passed       int   // bytes net/http gets
		cutAt        int64 // 1 + index of the ambiguous request; 0 for none
	}{
		{"pipelined, none ambiguous", plain + sized + chunked + http10 + plain, len(plain + sized + chunked + http10 + plain), 0},
		{"leading empty lines", "\r\n" + plain + both + smuggle, len("\r\n" + plain + both), 2},
		{"ambiguous after bodies", sized + chunked + both + smuggle + plain, len(sized + chunked + both), 3},
		{"ambiguous first", strings.Replace(both, "POST", "PUT", 1) + plain, len(both) - 1, 1},
		{"on HTTP/1.0 too", strings.Replace(both, "1.1", "1.0", 1) + plain, len(both), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for size := 1; size <= len(tc.stream); size++ {
				var f framing
				passed := 0
				for i := 0; i < len(tc.stream) && !f.cut; i += size {
					passed += f.feed([]byte(tc.stream[i:min(i+size, len(tc.stream))]))
				}
				assert.Equal(t, tc.passed, passed, "reads of %d bytes", size)
				var cutAt int64
				if f.cut {
					cutAt = f.requests + 1
				}
				assert.Equal(t, tc.cutAt, cutAt, "reads of %d bytes", size)
				if t.Failed() {
					return
				}
			}
		})
	}
}
