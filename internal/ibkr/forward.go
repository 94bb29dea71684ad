package ibkr

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// Forward sends one read-only request on the session for a pass-through
// proxy and returns IBKR's answer unread, whatever its status, so the proxy
// can stream it back; the caller closes the body.
//
// endpoint is the escaped path below the base URL ("/portfolio/DU1/summary")
// and is signed as sent. rawQuery is sent unchanged and its decoded
// parameters are signed (PROTOCOL.md §4); a query that does not parse is
// refused before anything is sent. header adds request headers (say Accept);
// Authorization and User-Agent are the session's own. The request is paced
// with WaitLow, so the session's order path keeps priority; pacing that would
// pass ctx's deadline is a KindRateLimited error with RetryAfter, a
// transport failure a KindUnavailable one.
func (s *Session) Forward(ctx context.Context, method, endpoint, rawQuery string, header http.Header) (*http.Response, error) {
	c := call{op: "forward " + endpoint, method: strings.ToUpper(method), endpoint: endpoint}
	fail := func(kind Kind, err error) error {
		return &Error{Kind: kind, Op: c.op, Method: c.method, Endpoint: c.endpoint, Err: err}
	}
	if !strings.HasPrefix(endpoint, "/") {
		return nil, fail(KindRequestFailed, errors.New("endpoint must start with /"))
	}
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fail(KindRequestFailed, err)
	}
	paceKey := endpoint
	if p, err := url.PathUnescape(endpoint); err == nil {
		paceKey = p
	}
	release, err := s.opts.Pacer.hold(ctx, paceKey)
	if err == nil {
		// The answer's headers arrived: IBKR has the request.
		defer release()
		err = s.opts.Pacer.WaitLow(ctx, paceKey)
	}
	if err != nil {
		var pd *paceDeadlineError
		if errors.As(err, &pd) {
			return nil, &Error{Kind: KindRateLimited, Op: c.op, Method: c.method, Endpoint: c.endpoint, RetryAfter: pd.wait, Err: err}
		}
		return nil, fail(KindUnavailable, err)
	}
	base := s.opts.BaseURL + endpoint
	sg := s.currentSigner().sign(c.method, base, valuesParams(nil, query), s.opts.Nonce(), timestamp(s.opts.Now()))
	full := base
	if rawQuery != "" {
		full += "?" + rawQuery
	}
	req, err := http.NewRequestWithContext(ctx, c.method, full, nil)
	if err != nil {
		return nil, fail(KindRequestFailed, err)
	}
	for k, vs := range header {
		req.Header[k] = append([]string(nil), vs...)
	}
	req.Header.Set("Authorization", sg.header)
	req.Header.Set("User-Agent", s.opts.UserAgent)
	resp, err := s.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, fail(KindUnavailable, err)
	}
	return resp, nil
}

// WebSocketTarget is where and how to open IBKR's streaming WebSocket for a
// session (PROTOCOL.md §5.9). Header carries the session cookie: treat it as
// a secret and never log it.
type WebSocketTarget struct {
	// URL is the base URL's ws:// or wss:// /ws with oauth_token.
	URL string
	// Header holds the Cookie api=<session> and the User-Agent; the upgrade
	// itself is not signed.
	Header http.Header
}

// WebSocket tickles the session for its current "api" session id and
// returns how to open IBKR's WebSocket with it. It fails like Tickle, for
// instance with KindNoBrokerageSession when the brokerage session is down.
func (s *Session) WebSocket(ctx context.Context) (WebSocketTarget, error) {
	t, err := s.Tickle(ctx)
	if err != nil {
		return WebSocketTarget{}, err
	}
	if t.Session == "" {
		return WebSocketTarget{}, &Error{Kind: KindBadResponse, Op: "tickle", Method: http.MethodPost, Endpoint: "/tickle", Status: http.StatusOK, Text: "the tickle carried no session id"}
	}
	return s.WebSocketWith(t.Session), nil
}

// WebSocketWith returns how to open IBKR's WebSocket with apiSession, the
// session id of an earlier tickle under the same live session token (IBKR
// keeps one per token, so callers may reuse it instead of tickling again).
func (s *Session) WebSocketWith(apiSession string) WebSocketTarget {
	ws := s.opts.BaseURL + "/ws"
	switch {
	case strings.HasPrefix(ws, "https://"):
		ws = "wss://" + strings.TrimPrefix(ws, "https://")
	case strings.HasPrefix(ws, "http://"):
		ws = "ws://" + strings.TrimPrefix(ws, "http://")
	}
	ws += "?" + url.Values{"oauth_token": {s.accessToken}}.Encode()
	h := http.Header{}
	h.Set("Cookie", (&http.Cookie{Name: "api", Value: apiSession}).String())
	h.Set("User-Agent", s.opts.UserAgent)
	return WebSocketTarget{URL: ws, Header: h}
}
