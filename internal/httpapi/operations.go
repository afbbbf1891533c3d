package httpapi

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/gin-gonic/gin"

	"github.com/lanyard-id/lanyard/internal/identity"
)

// operation is what openapi.yaml says about one operation, read once at
// start-up. Every rule that differs between operations (the body media types
// accepted, the credentials taken, who may call it from a browser, how errors
// are written) comes from here, so a new kind of endpoint (form-encoded,
// cookie-authenticated, an HTML page) is a spec entry plus at most one new
// parser or writer, never an exception in a global middleware.
type operation struct {
	// route is the operation for the request validator; nil when it has no
	// body and no parameters to check.
	route *routers.Route
	// bodies are the request media types the operation accepts, each with
	// its checks; nil when it takes no body.
	bodies map[string]bodyFormat
	// accepts names the accepted media types, for the 415 detail.
	accepts string
	// bodyOptional: the request body may be left out (`required: false`).
	bodyOptional bool
	// tokenDelivery: the operation takes the Lanyard-Token-Delivery header,
	// so it can deliver and read the refresh token in the cookie
	// (cookiemode.go).
	tokenDelivery bool
	// bearer: the operation requires a bearer access token.
	bearer bool
	// adminToken: the operation requires the operators' token
	// (LANYARD_ADMIN_TOKEN) instead (adminhandlers.go).
	adminToken bool
	cors       corsPolicy
	// admin: served only on the admin listener (`x-lanyard-listener: admin`).
	admin bool
	// errors writes the operation's error answers in the media type its
	// error responses declare.
	errors errorFormat
}

// bodyFormat is what the server checks of a request body of one media type
// before the spec validator decodes it. Accepting a new media type (such as
// application/x-www-form-urlencoded for an OAuth 2.0 token endpoint) is one
// new entry in bodyFormats; an operation listing a media type without one is
// refused at start-up.
type bodyFormat struct {
	// charset reports whether the Content-Type's charset parameter is acceptable.
	charset func(string) bool
	// check rejects what the validator's decoder would accept too loosely.
	// Its error's message is shown to the client, so it never quotes the body.
	check func(body []byte) error
	// malformed is the code of a body that fails check or cannot be decoded.
	malformed identity.Code
}

var bodyFormats = map[string]bodyFormat{
	"application/json": {charset: utf8Charset, check: checkStrictJSON, malformed: codeInvalidJSON},
}

// errorFormat writes an error answer; the caller has set the headers that do
// not depend on the format (Retry-After, WWW-Authenticate).
type errorFormat func(c *gin.Context, p problem)

const problemJSON = "application/problem+json"

var errorFormats = map[string]errorFormat{
	problemJSON: writeProblemJSON,
}

// corsPolicy says which browser origins may read an operation's answers.
type corsPolicy int

const (
	// corsAllowlist: only the origins in LANYARD_CORS_ORIGINS (the default).
	corsAllowlist corsPolicy = iota
	// corsPublic: any origin, without credentials (`x-lanyard-cors: public`):
	// verifiers in browsers and edge workers fetch keys and discovery.
	corsPublic
)

// corsExtension marks an operation's CORS policy in openapi.yaml.
const corsExtension = "x-lanyard-cors"

// listenerExtension puts an operation on the admin listener
// (LANYARD_ADMIN_ADDR) instead of the public one.
const listenerExtension = "x-lanyard-listener"

// buildOperations reads every operation of doc into the table the
// middleware consults, keyed like gin's routes. A rule the server cannot
// apply (a media type without a parser, a security scheme it does not
// check, an unknown CORS policy) is an error: the server must not start and
// silently serve an operation other than as described.
func buildOperations(doc *openapi3.T) (map[routeKey]*operation, error) {
	ops := map[routeKey]*operation{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			o, err := newOperation(doc, path, item, method, op)
			if err != nil {
				return nil, fmt.Errorf("openapi.yaml: %s %s: %w", method, path, err)
			}
			ops[routeKey{method, ginPath(path)}] = o
		}
	}
	return ops, nil
}

