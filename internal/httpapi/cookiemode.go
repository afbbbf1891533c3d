package httpapi

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lanyard-id/lanyard/api"
	"github.com/lanyard-id/lanyard/internal/identity"
)

// Cookie mode (RFC 10017, OAuth 2.0 for Browser-Based Applications: the
// token-mediating profile): a browser app asks, with the
// Lanyard-Token-Delivery header, to have its refresh token kept in an
// HttpOnly cookie that page script cannot read, while the short-lived
// access token stays in the JSON body for the app to hold in memory.
//
// CSRF: a cookie is sent by the browser whoever made the page, so a request
// the cookie authenticates must prove it comes from the app. It must carry
// the custom header (which no cross-site form can send and which makes a
// cross-site fetch preflight, failed for origins not on the list) and an
// Origin on LANYARD_CORS_ORIGINS. SameSite=Strict keeps the cookie off
// cross-site requests as a second, independent line.

const (
	tokenDeliveryHeader = "Lanyard-Token-Delivery"
	refreshCookieName   = "__Host-lanyard-refresh"
)

var errCookieWithoutHeader = &identity.Error{Code: codeCSRFRejected,
	Message: "a request authenticated by the refresh cookie needs the Lanyard-Token-Delivery: cookie header from an allowed origin"}

// tokenDelivery lets a cookie-mode request through only from an allowed
// origin, before anything else is done with it. Header values other than
// "cookie" are left to the spec validator (body, the default, or a 400).
func (s *Server) tokenDelivery(c *gin.Context) {
	if op := s.op(c); op == nil || !op.tokenDelivery || c.GetHeader(tokenDeliveryHeader) != "cookie" {
		return
	}
	if !s.originAllowed(c.GetHeader("Origin")) {
		s.fail(c, codeCSRFRejected, "cookie-mode requests must come from an origin in LANYARD_CORS_ORIGINS")
		return
	}
	scopeOf(c.Request.Context()).cookieMode = true
}

// refreshCookie is the Set-Cookie value carrying token for maxAge; a zero
// maxAge clears the cookie. The __Host- prefix makes browsers insist on
// Secure, Path=/ and no Domain, so no sibling subdomain can plant or
// overwrite it.
func refreshCookie(token string, maxAge time.Duration) string {
	c := http.Cookie{
		Name: refreshCookieName, Value: token, Path: "/",
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		MaxAge: int(maxAge / time.Second),
	}
	if maxAge <= 0 {
		c.MaxAge = -1 // written as Max-Age=0: delete now
	}
	return c.String()
}

// deliver renders a token response: in cookie mode the refresh token goes
// into the cookie, for the rest of the session's absolute lifetime, and
// not into the body.
func (sc *scope) deliver(t identity.Tokens) api.TokenIssuedJSONResponse {
	resp := tokenResponse(t)
	if sc.cookieMode {
		cookie := refreshCookie(t.RefreshToken, t.SessionExpiresIn)
		resp.Headers.SetCookie = &cookie
		resp.Body.RefreshToken = nil
	}
	return resp
}

// clearCookie tells the browser to drop the refresh cookie.
var clearCookie = refreshCookie("", 0)

// clearRefreshCookieOnError clears the cookie on an error answer, which
// has no typed response headers.
func (sc *scope) clearRefreshCookieOnError() { sc.header.Add("Set-Cookie", clearCookie) }

// presentedRefreshToken is the token a refresh or logout acts on: the
// body's, else the cookie's. The cookie counts only in cookie mode: a
// request it would authenticate without the header and an allowed origin
// is refused (403 csrf_rejected), whatever else it carries. An empty token
// means neither was sent.
func (sc *scope) presentedRefreshToken(body, cookie *string) (token string, fromCookie bool, err error) {
	switch {
	case body != nil && *body != "":
		return *body, false, nil
	case cookie == nil || *cookie == "":
		return "", false, nil
	case !sc.cookieMode:
		return "", false, errCookieWithoutHeader
	}
	return *cookie, true, nil
}

// missingRefreshToken is the answer to a body-mode refresh or logout that
// sent no token at all.
var missingRefreshToken = &identity.Error{Code: identity.CodeValidation, Message: "the request is invalid",
	Fields: []identity.FieldError{{Field: "refresh_token", Message: "is required (in cookie mode the __Host-lanyard-refresh cookie carries it)"}}}
