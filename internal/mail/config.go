// Package mail delivers Lanyard's transactional mails (verification, password
// reset, email change and security notices) over SMTP, and renders them from
// embedded, overridable templates.
//
// The package is deliberately small and stateless: retries, backoff and the
// exactly-once guarantee belong to the outbox that calls Sender.Send; this
// package only tells it, through IsPermanent, which failures are worth retrying.
package mail

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Default ports: 587 is the message submission port (RFC 6409) where STARTTLS
// is the norm; 465 is submission over implicit TLS (RFC 8314).
const (
	DefaultSubmissionPort  = 587
	DefaultImplicitTLSPort = 465
)

// Config says how to reach the SMTP relay.
//
// Unless ImplicitTLS is set, the sender upgrades the connection with STARTTLS
// and refuses to go on (and so to send credentials or mail) when the server
// does not offer it. The only exception is a loopback host (localhost,
// 127.0.0.0/8, ::1), where the traffic never leaves the machine, which is
// what a local relay or a test server looks like.
type Config struct {
	Host        string
	Port        int
	Username    string
	Password    string
	ImplicitTLS bool
}

// Addr is host:port for dialling.
func (c Config) Addr() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

// RequiresSTARTTLS reports whether a plaintext connection must be upgraded
// before anything else is said.
func (c Config) RequiresSTARTTLS() bool {
	return !c.ImplicitTLS && !IsLoopbackHost(c.Host)
}

// String renders the configuration as a URL with the password masked, so that
// a Config can be logged or printed with %v without leaking the secret.
func (c Config) String() string {
	u := url.URL{Scheme: "smtp", Host: c.Addr()}
	if c.ImplicitTLS {
		u.Scheme = "smtps"
	}
	if c.Username != "" {
		if c.Password != "" {
			u.User = url.UserPassword(c.Username, "xxxxx")
		} else {
			u.User = url.User(c.Username)
		}
	}
	return u.String()
}

// GoString masks the password for %#v too.
func (c Config) GoString() string { return "mail.Config(" + c.String() + ")" }

// LogValue masks the password in structured logs (log/slog).
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalJSON masks the password when a Config ends up in a JSON dump.
func (c Config) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

// IsLoopbackHost reports whether host names the local machine without asking
// DNS: "localhost" (RFC 6761 reserves it) or a loopback IP literal. A name
// that merely resolves to a loopback address does not count, because whoever
// controls the resolver would then control whether TLS is used.
func IsLoopbackHost(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if h == "localhost" {
		return true
	}
	if ip := net.ParseIP(h); ip != nil {
		return ip.IsLoopback()
	}
	return false
}

// ParseSMTPURL parses LANYARD_SMTP_URL:
//
//	smtp://user:pass@host:port   (port 587 by default; STARTTLS required unless host is loopback)
//	smtps://user:pass@host:port  (port 465 by default; implicit TLS)
//
// User name and password are percent-decoded. Error messages never contain
// the URL itself nor the password, since they end up in startup logs.
func ParseSMTPURL(raw string) (Config, error) {
	var cfg Config
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return cfg, errors.New("smtp url: empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse quotes its whole input, password included: do not wrap it.
		return cfg, errors.New("smtp url: malformed (expected smtp://user:pass@host:port or smtps://…; percent-encode special characters in user and password)")
	}
	switch strings.ToLower(u.Scheme) {
	case "smtp":
		cfg.Port = DefaultSubmissionPort
	case "smtps":
		cfg.ImplicitTLS = true
		cfg.Port = DefaultImplicitTLSPort
	case "":
		return cfg, errors.New("smtp url: missing scheme (smtp:// or smtps://)")
	default:
		return cfg, fmt.Errorf("smtp url: unsupported scheme %q (smtp or smtps)", u.Scheme)
	}
	if u.Opaque != "" {
		return cfg, errors.New("smtp url: expected smtp://host… (missing //)")
	}
	if u.Path != "" && u.Path != "/" {
		return cfg, errors.New("smtp url: unexpected path")
	}
	if u.RawQuery != "" || u.ForceQuery {
		return cfg, errors.New("smtp url: query parameters are not supported")
	}
	if u.Fragment != "" {
		return cfg, errors.New("smtp url: unexpected fragment")
	}
	cfg.Host = u.Hostname()
	if cfg.Host == "" {
		return cfg, errors.New("smtp url: missing host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return cfg, errors.New("smtp url: port must be a number from 1 to 65535")
		}
		cfg.Port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return cfg, errors.New("smtp url: empty port")
	}
	if u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
		if cfg.Username == "" {
			return cfg, errors.New("smtp url: password given without a user name")
		}
	}
	return cfg, nil
}
