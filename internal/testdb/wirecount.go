package testdb

import (
	"net"
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
	c := &StatementCounter{}
	proxied := ProxyPostgres(t, dbURL, func(client, server net.Conn, _ <-chan struct{}) { c.forward(client, server) })
	return proxied, c
}

// forward copies client→server messages, counting Execute and Query.
func (c *StatementCounter) forward(client, server net.Conn) {
	startup, err := ReadStartupMessage(client)
	if err != nil {
		return
	}
	if _, err := server.Write(startup); err != nil {
		return
	}
	for {
		msg, err := ReadMessage(client)
		if err != nil {
			return
		}
		// pgx pings a connection that sat idle ("-- ping"): pool upkeep, not a
		// statement of the request being measured.
		if msg[0] == 'E' || (msg[0] == 'Q' && string(msg[5:]) != "-- ping\x00") {
			c.n.Add(1)
		}
		if _, err := server.Write(msg); err != nil {
			return
		}
	}
}
