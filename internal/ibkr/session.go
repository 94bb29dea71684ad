package ibkr

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBaseURL is IBKR's Web API base.
const DefaultBaseURL = "https://api.ibkr.com/v1/api"

// DefaultUserAgent is sent when Options.UserAgent is empty; IBKR refuses
// requests without a User-Agent.
const DefaultUserAgent = "ordertune-ibkr/1"

// maxResponseBytes bounds what is read from one response.
const maxResponseBytes = 4 << 20

// Options configures how a Session talks to IBKR. The zero value works
// against IBKR itself; tests inject the clock, nonce and randomness.
type Options struct {
	// BaseURL is the API base as addressed, e.g. https://api.ibkr.com/v1/api
	// or a simulator's http://127.0.0.1:5000/v1/api. It is signed as is.
	BaseURL string
	// HTTPClient sends the requests; give it no overall Timeout for order
	// calls and use context deadlines instead.
	HTTPClient *http.Client
	// UserAgent is sent with every request.
	UserAgent string
	// Now is the clock for OAuth timestamps.
	Now func() time.Time
	// Nonce returns a fresh OAuth nonce.
	Nonce func() string
	// Rand is the randomness of the DH exponent.
	Rand io.Reader
	// Pacer paces requests; share one per IBKR session. Nil means a new
	// Pacer with default limits for this Session.
	Pacer *Pacer
	// MaxReplyChain bounds how many reply questions one order may raise.
	MaxReplyChain int
}

