package httpapi

import (
	"context"

	"github.com/lanyard-id/lanyard/api"
)

// The email flows (identity/mail.go). Every "a mail is on its way" answer
// has the same body, whether or not a mail was sent.

var mailAccepted = api.MailAcceptedJSONResponse{Status: api.AcceptedStatusAccepted, Message: "if an account can receive it, a mail is on its way"}

func (h *handlers) VerifyEmail(ctx context.Context, req api.VerifyEmailRequestObject) (api.VerifyEmailResponseObject, error) {
	if err := h.s.deps.Service.VerifyEmail(scopeOf(ctx).work, req.Body.Token, scopeOf(ctx).client); err != nil {
		return nil, err
	}
	return api.VerifyEmail204Response{}, nil
}

func (h *handlers) ConfirmEmailChange(ctx context.Context, req api.ConfirmEmailChangeRequestObject) (api.ConfirmEmailChangeResponseObject, error) {
	if err := h.s.deps.Service.ConfirmEmailChange(scopeOf(ctx).work, req.Body.Token, scopeOf(ctx).client); err != nil {
		return nil, err
	}
	return api.ConfirmEmailChange204Response{}, nil
}

func (h *handlers) ForgotPassword(ctx context.Context, req api.ForgotPasswordRequestObject) (api.ForgotPasswordResponseObject, error) {
	sc := scopeOf(ctx)
	if err := h.s.deps.Service.ForgotPassword(sc.work, req.Body.Email, sc.client); err != nil {
		return nil, err
	}
	return api.ForgotPassword202JSONResponse{MailAcceptedJSONResponse: mailAccepted}, nil
}

func (h *handlers) ResetPassword(ctx context.Context, req api.ResetPasswordRequestObject) (api.ResetPasswordResponseObject, error) {
	sc := scopeOf(ctx)
	if err := h.s.deps.Service.ResetPassword(sc.work, req.Body.Token, req.Body.NewPassword, sc.client); err != nil {
		return nil, err
	}
	return api.ResetPassword204Response{}, nil
}

func (h *handlers) RequestEmailChange(ctx context.Context, req api.RequestEmailChangeRequestObject) (api.RequestEmailChangeResponseObject, error) {
	sc := scopeOf(ctx)
	if err := h.s.deps.Service.RequestEmailChange(sc.work, sc.claims, sc.client, req.Body.NewEmail, req.Body.CurrentPassword); err != nil {
		return nil, err
	}
	return api.RequestEmailChange202JSONResponse{MailAcceptedJSONResponse: mailAccepted}, nil
}

func (h *handlers) ResendVerification(ctx context.Context, _ api.ResendVerificationRequestObject) (api.ResendVerificationResponseObject, error) {
	sc := scopeOf(ctx)
	if err := h.s.deps.Service.ResendVerification(sc.work, sc.claims, sc.client); err != nil {
		return nil, err
	}
	return api.ResendVerification202JSONResponse{MailAcceptedJSONResponse: mailAccepted}, nil
}
