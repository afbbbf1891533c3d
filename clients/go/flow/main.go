// Command flow is an end-to-end check of the Go client generated from
// openapi.yaml (package lanyardclient) against a live Lanyard at
// $LANYARD_URL:
//
//	sign up -> GET /v1/me (profile_complete false)
//	-> PUT /v1/me/profile with an invalid enum (400 validation_failed, nothing written)
//	-> PUT /v1/me/profile -> GET /v1/me/profile
//	-> refresh -> GET /v1/me with the refreshed token (profile_complete true).
//
// It exits non-zero on any unexpected status or field.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lanyard-id/lanyard/clients/go/lanyardclient"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "flow (go): FAILED:", err)
		os.Exit(1)
	}
}

// check collects the first failed expectation of a step.
type check struct {
	step string
	errs []string
}

func (c *check) equal(what string, got, want any) {
	if got != want {
		c.errs = append(c.errs, fmt.Sprintf("%s = %v, want %v", what, got, want))
	}
}

func (c *check) ok(what string, ok bool) {
	if !ok {
		c.errs = append(c.errs, what+" is false")
	}
}

func (c *check) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %s", c.step, strings.Join(c.errs, "; "))
}

// status fails unless the response has the wanted status; body is shown on failure.
func status(step string, got *http.Response, body []byte, want int) error {
	if got.StatusCode != want {
		return fmt.Errorf("%s: HTTP %d, want %d: %s", step, got.StatusCode, want, body)
	}
	return nil
}

func bearer(token string) lanyardclient.RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+token)
		return nil
	}
}

