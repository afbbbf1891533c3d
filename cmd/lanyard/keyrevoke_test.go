package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/verifier"
)

// TestKeyRevocation is the incident drill end to end: a token signed by key
// A, `keys revoke A` run against the database while servers run, and then,
// within LANYARD_KEY_CHECK_INTERVAL, A is gone from every replica's JWKS,
// Lanyard refuses A's token, a new login is signed by another key and works,
// and the Go verifier, once it refetches, rejects A's token too. On Postgres
// two replicas share the database; on SQLite one server owns its data dir.
func TestKeyRevocation(t *testing.T) {
	for _, name := range programDatabases {
		t.Run(name, func(t *testing.T) {
			const issuer = "http://lanyard.test"
			vars := onDatabase(t, name, strings.Repeat("k", 40), map[string]string{"LANYARD_ISSUER": issuer, "LANYARD_KEY_CHECK_INTERVAL": "1s"})
			replicas := 1
			if name == "postgres" {
				replicas = 2
			}
			var servers []*lanyard
			for range replicas {
				servers = append(servers, start(t, maps.Clone(vars)))
			}
			l := servers[0]
			a := l.listeningField("kid")
			require.NotEmpty(t, a)
			creds := map[string]any{"email": "revoke@example.com", "password": "correct horse battery staple"}
			status, body := l.post(t, "/v1/auth/signup", creds)
			require.Equal(t, http.StatusCreated, status, "%v", body)
			oldToken := body["access_token"].(string)
			require.Equal(t, a, tokenKid(t, oldToken))

			// A backend's verifier that fetched the JWKS while A signed. A short
			// cache lifetime and cooldown stand in for its minutes-long ones.
			v, err := verifier.New(context.Background(), verifier.Config{
				JWKSURL: l.url + "/.well-known/jwks.json", Issuer: issuer, Audience: issuer,
				CacheTTL: time.Millisecond, RefetchCooldown: time.Millisecond,
			})
			require.NoError(t, err)
			_, err = v.Verify(context.Background(), oldToken)
			require.NoError(t, err)

			cli := func(args ...string) (string, []map[string]any, error) {
				var out, logs bytes.Buffer
				err := run(context.Background(), args, env(vars), &out, &logs)
				return out.String(), jsonLines(t, &logs), err
			}

			// An unknown kid changes nothing and says which kid it did not find.
			_, _, err = cli("keys", "revoke", "no-such-kid")
			require.EqualError(t, err, `no signing key with kid "no-such-kid" (lanyard keys list shows them)`)
			// Kids are base64url: one may start with '-', and is still a kid.
			_, _, err = cli("keys", "revoke", "-no-such-kid")
			require.EqualError(t, err, `no signing key with kid "-no-such-kid" (lanyard keys list shows them)`)
			_, _, err = cli("keys", "revoke", "--", "-no-such-kid")
			require.EqualError(t, err, `no signing key with kid "-no-such-kid" (lanyard keys list shows them)`)
			_, _, err = cli("keys", "revoke")
			require.ErrorContains(t, err, "name exactly one key to revoke")
			help, _, err := cli("keys", "revoke", "--help")
			require.NoError(t, err)
			assert.Contains(t, help, "docs/operations.md")

			printed, logs, err := cli("keys", "revoke", a)
			require.NoError(t, err)
			assert.Contains(t, printed, "key "+a+" revoked; key ")
			assert.Regexp(t, a+`\s+ES256\s+revoked\s+`, printed)
			assert.Regexp(t, `\s+ES256\s+current\s+`, printed)
			var event map[string]any
			for _, rec := range logs {
				if rec["msg"] == "auth event" && rec["event"] == "key_revoked" {
					event = rec
				}
			}
			require.NotNil(t, event, "a security event is logged: %v", logs)
			assert.Equal(t, "success", event["outcome"])
			assert.Equal(t, a, event["kid"])
			assert.NotEqual(t, a, event["signing_kid"])

			// Every replica drops A within the check interval, by itself.
			for i, s := range servers {
				require.Eventually(t, func() bool {
					kids := jwksKids(s.url)
					return len(kids) > 0 && !slices.Contains(kids, a)
				}, 10*time.Second, 20*time.Millisecond, "replica %d still publishes the revoked key (LANYARD_KEY_CHECK_INTERVAL is 1s)", i)
				status, _ := s.get(t, "/v1/me", oldToken)
				assert.Equal(t, http.StatusUnauthorized, status, "replica %d accepts the revoked key's token", i)
			}

			// A new login is signed by the new key, on every replica, and works.
			for i, s := range servers {
				status, body = s.post(t, "/v1/auth/login", creds)
				require.Equal(t, http.StatusOK, status, "%v", body)
				newToken := body["access_token"].(string)
				assert.Equal(t, event["signing_kid"], tokenKid(t, newToken), "replica %d", i)
				status, _ = s.get(t, "/v1/me", newToken)
				assert.Equal(t, http.StatusOK, status, "replica %d", i)
				// The verifier meets the new kid and refetches: it knows the new key…
				_, err = v.Verify(context.Background(), newToken)
				require.NoError(t, err)
			}
			// …and, with that fetch, no longer A.
			require.Eventually(t, func() bool {
				_, err := v.Verify(context.Background(), oldToken)
				return err != nil
			}, 30*time.Second, 20*time.Millisecond, "the Go verifier still accepts the revoked key's token")

			// Revoking twice is refused and says since when.
			_, _, err = cli("keys", "revoke", a)
			require.ErrorContains(t, err, `key "`+a+`": already revoked at `)

			// Resealing (the incident's secret rotation) leaves the revoked key alone.
			printed, _, err = cli("keys", "reseal")
			require.NoError(t, err)
			assert.Equal(t, "resealed 1 signing keys under LANYARD_SECRET\n", printed)
		})
	}
}

// tokenKid reads the kid from a token's protected header.
func tokenKid(t *testing.T, token string) string {
	t.Helper()
	header, err := base64.RawURLEncoding.DecodeString(strings.SplitN(token, ".", 2)[0])
	require.NoError(t, err)
	var h struct {
		Kid string `json:"kid"`
	}
	require.NoError(t, json.Unmarshal(header, &h))
	return h.Kid
}

// jwksKids lists the kids a server publishes; none when it cannot be read.
func jwksKids(url string) []string {
	res, err := http.Get(url + "/.well-known/jwks.json")
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if json.NewDecoder(res.Body).Decode(&set) != nil {
		return nil
	}
	kids := make([]string, len(set.Keys))
	for i, k := range set.Keys {
		kids[i] = k.Kid
	}
	return kids
}

// jsonLines decodes the JSON log records a command wrote.
func jsonLines(t *testing.T, r io.Reader) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var rec map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec), "%s", sc.Text())
		out = append(out, rec)
	}
	return out
}
