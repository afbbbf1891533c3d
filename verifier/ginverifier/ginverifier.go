// Package ginverifier is the gin form of verifier's middleware: it
// guards gin routes with Lanyard access tokens. It lives apart from
// verifier so net/http users do not import gin.
//
//	v, err := verifier.New(ctx, verifier.Config{JWKSURL: …, Issuer: …, Audience: …})
//	r := gin.New()
//	r.GET("/lessons", ginverifier.RequireCompleteProfile(v), func(c *gin.Context) {
//		claims, _ := ginverifier.Claims(c)
//		c.JSON(200, gin.H{"role": claims.Profile.DeveloperRole})
//	})
package ginverifier

import (
	"github.com/gin-gonic/gin"

	"github.com/lanyard-id/lanyard/verifier"
)

// RequireAuth lets through only requests with a valid access token and
// aborts the rest with verifier's 401 problem (WWW-Authenticate: Bearer
// error="invalid_token"). Handlers read the claims with Claims.
func RequireAuth(v *verifier.Verifier) gin.HandlerFunc {
	mustVerifier(v)
	return func(c *gin.Context) {
		if _, ok := authenticate(c, v); ok {
			c.Next()
		}
	}
}

// RequireCompleteProfile does RequireAuth's job, then aborts with
// verifier's 403 problem code "profile_incomplete" (WWW-Authenticate:
// Bearer error="insufficient_scope") when the token's profile_complete is
// false.
func RequireCompleteProfile(v *verifier.Verifier) gin.HandlerFunc {
	mustVerifier(v)
	return func(c *gin.Context) {
		claims, ok := authenticate(c, v)
		if !ok {
			return
		}
		if !claims.ProfileComplete {
			verifier.WriteProfileIncomplete(c.Writer)
			c.Abort()
			return
		}
		c.Next()
	}
}

// Claims returns the claims the middleware verified for this request.
func Claims(c *gin.Context) (*verifier.Claims, bool) {
	if c.Request == nil {
		return nil, false
	}
	return verifier.ClaimsFromContext(c.Request.Context())
}

// authenticate verifies the request, or writes the 401 and aborts. The
// claims go on the request's context (not only gin's key map) so plain
// net/http code further down reads them with verifier.ClaimsFromContext.
func authenticate(c *gin.Context, v *verifier.Verifier) (*verifier.Claims, bool) {
	claims, err := v.VerifyRequest(c.Request)
	if err != nil {
		_ = c.Error(err) // keeps the reason for gin's logger; never sent
		verifier.WriteUnauthorized(c.Writer, err)
		c.Abort()
		return nil, false
	}
	c.Request = c.Request.WithContext(verifier.WithClaims(c.Request.Context(), claims))
	return claims, true
}

// mustVerifier fails at route setup rather than on the first request.
func mustVerifier(v *verifier.Verifier) {
	if v == nil {
		panic("ginverifier: nil *verifier.Verifier")
	}
}
