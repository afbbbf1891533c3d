package httpapi

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lanyard-id/lanyard/internal/identity"
)

// MaxBodyBytes caps every request body; Lanyard's largest request is well under it.
const MaxBodyBytes = 16 << 10

const requestIDHeader = "X-Request-Id"

// requestID takes a caller's id when it is short and plain (so it can be
// logged safely), otherwise makes one, and echoes it on the response.
func requestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(requestIDHeader)
		if len(id) == 0 || len(id) > 64 || strings.ContainsFunc(id, func(r rune) bool {
			return !(r == '-' || r == '_' || r == '.' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z'))
		}) {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		c.Set(requestIDHeader, id)
		c.Header(requestIDHeader, id)
		c.Next()
	}
}

// observe logs each request and records its metrics, labelled by route
// template so unknown paths cannot grow the label set.
func observe(log *slog.Logger, m *metrics) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		elapsed := time.Since(start)
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		status := c.Writer.Status()
		method := methodLabel(c.Request.Method)
		m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
		m.duration.WithLabelValues(method, route).Observe(elapsed.Seconds())
		level := slog.LevelInfo
		switch {
		case status == http.StatusServiceUnavailable:
			level = slog.LevelWarn // load shedding and draining are expected, not faults
		case status >= 500:
			level = slog.LevelError
		}
		attrs := []slog.Attr{
			slog.String("request_id", c.GetString(requestIDHeader)),
			slog.String("method", method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Duration("duration", elapsed),
			slog.String("ip", c.ClientIP()),
		}
		if len(c.Errors) > 0 {
			attrs = append(attrs, slog.String("error", c.Errors.Last().Error()))
		}
		log.LogAttrs(c.Request.Context(), level, "request", attrs...)
	}
}

// methodLabel keeps metric labels bounded: net/http accepts any token as a
// method, and each new label value would be a new time series forever.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// recoverPanics turns a panic into a logged 500 problem without internals.
func recoverPanics(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				log.ErrorContext(c.Request.Context(), "panic", "request_id", c.GetString(requestIDHeader), "panic", r)
				writeProblem(c, &identity.Error{Code: identity.CodeInternal, Message: "an internal error occurred"})
			}
		}()
		c.Next()
	}
}

// publicPaths may be read by any origin: verifiers in browsers and edge
// workers fetch keys and discovery cross-origin.
var publicPaths = map[string]bool{
	"/.well-known/jwks.json":            true,
	"/.well-known/openid-configuration": true,
}

// cors allows exactly the configured origins (no wildcards, no credentials:
// tokens travel in bodies and the Authorization header, not cookies) and
// answers preflight requests itself.
func cors(allowed []string) gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Add("Vary", "Origin")
		origin := c.GetHeader("Origin")
		preflight := c.Request.Method == http.MethodOptions && c.GetHeader("Access-Control-Request-Method") != ""
		switch {
		case publicPaths[c.Request.URL.Path]:
			h.Set("Access-Control-Allow-Origin", "*")
		case origin != "" && slices.Contains(allowed, origin):
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", "WWW-Authenticate, Retry-After, X-Request-Id")
		default:
			if preflight {
				// No CORS headers: the browser blocks the real request.
				c.AbortWithStatus(http.StatusNoContent)
				return
			}
			c.Next()
			return
		}
		if preflight {
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id")
			h.Set("Access-Control-Max-Age", "600")
			c.AbortWithStatus(http.StatusNoContent)
			return
		}
		c.Next()
	}
}

// utf8Charset accepts no charset (JSON is UTF-8 by definition, RFC 8259) or
// any common spelling of UTF-8.
func utf8Charset(charset string) bool {
	switch strings.ToLower(charset) {
	case "", "utf-8", "utf8":
		return true
	}
	return false
}

// strictBody enforces the body rules on requests that carry one: JSON media
// type (415), the size cap (413), and strict JSON (400). The checked bytes
// replace the body for the validator and the handler.
func strictBody() gin.HandlerFunc {
	return func(c *gin.Context) {
		switch c.Request.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
		default:
			c.Next()
			return
		}
		if c.FullPath() == "" { // no such route: let it answer 404 or 405 first
			c.Next()
			return
		}
		if c.Request.ContentLength > MaxBodyBytes {
			fail(c, codePayloadTooLarge, "the request body is larger than 16 KiB")
			return
		}
		mediaType, params, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
		if err != nil || mediaType != "application/json" || !utf8Charset(params["charset"]) {
			fail(c, codeUnsupportedMediaType, "send the request body as application/json")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes))
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			fail(c, codePayloadTooLarge, "the request body is larger than 16 KiB")
			return
		case err != nil:
			fail(c, codeInvalidJSON, "the request body could not be read")
			return
		}
		if err := checkStrictJSON(body); err != nil {
			fail(c, codeInvalidJSON, err.Error())
			return
		}
		c.Request.Body = io.NopCloser(bytes.NewReader(body))
		c.Next()
	}
}
