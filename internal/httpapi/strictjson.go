package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"unicode/utf8"
)

// errJSON describes why a body is not the strict JSON Lanyard accepts. Its
// messages are fixed strings: they never quote the body.
type errJSON struct{ msg string }

func (e errJSON) Error() string { return e.msg }

var (
	errEmptyBody     = errJSON{"the request body is empty; a JSON object is required"}
	errInvalidUTF8   = errJSON{"the request body is not valid UTF-8"}
	errMalformed     = errJSON{"the request body is not well-formed JSON"}
	errTrailingData  = errJSON{"the request body has data after the JSON value"}
	errDuplicateKey  = errJSON{"the request body repeats a key in one object"}
	errNULCharacter  = errJSON{"strings must not contain NUL characters"}
	errNotAnObject   = errJSON{"the request body must be a JSON object"}
	errTooDeepNested = errJSON{"the request body nests too deeply"}
	errLoneSurrogate = errJSON{"strings must not contain unpaired UTF-16 surrogate escapes"}
)

// maxJSONDepth bounds nesting; no Lanyard request needs more than two levels.
const maxJSONDepth = 16

// checkStrictJSON rejects what encoding/json would let through silently:
// invalid UTF-8 (it substitutes U+FFFD), duplicate keys (last one wins, which
// lets two parsers disagree about one request), NUL characters, and trailing
// data. Schema rules (types, unknown fields, lengths) are the validator's job.
func checkStrictJSON(body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errEmptyBody
	}
	if !utf8.Valid(body) {
		return errInvalidUTF8
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	first, err := dec.Token()
	if err != nil {
		return errMalformed
	}
	if d, ok := first.(json.Delim); !ok || d != '{' {
		return errNotAnObject
	}
	if err := checkObject(dec, 1); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errTrailingData
	}
	if hasLoneSurrogate(body) {
		return errLoneSurrogate
	}
	return nil
}

// hasLoneSurrogate finds \uD800-\uDFFF escapes that are not a high+low pair.
// encoding/json turns each into U+FFFD, so "\ud800" and "\udfff" would
// silently become the same password. body is already known to be valid JSON.
func hasLoneSurrogate(body []byte) bool {
	inString := false
	for i := 0; i < len(body); i++ {
		switch {
		case body[i] == '"':
			inString = !inString
		case inString && body[i] == '\\':
			if body[i+1] != 'u' {
				i++ // a one-character escape such as \" or \\
				continue
			}
			code := hex4(body[i+2 : i+6])
			switch {
			case code >= 0xD800 && code <= 0xDBFF:
				if i+11 >= len(body) || body[i+6] != '\\' || body[i+7] != 'u' {
					return true
				}
				if low := hex4(body[i+8 : i+12]); low < 0xDC00 || low > 0xDFFF {
					return true
				}
				i += 11
			case code >= 0xDC00 && code <= 0xDFFF:
				return true
			default:
				i += 5
			}
		}
	}
	return false
}

// hex4 parses four hex digits (already validated by the JSON decoder).
func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c-'a') + 10
		case c >= 'A' && c <= 'F':
			r |= rune(c-'A') + 10
		}
	}
	return r
}

// checkObject reads an object's members after its opening brace.
func checkObject(dec *json.Decoder, depth int) error {
	seen := map[string]struct{}{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return errMalformed
		}
		key, ok := tok.(string)
		if !ok {
			return errMalformed
		}
		if strings.IndexByte(key, 0) >= 0 {
			return errNULCharacter
		}
		if _, dup := seen[key]; dup {
			return errDuplicateKey
		}
		seen[key] = struct{}{}
		if err := checkValue(dec, depth); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return errMalformed
	}
	return nil
}

func checkValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return errMalformed
	}
	switch v := tok.(type) {
	case string:
		if strings.IndexByte(v, 0) >= 0 {
			return errNULCharacter
		}
	case json.Delim:
		if depth >= maxJSONDepth {
			return errTooDeepNested
		}
		if v == '{' {
			return checkObject(dec, depth+1)
		}
		for dec.More() {
			if err := checkValue(dec, depth+1); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil { // the closing bracket
			return errMalformed
		}
	}
	return nil
}
