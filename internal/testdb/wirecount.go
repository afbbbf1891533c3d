package testdb

import (
	"encoding/binary"
	"io"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
)

// StatementCounter is a TCP proxy in front of Postgres that counts the
// statements clients execute, read off the wire protocol: one Execute ('E')
// message per statement in the extended protocol, one Query ('Q') per simple
// query. Benchmarks point the store at it to show how many statements a
// request really costs, whatever library sent them.
type StatementCounter struct {
	n atomic.Int64
}

// Count returns the statements seen so far.
func (c *StatementCounter) Count() int64 { return c.n.Load() }

// Reset zeroes the count.
func (c *StatementCounter) Reset() { c.n.Store(0) }

// CountStatements starts a proxy for the Postgres in dbURL and returns the
// URL to use instead (sslmode=disable, so the messages can be read).
func CountStatements(t testing.TB, dbURL string) (string, *StatementCounter) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	upstream := u.Host
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	c := &StatementCounter{}
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", upstream)
			if err != nil {
				client.Close()
				continue
			}
			go func() { _, _ = io.Copy(client, server); client.Close() }()
			go func() { c.forward(client, server); server.Close() }()
		}
	}()
	u.Host = ln.Addr().String()
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return u.String(), c
}

// forward copies client→server messages, counting Execute and Query.
func (c *StatementCounter) forward(client, server net.Conn) {
	var header [5]byte
	// The startup message has no type byte: a length, then the payload.
	if _, err := io.ReadFull(client, header[:4]); err != nil {
		return
	}
	n := binary.BigEndian.Uint32(header[:4])
	startup := make([]byte, n-4)
	if _, err := io.ReadFull(client, startup); err != nil {
		return
	}
	if _, err := server.Write(append(header[:4:4], startup...)); err != nil {
		return
	}
	for {
		if _, err := io.ReadFull(client, header[:]); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(header[1:])-4)
		if _, err := io.ReadFull(client, body); err != nil {
			return
		}
		// pgx pings a connection that sat idle ("-- ping"): pool upkeep, not a
		// statement of the request being measured.
		if header[0] == 'E' || (header[0] == 'Q' && string(body) != "-- ping\x00") {
			c.n.Add(1)
		}
		if _, err := server.Write(append(header[:], body...)); err != nil {
			return
		}
	}
}
