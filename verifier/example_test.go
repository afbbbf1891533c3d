package verifier_test

import (
	"context"
	"encoding/json"
	"log"
	"net/http"
	"time"

	"github.com/lanyard-id/lanyard/verifier"
)

// A backend with one public route, one that needs a signed-in user and one
// that needs onboarding done.
func Example() {
	ctx := context.Background()
	v, err := verifier.New(ctx, verifier.Config{
		JWKSURL:  "https://id.example.com/.well-known/jwks.json",
		Issuer:   "https://id.example.com", // LANYARD_ISSUER
		Audience: "https://id.example.com", // LANYARD_AUDIENCE (the issuer unless set)
		// Algorithms: []string{"EdDSA"}, // only if Lanyard runs LANYARD_SIGNING_ALG=EdDSA
	})
	if err != nil {
		log.Fatal(err) // a bad Config; Lanyard being down does not fail New
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.Handle("GET /me", v.RequireAuth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verifier.ClaimsFromContext(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]any{"user": c.Subject, "onboarded": c.ProfileComplete})
	})))
	// 401 without a valid token, 403 profile_incomplete until onboarding.
	mux.Handle("GET /lessons", v.RequireCompleteProfile(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verifier.ClaimsFromContext(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]string{
			"level": c.Profile.PythonProficiency, // present whenever ProfileComplete
			"track": c.Profile.DeveloperRole,
		})
	})))

	srv := &http.Server{Addr: ":9000", Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// Verify on its own, for tokens that arrive other than in an HTTP header
// (a WebSocket's first message, a queue job).
func ExampleVerifier_Verify() {
	v, err := verifier.New(context.Background(), verifier.Config{
		JWKSURL:  "https://id.example.com/.well-known/jwks.json",
		Issuer:   "https://id.example.com",
		Audience: "https://id.example.com",
	})
	if err != nil {
		log.Fatal(err)
	}
	token := "eyJhbGciOiJFUzI1NiIs…" // from the client
	claims, err := v.Verify(context.Background(), token)
	if err != nil {
		log.Printf("rejected token: %v", err) // wraps verifier.ErrInvalidToken
		return
	}
	log.Printf("user %s, session %s", claims.Subject, claims.SessionID)
}