// withDefaults fills the zero fields.
func (o Options) withDefaults() Options {
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	o.BaseURL = strings.TrimRight(o.BaseURL, "/")
	if o.HTTPClient == nil {
		o.HTTPClient = http.DefaultClient
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Nonce == nil {
		o.Nonce = randomNonce
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Pacer == nil {
		o.Pacer = NewPacer()
	}
	if o.MaxReplyChain <= 0 {
		o.MaxReplyChain = 5
	}
	return o
}

// Session is an authenticated IBKR Web API session: a live session token and
// what is needed to sign with it. It holds no private key and no access token
// secret. It is safe for concurrent use.
type Session struct {
	opts                            Options
	consumerKey, accessToken, realm string

	mu     sync.RWMutex
	token  LiveSessionToken
	signer *signer
}

// Format prints the consumer key and the token's expiry, never the token.
func (s *Session) Format(f fmt.State, _ rune) {
	if s == nil {
		io.WriteString(f, "Session(nil)")
		return
	}
	fmt.Fprintf(f, "Session{consumer_key:%q expires:%s}", s.consumerKey, s.Expires().UTC().Format(time.RFC3339))
}

// Handshake obtains a live session token for creds (PROTOCOL.md §2-3) and
// returns a Session signed with it. creds is used for this call only and not
// retained, so the caller may drop the decrypted keys right after.
func Handshake(ctx context.Context, opts Options, creds *Credentials) (*Session, error) {
	o := opts.withDefaults()
	tok, err := requestLST(ctx, o, creds)
	if err != nil {
		return nil, err
	}
	return newSession(o, creds.ConsumerKey, creds.AccessToken, creds.Realm, tok)
}

// ResumeSession returns a Session for a live session token obtained earlier
// (by Handshake, cached by the caller). It fails when tok is not a valid
// base64 LST.
func ResumeSession(opts Options, consumerKey, accessToken, realm string, tok LiveSessionToken) (*Session, error) {
	return newSession(opts.withDefaults(), consumerKey, accessToken, realm, tok)
}

func newSession(o Options, consumerKey, accessToken, realm string, tok LiveSessionToken) (*Session, error) {
	s := &Session{opts: o, consumerKey: consumerKey, accessToken: accessToken, realm: realm}
	if err := s.setToken(tok); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Session) setToken(tok LiveSessionToken) error {
	key, err := base64.StdEncoding.DecodeString(tok.Value)
	if err != nil || len(key) == 0 {
		return errors.New("ibkr session: the live session token is not base64")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = tok
	s.signer = &signer{consumerKey: s.consumerKey, accessToken: s.accessToken, realm: s.realm, key: key}
	return nil
}

// Renew makes a new live session token with creds (which must belong to the
// same consumer and access token) and signs with it from now on. IBKR has no
// refresh: an expired LST is replaced by a new handshake, and the brokerage
// session must then be initialised again.
func (s *Session) Renew(ctx context.Context, creds *Credentials) error {
	if creds == nil || creds.ConsumerKey != s.consumerKey || creds.AccessToken != s.accessToken {
		return errors.New("renew IBKR session: credentials belong to another consumer or access token")
	}
	tok, err := requestLST(ctx, s.opts, creds)
	if err != nil {
		return err
	}
	return s.setToken(tok)
}

// Token returns the current live session token (a secret).
func (s *Session) Token() LiveSessionToken {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.token
}

// Expires returns when the current live session token expires.
func (s *Session) Expires() time.Time { return s.Token().Expires }

// ConsumerKey returns the session's consumer key.
func (s *Session) ConsumerKey() string { return s.consumerKey }

// currentSigner returns the signer of the current token.
func (s *Session) currentSigner() *signer {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.signer
}

// requestLST runs the handshake, retrying once when IBKR sends an empty DH
// response (seen in the wild, and harmless to repeat with a fresh exponent).
func requestLST(ctx context.Context, o Options, c *Credentials) (LiveSessionToken, error) {
	if c == nil || c.SignatureKey == nil || c.DHPrime == nil || len(c.AccessTokenSecret) == 0 {
		return LiveSessionToken{}, errors.New("live session token: credentials are incomplete (parse them with ParseCredentials)")
	}
	for attempt := 0; ; attempt++ {
		tok, err := lstOnce(ctx, o, c)
		if attempt == 0 && errors.Is(err, errEmptyDHResponse) {
			continue
		}
		return tok, err
	}
}

// lstEndpoint is the live session token path below the base URL.
const lstEndpoint = "/oauth/live_session_token"

func lstOnce(ctx context.Context, o Options, c *Credentials) (LiveSessionToken, error) {
	cl := call{op: "live session token", method: http.MethodPost, endpoint: lstEndpoint, lst: true}
	a, err := newDHExponent(o.Rand)
	if err != nil {
		return LiveSessionToken{}, fmt.Errorf("live session token: %w", err)
	}
	u := o.BaseURL + lstEndpoint
	req, err := buildLSTRequest(c, u, o.Nonce(), timestamp(o.Now()), a)
	if err != nil {
		return LiveSessionToken{}, fmt.Errorf("live session token: %w", err)
	}
	resp, err := roundTrip(ctx, o, cl, u, req.header, nil, "")
	if err != nil {
		return LiveSessionToken{}, err
	}
	if resp.status != http.StatusOK {
		return LiveSessionToken{}, classifyResponse(cl, resp.status, resp.header, resp.body)
	}
	r, err := parseLSTResponse(resp.body)
	if err != nil {
		return LiveSessionToken{}, &Error{Kind: KindBadResponse, Op: cl.op, Method: cl.method, Endpoint: cl.endpoint, Status: resp.status, Err: err}
	}
	tok, err := finishLST(r, a, c)
	switch {
	case errors.Is(err, errLSTMismatch):
		return LiveSessionToken{}, &Error{Kind: KindInvalidSignature, Op: cl.op, Method: cl.method, Endpoint: cl.endpoint, Status: resp.status, Text: err.Error()}
	case err != nil:
		return LiveSessionToken{}, &Error{Kind: KindBadResponse, Op: cl.op, Method: cl.method, Endpoint: cl.endpoint, Status: resp.status, Err: err}
	}
	return tok, nil
}

// timestamp is the OAuth timestamp: Unix seconds (IBKR rejects milliseconds).
func timestamp(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// rawResponse is what came back from one request.
type rawResponse struct {
	status int
	header http.Header
	body   []byte
}

// roundTrip paces and sends one request and reads its answer, classifying
// transport failures. A failure after an order request was written is an
// unknown outcome; before that (or on any other call) it is "unavailable".
func roundTrip(ctx context.Context, o Options, c call, fullURL, authorization string, body []byte, contentType string) (rawResponse, error) {
	fail := func(kind Kind, err error) error {
		return &Error{Kind: kind, Op: c.op, Method: c.method, Endpoint: c.endpoint, Err: err}
	}
	release, err := o.Pacer.hold(ctx, c.endpoint)
	if err == nil {
		defer release()
		err = o.Pacer.Wait(ctx, c.endpoint)
	}
	if err != nil {
		var pd *paceDeadlineError
		if errors.As(err, &pd) {
			return rawResponse{}, &Error{Kind: KindRateLimited, Op: c.op, Method: c.method, Endpoint: c.endpoint, RetryAfter: pd.wait, Err: err}
		}
		return rawResponse{}, fail(KindUnavailable, err)
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, fullURL, rd)
	if err != nil {
		return rawResponse{}, fail(KindUnavailable, err)
	}
	req.Header.Set("Authorization", authorization)
	req.Header.Set("User-Agent", o.UserAgent)
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	var sent atomic.Bool
	trace := &httptrace.ClientTrace{
		// Once headers start going out the server may act on the request.
		WroteHeaders: func() { sent.Store(true) },
		WroteRequest: func(httptrace.WroteRequestInfo) { sent.Store(true) },
	}
	req = req.WithContext(httptrace.WithClientTrace(ctx, trace))
	resp, err := o.HTTPClient.Do(req)
	if err != nil {
		if c.placesOrder && sent.Load() {
			return rawResponse{}, fail(KindOutcomeUnknown, err)
		}
		return rawResponse{}, fail(KindUnavailable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		if c.placesOrder {
			return rawResponse{}, fail(KindOutcomeUnknown, err)
		}
		return rawResponse{}, fail(KindUnavailable, err)
	}
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// do signs and sends one API request below the base URL and returns the
// body of a successful answer. query is signed (decoded, folded into the
// parameters); a JSON body is never signed; form is signed and sent as
// application/x-www-form-urlencoded when jsonBody is nil.
func (s *Session) do(ctx context.Context, c call, query url.Values, jsonBody any, form url.Values) ([]byte, error) {
	c.method = strings.ToUpper(c.method)
	o := s.opts
	base := o.BaseURL + c.endpoint
	var extra []param
	extra = valuesParams(extra, query)
	var body []byte
	var contentType string
	switch {
	case jsonBody != nil:
		b, err := json.Marshal(jsonBody)
		if err != nil {
			return nil, fmt.Errorf("%s: encode request: %w", c.op, err)
		}
		body, contentType = b, "application/json"
	case form != nil:
		extra = valuesParams(extra, form)
		body, contentType = []byte(form.Encode()), "application/x-www-form-urlencoded"
	}
	sg := s.currentSigner().sign(c.method, base, extra, o.Nonce(), timestamp(o.Now()))
	full := base
	if len(query) > 0 {
		full += "?" + query.Encode()
	}
	resp, err := roundTrip(ctx, o, c, full, sg.header, body, contentType)
	if err != nil {
		return nil, err
	}
	if resp.status < 200 || resp.status > 299 {
		return nil, classifyResponse(c, resp.status, resp.header, resp.body)
	}
	if topLevelError(resp.body) {
		return nil, classifyResponse(c, resp.status, resp.header, resp.body)
	}
	return resp.body, nil
}

// topLevelError reports whether a 2xx body is IBKR's {"error": "..."}.
func topLevelError(body []byte) bool {
	b := bytes.TrimSpace(body)
	if len(b) == 0 || b[0] != '{' || !bytes.Contains(b, []byte(`"error"`)) {
		return false
	}
	var obj struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(b, &obj) != nil {
		return false
	}
	e := string(obj.Error)
	return e != "" && e != "null" && e != `""` && e != "false"
}

// badResponse wraps a decoding failure; for an order call the order may
// exist, so the outcome is unknown.
func badResponse(c call, err error) error {
	kind := KindBadResponse
	if c.placesOrder {
		kind = KindOutcomeUnknown
	}
	return &Error{Kind: kind, Op: c.op, Method: c.method, Endpoint: c.endpoint, Status: http.StatusOK, Err: err}
}