// claims decodes the payload of a compact JWS, without verifying it.
func claims(jwt string) (map[string]any, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("access token has %d parts, want 3", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("access token payload: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("access token payload: %w", err)
	}
	return m, nil
}

// problem checks a typed problem+json answer.
func problem(c *check, p *lanyardclient.Problem, resp *http.Response, status int, code, field string) {
	if p == nil {
		c.errs = append(c.errs, "no typed problem body")
		return
	}
	c.ok("content type is application/problem+json",
		strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json"))
	c.equal("problem.status", p.Status, status)
	c.equal("problem.code", p.Code, code)
	c.ok("problem.title is set", p.Title != "")
	c.ok("problem.detail is set", p.Detail != "")
	if field != "" {
		var fields []string
		if p.Errors != nil {
			for _, e := range *p.Errors {
				fields = append(fields, e.Field)
			}
		}
		c.ok(fmt.Sprintf("problem.errors names %s (got %q)", field, fields), slices.Contains(fields, field))
	}
}

func run() error {
	baseURL := os.Getenv("LANYARD_URL")
	if baseURL == "" {
		return fmt.Errorf("LANYARD_URL is not set (e.g. http://127.0.0.1:8080)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	client, err := lanyardclient.NewClientWithResponses(baseURL,
		lanyardclient.WithHTTPClient(&http.Client{Timeout: 30 * time.Second}))
	if err != nil {
		return err
	}

	email := "flow-go-" + strings.ToLower(rand.Text()) + "@example.com"
	name := "Flow Go"
	password := "correct horse battery staple (go)"

	// 1. Sign up.
	signup, err := client.SignUpWithResponse(ctx, nil, lanyardclient.SignupRequest{
		Email: email, Password: password, Name: &name,
	})
	if err != nil {
		return fmt.Errorf("sign-up: %w", err)
	}
	if err := status("sign-up", signup.HTTPResponse, signup.Body, http.StatusCreated); err != nil {
		return err
	}
	session := signup.JSON201
	if session == nil {
		return fmt.Errorf("sign-up: no typed 201 body")
	}
	c := &check{step: "sign-up"}
	c.equal("Cache-Control", signup.HTTPResponse.Header.Get("Cache-Control"), "no-store")
	c.equal("token_type", session.TokenType, lanyardclient.TokenResponseTokenTypeBearer)
	c.ok("access_token is set", session.AccessToken != "")
	c.ok("refresh_token is set (body mode, the default)", session.RefreshToken != nil && *session.RefreshToken != "")
	c.ok("expires_in > 0", session.ExpiresIn > 0)
	c.equal("user.email", session.User.Email, email)
	c.ok("user.name is "+name, session.User.Name != nil && *session.User.Name == name)
	c.equal("user.profile_complete", session.User.ProfileComplete, false)
	c.ok("user.profile is null", session.User.Profile == nil)
	if err := c.err(); err != nil {
		return err
	}
	userID := session.User.Id
	signupClaims, err := claims(session.AccessToken)
	if err != nil {
		return fmt.Errorf("sign-up: %w", err)
	}
	if sid, _ := signupClaims["sid"].(string); sid == "" {
		return fmt.Errorf("sign-up: access token has no sid claim")
	}

	// The same email again: a typed 409.
	again, err := client.SignUpWithResponse(ctx, nil, lanyardclient.SignupRequest{Email: email, Password: password})
	if err != nil {
		return fmt.Errorf("second sign-up: %w", err)
	}
	if err := status("second sign-up", again.HTTPResponse, again.Body, http.StatusConflict); err != nil {
		return err
	}
	c = &check{step: "second sign-up"}
	problem(c, again.ApplicationproblemJSON409, again.HTTPResponse, http.StatusConflict, "email_taken", "")
	if err := c.err(); err != nil {
		return err
	}

	// 2. GET /v1/me: not onboarded yet.
	me0, err := client.GetMeWithResponse(ctx, bearer(session.AccessToken))
	if err != nil {
		return fmt.Errorf("me (before): %w", err)
	}
	if err := status("me (before)", me0.HTTPResponse, me0.Body, http.StatusOK); err != nil {
		return err
	}
	if me0.JSON200 == nil {
		return fmt.Errorf("me (before): no typed 200 body")
	}
	c = &check{step: "me (before)"}
	c.equal("id", me0.JSON200.Id, userID)
	c.equal("email", me0.JSON200.Email, email)
	c.equal("profile_complete", me0.JSON200.ProfileComplete, false)
	c.ok("profile is null", me0.JSON200.Profile == nil)
	if err := c.err(); err != nil {
		return err
	}

	// Without a token: a typed 401.
	anon, err := client.GetMeWithResponse(ctx)
	if err != nil {
		return fmt.Errorf("me (no token): %w", err)
	}
	if err := status("me (no token)", anon.HTTPResponse, anon.Body, http.StatusUnauthorized); err != nil {
		return err
	}
	c = &check{step: "me (no token)"}
	problem(c, anon.ApplicationproblemJSON401, anon.HTTPResponse, http.StatusUnauthorized, "unauthorized", "")
	if err := c.err(); err != nil {
		return err
	}

	p0, err := client.GetProfileWithResponse(ctx, bearer(session.AccessToken))
	if err != nil {
		return fmt.Errorf("profile (before): %w", err)
	}
	if err := status("profile (before)", p0.HTTPResponse, p0.Body, http.StatusOK); err != nil {
		return err
	}
	if p0.JSON200 == nil {
		return fmt.Errorf("profile (before): no typed 200 body")
	}
	c = &check{step: "profile (before)"}
	c.ok("profile is null", p0.JSON200.Profile == nil)
	c.equal("profile_complete", p0.JSON200.ProfileComplete, false)
	if err := c.err(); err != nil {
		return err
	}

	// 3a. An enum value outside the spec (Go's string enums do not stop a
	// conversion) comes back as a typed problem+json 400 validation_failed
	// naming the field, and nothing is written.
	badRole := lanyardclient.DeveloperRole("wizard")
	if badRole.Valid() {
		return fmt.Errorf("DeveloperRole(%q).Valid() is true", badRole)
	}
	bad, err := client.PutProfileWithResponse(ctx, lanyardclient.ProfileRequest{
		PythonProficiency: lanyardclient.PythonProficiencyIntermediate,
		DeveloperRole:     badRole,
	}, bearer(session.AccessToken))
	if err != nil {
		return fmt.Errorf("PUT profile (bad enum): %w", err)
	}
	if err := status("PUT profile (bad enum)", bad.HTTPResponse, bad.Body, http.StatusBadRequest); err != nil {
		return err
	}
	c = &check{step: "PUT profile (bad enum)"}
	problem(c, bad.ApplicationproblemJSON400, bad.HTTPResponse, http.StatusBadRequest, "validation_failed", "developer_role")
	if err := c.err(); err != nil {
		return err
	}
	me1, err := client.GetMeWithResponse(ctx, bearer(session.AccessToken))
	if err != nil {
		return fmt.Errorf("me (after bad PUT): %w", err)
	}
	if err := status("me (after bad PUT)", me1.HTTPResponse, me1.Body, http.StatusOK); err != nil {
		return err
	}
	if me1.JSON200 == nil || me1.JSON200.ProfileComplete || me1.JSON200.Profile != nil {
		return fmt.Errorf("me (after bad PUT): the rejected profile was written: %s", me1.Body)
	}

	// 3b. The real answers.
	put, err := client.PutProfileWithResponse(ctx, lanyardclient.ProfileRequest{
		PythonProficiency: lanyardclient.PythonProficiencyIntermediate,
		DeveloperRole:     lanyardclient.DeveloperRoleRoboticsEngineer,
	}, bearer(session.AccessToken))
	if err != nil {
		return fmt.Errorf("PUT profile: %w", err)
	}
	if err := status("PUT profile", put.HTTPResponse, put.Body, http.StatusOK); err != nil {
		return err
	}
	updated := put.JSON200
	if updated == nil {
		return fmt.Errorf("PUT profile: no typed 200 body")
	}
	c = &check{step: "PUT profile"}
	c.ok("Cache-Control header parsed as no-store", put.Headers200 != nil && put.Headers200.CacheControl == "no-store")
	c.equal("profile.python_proficiency", updated.Profile.PythonProficiency, lanyardclient.PythonProficiencyIntermediate)
	c.equal("profile.developer_role", updated.Profile.DeveloperRole, lanyardclient.DeveloperRoleRoboticsEngineer)
	c.ok("profile.completed_at is set", updated.Profile.CompletedAt != nil)
	c.equal("token_type", updated.TokenType, lanyardclient.ProfileUpdatedTokenTypeBearer)
	c.ok("expires_in > 0", updated.ExpiresIn > 0)
	putClaims, err := claims(updated.AccessToken)
	if err != nil {
		return fmt.Errorf("PUT profile: %w", err)
	}
	c.equal("token claim profile_complete", putClaims["profile_complete"], true)
	c.equal("token claim sid (same session)", putClaims["sid"], signupClaims["sid"])
	c.equal("token claim sub", putClaims["sub"], userID)
	if err := c.err(); err != nil {
		return err
	}
	completedAt := *updated.Profile.CompletedAt

	// 4. GET /v1/me/profile with the token the PUT returned.
	got, err := client.GetProfileWithResponse(ctx, bearer(updated.AccessToken))
	if err != nil {
		return fmt.Errorf("GET profile: %w", err)
	}
	if err := status("GET profile", got.HTTPResponse, got.Body, http.StatusOK); err != nil {
		return err
	}
	if got.JSON200 == nil || got.JSON200.Profile == nil {
		return fmt.Errorf("GET profile: no typed profile: %s", got.Body)
	}
	c = &check{step: "GET profile"}
	c.equal("Cache-Control", got.HTTPResponse.Header.Get("Cache-Control"), "no-store")
	c.equal("profile_complete", got.JSON200.ProfileComplete, true)
	c.equal("profile.python_proficiency", got.JSON200.Profile.PythonProficiency, lanyardclient.PythonProficiencyIntermediate)
	c.equal("profile.developer_role", got.JSON200.Profile.DeveloperRole, lanyardclient.DeveloperRoleRoboticsEngineer)
	c.ok("profile.completed_at unchanged",
		got.JSON200.Profile.CompletedAt != nil && got.JSON200.Profile.CompletedAt.Equal(completedAt))
	if err := c.err(); err != nil {
		return err
	}

	// 5. Refresh: a new pair with the current claims.
	refreshed, err := client.RefreshSessionWithResponse(ctx, nil, lanyardclient.RefreshRequest{RefreshToken: session.RefreshToken})
	if err != nil {
		return fmt.Errorf("refresh: %w", err)
	}
	if err := status("refresh", refreshed.HTTPResponse, refreshed.Body, http.StatusOK); err != nil {
		return err
	}
	rs := refreshed.JSON200
	if rs == nil {
		return fmt.Errorf("refresh: no typed 200 body")
	}
	c = &check{step: "refresh"}
	c.equal("Cache-Control", refreshed.HTTPResponse.Header.Get("Cache-Control"), "no-store")
	c.ok("the refresh token rotated", rs.RefreshToken != nil && *rs.RefreshToken != "" && *rs.RefreshToken != *session.RefreshToken)
	c.equal("user.id", rs.User.Id, userID)
	c.equal("user.profile_complete", rs.User.ProfileComplete, true)
	refreshedClaims, err := claims(rs.AccessToken)
	if err != nil {
		return fmt.Errorf("refresh: %w", err)
	}
	c.equal("token claim profile_complete", refreshedClaims["profile_complete"], true)
	c.equal("token claim sid (same session)", refreshedClaims["sid"], signupClaims["sid"])
	if err := c.err(); err != nil {
		return err
	}

	// 6. GET /v1/me with the refreshed token: onboarded.
	me2, err := client.GetMeWithResponse(ctx, bearer(rs.AccessToken))
	if err != nil {
		return fmt.Errorf("me (after): %w", err)
	}
	if err := status("me (after)", me2.HTTPResponse, me2.Body, http.StatusOK); err != nil {
		return err
	}
	if me2.JSON200 == nil || me2.JSON200.Profile == nil {
		return fmt.Errorf("me (after): no typed profile: %s", me2.Body)
	}
	c = &check{step: "me (after)"}
	c.equal("id", me2.JSON200.Id, userID)
	c.equal("profile_complete", me2.JSON200.ProfileComplete, true)
	c.equal("profile.python_proficiency", me2.JSON200.Profile.PythonProficiency, lanyardclient.PythonProficiencyIntermediate)
	c.equal("profile.developer_role", me2.JSON200.Profile.DeveloperRole, lanyardclient.DeveloperRoleRoboticsEngineer)
	c.ok("profile.completed_at unchanged",
		me2.JSON200.Profile.CompletedAt != nil && me2.JSON200.Profile.CompletedAt.Equal(completedAt))
	if err := c.err(); err != nil {
		return err
	}

	fmt.Println("flow (go): ok, user", userID)
	return nil
}
