package identity

import (
	"errors"
	"fmt"
)

// Code is a stable, snake_case error code that clients may branch on. The HTTP
// layer maps each code to a status in one table.
type Code string

const (
	CodeValidation          Code = "validation_failed"
	CodeInvalidCredentials  Code = "invalid_credentials"
	CodeEmailTaken          Code = "email_taken"
	CodeInvalidRefreshToken Code = "invalid_refresh_token"
	CodeRefreshTokenReused  Code = "refresh_token_reused"
	CodeSessionExpired      Code = "session_expired"
	CodeUnauthorized        Code = "unauthorized"
	CodeNotFound            Code = "not_found"
	CodeUnavailable         Code = "unavailable"
	CodeRateLimited         Code = "rate_limited"
	CodeInvalidToken        Code = "invalid_token"    // a mail token that is unknown, used, expired or voided
	CodeEmailUnverified     Code = "email_unverified" // login before the address is proved, when verification is required
	CodeAccountDisabled     Code = "account_disabled" // an operator disabled the account (admin.go)
	CodeInvalidCursor       Code = "invalid_cursor"   // a page cursor that is not one the server issued
	CodeInternal            Code = "internal"
)

// FieldError names a rejected field without echoing its value.
type FieldError struct {
	Field   string
	Message string
}

// Error is the one error type use cases return to callers.
type Error struct {
	Code    Code
	Message string // safe to show to a client
	Fields  []FieldError
	cause   error // logged, never shown
}

func (e *Error) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.cause)
	}
	return string(e.Code) + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.cause }

// ErrorCode returns the code of err, CodeInternal for anything that is not an *Error.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// Sentinels a Store returns.
var (
	ErrNotFound   = errors.New("identity: not found")
	ErrEmailTaken = errors.New("identity: email taken")
	// ErrStaleCredentials: the password hash changed since it was checked.
	ErrStaleCredentials = errors.New("identity: password changed meanwhile")
	// ErrUnavailable wraps every store failure that is the database's, not
	// the request's: a deadline passed, the server is unreachable or shutting
	// down, the pool had no connection in time, the embedded database stayed
	// busy. Callers answer 503 and the client retries.
	ErrUnavailable = errors.New("identity: database unavailable")
)

// internal is the answer to an unexpected failure: 503 when the database is
// away or slow (the client retries), 500 for anything else.
func internal(cause error) *Error {
	if errors.Is(cause, ErrUnavailable) {
		return &Error{Code: CodeUnavailable, Message: "the service is temporarily unavailable; retry shortly", cause: cause}
	}
	return &Error{Code: CodeInternal, Message: "internal error", cause: cause}
}

func invalidRefreshToken() *Error {
	return &Error{Code: CodeInvalidRefreshToken, Message: "the refresh token is invalid or has been revoked"}
}
