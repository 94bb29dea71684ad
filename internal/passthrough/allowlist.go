// Package passthrough lets a front end talk to the IBKR Web API through
// Ordertune as if it were a plain API: each tenant's requests are signed with
// that tenant's own live session token from the broker session cache, only
// allowlisted read-only routes pass, and account ids in paths must be the
// tenant's own. It also bridges IBKR's streaming WebSocket to the browser.
//
// The order path (internal/trading) never goes through here; it shares the
// tenant's pacing budget and always goes first (ibkr.Pacer.WaitLow).
package passthrough

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// DefaultRoutes returns the allowlist used when the operator configures
// none: IBKR's read-only routes a dashboard needs. Placeholders: {accountId}
// must be the tenant's own account (or "me"), {conid} a contract id.
func DefaultRoutes() []string {
	return []string{
		"iserver/secdef/search",
		"iserver/marketdata/history",
		"iserver/marketdata/snapshot",
		"trsrv/stocks",
		"iserver/contract/{conid}/info",
		"portfolio/{accountId}/positions",
		"portfolio/{accountId}/summary",
		"iserver/account/orders",
		"iserver/account/trades",
	}
}

// AccountAlias may stand for the tenant's account id in a path or an
// account query parameter: the browser only ever sees the id masked.
const AccountAlias = "me"

// segKind is what a pattern segment matches.
type segKind int

const (
	segLiteral segKind = iota
	segAccount         // {accountId}: the tenant's own account
	segConid           // {conid}: digits
	segAny             // {anything else}: one safe segment
)

type patternSeg struct {
	kind    segKind
	literal string
}

// route is one parsed allowlist pattern.
type route struct {
	pattern string
	segs    []patternSeg
}

// Allowlist is the set of routes the proxy forwards. It is immutable and
// safe for concurrent use.
type Allowlist struct {
	routes []route
}

// ParseAllowlist parses route patterns such as "portfolio/{accountId}/summary"
// (a leading slash is optional). Segments are literals of letters, digits,
// '.', '_' and '-', or placeholders in braces.
func ParseAllowlist(patterns []string) (*Allowlist, error) {
	a := &Allowlist{}
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		r := route{pattern: strings.TrimPrefix(p, "/")}
		for _, s := range strings.Split(r.pattern, "/") {
			switch {
			case s == "{accountId}":
				r.segs = append(r.segs, patternSeg{kind: segAccount})
			case s == "{conid}":
				r.segs = append(r.segs, patternSeg{kind: segConid})
			case len(s) > 2 && s[0] == '{' && s[len(s)-1] == '}' && safeSegment(s[1:len(s)-1]):
				r.segs = append(r.segs, patternSeg{kind: segAny})
			case safeSegment(s):
				r.segs = append(r.segs, patternSeg{kind: segLiteral, literal: s})
			default:
				return nil, fmt.Errorf("passthrough route %q: segment %q is neither a literal nor a placeholder", p, s)
			}
		}
		a.routes = append(a.routes, r)
	}
	if len(a.routes) == 0 {
		return nil, errors.New("passthrough: the route allowlist is empty")
	}
	return a, nil
}

// ParseRouteList parses a comma-separated allowlist, the form an operator
// sets in the environment.
func ParseRouteList(s string) (*Allowlist, error) {
	return ParseAllowlist(strings.Split(s, ","))
}

// Patterns returns the allowlist's patterns, in order.
func (a *Allowlist) Patterns() []string {
	out := make([]string, len(a.routes))
	for i, r := range a.routes {
		out[i] = r.pattern
	}
	return out
}

// maxSegment bounds one path segment; IBKR's longest are account ids and
// conids.
const maxSegment = 64

