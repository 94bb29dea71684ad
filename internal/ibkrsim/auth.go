package ibkrsim

import (
	"bytes"
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const lstPath = "/oauth/live_session_token"

// authError is a refused request: status and the text IBKR would show; detail
// is for the log only.
type authError struct {
	status int
	msg    string
	detail string
}

func (e *authError) Error() string { return e.msg + ": " + e.detail }

func unauthorized(msg, detail string) *authError {
	return &authError{status: http.StatusUnauthorized, msg: msg, detail: detail}
}

// refuse answers an authError in IBKR's 401 shape, with a request id as IBKR
// puts in front of its OAuth errors.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, e *authError) {
	id := s.reqID.Add(1)
	s.log.Info().Str("path", r.URL.Path).Str("method", r.Method).Int("status", e.status).
		Str("reason", e.detail).Msg("ibkrsim: request refused")
	if e.status == http.StatusUnauthorized {
		writeError(w, e.status, fmt.Sprintf("id: %d, error: %s", id, e.msg))
		return
	}
	writeError(w, e.status, e.msg)
}

type ctxKey struct{}

// reqState is what authentication learned about a request.
type reqState struct {
	c   *consumer
	now time.Time
}

func stateOf(r *http.Request) reqState {
	st, _ := r.Context().Value(ctxKey{}).(reqState)
	return st
}

// serveAPI runs IBKR's pipeline: faults that strike before IBKR looks at the
// request, the OAuth check, pacing, then the route.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	s.totals.requests.Add(1)
	if !s.delay(r) {
		return
	}
	now := s.clock()
	rel := strings.TrimPrefix(r.URL.Path, APIPrefix)
	hdr, hdrErr := ParseAuthorization(r.Header.Get("Authorization"))
	ckey, _ := hdr.Get("oauth_consumer_key")

	if f, ok := s.faults.take(FaultLatency, rel, ckey); ok {
		t := time.NewTimer(f.latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if f, ok := s.faults.take(FaultStatus, rel, ckey); ok {
		if f.status == http.StatusTooManyRequests || f.status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		writeError(w, f.status, http.StatusText(f.status))
		return
	}
	if r.Header.Get("User-Agent") == "" {
		s.refuse(w, r, &authError{status: http.StatusBadRequest, msg: "Bad Request: User-Agent required", detail: "no User-Agent"})
		return
	}
	if rel == lstPath {
		s.handleLST(w, r, now, hdr, hdrErr)
		return
	}
	// The WebSocket authenticates by the api session cookie and the
	// oauth_token query parameter, not by a signature.
	if rel == "/ws" {
		s.serveWS(w, r, now)
		return
	}

	c, aerr := s.verifyRequest(r, now, hdr, hdrErr)
	if aerr != nil {
		s.refuse(w, r, aerr)
		return
	}
	if _, ok := s.faults.take(FaultInvalidLST, rel, ckey); ok {
		c.mu.Lock()
		c.dropLST()
		c.mu.Unlock()
		s.refuse(w, r, unauthorized("invalid live session token", "fault invalid_lst"))
		return
	}
	if retry, limited := s.pace(c, rel, now); limited {
		s.totals.tooMany.Add(1)
		w.Header().Set("Retry-After", strconv.Itoa(retry))
		writeError(w, http.StatusTooManyRequests, "Too Many Requests")
		return
	}
	if _, ok := s.faults.take(FaultCompeting, rel, ckey); ok {
		c.mu.Lock()
		c.sess.compete()
		c.mu.Unlock()
	}
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, reqState{c: c, now: now}))
	// Handler only tells whether a route exists; ServeHTTP runs it so that
	// path values are set.
	if _, pattern := s.api.Handler(r); pattern == "" {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	if f, ok := s.faults.take(FaultTimeoutAfterAccept, rel, ckey); ok {
		s.serveThenDrop(w, r, s.api, f)
		return
	}
	s.api.ServeHTTP(w, r)
}

