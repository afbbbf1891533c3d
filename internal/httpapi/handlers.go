package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lanyard-id/lanyard/api"
	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/keys"
)

// handlers implements api.StrictServerInterface. Failures are returned as
// errors and rendered by writeProblem, so status codes live in one table.
type handlers struct{ s *Server }

var _ api.StrictServerInterface = (*handlers)(nil)

// readinessQueryTimeout bounds readiness's database query, so /readyz
// answers within 1 s (the contract) with room for the rest of the request
// and for the store's cancellation of a query the server does not answer
// (store.cancelGrace, 250 ms).
const readinessQueryTimeout = 600 * time.Millisecond

func (h *handlers) SignUp(ctx context.Context, req api.SignUpRequestObject) (api.SignUpResponseObject, error) {
	sc := scopeOf(ctx)
	tokens, err := h.s.deps.Service.SignUp(sc.work, identity.SignUpInput{
		Email: req.Body.Email, Password: req.Body.Password, Name: req.Body.Name,
	}, sc.client)
	if err != nil {
		return nil, err
	}
	if tokens.VerificationPending {
		return api.SignUp202JSONResponse(mailAccepted), nil
	}
	return api.SignUp201JSONResponse{TokenIssuedJSONResponse: sc.deliver(tokens)}, nil
}

func (h *handlers) LogIn(ctx context.Context, req api.LogInRequestObject) (api.LogInResponseObject, error) {
	sc := scopeOf(ctx)
	tokens, err := h.s.deps.Service.LogIn(sc.work, req.Body.Email, req.Body.Password, sc.client)
	h.s.metrics.logins.WithLabelValues(result(err)).Inc()
	if err != nil {
		return nil, err
	}
	return api.LogIn200JSONResponse{TokenIssuedJSONResponse: sc.deliver(tokens)}, nil
}

func (h *handlers) RefreshSession(ctx context.Context, req api.RefreshSessionRequestObject) (api.RefreshSessionResponseObject, error) {
	sc := scopeOf(ctx)
	var inBody *string
	if req.Body != nil {
		inBody = req.Body.RefreshToken
	}
	token, fromCookie, err := sc.presentedRefreshToken(inBody, req.Params.UnderscoreUnderscoreHostLanyardRefresh)
	switch {
	case err != nil:
		return nil, err
	case token == "" && sc.cookieMode:
		return nil, &identity.Error{Code: identity.CodeInvalidRefreshToken, Message: "no refresh cookie: sign in again"}
	case token == "":
		return nil, missingRefreshToken
	}
	tokens, err := h.s.deps.Service.Refresh(sc.work, token, sc.client)
	h.s.metrics.refresh.WithLabelValues(result(err)).Inc()
	if err != nil {
		if fromCookie && statusByCode[identity.ErrorCode(err)] == http.StatusUnauthorized {
			sc.clearRefreshCookieOnError() // it will never work again
		}
		return nil, err
	}
	return api.RefreshSession200JSONResponse{TokenIssuedJSONResponse: sc.deliver(tokens)}, nil
}

// LogOut ends the session of the presented token. In cookie mode it clears
// the cookie, also when there was none (logout is idempotent), but not when
// the logout failed: the client must be able to retry it.
func (h *handlers) LogOut(ctx context.Context, req api.LogOutRequestObject) (api.LogOutResponseObject, error) {
	sc := scopeOf(ctx)
	var inBody *string
	if req.Body != nil {
		inBody = req.Body.RefreshToken
	}
	token, _, err := sc.presentedRefreshToken(inBody, req.Params.UnderscoreUnderscoreHostLanyardRefresh)
	switch {
	case err != nil:
		return nil, err
	case token == "" && !sc.cookieMode:
		return nil, missingRefreshToken
	case token != "":
		if err := h.s.deps.Service.LogOut(sc.work, token, sc.client); err != nil {
			return nil, err
		}
	}
	if sc.cookieMode {
		return api.LogOut204Response{Headers: api.LogOut204ResponseHeaders{SetCookie: &clearCookie}}, nil
	}
	return api.LogOut204Response{}, nil
}

func (h *handlers) GetMe(ctx context.Context, _ api.GetMeRequestObject) (api.GetMeResponseObject, error) {
	sc := scopeOf(ctx)
	user, err := h.s.deps.Service.Me(sc.work, sc.claims)
	if err != nil {
		return nil, err
	}
	return api.GetMe200JSONResponse{
		Headers: api.GetMe200ResponseHeaders{CacheControl: "no-store"}, // personal data
		Body:    userResponse(user),
	}, nil
}

// GetJWKS is never called: Server.Handler answers every GET and HEAD of the
// JWKS before gin. If a request ever got here it would be a bug, reported as
// one rather than answered from a second, untested path.
func (h *handlers) GetJWKS(context.Context, api.GetJWKSRequestObject) (api.GetJWKSResponseObject, error) {
	return nil, errors.New("the JWKS reached gin: Server.Handler answers it")
}

