package ibkrsim_test

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"hash"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/ibkrsim"
)

// vectors mirrors internal/ibkr/testdata/vectors.json.
type vectors struct {
	Credentials struct {
		ConsumerKey               string `json:"consumer_key"`
		AccessToken               string `json:"access_token"`
		AccessTokenSecret         string `json:"access_token_secret"`
		AccessTokenSecretPlainHex string `json:"access_token_secret_plain_hex"`
		Realm                     string `json:"realm"`
		AccountID                 string `json:"account_id"`
		SignaturePrivateKeyPEM    string `json:"signature_private_key_pem"`
		SignaturePublicKeyPEM     string `json:"signature_public_key_pem"`
		EncryptionPrivateKeyPEM   string `json:"encryption_private_key_pem"`
		DHParamPEM                string `json:"dh_param_pem"`
		DHPrimeHex                string `json:"dh_prime_hex"`
	} `json:"credentials"`
	LSTCases []struct {
		Name    string `json:"name"`
		Request struct {
			URL           string `json:"url"`
			Nonce         string `json:"nonce"`
			Timestamp     string `json:"timestamp"`
			Challenge     string `json:"diffie_hellman_challenge"`
			Authorization string `json:"authorization"`
		} `json:"request"`
		Server struct {
			ServerSecretHex string `json:"server_secret_hex"`
			ResponseBody    string `json:"response_body"`
		} `json:"server"`
		Derived struct {
			LST            string `json:"live_session_token"`
			LSTSignature   string `json:"live_session_token_signature"`
			KHighBitSet    bool   `json:"k_high_bit_set"`
			LSTIfKUnsigned string `json:"lst_if_k_unsigned"`
		} `json:"derived"`
	} `json:"lst_cases"`
	RequestCasesLSTFrom string        `json:"request_cases_lst_from"`
	RequestCases        []requestCase `json:"request_cases"`
}

type requestCase struct {
	Name          string `json:"name"`
	Method        string `json:"method"`
	URL           string `json:"url"`
	QueryMode     string `json:"query_mode"`
	Body          string `json:"body"`
	ContentType   string `json:"content_type"`
	Nonce         string `json:"nonce"`
	Timestamp     string `json:"timestamp"`
	Authorization string `json:"authorization"`
}

func loadVectors(t testing.TB) *vectors {
	t.Helper()
	data, err := os.ReadFile("../ibkr/testdata/vectors.json")
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	var v vectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("parse vectors: %v", err)
	}
	return &v
}

func (v *vectors) consumer() ibkrsim.Consumer {
	c := v.Credentials
	return ibkrsim.Consumer{
		ConsumerKey:               c.ConsumerKey,
		AccessToken:               c.AccessToken,
		AccessTokenSecretPlainHex: c.AccessTokenSecretPlainHex,
		SignaturePublicKeyPEM:     c.SignaturePublicKeyPEM,
		DHParamPEM:                c.DHParamPEM,
		Realm:                     c.Realm,
		Accounts:                  []ibkrsim.Account{{ID: c.AccountID, Paper: true}},
	}
}

func parsePrivateKey(t testing.TB, s string) *rsa.PrivateKey {
	t.Helper()
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		t.Fatal("no PEM block")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("parse key: %v", err)
	}
	return k.(*rsa.PrivateKey)
}

// secretReader hands out the same 32 bytes on every read, so the server's
// DH exponent is the vectors' server secret.
type secretReader struct {
	mu sync.Mutex
	b  []byte
}

func (r *secretReader) Set(hexSecret string) {
	n, ok := new(big.Int).SetString(hexSecret, 16)
	if !ok {
		panic("bad secret " + hexSecret)
	}
	r.mu.Lock()
	r.b = n.FillBytes(make([]byte, 32))
	r.mu.Unlock()
}

func (r *secretReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range p {
		p[i] = r.b[i%len(r.b)]
	}
	return len(p), nil
}

// sendRaw sends a request with an exact Authorization header.
func sendRaw(t testing.TB, srvURL, method, pathQuery, host, auth, contentType, body string) (int, string) {
	t.Helper()
	return sendRawWith(t, http.DefaultClient, srvURL, method, pathQuery, host, auth, contentType, body)
}