// oauthKeys lists the Authorization parameters IBKR's requests carry, plus
// the DH challenge for the LST request; anything else (oauth_version,
// oauth_callback, a misspelt key) is refused, and all of them are required.
func oauthKeys(lst bool) []string {
	keys := []string{"realm", "oauth_consumer_key", "oauth_nonce", "oauth_signature",
		"oauth_signature_method", "oauth_timestamp", "oauth_token"}
	if lst {
		keys = append(keys, "diffie_hellman_challenge")
	}
	return keys
}

// checkCommon validates what the LST request and signed requests share and
// returns the consumer.
func (s *Server) checkCommon(hdr AuthParams, now time.Time, lst bool, method string) (*consumer, *authError) {
	keys := oauthKeys(lst)
	for _, p := range hdr.Params {
		if !slices.Contains(keys, p.Key) {
			return nil, unauthorized("invalid authorization header", "unexpected parameter "+p.Key)
		}
	}
	for _, k := range keys {
		if _, ok := hdr.Get(k); !ok {
			return nil, unauthorized("invalid authorization header", "missing parameter "+k)
		}
	}
	key, _ := hdr.Get("oauth_consumer_key")
	c := s.consumerByKey(key)
	if c == nil {
		return nil, unauthorized("invalid consumer", "unknown consumer key")
	}
	if m, _ := hdr.Get("oauth_signature_method"); m != method {
		return nil, unauthorized("invalid signature method", "signature method "+m)
	}
	if realm, _ := hdr.Get("realm"); realm != c.realm {
		return nil, unauthorized("invalid realm", "realm "+realm)
	}
	if tok, _ := hdr.Get("oauth_token"); subtle.ConstantTimeCompare([]byte(tok), []byte(c.token)) != 1 {
		return nil, unauthorized("invalid token", "access token mismatch")
	}
	ts, _ := hdr.Get("oauth_timestamp")
	if aerr := s.checkTimestamp(ts, now); aerr != nil {
		return nil, aerr
	}
	if n, _ := hdr.Get("oauth_nonce"); n == "" {
		return nil, unauthorized("invalid nonce", "empty nonce")
	}
	return c, nil
}