func newOperation(doc *openapi3.T, path string, item *openapi3.PathItem, method string, op *openapi3.Operation) (*operation, error) {
	o := &operation{}
	if op.RequestBody != nil || len(op.Parameters) > 0 || len(item.Parameters) > 0 {
		o.route = &routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: op}
	}
	if op.RequestBody != nil && op.RequestBody.Value != nil {
		o.bodies = map[string]bodyFormat{}
		for mediaType := range op.RequestBody.Value.Content {
			format, ok := bodyFormats[mediaType]
			if !ok {
				return nil, fmt.Errorf("request media type %q has no body parser", mediaType)
			}
			o.bodies[mediaType] = format
		}
		o.accepts = strings.Join(slices.Sorted(maps.Keys(o.bodies)), " or ")
		o.bodyOptional = !op.RequestBody.Value.Required
	}
	for _, param := range op.Parameters {
		if param.Value != nil && param.Value.In == openapi3.ParameterInHeader && http.CanonicalHeaderKey(param.Value.Name) == tokenDeliveryHeader {
			o.tokenDelivery = true
		}
	}
	var err error
	if o.bearer, o.adminToken, err = requiresBearer(doc, op); err != nil {
		return nil, err
	}
	switch policy := op.Extensions[corsExtension]; policy {
	case nil:
		o.cors = corsAllowlist
	case "public":
		o.cors = corsPublic
	default:
		return nil, fmt.Errorf("%s: unknown policy %v", corsExtension, policy)
	}
	switch listener := op.Extensions[listenerExtension]; listener {
	case nil, "public":
	case "admin":
		o.admin = true
	default:
		return nil, fmt.Errorf("%s: unknown listener %v", listenerExtension, listener)
	}
	if o.adminToken && !o.admin {
		return nil, fmt.Errorf("the admin token is taken only on the admin listener (%s: admin)", listenerExtension)
	}
	if o.errors, err = errorFormatOf(op); err != nil {
		return nil, err
	}
	return o, nil
}

// credentialExtension marks a bearer security scheme whose token is not an
// access token: `admin-token` is LANYARD_ADMIN_TOKEN.
const credentialExtension = "x-lanyard-credential"

// requiresBearer reads the operation's security requirement (the document's
// when it states none): no credentials, a bearer access token, or the
// admin token.
func requiresBearer(doc *openapi3.T, op *openapi3.Operation) (bearer, adminToken bool, err error) {
	reqs := doc.Security
	if op.Security != nil {
		reqs = *op.Security
	}
	if len(reqs) > 1 {
		return false, false, errors.New("alternative security requirements are not supported")
	}
	for _, req := range reqs {
		if len(req) > 1 {
			return false, false, errors.New("several credentials at once are not supported")
		}
		for name := range req {
			scheme := doc.Components.SecuritySchemes[name]
			if scheme == nil || scheme.Value == nil || scheme.Value.Type != "http" || !strings.EqualFold(scheme.Value.Scheme, "bearer") {
				return false, false, fmt.Errorf("security scheme %q is not one the server checks", name)
			}
			switch credential := scheme.Value.Extensions[credentialExtension]; credential {
			case nil:
				bearer = true
			case "admin-token":
				adminToken = true
			default:
				return false, false, fmt.Errorf("security scheme %q: unknown %s %v", name, credentialExtension, credential)
			}
		}
	}
	return bearer, adminToken, nil
}

// errorFormatOf finds the one media type of the operation's error responses
// (problem+json when it declares none).
func errorFormatOf(op *openapi3.Operation) (errorFormat, error) {
	mediaTypes := map[string]bool{}
	for status, resp := range op.Responses.Map() {
		if (status >= "400" || status == "default") && resp.Value != nil {
			for mediaType := range resp.Value.Content {
				mediaTypes[mediaType] = true
			}
		}
	}
	switch len(mediaTypes) {
	case 0:
		return errorFormats[problemJSON], nil
	case 1:
		for mediaType := range mediaTypes {
			if format, ok := errorFormats[mediaType]; ok {
				return format, nil
			}
			return nil, fmt.Errorf("error media type %q has no writer", mediaType)
		}
	}
	return nil, fmt.Errorf("error responses in several media types %v", slices.Sorted(maps.Keys(mediaTypes)))
}

// ginPath turns /a/{id} into gin's /a/:id.
func ginPath(openapiPath string) string {
	parts := strings.Split(openapiPath, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			parts[i] = ":" + p[1:len(p)-1]
		}
	}
	return strings.Join(parts, "/")
}

// routeKey names an operation by method and gin path template. A struct key
// lets every request look its route up without building a string.
type routeKey struct{ method, path string }

func routeOf(c *gin.Context) routeKey { return routeKey{c.Request.Method, c.FullPath()} }

// op is the operation gin matched; nil for unknown routes and methods and
// for preflight requests.
func (s *Server) op(c *gin.Context) *operation { return s.ops[routeOf(c)] }