// sendRawWith is sendRaw through a given client (a TLS test server's).
func sendRawWith(t testing.TB, hc *http.Client, srvURL, method, pathQuery, host, auth, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srvURL+pathQuery, strings.NewReader(body))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if host != "" {
		req.Host = host
	}
	req.Header.Set("User-Agent", "ibkrsim-test/1")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, pathQuery, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// enc is RFC 3986 encoding as OAuth uses it (the test's own copy).
func enc(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// client is a small independent IBKR client for driving the simulator.
type client struct {
	t      testing.TB
	base   string // http://host:port
	signAs string // URL prefix the signature uses, e.g. https://api.ibkr.com/v1/api
	key    string
	token  string
	realm  string
	secret []byte
	sigKey *rsa.PrivateKey
	prime  *big.Int
	now    func() time.Time
	http   *http.Client
	// account is the consumer's first account.
	account string
	// millis sends millisecond timestamps, a client bug IBKR refuses.
	millis bool
	// challengePrefix is sent (and signed) in front of the DH challenge.
	challengePrefix string

	mu    sync.Mutex
	lst   []byte
	nonce atomic.Int64
}

func newClient(t testing.TB, srv *httptest.Server, c ibkrsim.Consumer, sigKey *rsa.PrivateKey, now func() time.Time) *client {
	secret, err := hex.DecodeString(c.AccessTokenSecretPlainHex)
	if err != nil {
		t.Fatal(err)
	}
	prime, ok := new(big.Int).SetString(c.DHPrimeHex, 16)
	if !ok {
		prime = vectorPrime(t)
	}
	realm := c.Realm
	if realm == "" {
		realm = "limited_poa"
	}
	return &client{
		t: t, base: srv.URL, signAs: srv.URL + "/v1/api", key: c.ConsumerKey, token: c.AccessToken, realm: realm,
		secret: secret, sigKey: sigKey, prime: prime, now: now, http: srv.Client(),
	}
}

func vectorPrime(t testing.TB) *big.Int {
	p, _ := new(big.Int).SetString(loadVectors(t).Credentials.DHPrimeHex, 16)
	return p
}

func (c *client) timestamp() string {
	if c.millis {
		return fmt.Sprint(c.now().UnixMilli())
	}
	return fmt.Sprint(c.now().Unix())
}

func (c *client) nextNonce() string {
	return fmt.Sprintf("n%s%020d", strings.ToLower(c.key), c.nonce.Add(1))
}

func authHeader(realm string, params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := []string{fmt.Sprintf("realm=%q", realm)}
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=\"%s\"", k, enc(params[k])))
	}
	return "OAuth " + strings.Join(parts, ", ")
}