// etagMatches applies If-None-Match (RFC 9110 §13.1.2: weak comparison, a
// list of tags, or "*").
func etagMatches(ifNoneMatch, etag string) bool {
	for _, tag := range strings.Split(ifNoneMatch, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == "*" || tag == etag {
			return true
		}
	}
	return false
}

func (h *handlers) GetOpenIDConfiguration(context.Context, api.GetOpenIDConfigurationRequestObject) (api.GetOpenIDConfigurationResponseObject, error) {
	body, err := h.s.discovery.document(h.s.deps.Keys.Ring())
	if err != nil {
		return nil, err
	}
	return discoveryResponse(body), nil
}

func (h *handlers) GetHealth(context.Context, api.GetHealthRequestObject) (api.GetHealthResponseObject, error) {
	return api.GetHealth200JSONResponse{Status: "ok"}, nil
}

// GetReadiness runs a real query through the pool under a deadline, so an
// exhausted pool or a frozen database reads as not ready within the bound.
// The public listener serves it, so the answer says only "not ready"; why
// is for the log.
func (h *handlers) GetReadiness(ctx context.Context, _ api.GetReadinessRequestObject) (api.GetReadinessResponseObject, error) {
	notReady := &identity.Error{Code: identity.CodeUnavailable, Message: "not ready"}
	if !h.s.ready.Load() {
		return nil, fmt.Errorf("starting or shutting down: %w", notReady)
	}
	pingCtx, cancel := context.WithTimeout(scopeOf(ctx).work, readinessQueryTimeout)
	defer cancel()
	if err := h.s.deps.DB.Ping(pingCtx); err != nil {
		// Both wrapped: the problem for the client, the cause for the log.
		return nil, fmt.Errorf("readiness query: %w: %w", err, notReady)
	}
	return api.GetReadiness200JSONResponse{Status: "ok"}, nil
}

func (h *handlers) GetMetrics(ctx context.Context, _ api.GetMetricsRequestObject) (api.GetMetricsResponseObject, error) {
	return metricsResponse{handler: promhttp.HandlerFor(h.s.metrics.registry, promhttp.HandlerOpts{}), req: scopeOf(ctx).request}, nil
}

// result labels an outcome for the login and refresh counters.
func result(err error) string {
	if err == nil {
		return "success"
	}
	return string(identity.ErrorCode(err))
}

func tokenResponse(t identity.Tokens) api.TokenIssuedJSONResponse {
	return api.TokenIssuedJSONResponse{
		Headers: api.TokenIssuedResponseHeaders{CacheControl: "no-store"},
		Body: api.TokenResponse{
			AccessToken:      t.AccessToken,
			TokenType:        api.TokenResponseTokenTypeBearer,
			ExpiresIn:        int(t.ExpiresIn.Seconds()),
			RefreshToken:     &t.RefreshToken,
			RefreshExpiresIn: int(t.RefreshExpiresIn.Seconds()),
			User:             userResponse(t.User),
		},
	}
}

func userResponse(u identity.User) api.User {
	out := api.User{
		Id:              u.ID,
		Email:           u.Email,
		Name:            u.Name,
		CreatedAt:       u.CreatedAt,
		EmailVerified:   u.EmailVerified,
		ProfileComplete: u.ProfileComplete(),
	}
	out.Profile = profileResponse(u.Profile)
	return out
}

// Custom response objects: the discovery bytes are prepared once, not
// marshalled per request, and metrics go through promhttp for its content
// negotiation.

// Header values shared by every JWKS response (never modified).
var (
	jwksContentType  = []string{"application/json"}
	jwksCacheControl = []string{"public, max-age=300"}
	anyOrigin        = []string{"*"}
)

// writeJWKS answers a JWKS request from the ring's prepared bytes: 304 when
// If-None-Match names the current tag. allowOrigin is the CORS header, nil
// for none. It reports the status written.
func writeJWKS(w http.ResponseWriter, ring *keys.Ring, ifNoneMatch string, allowOrigin []string) (int, error) {
	h := w.Header()
	h["Etag"] = []string{ring.JWKSETag()}
	h["Cache-Control"] = jwksCacheControl
	if allowOrigin != nil {
		h["Access-Control-Allow-Origin"] = allowOrigin
	}
	if ifNoneMatch != "" && etagMatches(ifNoneMatch, ring.JWKSETag()) {
		w.WriteHeader(http.StatusNotModified)
		return http.StatusNotModified, nil
	}
	h["Content-Type"] = jwksContentType
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(ring.JWKS())
	return http.StatusOK, err
}

type discoveryResponse []byte

func (b discoveryResponse) VisitGetOpenIDConfigurationResponse(w http.ResponseWriter) error {
	return writePrepared(w, b)
}

func writePrepared(w http.ResponseWriter, body []byte) error {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(body)
	return err
}

