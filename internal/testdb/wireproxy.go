package testdb

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// ProxyPostgres starts a TCP proxy for the Postgres in dbURL and returns the
// URL to use instead (sslmode=disable, so the messages can be read). For
// each connection it accepts, it dials the server and copies what the
// server sends to the client as it comes, closing the client once the
// server's side ends; serverClosed is closed then. forward carries the
// client's messages to the server (ReadStartupMessage, then ReadMessage in
// a loop); when it returns, the proxy closes the server connection, so a
// forward that must keep it open (to deliver held messages later) waits for
// serverClosed. At cleanup the proxy stops listening, closes every
// connection and waits for its goroutines.
func ProxyPostgres(t testing.TB, dbURL string, forward func(client, server net.Conn, serverClosed <-chan struct{})) string {
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
	var (
		conns  sync.WaitGroup
		mu     sync.Mutex
		open   []net.Conn
		closed bool
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		conns.Wait()
	})
	conns.Go(func() {
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
			mu.Lock()
			if closed { // accepted just as cleanup began
				mu.Unlock()
				client.Close()
				server.Close()
				return
			}
			open = append(open, client, server)
			mu.Unlock()
			serverClosed := make(chan struct{})
			conns.Go(func() {
				_, _ = io.Copy(client, server)
				close(serverClosed)
				client.Close()
			})
			conns.Go(func() {
				forward(client, server, serverClosed)
				server.Close()
			})
		}
	})
	u.Host = ln.Addr().String()
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return u.String()
}

// ReadStartupMessage reads the message a client opens with, which has no
// type byte (a length, then the payload), and returns it whole.
func ReadStartupMessage(r io.Reader) ([]byte, error) {
	return readMessage(r, 0)
}

// ReadMessage reads one typed message (a type byte, a length, then the
// payload) and returns it whole: msg[0] is the type, msg[5:] the payload.
func ReadMessage(r io.Reader) ([]byte, error) {
	return readMessage(r, 1)
}

// readMessage reads a message whose length follows typeLen type bytes.
func readMessage(r io.Reader, typeLen int) ([]byte, error) {
	header := make([]byte, typeLen+4)
	if _, err := io.ReadFull(r, header); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(header[typeLen:])
	if n < 4 {
		return nil, fmt.Errorf("message length %d is less than its own 4 bytes", n)
	}
	msg := make([]byte, typeLen+int(n))
	copy(msg, header)
	if _, err := io.ReadFull(r, msg[len(header):]); err != nil {
		return nil, err
	}
	return msg, nil
}
