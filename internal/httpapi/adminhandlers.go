package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"

	"github.com/gin-gonic/gin"

	"github.com/lanyard-id/lanyard/api"
	"github.com/lanyard-id/lanyard/internal/identity"
)

// The admin API: operations whose security names the admin token
// (`x-lanyard-credential: admin-token`), served on the admin listener only.

// requireAdminToken authenticates an admin-token operation before anything
// else about the request is read (with no LANYARD_ADMIN_TOKEN the API is
// off: listenerRoutes registers none of its routes, so its paths answer as
// unknown ones do); a missing or wrong token gets one 401 for every path
// and id. The tokens are compared as SHA-256
// digests in constant time, so neither their bytes nor their length leak
// through timing.
func (s *Server) requireAdminToken(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	token, ok := bearerToken(c)
	got := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(s.adminDigest, got[:]) != 1 || !ok {
		s.fail(c, identity.CodeUnauthorized, "a valid admin token is required")
	}
}

// byAdmin is the audit identity of an admin API call.
func byAdmin(ctx context.Context) identity.Admin {
	sc := scopeOf(ctx)
	return identity.Admin{Via: "api", IP: sc.client.IP, UserAgent: sc.client.UserAgent}
}

func adminUserResponse(u identity.User) api.AdminUser {
	p := userResponse(u)
	return api.AdminUser{
		Id: p.Id, Email: p.Email, Name: p.Name, CreatedAt: p.CreatedAt, EmailVerified: p.EmailVerified,
		ProfileComplete: p.ProfileComplete, Profile: p.Profile,
		Disabled: u.DisabledAt != nil, DisabledAt: u.DisabledAt,
	}
}

// AdminUserList is the admin API's shape of a page of users (`lanyard
// users list --json` prints the same).
func AdminUserList(page identity.UserPage) api.AdminUserList {
	out := api.AdminUserList{Users: make([]api.AdminUser, len(page.Users)), NextCursor: cursorResponse(page.NextCursor)}
	for i, u := range page.Users {
		out.Users[i] = adminUserResponse(u)
	}
	return out
}

// AdminUserDetail is the admin API's shape of one user with its activity.
func AdminUserDetail(u identity.AdminUser) api.AdminUserDetail {
	a := adminUserResponse(u.User)
	return api.AdminUserDetail{
		Id: a.Id, Email: a.Email, Name: a.Name, CreatedAt: a.CreatedAt, EmailVerified: a.EmailVerified,
		ProfileComplete: a.ProfileComplete, Profile: a.Profile, Disabled: a.Disabled, DisabledAt: a.DisabledAt,
		LiveSessions: u.LiveSessions, LastLoginAt: u.LastLoginAt,
	}
}

// AuditEventList is the admin API's shape of a page of audit events.
func AuditEventList(page identity.AuditPage) api.AuditEventList {
	out := api.AuditEventList{Events: make([]api.AuditEvent, len(page.Events)), NextCursor: cursorResponse(page.NextCursor)}
	for i, e := range page.Events {
		out.Events[i] = api.AuditEvent{Id: e.ID, At: e.At, Type: e.Type, UserId: cursorResponse(e.UserID), Actor: api.AuditEventActor(e.Actor),
			Ip: e.IP, UserAgent: e.UserAgent, Details: orEmpty(e.Details)}
	}
	return out
}

// orEmpty is details as the API shows them: {} rather than null.
func orEmpty(details map[string]string) map[string]string {
	if details == nil {
		return map[string]string{}
	}
	return details
}

// cursorResponse is an optional string: nil when empty.
func cursorResponse(c string) *string {
	if c == "" {
		return nil
	}
	return &c
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func (h *handlers) AdminListUsers(ctx context.Context, req api.AdminListUsersRequestObject) (api.AdminListUsersResponseObject, error) {
	p := req.Params
	page, err := h.s.deps.Service.AdminListUsers(scopeOf(ctx).work, deref(p.EmailPrefix), deref(p.Cursor), deref(p.Limit))
	if err != nil {
		return nil, err
	}
	return api.AdminListUsers200JSONResponse(AdminUserList(page)), nil
}

func (h *handlers) AdminGetUser(ctx context.Context, req api.AdminGetUserRequestObject) (api.AdminGetUserResponseObject, error) {
	u, err := h.s.deps.Service.AdminGetUser(scopeOf(ctx).work, byAdmin(ctx), req.Id)
	if err != nil {
		return nil, err
	}
	return api.AdminGetUser200JSONResponse(AdminUserDetail(u)), nil
}

func (h *handlers) AdminDisableUser(ctx context.Context, req api.AdminDisableUserRequestObject) (api.AdminDisableUserResponseObject, error) {
	if err := h.s.deps.Service.AdminDisableUser(scopeOf(ctx).work, byAdmin(ctx), req.Id); err != nil {
		return nil, err
	}
	return api.AdminDisableUser204Response{}, nil
}

func (h *handlers) AdminEnableUser(ctx context.Context, req api.AdminEnableUserRequestObject) (api.AdminEnableUserResponseObject, error) {
	if err := h.s.deps.Service.AdminEnableUser(scopeOf(ctx).work, byAdmin(ctx), req.Id); err != nil {
		return nil, err
	}
	return api.AdminEnableUser204Response{}, nil
}

func (h *handlers) AdminEndUserSessions(ctx context.Context, req api.AdminEndUserSessionsRequestObject) (api.AdminEndUserSessionsResponseObject, error) {
	if err := h.s.deps.Service.AdminEndSessions(scopeOf(ctx).work, byAdmin(ctx), req.Id); err != nil {
		return nil, err
	}
	return api.AdminEndUserSessions204Response{}, nil
}

func (h *handlers) AdminDeleteUser(ctx context.Context, req api.AdminDeleteUserRequestObject) (api.AdminDeleteUserResponseObject, error) {
	if err := h.s.deps.Service.AdminDeleteUser(scopeOf(ctx).work, byAdmin(ctx), req.Id); err != nil {
		return nil, err
	}
	return api.AdminDeleteUser204Response{}, nil
}

func (h *handlers) AdminListAudit(ctx context.Context, req api.AdminListAuditRequestObject) (api.AdminListAuditResponseObject, error) {
	p := req.Params
	page, err := h.s.deps.Service.AdminAudit(scopeOf(ctx).work, deref(p.UserId), deref(p.Type), deref(p.Cursor), deref(p.Limit))
	if err != nil {
		return nil, err
	}
	return api.AdminListAudit200JSONResponse(AuditEventList(page)), nil
}
