package ibkrsim

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// AuthParams are the parameters of an OAuth Authorization header, in the order
// they were sent, with values percent-decoded.
type AuthParams struct {
	Scheme string
	Params []AuthParam
}

// AuthParam is one key="value" pair of an Authorization header.
type AuthParam struct {
	Key   string
	Value string
}

// Get returns the decoded value of key and reports whether it was present.
func (p AuthParams) Get(key string) (string, bool) {
	for _, kv := range p.Params {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

// errHeader is returned for every malformed Authorization header; the detail
// goes to the log only.
var errHeader = errors.New("malformed Authorization header")

// ParseAuthorization parses an `OAuth k="v", …` header in any order and with any
// spacing, as IBKR's parser does. Values must be quoted and are percent-decoded;
// a duplicated key, an unquoted value or a bad escape is an error.
func ParseAuthorization(h string) (AuthParams, error) {
	var out AuthParams
	s := strings.TrimLeft(h, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return out, fmt.Errorf("%w: no parameters", errHeader)
	}
	out.Scheme = s[:i]
	if !strings.EqualFold(out.Scheme, "OAuth") {
		return out, fmt.Errorf("%w: scheme %q", errHeader, out.Scheme)
	}
	s = s[i:]
	seen := make(map[string]bool, 8)
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			break
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return out, fmt.Errorf("%w: expected key=\"value\"", errHeader)
		}
		key := strings.TrimRight(s[:eq], " \t")
		if key == "" || strings.ContainsAny(key, " \t,\"") {
			return out, fmt.Errorf("%w: bad key %q", errHeader, key)
		}
		s = strings.TrimLeft(s[eq+1:], " \t")
		if !strings.HasPrefix(s, `"`) {
			return out, fmt.Errorf("%w: value of %q not quoted", errHeader, key)
		}
		end := strings.IndexByte(s[1:], '"')
		if end < 0 {
			return out, fmt.Errorf("%w: unterminated value of %q", errHeader, key)
		}
		raw := s[1 : 1+end]
		val, err := url.PathUnescape(raw)
		if err != nil {
			return out, fmt.Errorf("%w: value of %q: bad escape", errHeader, key)
		}
		if seen[key] {
			return out, fmt.Errorf("%w: duplicate %q", errHeader, key)
		}
		seen[key] = true
		out.Params = append(out.Params, AuthParam{Key: key, Value: val})
		s = strings.TrimLeft(s[2+end:], " \t")
		if s == "" {
			break
		}
		if s[0] != ',' {
			return out, fmt.Errorf("%w: expected ',' after %q", errHeader, key)
		}
		s = s[1:]
	}
	if len(out.Params) == 0 {
		return out, fmt.Errorf("%w: no parameters", errHeader)
	}
	return out, nil
}

// percentEncode is RFC 3986 encoding as OAuth 1.0a uses it: unreserved
// characters stay, every other byte becomes %XX with upper-case hex.
func percentEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// kv is one base-string parameter, decoded.
type kv struct{ k, v string }

// baseString builds prepend + METHOD & enc(url) & enc(k=v&…): the parameters
// sorted by key then value (byte order), joined raw and encoded once, which is
// why a comma in a query value appears as %2C and never %252C.
func baseString(prepend, method, signedURL string, params []kv) string {
	sort.Slice(params, func(i, j int) bool {
		if params[i].k != params[j].k {
			return params[i].k < params[j].k
		}
		return params[i].v < params[j].v
	})
	var joined strings.Builder
	for i, p := range params {
		if i > 0 {
			joined.WriteByte('&')
		}
		joined.WriteString(p.k)
		joined.WriteByte('=')
		joined.WriteString(p.v)
	}
	return prepend + method + "&" + percentEncode(signedURL) + "&" + percentEncode(joined.String())
}
