package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/gin-gonic/gin"

	"github.com/lanyard-id/lanyard/internal/identity"
)

// registerFormats makes kin-openapi check the string formats the spec uses
// (it ignores unknown formats by default).
var registerFormats = sync.OnceFunc(func() {
	openapi3.DefineStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC4122))
})

// validate checks a request against its operation in openapi.yaml before
// the handler runs. The operation comes from gin's own match rather than a
// second router, so the two can never disagree about which operation a
// request is (a percent-encoded path once slipped past a second router
// unvalidated).
func (s *Server) validate(c *gin.Context) {
	op := s.op(c)
	if op == nil || op.route == nil {
		return
	}
	pathParams := make(map[string]string, len(c.Params))
	for _, p := range c.Params {
		pathParams[p.Key] = p.Value
	}
	err := openapi3filter.ValidateRequest(c.Request.Context(), &openapi3filter.RequestValidationInput{
		Request:    c.Request,
		PathParams: pathParams,
		Route:      op.route,
		Options: &openapi3filter.Options{
			MultiError:         true,
			KeepValidatedValue: true,
			// Credentials were checked by requireBearer, which answers with
			// the contract's WWW-Authenticate header.
			AuthenticationFunc: func(context.Context, *openapi3filter.AuthenticationInput) error { return nil },
		},
	})
	if err != nil {
		s.fail(c, identity.CodeValidation, "the request is invalid", fieldErrors(op.route, c.ContentType(), err)...)
	}
}

// fieldErrors rewrites validator errors as fixed messages built from the
// schema, never from the submitted value (which kin may quote).
func fieldErrors(route *routers.Route, mediaType string, err error) []identity.FieldError {
	var schema *openapi3.Schema
	if rb := route.Operation.RequestBody; rb != nil && rb.Value != nil {
		if mt := rb.Value.Content.Get(mediaType); mt != nil && mt.Schema != nil {
			schema = mt.Schema.Value
		}
	}
	var out []identity.FieldError
	add := func(f identity.FieldError) {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	for _, e := range flatten(err, "") {
		var se *openapi3.SchemaError
		if !errors.As(e.err, &se) {
			add(identity.FieldError{Field: e.param, Message: "the request does not match the API description"})
			continue
		}
		f := describe(schema, se)
		if e.param != "" {
			f.Field = e.param // a path or query parameter, named in the spec
		}
		add(f)
	}
	return out
}

// validationError is one leaf error, with the parameter it concerns (if any).
type validationError struct {
	param string
	err   error
}

// flatten walks kin's nesting of MultiError and RequestError down to the
// leaf errors, remembering which parameter a subtree was about.
func flatten(err error, param string) []validationError {
	switch e := err.(type) {
	case openapi3.MultiError:
		var out []validationError
		for _, inner := range e {
			out = append(out, flatten(inner, param)...)
		}
		return out
	case *openapi3filter.RequestError:
		if e.Err == nil {
			break
		}
		if e.Parameter != nil {
			param = e.Parameter.Name
		}
		return flatten(e.Err, param)
	}
	return []validationError{{param: param, err: err}}
}

func describe(body *openapi3.Schema, se *openapi3.SchemaError) identity.FieldError {
	field := ""
	if ptr := se.JSONPointer(); len(ptr) > 0 && body != nil {
		if _, declared := body.Properties[ptr[0]]; declared {
			field = ptr[0] // a name from the spec, never one the client invented
		}
	}
	s := se.Schema
	switch se.SchemaField {
	case "required":
		return identity.FieldError{Field: field, Message: "is required"}
	case "properties", "additionalProperties": // kin reports an unknown member under "properties"
		return identity.FieldError{Field: field, Message: "unknown fields are not allowed; allowed: " + strings.Join(propertyNames(body), ", ")}
	case "type":
		if s != nil && s.Type != nil && len(*s.Type) > 0 {
			return identity.FieldError{Field: field, Message: "must be of type " + strings.Join(*s.Type, " or ")}
		}
	case "minLength":
		if s != nil {
			return identity.FieldError{Field: field, Message: fmt.Sprintf("must be at least %d characters long", s.MinLength)}
		}
	case "maxLength":
		if s != nil && s.MaxLength != nil {
			return identity.FieldError{Field: field, Message: fmt.Sprintf("must be at most %d characters long", *s.MaxLength)}
		}
	case "enum":
		if s != nil {
			allowed := make([]string, 0, len(s.Enum))
			for _, v := range s.Enum {
				b, _ := json.Marshal(v)
				allowed = append(allowed, string(b))
			}
			return identity.FieldError{Field: field, Message: "must be one of " + strings.Join(allowed, ", ")}
		}
	case "format":
		if s != nil {
			return identity.FieldError{Field: field, Message: "must be a valid " + s.Format}
		}
	case "nullable":
		return identity.FieldError{Field: field, Message: "must not be null"}
	}
	return identity.FieldError{Field: field, Message: "is invalid"}
}

func propertyNames(s *openapi3.Schema) []string {
	if s == nil {
		return nil
	}
	names := make([]string, 0, len(s.Properties))
	for n := range s.Properties {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