// safeSegment reports whether s is a non-empty path segment of letters,
// digits, '.', '_' and '-' that is not "." or "..".
func safeSegment(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > maxSegment {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Match is an allowed request path, resolved for one tenant.
type Match struct {
	// Pattern is the allowlist entry that matched (safe to log: it holds no
	// account id).
	Pattern string
	segs    []string
	account []bool // segs[i] is the tenant's account
}

// Errors of Allowlist.Match and Match.Endpoint.
var (
	// ErrNotAllowed means the path is not on the allowlist.
	ErrNotAllowed = errors.New("this IBKR endpoint is not available through Ordertune")
	// ErrForeignAccount means an account id in the request is not the
	// tenant's.
	ErrForeignAccount = errors.New("the account in the request is not yours")
)

// Match checks an escaped path below IBKR's base URL (no leading slash,
// e.g. "portfolio/DU1234567/summary") against the allowlist. Only safe
// segments match; an encoded slash, dot segments, empty segments or any
// other character make the path not allowed.
func (a *Allowlist) Match(escapedPath string) (Match, error) {
	parts := strings.Split(escapedPath, "/")
	segs := make([]string, len(parts))
	for i, p := range parts {
		s, err := url.PathUnescape(p)
		if err != nil || !safeSegment(s) {
			return Match{}, ErrNotAllowed
		}
		segs[i] = s
	}
next:
	for _, r := range a.routes {
		if len(r.segs) != len(segs) {
			continue
		}
		acct := make([]bool, len(segs))
		for i, ps := range r.segs {
			s := segs[i]
			switch ps.kind {
			case segLiteral:
				if s != ps.literal {
					continue next
				}
			case segConid:
				if !digits(s, 12) {
					continue next
				}
			case segAccount:
				acct[i] = true
			}
		}
		return Match{Pattern: r.pattern, segs: segs, account: acct}, nil
	}
	return Match{}, ErrNotAllowed
}

// digits reports whether s is 1 to max decimal digits.
func digits(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Endpoint returns the path to send below IBKR's base URL ("/portfolio/
// DU1234567/summary"), with every account placeholder checked against the
// tenant's account and written as IBKR spells it. An account that is not
// the tenant's is ErrForeignAccount.
func (m Match) Endpoint(tenantAccount string) (string, error) {
	var b strings.Builder
	for i, s := range m.segs {
		if m.account[i] {
			if !sameAccount(s, tenantAccount) {
				return "", ErrForeignAccount
			}
			s = tenantAccount
		}
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String(), nil
}

// sameAccount reports whether a client's account reference is the
// tenant's account (IBKR ids are upper-case; "me" is the alias).
func sameAccount(given, tenant string) bool {
	return tenant != "" && (given == AccountAlias || strings.EqualFold(given, tenant))
}

// accountParams are query parameters that name accounts in IBKR's API.
func accountParam(name string) bool {
	switch strings.ToLower(name) {
	case "accountid", "accountids", "acctid", "account", "accounts":
		return true
	}
	return false
}

// CheckQuery parses a raw query and checks that every account it names is
// the tenant's, rewriting the alias to the real id. It returns the query to
// send: the raw one unchanged when it names no alias.
func CheckQuery(rawQuery, tenantAccount string) (string, error) {
	if rawQuery == "" {
		return "", nil
	}
	if err := CheckRawQuery(rawQuery); err != nil {
		return "", err
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", fmt.Errorf("malformed query: %w", err)
	}
	rewrite := false
	for k, vs := range q {
		if !accountParam(k) {
			continue
		}
		for i, v := range vs {
			alias := false
			for _, a := range strings.Split(v, ",") {
				a = strings.TrimSpace(a)
				if !sameAccount(a, tenantAccount) {
					return "", ErrForeignAccount
				}
				alias = alias || a == AccountAlias
			}
			if alias {
				vs[i] = tenantAccount
				rewrite = true
			}
		}
	}
	if rewrite {
		return q.Encode(), nil
	}
	return rawQuery, nil
}

// CheckRawQuery reports whether a query string is as a client must send it
// for IBKR to verify its signature: only RFC 3986 query characters, every
// '%' starting an escape. A raw '#', space, quote, bracket or non-ASCII
// byte would be signed as received yet sent (or read by IBKR) otherwise,
// so IBKR would refuse the signature and the session cache would make a
// new live session token for nothing.
func CheckRawQuery(rawQuery string) error {
	for i := 0; i < len(rawQuery); i++ {
		b := rawQuery[i]
		switch {
		case b == '%':
			if i+2 >= len(rawQuery) || !isHex(rawQuery[i+1]) || !isHex(rawQuery[i+2]) {
				return fmt.Errorf("malformed query: a %% at byte %d starts no escape", i)
			}
			i += 2
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9',
			strings.IndexByte("-._~!$&'()*+,;=:@/?", b) >= 0:
		default:
			return fmt.Errorf("malformed query: byte %d (%#x) must be percent-encoded", i, b)
		}
	}
	return nil
}

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}

// RedactPath replaces every segment of an escaped path that looks like an
// IBKR account id (U, DU, F or DF and digits, any case) with "{accountId}",
// so access logs keep the route but not the account, which Ordertune keeps
// sealed. A segment that only holds an account id among other text
// ("DU1234567,U7654321", "DU1234567.json") is replaced too, and so is one
// that does not unescape: refused paths are logged as well.
func RedactPath(escapedPath string) string {
	segs := strings.Split(escapedPath, "/")
	for i, s := range segs {
		u, err := url.PathUnescape(s)
		if err != nil {
			u = s
		}
		for _, tok := range strings.FieldsFunc(u, func(r rune) bool {
			return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
		}) {
			if looksLikeAccount(tok) {
				segs[i] = "{accountId}"
				break
			}
		}
	}
	return strings.Join(segs, "/")
}

// looksLikeAccount reports whether s has the shape of an IBKR account id.
func looksLikeAccount(s string) bool {
	u := strings.ToUpper(s)
	for _, p := range []string{"DU", "DF", "U", "F"} {
		if rest, ok := strings.CutPrefix(u, p); ok && digits(rest, 12) {
			return true
		}
	}
	return false
}
