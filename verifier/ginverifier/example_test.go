package ginverifier_test

import (
	"context"
	"log"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/lanyard-id/lanyard/verifier"
	"github.com/lanyard-id/lanyard/verifier/ginverifier"
)

func Example() {
	v, err := verifier.New(context.Background(), verifier.Config{
		JWKSURL:  "https://id.example.com/.well-known/jwks.json",
		Issuer:   "https://id.example.com",
		Audience: "https://id.example.com",
	})
	if err != nil {
		log.Fatal(err)
	}
	r := gin.New()
	r.GET("/me", ginverifier.RequireAuth(v), func(c *gin.Context) {
		claims, _ := ginverifier.Claims(c)
		c.JSON(http.StatusOK, gin.H{"user": claims.Subject, "onboarded": claims.ProfileComplete})
	})
	lessons := r.Group("/lessons", ginverifier.RequireCompleteProfile(v))
	lessons.GET("", func(c *gin.Context) {
		claims, _ := ginverifier.Claims(c)
		c.JSON(http.StatusOK, gin.H{"track": claims.Profile.DeveloperRole})
	})
	log.Fatal(r.Run(":9000"))
}