func paramString(params map[string]string, extra url.Values) string {
	var pairs []string
	for k, v := range params {
		pairs = append(pairs, k+"="+v)
	}
	for k, vs := range extra {
		for _, v := range vs {
			pairs = append(pairs, k+"="+v)
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

// handshake gets a live session token; it returns the status on failure.
func (c *client) handshake() (int, error) {
	a, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 256))
	if err != nil {
		return 0, err
	}
	A := new(big.Int).Exp(big.NewInt(2), a, c.prime)
	params := map[string]string{
		"oauth_consumer_key": c.key, "oauth_token": c.token, "oauth_signature_method": "RSA-SHA256",
		"oauth_timestamp": c.timestamp(), "oauth_nonce": c.nextNonce(),
		"diffie_hellman_challenge": c.challengePrefix + A.Text(16),
	}
	u := c.signAs + "/oauth/live_session_token"
	base := hex.EncodeToString(c.secret) + "POST&" + enc(u) + "&" + enc(paramString(params, nil))
	h := sha256.Sum256([]byte(base))
	sig, err := rsa.SignPKCS1v15(nil, c.sigKey, crypto.SHA256, h[:])
	if err != nil {
		return 0, err
	}
	params["oauth_signature"] = base64.StdEncoding.EncodeToString(sig)
	req, _ := http.NewRequest(http.MethodPost, c.base+"/v1/api/oauth/live_session_token", nil)
	req.Header.Set("Authorization", authHeader(c.realm, params))
	req.Header.Set("User-Agent", "ibkrsim-test/1")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct {
		B   string `json:"diffie_hellman_response"`
		Sig string `json:"live_session_token_signature"`
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("handshake: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return resp.StatusCode, err
	}
	B, ok := new(big.Int).SetString(out.B, 16)
	if !ok {
		return resp.StatusCode, fmt.Errorf("bad B %q", out.B)
	}
	K := new(big.Int).Exp(B, a, c.prime)
	kb := K.Bytes()
	if kb[0]&0x80 != 0 {
		kb = append([]byte{0}, kb...)
	}
	lst := hmacSum(sha1.New, kb, c.secret)
	if got := hex.EncodeToString(hmacSum(sha1.New, lst, []byte(c.key))); got != out.Sig {
		return resp.StatusCode, fmt.Errorf("LST signature mismatch")
	}
	c.mu.Lock()
	c.lst = lst
	c.mu.Unlock()
	return resp.StatusCode, nil
}

func hmacSum(h func() hash.Hash, key, msg []byte) []byte {
	m := hmac.New(h, key)
	m.Write(msg)
	return m.Sum(nil)
}

// signHMAC builds the Authorization header of a signed request with lst.
func (c *client) signHMAC(lst []byte, method, path string, query url.Values) string {
	params := map[string]string{
		"oauth_consumer_key": c.key, "oauth_token": c.token, "oauth_signature_method": "HMAC-SHA256",
		"oauth_timestamp": c.timestamp(), "oauth_nonce": c.nextNonce(),
	}
	base := method + "&" + enc(c.signAs+path) + "&" + enc(paramString(params, query))
	params["oauth_signature"] = base64.StdEncoding.EncodeToString(hmacSum(sha256.New, lst, []byte(base)))
	return authHeader(c.realm, params)
}

// resp is a decoded answer.
type resp struct {
	Status int
	Body   []byte
	Header http.Header
}

func (r resp) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// decode unmarshals the body, for goroutines that must not call t.Fatal.
func (r resp) decode(v any) error { return json.Unmarshal(r.Body, v) }

// callQuiet is call for goroutines other than the test's: a transport error
// becomes status 0 instead of t.Fatal.
func (c *client) callQuiet(method, pathQuery string, body any) resp {
	c.mu.Lock()
	lst := c.lst
	c.mu.Unlock()
	r, err := c.send(lst, method, pathQuery, body)
	if err != nil {
		return resp{Body: []byte(err.Error())}
	}
	return r
}

// call sends a signed request; path is relative to /v1/api and may carry a
// query; body is JSON-encoded when not nil.
func (c *client) call(method, pathQuery string, body any) resp {
	c.t.Helper()
	c.mu.Lock()
	lst := c.lst
	c.mu.Unlock()
	return c.callWith(lst, method, pathQuery, body)
}

func (c *client) callWith(lst []byte, method, pathQuery string, body any) resp {
	c.t.Helper()
	r, err := c.send(lst, method, pathQuery, body)
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

// send signs a request with lst and sends it; path is relative to /v1/api
// and may carry a query; body is JSON-encoded when not nil. It reports
// errors rather than failing the test, so any goroutine may call it.
func (c *client) send(lst []byte, method, pathQuery string, body any) (resp, error) {
	path, rawQuery, _ := strings.Cut(pathQuery, "?")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return resp{}, fmt.Errorf("query: %w", err)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return resp{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+"/v1/api"+pathQuery, rd)
	if err != nil {
		return resp{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "ibkrsim-test/1")
	req.Header.Set("Authorization", c.signHMAC(lst, method, path, q))
	res, err := c.http.Do(req)
	if err != nil {
		return resp{}, fmt.Errorf("%s %s: %w", method, pathQuery, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{Status: res.StatusCode, Body: b, Header: res.Header}, nil
}

// mustStatus fails unless r has status want.
func mustStatus(t testing.TB, what string, r resp, want int) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.Status, want, r.Body)
	}
}

func jsonReader(t testing.TB, v any) io.Reader {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}
