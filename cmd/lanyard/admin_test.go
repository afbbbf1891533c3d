package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/config"
)

// TestAdminListener: /metrics is served on LANYARD_ADMIN_ADDR and nowhere on
// the public listener; the admin listener serves nothing else, stops with
// the server, and is not there at all when turned off.
func TestAdminListener(t *testing.T) {
	l := start(t, map[string]string{})
	require.True(t, strings.HasPrefix(l.admin, "http://127.0.0.1:"), l.admin)
	require.NotEqual(t, l.url, l.admin)

	status, _ := l.get(t, "/healthz", "")
	require.Equal(t, http.StatusOK, status)
	metrics := fetch(t, l.admin+"/metrics")
	assert.Equal(t, http.StatusOK, metrics.StatusCode)
	assert.Contains(t, metrics.body, `lanyard_http_requests_total{method="GET",route="/healthz",status="200"} 1`)

	for _, res := range []fetched{fetch(t, l.url+"/metrics"), fetch(t, l.admin+"/healthz"), fetch(t, l.admin+"/v1/auth/login")} {
		assert.Equal(t, http.StatusNotFound, res.StatusCode, res.Request.URL)
		assert.NotContains(t, res.body, "lanyard_", res.Request.URL)
	}
	for _, res := range []fetched{metrics, fetch(t, l.url+"/metrics")} {
		assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
		assert.Equal(t, "no-referrer", res.Header.Get("Referrer-Policy"))
	}

	l.stop(t)
	_, err := net.Dial("tcp", strings.TrimPrefix(l.admin, "http://"))
	assert.Error(t, err, "the admin listener closed with the server")

	off := start(t, map[string]string{"LANYARD_ADMIN_ADDR": "off"})
	assert.Equal(t, "off", off.admin)
	assert.Equal(t, http.StatusNotFound, fetch(t, off.url+"/metrics").StatusCode)
}

// TestAdminAddrInUse: an admin address that cannot be bound stops start-up
// with the variable named, like the public one.
func TestAdminAddrInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	err = run(context.Background(), []string{"serve"}, env(map[string]string{
		"LANYARD_DATA_DIR": t.TempDir(), "LANYARD_ADDR": "127.0.0.1:0", "LANYARD_ADMIN_ADDR": busy.Addr().String(),
	}), io.Discard, io.Discard)
	var e *config.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "LANYARD_ADMIN_ADDR", e.Variable)
}

// TestAmbiguousFramingClosesConnection: against the real server, a request
// with both Content-Length and Transfer-Encoding is answered with 400 and
// Connection: close, and the server closes the socket.
func TestAmbiguousFramingClosesConnection(t *testing.T) {
	l := start(t, map[string]string{})
	for _, addr := range []string{l.url, l.admin} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(addr, "http://"))
		require.NoError(t, err)
		require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
		_, err = io.WriteString(conn, "POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
			"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		r := bufio.NewReader(conn)
		res, err := http.ReadResponse(r, nil)
		require.NoError(t, err, addr)
		_, _ = io.Copy(io.Discard, res.Body)
		assert.Equal(t, http.StatusBadRequest, res.StatusCode, addr)
		assert.True(t, res.Close, "Connection: close from %s", addr)
		assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"), addr)
		rest, err := io.ReadAll(r)
		assert.NoError(t, err, "%s closes the socket rather than wait for the test's deadline", addr)
		assert.Empty(t, string(rest), "nothing after the refused request is answered on %s", addr)
		conn.Close()
	}
}

type fetched struct {
	*http.Response
	body string
}

func fetch(t *testing.T, url string) fetched {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return fetched{res, string(b)}
}

// TestDefaultAdminAddrInUse: with LANYARD_ADMIN_ADDR unset, a default
// address already taken (another Lanyard on this host) turns the admin
// listener off with a warning; the service itself still starts.
func TestDefaultAdminAddrInUse(t *testing.T) {
	if held, err := net.Listen("tcp", "127.0.0.1:9090"); err == nil {
		defer held.Close() // else something else holds it: busy all the same
	}
	l := start(t, map[string]string{"LANYARD_ADMIN_ADDR": ""})
	warning := l.first("admin listener off: its default address is in use; set LANYARD_ADMIN_ADDR to another address or to off")
	require.NotNil(t, warning)
	assert.Equal(t, "127.0.0.1:9090", warning["addr"])
	assert.Equal(t, "off", l.listeningField("admin"))
	res, err := http.Get(l.url + "/healthz")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
}