type metricsResponse struct {
	handler http.Handler
	req     *http.Request
}

func (m metricsResponse) VisitGetMetricsResponse(w http.ResponseWriter) error {
	m.handler.ServeHTTP(w, m.req)
	return nil
}

func (h *handlers) GetProfile(ctx context.Context, _ api.GetProfileRequestObject) (api.GetProfileResponseObject, error) {
	sc := scopeOf(ctx)
	user, err := h.s.deps.Service.Me(sc.work, sc.claims)
	if err != nil {
		return nil, err
	}
	return api.GetProfile200JSONResponse{
		Headers: api.GetProfile200ResponseHeaders{CacheControl: "no-store"},
		Body:    api.ProfileState{Profile: profileResponse(user.Profile), ProfileComplete: user.ProfileComplete()},
	}, nil
}

func (h *handlers) PutProfile(ctx context.Context, req api.PutProfileRequestObject) (api.PutProfileResponseObject, error) {
	sc := scopeOf(ctx)
	update, err := h.s.deps.Service.UpdateProfile(sc.work, sc.claims, identity.Profile{
		PythonProficiency: string(req.Body.PythonProficiency),
		DeveloperRole:     string(req.Body.DeveloperRole),
	})
	if err != nil {
		return nil, err
	}
	return api.PutProfile200JSONResponse{
		Headers: api.PutProfile200ResponseHeaders{CacheControl: "no-store"},
		Body: api.ProfileUpdated{
			Profile:     *profileResponse(&update.Profile),
			AccessToken: update.AccessToken,
			TokenType:   api.ProfileUpdatedTokenTypeBearer,
			ExpiresIn:   int(update.ExpiresIn.Seconds()),
		},
	}, nil
}

// profileResponse renders a complete profile; nil until onboarding is done.
func profileResponse(p *identity.Profile) *api.Profile {
	if p == nil || !p.Complete() {
		return nil
	}
	return &api.Profile{
		PythonProficiency: api.PythonProficiency(p.PythonProficiency),
		DeveloperRole:     api.DeveloperRole(p.DeveloperRole),
		CompletedAt:       p.CompletedAt,
	}
}

func (h *handlers) ListSessions(ctx context.Context, _ api.ListSessionsRequestObject) (api.ListSessionsResponseObject, error) {
	sc := scopeOf(ctx)
	sessions, err := h.s.deps.Service.ListSessions(sc.work, sc.claims)
	if err != nil {
		return nil, err
	}
	out := make([]api.Session, len(sessions))
	for i, s := range sessions {
		out[i] = api.Session{
			Id: uuid.MustParse(s.ID), CreatedAt: s.CreatedAt, LastUsedAt: s.LastUsedAt,
			UserAgent: s.UserAgent, Ip: s.IP, Current: s.Current,
		}
	}
	return api.ListSessions200JSONResponse{
		Headers: api.ListSessions200ResponseHeaders{CacheControl: "no-store"},
		Body:    api.SessionList{Sessions: out},
	}, nil
}

func (h *handlers) EndSession(ctx context.Context, req api.EndSessionRequestObject) (api.EndSessionResponseObject, error) {
	sc := scopeOf(ctx)
	if err := h.s.deps.Service.EndSession(sc.work, sc.claims, sc.client, req.Id.String()); err != nil {
		return nil, err
	}
	return api.EndSession204Response{}, nil
}

func (h *handlers) EndOtherSessions(ctx context.Context, _ api.EndOtherSessionsRequestObject) (api.EndOtherSessionsResponseObject, error) {
	sc := scopeOf(ctx)
	if err := h.s.deps.Service.EndOtherSessions(sc.work, sc.claims, sc.client); err != nil {
		return nil, err
	}
	return api.EndOtherSessions204Response{}, nil
}

func (h *handlers) ChangePassword(ctx context.Context, req api.ChangePasswordRequestObject) (api.ChangePasswordResponseObject, error) {
	sc := scopeOf(ctx)
	tokens, err := h.s.deps.Service.ChangePassword(sc.work, sc.claims, sc.client, req.Body.CurrentPassword, req.Body.NewPassword)
	if err != nil {
		return nil, err
	}
	return api.ChangePassword200JSONResponse{TokenIssuedJSONResponse: sc.deliver(tokens)}, nil
}

func (h *handlers) ExchangeBetterAuthSession(ctx context.Context, req api.ExchangeBetterAuthSessionRequestObject) (api.ExchangeBetterAuthSessionResponseObject, error) {
	sc := scopeOf(ctx)
	tokens, err := h.s.deps.Service.ExchangeBetterAuth(sc.work, req.Body.Token, sc.client)
	if err != nil {
		return nil, err
	}
	return api.ExchangeBetterAuthSession200JSONResponse{TokenIssuedJSONResponse: sc.deliver(tokens)}, nil
}
