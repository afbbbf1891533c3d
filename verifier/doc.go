// Package verifier checks Lanyard access tokens offline, so a Go backend
// can trust a request's user without calling Lanyard.
//
// A Verifier fetches Lanyard's public keys from its JWKS URL, caches them,
// and checks each token's signature, algorithm, "typ", issuer, audience,
// validity window and required claims. RequireAuth and
// RequireCompleteProfile wrap net/http handlers and answer failures the
// way the Lanyard contract says (401 invalid_token, 403
// profile_incomplete, both as application/problem+json). Gin users import
// the sibling package ginverifier instead.
//
// Copy-paste start:
//
//	v, err := verifier.New(ctx, verifier.Config{
//		JWKSURL:  "https://id.example.com/.well-known/jwks.json",
//		Issuer:   "https://id.example.com",
//		Audience: "https://id.example.com", // LANYARD_AUDIENCE; the issuer unless set
//	})
//	if err != nil {
//		log.Fatal(err) // only a bad Config fails New
//	}
//	mux := http.NewServeMux()
//	mux.Handle("GET /lessons", v.RequireCompleteProfile(http.HandlerFunc(
//		func(w http.ResponseWriter, r *http.Request) {
//			c, _ := verifier.ClaimsFromContext(r.Context())
//			fmt.Fprintf(w, "lessons for a %s\n", c.Profile.DeveloperRole)
//		})))
//
// # Rules
//
// The rules are those of package accesstoken, the one implementation
// Lanyard's own bearer check and key ring use too; the FastAPI and Node
// examples apply the same ones (examples/README.md, "Agreed rules";
// internal/tokentest holds the cases all of them are held to). In short:
// a compact JWS of canonical unpadded base64url parts (no whitespace);
// a header with an allowed alg matching the key's, typ at+jwt, a kid,
// and neither crit nor b64; header and claims are UTF-8 JSON objects in
// which no two member names, at any depth, are equal ignoring case ("sub"
// twice, or "sub" and "SUB", is refused); claims are then read by their
// exact names ("Profile_Complete" is not profile_complete). exp, iat and
// nbf are JSON numbers in [0, 2^53); exp and iat are required, nbf is
// checked only when present; a token is refused when expired, not yet
// valid (nbf) or issued in the future (iat), each beyond Config.Leeway.
// A token whose lifetime, exp - iat, exceeds Config.MaxTokenLifetime
// (default 16m: Lanyard's default access TTL plus 60s) is refused.
// iss must equal Config.Issuer, aud be or contain Config.Audience; sub
// and sid are non-empty strings, email and jti strings when present;
// profile_complete is a required boolean; profile, when present, is an
// object with string python_proficiency and developer_role, and it is
// required when profile_complete is true. VerifyRequest accepts the
// Bearer scheme in any case followed by one or more spaces.
//
// # Keys and Lanyard outages
//
// Keys are parsed once per fetch and cached by kid; a fetched set is fresh
// for Config.CacheTTL. A token naming a kid the cache does not hold
// triggers one refetch, shared by every request that
// is waiting for it and rate-limited to one per Config.RefetchCooldown,
// so a flood of forged kids cannot turn a backend into a load generator
// against Lanyard. When the cache is older than CacheTTL, requests keep
// verifying with the cached keys while one background refetch runs. A
// failed fetch never discards keys: while Lanyard is unreachable, tokens
// signed by known keys keep verifying and only unknown kids fail.
//
// # Errors
//
// Every rejection wraps ErrInvalidToken; the wrapped message says why, for
// logs. Clients are told only "missing bearer token" or "invalid or
// expired access token", never the reason. The middleware does not log;
// to log reasons, write a small middleware around VerifyRequest and
// WriteUnauthorized (ginverifier records them with gin's c.Error).
//
// # Startup
//
// New makes one fetch but does not fail when Lanyard is unreachable, so
// a backend and Lanyard can start in any order. To refuse to start
// without keys, call Refresh after New and treat its error as fatal.
package verifier
