package identity

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"time"
)

// AccessTokenType is the JWT "typ" header of Lanyard access tokens (RFC 9068).
const AccessTokenType = "at+jwt"

// accessLeeway tolerates clock skew when Lanyard checks its own tokens.
const accessLeeway = 30 * time.Second

// AccessClaims are the claims of an access token, as the contract lists them.
type AccessClaims struct {
	Issuer          string         `json:"iss"`
	Subject         string         `json:"sub"`
	Audience        string         `json:"aud"`
	IssuedAt        int64          `json:"iat"`
	NotBefore       int64          `json:"nbf"`
	Expiry          int64          `json:"exp"`
	ID              string         `json:"jti"`
	SessionID       string         `json:"sid"`
	Email           string         `json:"email"`
	ProfileComplete bool           `json:"profile_complete"`
	Profile         *ProfileClaims `json:"profile,omitempty"`
}

// ProfileClaims let a backend personalise without a lookup.
type ProfileClaims struct {
	PythonProficiency string `json:"python_proficiency"`
	DeveloperRole     string `json:"developer_role"`
}

func (s *Service) mintAccessToken(user User, sessionID string, now time.Time) (string, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	claims := AccessClaims{
		Issuer:          s.cfg.Issuer,
		Subject:         user.ID,
		Audience:        s.cfg.Audience,
		IssuedAt:        now.Unix(),
		NotBefore:       now.Unix(),
		Expiry:          now.Add(s.cfg.AccessTTL).Unix(),
		ID:              base64.RawURLEncoding.EncodeToString(jti[:]),
		SessionID:       sessionID,
		Email:           user.Email,
		ProfileComplete: user.ProfileComplete(),
	}
	if claims.ProfileComplete {
		claims.Profile = &ProfileClaims{PythonProficiency: user.Profile.PythonProficiency, DeveloperRole: user.Profile.DeveloperRole}
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	return s.signer.Sign(payload)
}

// Authenticate checks an access token the way every verifier must: signature
// by a published key (with alg and typ checked by the signer), then issuer,
// audience and validity window.
func (s *Service) Authenticate(token string) (AccessClaims, error) {
	unauthorized := &Error{Code: CodeUnauthorized, Message: "a valid access token is required"}
	payload, err := s.signer.Verify(token)
	if err != nil {
		return AccessClaims{}, unauthorized
	}
	var c AccessClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return AccessClaims{}, unauthorized
	}
	now := s.Now()
	if c.Issuer != s.cfg.Issuer || c.Audience != s.cfg.Audience || c.Subject == "" || c.SessionID == "" ||
		now.After(time.Unix(c.Expiry, 0).Add(accessLeeway)) || now.Before(time.Unix(c.NotBefore, 0).Add(-accessLeeway)) {
		return AccessClaims{}, unauthorized
	}
	return c, nil
}
