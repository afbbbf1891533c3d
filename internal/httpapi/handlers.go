package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
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

// ginContext recovers the gin context the generated strict server passes as ctx.
func ginContext(ctx context.Context) *gin.Context {
	c, _ := ctx.(*gin.Context)
	return c
}

// requestContext is the context to hand to use cases. Never the *gin.Context
// itself: gin recycles it for the next request, while database/sql may still
// watch a context after the query returns (a data race the race detector found).
func requestContext(ctx context.Context) context.Context {
	return ginContext(ctx).Request.Context()
}

func client(ctx context.Context) identity.Client {
	c := ginContext(ctx)
	return identity.Client{UserAgent: c.Request.UserAgent(), IP: c.ClientIP()}
}

func (h *handlers) SignUp(ctx context.Context, req api.SignUpRequestObject) (api.SignUpResponseObject, error) {
	tokens, err := h.s.deps.Service.SignUp(requestContext(ctx), identity.SignUpInput{
		Email: req.Body.Email, Password: req.Body.Password, Name: req.Body.Name,
	}, client(ctx))
	if err != nil {
		return nil, err
	}
	return api.SignUp201JSONResponse{TokenIssuedJSONResponse: tokenResponse(tokens)}, nil
}

func (h *handlers) LogIn(ctx context.Context, req api.LogInRequestObject) (api.LogInResponseObject, error) {
	tokens, err := h.s.deps.Service.LogIn(requestContext(ctx), req.Body.Email, req.Body.Password, client(ctx))
	h.s.metrics.logins.WithLabelValues(result(err)).Inc()
	if err != nil {
		return nil, err
	}
	return api.LogIn200JSONResponse{TokenIssuedJSONResponse: tokenResponse(tokens)}, nil
}

func (h *handlers) RefreshSession(ctx context.Context, req api.RefreshSessionRequestObject) (api.RefreshSessionResponseObject, error) {
	tokens, err := h.s.deps.Service.Refresh(requestContext(ctx), req.Body.RefreshToken)
	h.s.metrics.refresh.WithLabelValues(result(err)).Inc()
	if err != nil {
		return nil, err
	}
	return api.RefreshSession200JSONResponse{TokenIssuedJSONResponse: tokenResponse(tokens)}, nil
}

func (h *handlers) LogOut(ctx context.Context, req api.LogOutRequestObject) (api.LogOutResponseObject, error) {
	if err := h.s.deps.Service.LogOut(requestContext(ctx), req.Body.RefreshToken); err != nil {
		return nil, err
	}
	return api.LogOut204Response{}, nil
}

func (h *handlers) GetMe(ctx context.Context, _ api.GetMeRequestObject) (api.GetMeResponseObject, error) {
	user, err := h.s.deps.Service.Me(requestContext(ctx), claimsFrom(ctx))
	if err != nil {
		return nil, err
	}
	ginContext(ctx).Header("Cache-Control", "no-store") // personal data
	return api.GetMe200JSONResponse(userResponse(user)), nil
}

// GetJWKS is normally answered by Server.Handler's fast path before gin; this
// serves the same bytes if a request reaches the engine some other way.
func (h *handlers) GetJWKS(ctx context.Context, _ api.GetJWKSRequestObject) (api.GetJWKSResponseObject, error) {
	return jwksResponse{ring: h.s.deps.Keys.Ring(), ifNoneMatch: ginContext(ctx).GetHeader("If-None-Match")}, nil
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

func (h *handlers) GetReadiness(ctx context.Context, _ api.GetReadinessRequestObject) (api.GetReadinessResponseObject, error) {
	if !h.s.ready.Load() {
		return nil, &identity.Error{Code: identity.CodeUnavailable, Message: "not ready: starting or shutting down"}
	}
	if err := h.s.deps.DB.Ping(requestContext(ctx)); err != nil {
		ginContext(ctx).Error(err) //nolint:errcheck // logged, not shown
		return nil, &identity.Error{Code: identity.CodeUnavailable, Message: "not ready: the database does not answer"}
	}
	return api.GetReadiness200JSONResponse{Status: "ok"}, nil
}

func (h *handlers) GetMetrics(ctx context.Context, _ api.GetMetricsRequestObject) (api.GetMetricsResponseObject, error) {
	return metricsResponse{handler: promhttp.HandlerFor(h.s.metrics.registry, promhttp.HandlerOpts{}), req: ginContext(ctx).Request}, nil
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
			RefreshToken:     t.RefreshToken,
			RefreshExpiresIn: int(t.RefreshExpiresIn.Seconds()),
			User:             userResponse(t.User),
		},
	}
}

