package mail

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSMTPURL(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want Config
	}{
		{"smtp://relay.example.com", Config{Host: "relay.example.com", Port: 587}},
		{"smtp://user:pass@relay.example.com:2525", Config{Host: "relay.example.com", Port: 2525, Username: "user", Password: "pass"}},
		{"smtps://user:pass@relay.example.com", Config{Host: "relay.example.com", Port: 465, Username: "user", Password: "pass", ImplicitTLS: true}},
		{"SMTPS://relay.example.com:10465/", Config{Host: "relay.example.com", Port: 10465, ImplicitTLS: true}},
		// Percent-encoded user and password, '@' in the user name.
		{"smtp://apikey%40example.com:p%2Fa%3As%23s@relay.example.com", Config{Host: "relay.example.com", Port: 587, Username: "apikey@example.com", Password: "p/a:s#s"}},
		{"smtp://user@127.0.0.1:1025", Config{Host: "127.0.0.1", Port: 1025, Username: "user"}},
		{"smtp://[::1]:25", Config{Host: "::1", Port: 25}},
		{"  smtp://localhost:1025  ", Config{Host: "localhost", Port: 1025}},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := ParseSMTPURL(tc.raw)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseSMTPURLErrorsNeverShowThePassword(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	for _, raw := range []string{
		"",
		"relay.example.com:587",
		"http://u:" + secret + "@relay.example.com",
		"smtp://u:" + secret + "%zz@relay.example.com",
		"smtp://u:" + secret + "@relay.example.com:0",
		"smtp://u:" + secret + "@relay.example.com:99999",
		"smtp://u:" + secret + "@relay.example.com:port",
		"smtp://u:" + secret + "@relay.example.com:",
		"smtp://u:" + secret + "@",
		"smtp://u:" + secret + "@relay.example.com/path",
		"smtp://u:" + secret + "@relay.example.com?auth=plain",
		"smtp://u:" + secret + "@relay.example.com#frag",
		"smtp://:" + secret + "@relay.example.com",
		"smtp:u:" + secret + "@relay.example.com",
		"smtp://u:" + secret + "\n@relay.example.com",
	} {
		t.Run(fmt.Sprintf("%q", raw), func(t *testing.T) {
			_, err := ParseSMTPURL(raw)
			require.Error(t, err)
			assert.NotContains(t, err.Error(), secret)
			assert.NotContains(t, err.Error(), "s3cr3t")
		})
	}
}

func TestConfigNeverPrintsThePassword(t *testing.T) {
	cfg := Config{Host: "relay.example.com", Port: 587, Username: "user", Password: "s3cr3t"}
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("smtp", "config", cfg)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("smtp", "config", cfg)
	js, err := json.Marshal(struct{ SMTP Config }{cfg})
	require.NoError(t, err)
	for _, s := range []string{cfg.String(), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg), logs.String(), string(js)} {
		assert.NotContains(t, s, "s3cr3t")
		assert.Contains(t, s, "relay.example.com:587")
	}
	assert.Equal(t, "smtp://user:xxxxx@relay.example.com:587", cfg.String())
}

func TestLoopbackAndSTARTTLSRequirement(t *testing.T) {
	for host, loop := range map[string]bool{
		"localhost": true, "LOCALHOST.": true, "127.0.0.1": true, "127.1.2.3": true, "::1": true, "[::1]": true,
		"relay.example.com": false, "localhost.example.com": false, "10.0.0.1": false, "0.0.0.0": false, "": false,
	} {
		assert.Equal(t, loop, IsLoopbackHost(host), host)
		assert.Equal(t, !loop, Config{Host: host}.RequiresSTARTTLS(), host)
		assert.False(t, Config{Host: host, ImplicitTLS: true}.RequiresSTARTTLS(), host)
	}
}
