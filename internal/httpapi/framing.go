package httpapi

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/gin-gonic/gin"

	"github.com/lanyard-id/lanyard/internal/identity"
)

// A request with both Content-Length and Transfer-Encoding has two framings;
// a proxy in front that believes the other one sees a different request
// boundary, which is how requests are smuggled. RFC 9112 §6.1: answer 400 and
// close the connection. net/http instead drops the Content-Length and reads
// the body as chunked, and leaves no trace of it for the handler. So the
// listener follows each connection's request framing itself, on the bytes as
// net/http reads them, and remembers which request on the connection was the
// first with both. From the end of that request's header block on, the
// connection yields nothing more to net/http: neither the ambiguous body nor
// anything behind it is ever parsed as a request. The handler answers that
// request (and none after it can arrive) with 400 and Connection: close.

// GuardFraming returns l with every accepted connection watched, and sets
// srv.ConnContext so that srv's handlers can tell an ambiguous request
// (ambiguousFraming). Serve srv on the returned listener, in plain HTTP/1.x
// (as Lanyard does: TLS and HTTP/2 end at the proxy); the parser reads the
// bytes on the wire.
func GuardFraming(srv *http.Server, l net.Listener) net.Listener {
	// Every request must reach the handler, or its count of the
	// connection's requests falls behind the parser's: net/http would answer
	// "OPTIONS *" itself and keep the connection.
	srv.DisableGeneralOptionsHandler = true
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if fc, ok := c.(*framedConn); ok {
			return context.WithValue(ctx, framedConnKey{}, fc)
		}
		return ctx
	}
	return framingListener{l}
}

type framingListener struct{ net.Listener }

func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framedConn{Conn: c}, nil
}

type framedConnKey struct{}

// framedConn passes reads through its framing parser.
type framedConn struct {
	net.Conn
	mu sync.Mutex // net/http reads from one goroutine at a time, but not always the same one
	f  framing
	// ambiguous is 1 + the index of the first request on the connection
	// with both headers; 0 while there is none.
	ambiguous atomic.Int64
	// served counts the requests handed to the handler. HTTP/1 serves one
	// request of a connection at a time, in order.
	served atomic.Int64
}

func (c *framedConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f.cut {
		return 0, io.EOF
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		n = c.f.feed(p[:n])
		if c.f.cut {
			c.ambiguous.Store(c.f.requests + 1)
		}
	}
	return n, err
}

// ambiguousFraming counts r as the next request of its connection and
// reports whether it (or one before it on the connection) had both
// Content-Length and Transfer-Encoding. Call it once per request.
func ambiguousFraming(r *http.Request) bool {
	c, ok := r.Context().Value(framedConnKey{}).(*framedConn)
	if !ok {
		return false
	}
	index := c.served.Add(1) - 1
	first := c.ambiguous.Load()
	return first != 0 && index >= first-1
}

// framing follows HTTP/1.1 request boundaries (RFC 9112 §6): a header block,
// then a body of Content-Length bytes, chunked, or none. It only reads
// what it needs for that; net/http parses and judges the requests.
type framing struct {
	state    framingState
	line     []byte // the current header, chunk-size or trailer line (capped)
	started  bool   // the request line has been read
	http10   bool   // HTTP/1.0 ignores Transfer-Encoding (as net/http does)
	length   int64  // Content-Length
	hasCL    bool
	hasTE    bool
	chunked  bool
	left     int64 // body or chunk bytes still to pass
	requests int64 // requests whose framing has ended
	cut      bool  // an ambiguous header block ended: pass nothing more
	lost     bool  // framing could not be followed (net/http rejects such a request and closes)
}

type framingState int

const (
	inHeader framingState = iota
	inBody
	inChunkSize
	inChunkData
	inChunkEnd
	inTrailer
)

// maxFramingLine caps what is kept of one line: enough for any
// Content-Length or chunk size, which is all the parser reads from a line.
const maxFramingLine = 256

// feed follows b and returns how many of its bytes net/http may see: all
// of them, or those up to the end of an ambiguous header block.
func (f *framing) feed(b []byte) int {
	for i := 0; i < len(b); {
		if f.lost {
			return len(b)
		}
		switch f.state {
		case inBody, inChunkData:
			n := min(int64(len(b)-i), f.left)
			f.left -= n
			i += int(n)
			if f.left == 0 {
				if f.state == inBody {
					f.next()
				} else {
					f.state = inChunkEnd
				}
			}
			continue
		}
		c := b[i]
		i++
		if c != '\n' {
			if len(f.line) < maxFramingLine {
				f.line = append(f.line, c)
			}
			continue
		}
		line := bytes.TrimSuffix(f.line, []byte("\r"))
		f.line = f.line[:0]
		switch f.state {
		case inHeader:
			if f.header(line) && f.cut {
				return i
			}
		case inChunkSize:
			f.chunkSize(line)
		case inChunkEnd:
			f.state = inChunkSize
		case inTrailer:
			if len(line) == 0 {
				f.next()
			}
		}
	}
	return len(b)
}

// header reads one line of a header block and reports whether it ended the block.
func (f *framing) header(line []byte) bool {
	if !f.started {
		// Empty lines before a request line are tolerated (RFC 9112 §2.2).
		if len(line) > 0 {
			f.started = true
			f.http10 = bytes.HasSuffix(line, []byte(" HTTP/1.0"))
		}
		return false
	}
	if len(line) == 0 {
		f.endHeader()
		return true
	}
	name, value, ok := bytes.Cut(line, []byte(":"))
	if !ok {
		return false
	}
	value = bytes.TrimSpace(value)
	switch {
	case bytes.EqualFold(name, []byte("Content-Length")):
		n, err := strconv.ParseInt(string(value), 10, 64)
		if err != nil || n < 0 {
			f.lost = true
		}
		f.hasCL, f.length = true, n
	case bytes.EqualFold(name, []byte("Transfer-Encoding")):
		f.hasTE = true
		f.chunked = bytes.EqualFold(value, []byte("chunked"))
	}
	return false
}

func (f *framing) endHeader() {
	switch {
	case f.hasCL && f.hasTE:
		f.cut = true
	case f.hasTE && !f.http10:
		if !f.chunked {
			f.lost = true // net/http answers 501 and closes
			return
		}
		f.state = inChunkSize
	case f.length > 0:
		f.state, f.left = inBody, f.length
	default:
		f.next()
	}
}

func (f *framing) chunkSize(line []byte) {
	size, _, _ := bytes.Cut(line, []byte(";")) // chunk extensions are ignored
	n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
	switch {
	case err != nil || n < 0:
		f.lost = true
	case n == 0:
		f.state = inTrailer
	default:
		f.state, f.left = inChunkData, n
	}
}

// next starts the next request on the connection.
func (f *framing) next() {
	*f = framing{line: f.line[:0], requests: f.requests + 1}
}

type refusedKey struct{}

// refuseAmbiguousFraming answers a request that front marked as having both
// headers with 400, and has net/http close the connection after the answer.
func (s *Server) refuseAmbiguousFraming(c *gin.Context) {
	if refused, _ := c.Request.Context().Value(refusedKey{}).(bool); refused {
		c.Header("Connection", "close")
		s.fail(c, identity.CodeValidation, "a request must not have both Content-Length and Transfer-Encoding")
	}
}