func userResponse(u identity.User) api.User {
	out := api.User{
		Id:              uuid.MustParse(u.ID),
		Email:           u.Email,
		Name:            u.Name,
		CreatedAt:       u.CreatedAt,
		ProfileComplete: u.ProfileComplete(),
	}
	out.Profile = profileResponse(u.Profile)
	return out
}

const claimsKey = "lanyard.claims"

// requireBearer authenticates the operations whose spec requires a bearer
// token and leaves the claims on the context.
func (s *Server) requireBearer(c *gin.Context) {
	if !s.bearer[routeOf(c)] {
		return
	}
	scheme, token, ok := strings.Cut(c.GetHeader("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		fail(c, identity.CodeUnauthorized, "a valid access token is required")
		return
	}
	claims, err := s.deps.Service.AuthenticateSession(c.Request.Context(), strings.TrimSpace(token))
	if err != nil {
		writeProblem(c, err)
		return
	}
	c.Set(claimsKey, claims)
}

func claimsFrom(ctx context.Context) identity.AccessClaims {
	v, _ := ginContext(ctx).Get(claimsKey)
	claims, _ := v.(identity.AccessClaims)
	return claims
}

// Custom response objects: the JWKS and discovery bytes are prepared once,
// not marshalled per request, and metrics go through promhttp for its
// content negotiation.

type jwksResponse struct {
	ring        *keys.Ring
	ifNoneMatch string
}

func (j jwksResponse) VisitGetJWKSResponse(w http.ResponseWriter) error {
	_, err := writeJWKS(w, j.ring, j.ifNoneMatch)
	return err
}

// Header values shared by every JWKS response (never modified).
var (
	jwksContentType  = []string{"application/json"}
	jwksCacheControl = []string{"public, max-age=300"}
	anyOrigin        = []string{"*"}
)

// writeJWKS answers a JWKS request from the ring's prepared bytes: 304 when
// If-None-Match names the current tag. It reports the status written.
func writeJWKS(w http.ResponseWriter, ring *keys.Ring, ifNoneMatch string) (int, error) {
	h := w.Header()
	h["Etag"] = []string{ring.JWKSETag()}
	h["Cache-Control"] = jwksCacheControl
	h["Access-Control-Allow-Origin"] = anyOrigin
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
	user, err := h.s.deps.Service.Me(requestContext(ctx), claimsFrom(ctx))
	if err != nil {
		return nil, err
	}
	return api.GetProfile200JSONResponse{
		Headers: api.GetProfile200ResponseHeaders{CacheControl: "no-store"},
		Body:    api.ProfileState{Profile: profileResponse(user.Profile), ProfileComplete: user.ProfileComplete()},
	}, nil
}

func (h *handlers) PutProfile(ctx context.Context, req api.PutProfileRequestObject) (api.PutProfileResponseObject, error) {
	update, err := h.s.deps.Service.UpdateProfile(requestContext(ctx), claimsFrom(ctx), identity.Profile{
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
	sessions, err := h.s.deps.Service.ListSessions(requestContext(ctx), claimsFrom(ctx))
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
	if err := h.s.deps.Service.EndSession(requestContext(ctx), claimsFrom(ctx), req.Id.String()); err != nil {
		return nil, err
	}
	return api.EndSession204Response{}, nil
}

func (h *handlers) EndOtherSessions(ctx context.Context, _ api.EndOtherSessionsRequestObject) (api.EndOtherSessionsResponseObject, error) {
	if err := h.s.deps.Service.EndOtherSessions(requestContext(ctx), claimsFrom(ctx)); err != nil {
		return nil, err
	}
	return api.EndOtherSessions204Response{}, nil
}

func (h *handlers) ChangePassword(ctx context.Context, req api.ChangePasswordRequestObject) (api.ChangePasswordResponseObject, error) {
	if err := h.s.deps.Service.ChangePassword(requestContext(ctx), claimsFrom(ctx), req.Body.CurrentPassword, req.Body.NewPassword); err != nil {
		return nil, err
	}
	return api.ChangePassword204Response{}, nil
}
