package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestNoSecretsInLogs runs a full flow through the real program at debug
// level (sign-up, wrong passwords, login, refresh, a replayed and a forged
// token, a wrong and a right password change, logout) and searches
// everything it printed, on stdout and stderr, for every password, access
// token and refresh token it saw and for LANYARD_SECRET in any common
// encoding. Nor may any JWT-shaped string appear, whoever issued it.
func TestNoSecretsInLogs(t *testing.T) {
	for _, name := range programDatabases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			vars := onDatabase(t, name, "pg-secret/+with=base64+chars/"+strings.Repeat("x", 16), map[string]string{
				"LANYARD_DATA_DIR": dir, "LANYARD_ADDR": "127.0.0.1:0", "LANYARD_ADMIN_ADDR": "127.0.0.1:0",
				"LANYARD_SHUTDOWN_DRAIN": "0s", "LANYARD_LOG_LEVEL": "debug",
			})
			out := &printed{listening: make(chan string, 1)}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- run(ctx, []string{"serve"}, env(vars), out, out) }()
			var url string
			select {
			case url = <-out.listening:
			case err := <-done:
				t.Fatalf("lanyard exited before listening: %v", err)
			case <-time.After(60 * time.Second):
				t.Fatal("lanyard did not start listening within 60s")
			}
			secret := vars["LANYARD_SECRET"]
			if secret == "" { // the embedded default generated one
				b, err := os.ReadFile(filepath.Join(dir, "secret"))
				require.NoError(t, err)
				secret = strings.TrimSpace(string(b))
			}

			f := flow{t: t, url: url}
			f.run()
			cancel()
			require.NoError(t, <-done)

			logs := out.String()
			require.Contains(t, logs, `"msg":"request"`, "the flow was logged at all")
			secrets := append(f.secrets, secret)
			for _, enc := range []func([]byte) string{
				base64.StdEncoding.EncodeToString, base64.RawStdEncoding.EncodeToString,
				base64.URLEncoding.EncodeToString, base64.RawURLEncoding.EncodeToString,
				hex.EncodeToString, func(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) },
			} {
				secrets = append(secrets, enc([]byte(secret)))
			}
			for i, s := range secrets {
				require.NotEmpty(t, s)
				forms := []string{s}
				if quoted, _ := json.Marshal(s); string(quoted[1:len(quoted)-1]) != s {
					forms = append(forms, string(quoted[1:len(quoted)-1])) // as a JSON log escapes it
				}
				for _, form := range forms {
					if line := lineWith(logs, form); line != "" {
						t.Errorf("secret #%d (%.6s…) is in the log: %.300s", i, s, line)
					}
				}
			}
			if jwt := jwtShaped.FindString(logs); jwt != "" {
				t.Errorf("a JWT-shaped string is in the log: %.300s", lineWith(logs, jwt))
			}
		})
	}
}

// lineWith returns the first line of logs that contains s, or "".
func lineWith(logs, s string) string {
	for line := range strings.Lines(logs) {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}

// jwtShaped matches any compact JWS: base64url header and payload that open
// a JSON object ("eyJ" is `{"`), and a signature.
var jwtShaped = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)

// flow drives the API as a user would, and a careless one and an attacker,
// collecting every secret that crossed the wire.
type flow struct {
	t       *testing.T
	url     string
	secrets []string
}

func (f *flow) run() {
	const email = "logs@example.com"
	first, second := "Tangerine orbit velvet canyon 7", "Quiet harbor lantern mosaic 42"
	wrong := []string{"Tangerine orbit velvet canyon 8", "Tangerine orbit velvet canyon 9"}
	f.secrets = append(f.secrets, first, second)
	f.secrets = append(f.secrets, wrong...)

	signup := f.tokens(f.call("POST", "/v1/auth/signup", "", map[string]any{"email": email, "password": first}), http.StatusCreated)
	for _, w := range wrong {
		f.call("POST", "/v1/auth/login", "", map[string]any{"email": email, "password": w})
	}
	f.call("POST", "/v1/auth/login", "", map[string]any{"email": "nobody@example.com", "password": wrong[0]})
	login := f.tokens(f.call("POST", "/v1/auth/login", "", map[string]any{"email": email, "password": first}), http.StatusOK)
	refreshed := f.tokens(f.call("POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": login.refresh}), http.StatusOK)
	f.call("GET", "/v1/me", refreshed.access, nil)
	f.call("GET", "/v1/me/sessions", refreshed.access, nil)

	// A forged token and a tampered refresh token: failures are logged too.
	forged := refreshed.access[:strings.LastIndex(refreshed.access, ".")+1] + strings.Repeat("A", 86)
	tampered := login.refresh[:len(login.refresh)-4] + "AAAA"
	f.secrets = append(f.secrets, forged, tampered)
	f.call("GET", "/v1/me", forged, nil)
	f.call("POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": tampered})

	f.call("POST", "/v1/me/password", refreshed.access, map[string]any{"current_password": wrong[0], "new_password": second})
	changed := f.call("POST", "/v1/me/password", refreshed.access, map[string]any{"current_password": first, "new_password": second})
	require.Less(f.t, changed.status, 300, "the password change: %s", changed.body)
	if changed.status == http.StatusOK { // it answers with a fresh token pair
		f.tokens(changed, http.StatusOK)
	}
	again := f.tokens(f.call("POST", "/v1/auth/login", "", map[string]any{"email": email, "password": second}), http.StatusOK)
	f.call("POST", "/v1/auth/logout", "", map[string]any{"refresh_token": again.refresh})
	f.call("POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": again.refresh})
	f.call("POST", "/v1/auth/logout", "", map[string]any{"refresh_token": signup.refresh})
}

type reply struct {
	status int
	body   []byte
}

func (f *flow) call(method, path, bearer string, body any) reply {
	f.t.Helper()
	var r *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(f.t, err)
		r = bytes.NewReader(b)
	} else {
		r = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, f.url+path, r)
	require.NoError(f.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(f.t, err)
	defer res.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(res.Body)
	require.NoError(f.t, err)
	return reply{res.StatusCode, buf.Bytes()}
}

type pair struct{ access, refresh string }

// tokens reads a token response and remembers both tokens as secrets.
func (f *flow) tokens(a reply, status int) pair {
	f.t.Helper()
	require.Equal(f.t, status, a.status, "%s", a.body)
	var tk struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
	}
	require.NoError(f.t, json.Unmarshal(a.body, &tk))
	require.NotEmpty(f.t, tk.Access)
	require.NotEmpty(f.t, tk.Refresh)
	f.secrets = append(f.secrets, tk.Access, tk.Refresh, strings.TrimPrefix(tk.Refresh, "lrt_"))
	return pair{tk.Access, tk.Refresh}
}

// printed is everything the program wrote, on both streams; it reports the
// public address from the "listening" record.
type printed struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	listening chan string
	announced bool
}

func (p *printed) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.announced {
		var rec struct{ Msg, Addr string }
		// slog writes each record in one call.
		if json.Unmarshal(b, &rec) == nil && rec.Msg == "listening" {
			p.announced = true
			p.listening <- rec.Addr
		}
	}
	return p.buf.Write(b)
}

func (p *printed) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}
