package accesstoken

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// member is one name/value pair of a JSON object: the name unescaped, the
// value as it appears in the input.
type member struct {
	name, value []byte
}

// objectMembers checks that b is exactly one JSON object in which no two
// member names are equal ignoring case, in it or in any object nested in
// it, and appends its members to ms.
//
// Duplicates are refused rather than resolved because JSON parsers
// resolve them differently: most keep the last, some the first, and Go's
// encoding/json also matches names case-insensitively when decoding into
// a struct. A token that two readers could read differently is refused,
// so every verifier (and anything a backend hands the claims to) sees
// the same claims.
func objectMembers(b []byte, ms []member) ([]member, error) {
	// JSON is UTF-8 (RFC 8259 §8.1); decoders differ on what else is.
	if !utf8.Valid(b) {
		return nil, errors.New("not UTF-8")
	}
	// Validating first lets members assume well-formed input.
	if !json.Valid(b) {
		return nil, errors.New("not valid JSON")
	}
	return members(b, ms)
}

// Past this many names, an object's names are compared through a map:
// comparing each name with every earlier one costs quadratic time, and
// an unverified header can hold thousands.
const maxLinearNames = 16

// container is an object or array that members is inside.
type container struct {
	first int  // where the object's names start in names; -1 for an array
	at    int  // the object's offset in the input, which tells objects apart in seen
	big   bool // the object has too many names for names: they are in seen
}

type seenKey struct {
	at   int
	name string // foldKey of the name
}

// members is objectMembers for input already known to be valid JSON. It
// walks the input once, without recursion, so the depth of nesting costs
// no stack.
func members(b []byte, ms []member) ([]member, error) {
	i := skipSpace(b, 0)
	if b[i] != '{' {
		return nil, errors.New("not a JSON object")
	}
	var (
		openBuf  [8]container
		open     = openBuf[:0]
		namesBuf [32][]byte
		names    = namesBuf[:0] // the names of every open object, innermost last
		seen     map[seenKey][]byte
		value    = -1 // where the value of the last top-level member starts
	)
	for ; i < len(b); i++ {
		switch c := b[i]; c {
		case '{':
			open = append(open, container{first: len(names), at: i})
		case '[':
			open = append(open, container{first: -1})
		case ',', '}', ']':
			if len(open) == 1 && value >= 0 {
				ms[len(ms)-1].value = bytes.TrimSpace(b[value:i])
				value = -1
			}
			if c != ',' {
				if top := open[len(open)-1]; top.first >= 0 {
					names = names[:top.first]
				}
				open = open[:len(open)-1]
			}
		case '"':
			start := i
			for i++; b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++ // the escaped character cannot end the string
				}
			}
			colon := skipSpace(b, i+1)
			if b[colon] != ':' {
				continue // a string value, not a member name
			}
			name, err := unquote(b[start : i+1])
			if err != nil {
				return nil, err
			}
			top := &open[len(open)-1]
			if !top.big {
				for _, n := range names[top.first:] {
					if bytes.EqualFold(n, name) {
						return nil, duplicate(n, name)
					}
				}
				names = append(names, name)
				if len(names)-top.first > maxLinearNames {
					if seen == nil {
						seen = map[seenKey][]byte{}
					}
					for _, n := range names[top.first:] {
						seen[seenKey{top.at, foldKey(n)}] = n
					}
					names, top.big = names[:top.first], true
				}
			} else {
				k := seenKey{top.at, foldKey(name)}
				if n, dup := seen[k]; dup {
					return nil, duplicate(n, name)
				}
				seen[k] = name
			}
			if len(open) == 1 {
				ms = append(ms, member{name: name})
				value = colon + 1
			}
			i = colon
		}
	}
	return ms, nil
}

func duplicate(a, b []byte) error {
	// Copies, so that the names (and the buffers holding them) do not
	// escape to the heap on the path that succeeds.
	return fmt.Errorf("duplicate member names %q and %q", string(a), string(b))
}

// foldKey maps a name to a key that two names share exactly when
// bytes.EqualFold finds them equal: each rune becomes the smallest rune of
// its case-folding orbit.
func foldKey(name []byte) string {
	var k strings.Builder
	k.Grow(len(name))
	for _, r := range string(name) {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		k.WriteRune(least)
	}
	return k.String()
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// unquote returns the content of a JSON string, unescaped.
func unquote(quoted []byte) ([]byte, error) {
	s := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(s, '\\') < 0 {
		return s, nil // the common case: no copy
	}
	var out string
	if err := json.Unmarshal(quoted, &out); err != nil {
		return nil, err
	}
	return []byte(out), nil
}

// stringValue decodes raw as a JSON string; ok is false for any other
// type, null included.
func stringValue(raw []byte) (s string, ok bool) {
	b, ok := stringBytes(raw)
	return string(b), ok
}

// stringBytes is stringValue without the copy, for comparisons.
func stringBytes(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return nil, false
	}
	b, err := unquote(raw)
	return b, err == nil
}
