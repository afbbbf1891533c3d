package identity

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
)

// ProfileUpdate is what completing or changing the profile returns: the
// stored profile and a fresh access token for the same session.
type ProfileUpdate struct {
	Profile     Profile
	AccessToken string
	ExpiresIn   time.Duration
}

// UpdateProfile stores both onboarding answers and mints a fresh access
// token for the caller's session, so personalised routes open at once.
func (s *Service) UpdateProfile(ctx context.Context, claims AccessClaims, in Profile) (ProfileUpdate, error) {
	var fields []FieldError
	if !slices.Contains(PythonProficiencies, in.PythonProficiency) {
		fields = append(fields, FieldError{Field: "python_proficiency", Message: "must be one of " + strings.Join(PythonProficiencies, ", ")})
	}
	if !slices.Contains(DeveloperRoles, in.DeveloperRole) {
		fields = append(fields, FieldError{Field: "developer_role", Message: "must be one of " + strings.Join(DeveloperRoles, ", ")})
	}
	if len(fields) > 0 {
		return ProfileUpdate{}, &Error{Code: CodeValidation, Message: "the request has invalid fields", Fields: fields}
	}
	now := s.sessionTime()
	stored, err := s.store.UpsertProfile(ctx, claims.Subject, Profile{PythonProficiency: in.PythonProficiency, DeveloperRole: in.DeveloperRole}, now)
	if err != nil {
		return ProfileUpdate{}, userError(err)
	}
	user, err := s.store.UserByID(ctx, claims.Subject)
	if err != nil {
		return ProfileUpdate{}, userError(err)
	}
	user.Profile = &stored
	// The session may have ended while the profile was written: mint no
	// token for it (offline verifiers would accept it until exp).
	live, err := s.store.SessionActive(ctx, claims.SessionID, claims.Subject, now, now.Add(-s.cfg.RefreshIdleTTL))
	if err != nil {
		return ProfileUpdate{}, internal(err)
	}
	if !live {
		return ProfileUpdate{}, &Error{Code: CodeUnauthorized, Message: "the session of this access token has ended"}
	}
	access, err := s.mintAccessToken(user, claims.SessionID, s.Now())
	if err != nil {
		return ProfileUpdate{}, internal(err)
	}
	return ProfileUpdate{Profile: stored, AccessToken: access, ExpiresIn: s.cfg.AccessTTL}, nil
}

// userError maps a store error about the token's user.
func userError(err error) error {
	if errors.Is(err, ErrNotFound) {
		return &Error{Code: CodeUnauthorized, Message: "the access token's user no longer exists"}
	}
	return internal(err)
}
