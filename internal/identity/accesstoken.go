package identity

import (
	"crypto/rand"
	"encoding/base64"
	"time"

	"github.com/lanyard-id/lanyard/accesstoken"
)

// AccessClaims are the claims of an access token. They are the public
// rules package's Claims, so Lanyard mints and reads them by the very
// names every published verifier reads.
type AccessClaims = accesstoken.Claims

func (s *Service) mintAccessToken(user User, sessionID string, now time.Time) (string, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	claims := AccessClaims{
		Issuer:          s.cfg.Issuer,
		Subject:         user.ID,
		Audience:        s.cfg.Audience,
		IssuedAt:        now,
		NotBefore:       now,
		ExpiresAt:       now.Add(s.cfg.AccessTTL),
		ID:              base64.RawURLEncoding.EncodeToString(jti[:]),
		SessionID:       sessionID,
		Email:           user.Email,
		EmailVerified:   user.EmailVerified,
		ProfileComplete: user.ProfileComplete(),
	}
	if claims.ProfileComplete {
		claims.Profile = &accesstoken.Profile{PythonProficiency: user.Profile.PythonProficiency, DeveloperRole: user.Profile.DeveloperRole}
	}
	payload, err := claims.Payload()
	if err != nil {
		return "", err
	}
	return s.signer.Sign(payload)
}

// Authenticate checks an access token exactly as the public verifier does:
// the signer checks the header and the signature by a published key, then
// the shared rules check the claims (exact names, no duplicates, issuer,
// audience, validity window, iat not in the future, sub and sid).
func (s *Service) Authenticate(token string) (AccessClaims, error) {
	unauthorized := &Error{Code: CodeUnauthorized, Message: "a valid access token is required"}
	payload, err := s.signer.Verify(token)
	if err != nil {
		return AccessClaims{}, unauthorized
	}
	// The verifiers' default leeway: Lanyard is as tolerant of skew as the
	// backends that check its tokens, no more. No token Lanyard mints lives
	// longer than the access TTL; one that does was forged with a leaked key.
	policy := accesstoken.Policy{
		Issuer: s.cfg.Issuer, Audience: s.cfg.Audience, Leeway: accesstoken.DefaultLeeway,
		MaxLifetime: s.cfg.AccessTTL + accesstoken.MaxLeeway,
	}
	c, err := policy.Check(payload, s.Now())
	if err != nil {
		return AccessClaims{}, unauthorized
	}
	return *c, nil
}