// checkTimestamp wants Unix seconds in exactly 10 digits (IBKR refuses
// milliseconds) within the window around now.
func (s *Server) checkTimestamp(ts string, now time.Time) *authError {
	if len(ts) != 10 {
		return unauthorized("invalid timestamp", "timestamp not 10 digits")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec < 0 || ts[0] == '+' || ts[0] == '-' {
		return unauthorized("invalid timestamp", "timestamp not a number")
	}
	skew := now.Sub(time.Unix(sec, 0))
	if skew > s.cfg.TimestampWindow || skew < -s.cfg.TimestampWindow {
		return unauthorized("invalid timestamp", "timestamp outside window")
	}
	return nil
}

// signedURL rebuilds the URL the client signed: the configured public base or
// scheme + Host + path, never a fixed host.
func (s *Server) signedURL(r *http.Request) string {
	p := r.URL.EscapedPath()
	if base := s.cfg.PublicBaseURL; base != "" {
		if strings.HasSuffix(base, APIPrefix) {
			return base + strings.TrimPrefix(p, APIPrefix)
		}
		return base + p
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + p
}

// oauthParams returns the header's parameters that enter a base string.
func oauthParams(hdr AuthParams) []kv {
	out := make([]kv, 0, len(hdr.Params)+4)
	for _, p := range hdr.Params {
		if p.Key == "realm" || p.Key == "oauth_signature" {
			continue
		}
		out = append(out, kv{p.Key, p.Value})
	}
	return out
}

// verifyRequest checks an HMAC-SHA256 signed request against the consumer's
// current live session token.
func (s *Server) verifyRequest(r *http.Request, now time.Time, hdr AuthParams, hdrErr error) (*consumer, *authError) {
	if hdrErr != nil {
		return nil, unauthorized("invalid authorization header", hdrErr.Error())
	}
	c, aerr := s.checkCommon(hdr, now, false, "HMAC-SHA256")
	if aerr != nil {
		return nil, aerr
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, &authError{status: http.StatusBadRequest, msg: "Bad Request: malformed query", detail: err.Error()}
	}
	form, aerr := formParams(r)
	if aerr != nil {
		return nil, aerr
	}
	base := oauthParams(hdr)
	base = append(base, form...)
	include := append(append([]kv(nil), base...), flatten(query)...)
	u := s.signedURL(r)
	candidates := []string{baseString("", r.Method, u, include)}
	if s.cfg.LenientQuerySigning && r.URL.RawQuery != "" {
		candidates = append(candidates,
			baseString("", r.Method, u, append([]kv(nil), base...)),
			baseString("", r.Method, u+"?"+r.URL.RawQuery, append([]kv(nil), base...)))
	}
	sig, _ := hdr.Get("oauth_signature")
	nonce, _ := hdr.Get("oauth_nonce")

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lst == nil {
		return nil, unauthorized("invalid live session token", "no live session token")
	}
	if !now.Before(c.lstExp) {
		return nil, unauthorized("live session token expired", "live session token expired")
	}
	ok := 0
	for _, b := range candidates {
		m := hmac.New(sha256.New, c.lst)
		m.Write([]byte(b))
		want := base64.StdEncoding.EncodeToString(m.Sum(nil))
		ok |= subtle.ConstantTimeCompare([]byte(want), []byte(sig))
	}
	if ok != 1 {
		if c.signedBySuperseded(candidates, sig) {
			// IBKR answers a superseded token like any bad one.
			c.stats.SupersededLSTRefusals++
			return nil, unauthorized("invalid signature", "HMAC by a superseded live session token")
		}
		return nil, unauthorized("invalid signature", "HMAC mismatch")
	}
	if !c.nonces.use(nonce, now, 2*s.cfg.TimestampWindow) {
		return nil, unauthorized("invalid nonce", "nonce reused")
	}
	c.stats.Requests++
	return c, nil
}

func flatten(q url.Values) []kv {
	var out []kv
	for k, vs := range q {
		for _, v := range vs {
			out = append(out, kv{k, v})
		}
	}
	return out
}

// formParams folds a form-encoded body into the base string (OAuth 1.0a
// §3.4.1.3) and leaves the body readable for the handler; JSON bodies are never
// signed.
func formParams(r *http.Request) ([]kv, *authError) {
	ct := r.Header.Get("Content-Type")
	if ct == "" || r.Body == nil {
		return nil, nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, &authError{status: http.StatusBadRequest, msg: "Bad Request", detail: "read body: " + err.Error()}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, &authError{status: http.StatusBadRequest, msg: "Bad Request: malformed form body", detail: err.Error()}
	}
	return flatten(vals), nil
}

// lstResponse keeps IBKR's field order.
type lstResponse struct {
	DHResponse   string `json:"diffie_hellman_response"`
	LSTSignature string `json:"live_session_token_signature"`
	LSTExpiry    int64  `json:"live_session_token_expiration"`
}

// handleLST is POST /oauth/live_session_token: RSA-SHA256 verification over
// prepend + base string, then the server half of Diffie-Hellman.
func (s *Server) handleLST(w http.ResponseWriter, r *http.Request, now time.Time, hdr AuthParams, hdrErr error) {
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	if r.Body != nil {
		var one [1]byte
		if n, _ := io.ReadFull(r.Body, one[:]); n > 0 {
			s.refuse(w, r, &authError{status: http.StatusBadRequest, msg: "Bad Request: body not allowed", detail: "LST request with a body"})
			return
		}
	}
	if hdrErr != nil {
		s.refuse(w, r, unauthorized("invalid authorization header", hdrErr.Error()))
		return
	}
	c, aerr := s.checkCommon(hdr, now, true, "RSA-SHA256")
	if aerr != nil {
		s.refuse(w, r, aerr)
		return
	}
	challenge, _ := hdr.Get("diffie_hellman_challenge")
	A, ok := new(big.Int).SetString(challenge, 16)
	pm2 := new(big.Int).Sub(c.prime, big.NewInt(2))
	if !ok || A.Cmp(big.NewInt(2)) < 0 || A.Cmp(pm2) > 0 {
		s.refuse(w, r, unauthorized("invalid diffie_hellman_challenge", "challenge not in [2, p-2]"))
		return
	}
	sigB64, _ := hdr.Get("oauth_signature")
	sig, err := base64.StdEncoding.Strict().DecodeString(sigB64)
	if err != nil {
		s.refuse(w, r, unauthorized("invalid signature", "signature not base64"))
		return
	}
	// The challenge enters the base string exactly as sent (oauthParams keeps
	// raw values), so a client sending a leading 0 must sign it that way.
	base := baseString(c.prepend, http.MethodPost, s.signedURL(r), oauthParams(hdr))
	digest := sha256.Sum256([]byte(base))
	if err := rsa.VerifyPKCS1v15(c.sigKey, crypto.SHA256, digest[:], sig); err != nil {
		s.refuse(w, r, unauthorized("invalid signature", "RSA verification failed"))
		return
	}
	nonce, _ := hdr.Get("oauth_nonce")
	c.mu.Lock()
	fresh := c.nonces.use(nonce, now, 2*s.cfg.TimestampWindow)
	c.mu.Unlock()
	if !fresh {
		s.refuse(w, r, unauthorized("invalid nonce", "nonce reused"))
		return
	}

	b, err := s.dhExponent(c.prime)
	if err != nil {
		s.log.Error().Err(err).Msg("ibkrsim: DH exponent")
		writeError(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	B := new(big.Int).Exp(big.NewInt(dhGenerator), b, c.prime)
	K := new(big.Int).Exp(A, b, c.prime)
	lst := hmacSHA1(javaBytes(K), c.secret)
	sigHex := hex.EncodeToString(hmacSHA1(lst, []byte(c.key)))
	exp := now.Add(s.cfg.LSTTTL)
	sid := make([]byte, 16)
	if err := s.readRand(sid); err != nil {
		writeError(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}

	c.mu.Lock()
	// A new token supersedes the old one and, as at IBKR, needs a new
	// brokerage session; another login holding the username's session
	// still holds it.
	c.supersede()
	c.stats.Handshakes++
	c.lst = lst
	c.lstExp = exp
	c.apiSID = hex.EncodeToString(sid)
	c.sess = c.sess.afterToken()
	clear(c.pending)
	c.mu.Unlock()
	s.totals.handshakes.Add(1)

	writeJSON(w, http.StatusOK, lstResponse{
		DHResponse:   B.Text(16),
		LSTSignature: sigHex,
		LSTExpiry:    exp.UnixMilli(),
	})
}

// dhExponent draws 256 random bits for b, retrying the negligible b < 2.
func (s *Server) dhExponent(p *big.Int) (*big.Int, error) {
	buf := make([]byte, 32)
	for range 8 {
		if err := s.readRand(buf); err != nil {
			return nil, fmt.Errorf("read random: %w", err)
		}
		b := new(big.Int).SetBytes(buf)
		if b.Cmp(big.NewInt(2)) >= 0 && b.Cmp(p) < 0 {
			return b, nil
		}
	}
	return nil, fmt.Errorf("no usable exponent")
}

// javaBytes is Java's BigInteger.toByteArray for a positive number: minimal
// big-endian bytes with a leading 0x00 when the top bit is set. IBKR keys the
// LST HMAC with exactly these bytes.
func javaBytes(k *big.Int) []byte {
	b := k.Bytes()
	if len(b) == 0 {
		return []byte{0}
	}
	if b[0]&0x80 != 0 {
		return append([]byte{0}, b...)
	}
	return b
}

func hmacSHA1(key, msg []byte) []byte {
	m := hmac.New(sha1.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// dropLST forgets the live session token; the caller holds c.mu.
func (c *consumer) dropLST() {
	c.lst = nil
	c.lstExp = time.Time{}
	c.sess = c.sess.afterToken()
	clear(c.pending)
}
