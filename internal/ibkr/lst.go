package ibkr

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// LiveSessionToken is the symmetric key that signs every API request, and
// when IBKR stops accepting it. It is a secret: it prints redacted.
type LiveSessionToken struct {
	// Value is the LST as base64, exactly as IBKR's protocol defines it.
	Value string
	// Expires is when IBKR stops accepting the token (about 24 h out).
	Expires time.Time
}

// Format prints the expiry only.
func (t LiveSessionToken) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "LiveSessionToken{redacted, expires %s}", t.Expires.UTC().Format(time.RFC3339))
}

// dhExponentBytes is the size of the client's DH exponent a: 256 bits.
const dhExponentBytes = 32

// lstRequest is a prepared live session token request.
type lstRequest struct {
	a         *big.Int
	challenge string
	base      []byte
	signature string // base64, not yet percent-encoded
	header    string
}

// newDHExponent reads the 256-bit client exponent a from r (a CSPRNG in
// production, fixed bytes in tests). An exponent below 2 is drawn again.
func newDHExponent(r io.Reader) (*big.Int, error) {
	var b [dhExponentBytes]byte
	for range 4 {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("read DH exponent: %w", err)
		}
		if a := new(big.Int).SetBytes(b[:]); a.Cmp(big.NewInt(2)) >= 0 {
			return a, nil
		}
	}
	return nil, errors.New("read DH exponent: randomness source returns zeros")
}

// buildLSTRequest computes the challenge A = 2^a mod p, the RSA-SHA256
// signed base string (prepended with the hex access token secret) and the
// Authorization header. url is the token endpoint as addressed, no query.
func buildLSTRequest(c *Credentials, url, nonce, timestamp string, a *big.Int) (lstRequest, error) {
	A := new(big.Int).Exp(big.NewInt(2), a, c.DHPrime)
	challenge := A.Text(16)
	ps := []param{
		{"diffie_hellman_challenge", challenge},
		{"oauth_consumer_key", c.ConsumerKey},
		{"oauth_nonce", nonce},
		{"oauth_signature_method", sigRSASHA256},
		{"oauth_timestamp", timestamp},
		{"oauth_token", c.AccessToken},
	}
	sortParams(ps)
	base := appendBaseString(nil, hex.EncodeToString(c.AccessTokenSecret), "POST", url, ps)
	digest := sha256.Sum256(base)
	sigBytes, err := rsa.SignPKCS1v15(nil, c.SignatureKey, crypto.SHA256, digest[:])
	if err != nil {
		return lstRequest{}, fmt.Errorf("sign live session token request: %w", err)
	}
	sig := base64.StdEncoding.EncodeToString(sigBytes)
	h := headerParams{
		realm: c.Realm, challenge: challenge, consumerKey: c.ConsumerKey, nonce: nonce,
		signature: sig, method: sigRSASHA256, timestamp: timestamp, token: c.AccessToken,
	}
	return lstRequest{a: a, challenge: challenge, base: base, signature: sig, header: h.authorization()}, nil
}

// javaBytes returns Java's BigInteger.toByteArray of a non-negative k: the
// minimal big-endian bytes with a leading 0x00 when the top bit is set. IBKR
// keys the LST HMAC with exactly these bytes; big.Int.Bytes alone is wrong
// about half the time.
func javaBytes(k *big.Int) []byte {
	b := k.Bytes()
	if len(b) == 0 || b[0]&0x80 != 0 {
		return append([]byte{0}, b...)
	}
	return b
}

// computeLST derives the LST from IBKR's DH response B: K = B^a mod p, LST =
// HMAC-SHA1(javaBytes(K), access token secret bytes). It returns the raw
// 20 bytes.
func computeLST(B, a, p *big.Int, secret []byte) []byte {
	K := new(big.Int).Exp(B, a, p)
	mac := hmac.New(sha1.New, javaBytes(K))
	mac.Write(secret)
	return mac.Sum(nil)
}

// lstSignature is hex(HMAC-SHA1(LST bytes, consumer key)), what IBKR sends
// as live_session_token_signature.
func lstSignature(lst []byte, consumerKey string) string {
	mac := hmac.New(sha1.New, lst)
	mac.Write([]byte(consumerKey))
	return hex.EncodeToString(mac.Sum(nil))
}

// validLSTSignature reports whether want (hex, any case) matches the LST's
// signature, in constant time.
func validLSTSignature(lst []byte, consumerKey, want string) bool {
	got := lstSignature(lst, consumerKey)
	return hmac.Equal([]byte(got), []byte(strings.ToLower(strings.TrimSpace(want))))
}

// lstResponse is IBKR's answer to the LST request.
type lstResponse struct {
	// DHResponse is B in hex; it may have an odd number of digits.
	DHResponse string
	Signature  string
	// ExpiresMS is the expiry in epoch milliseconds.
	ExpiresMS int64
}

// errEmptyDHResponse marks the one LST failure worth one retry.
var errEmptyDHResponse = errors.New("IBKR sent an empty diffie_hellman_response")

// parseLSTResponse decodes the LST response body. The expiry may come as a
// number or a string; the OpenAPI document's misnamed
// diffie_hellman_challenge is accepted when diffie_hellman_response is absent.
func parseLSTResponse(body []byte) (lstResponse, error) {
	var raw struct {
		DHResponse  *string `json:"diffie_hellman_response"`
		DHChallenge *string `json:"diffie_hellman_challenge"`
		Signature   string  `json:"live_session_token_signature"`
		Expiration  Number  `json:"live_session_token_expiration"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return lstResponse{}, fmt.Errorf("live session token response is not JSON: %w", err)
	}
	var r lstResponse
	switch {
	case raw.DHResponse != nil:
		r.DHResponse = strings.TrimSpace(*raw.DHResponse)
	case raw.DHChallenge != nil:
		r.DHResponse = strings.TrimSpace(*raw.DHChallenge)
	}
	if r.DHResponse == "" {
		return lstResponse{}, errEmptyDHResponse
	}
	if !isHex(r.DHResponse) || len(r.DHResponse) > 2048 {
		return lstResponse{}, errors.New("live session token response: diffie_hellman_response is not a hex number")
	}
	r.Signature = strings.TrimSpace(raw.Signature)
	if len(r.Signature) != 40 || !isHex(r.Signature) {
		return lstResponse{}, errors.New("live session token response: live_session_token_signature is not 40 hex digits")
	}
	ms, err := strconv.ParseInt(strings.TrimSpace(string(raw.Expiration)), 10, 64)
	if err != nil || ms <= 0 {
		return lstResponse{}, errors.New("live session token response: live_session_token_expiration is not epoch milliseconds")
	}
	r.ExpiresMS = ms
	return r, nil
}

// finishLST checks B, derives and validates the LST. A failed validation
// returns errLSTMismatch and nothing else: nothing may be cached.
func finishLST(r lstResponse, a *big.Int, c *Credentials) (LiveSessionToken, error) {
	B, ok := new(big.Int).SetString(r.DHResponse, 16)
	if !ok {
		return LiveSessionToken{}, errors.New("live session token response: diffie_hellman_response is not a hex number")
	}
	// B outside [2, p-2] would make K trivial (0, 1 or p-1).
	pMinus2 := new(big.Int).Sub(c.DHPrime, big.NewInt(2))
	if B.Cmp(big.NewInt(2)) < 0 || B.Cmp(pMinus2) > 0 {
		return LiveSessionToken{}, errDHOutOfRange
	}
	lst := computeLST(B, a, c.DHPrime, c.AccessTokenSecret)
	if !validLSTSignature(lst, c.ConsumerKey, r.Signature) {
		return LiveSessionToken{}, errLSTMismatch
	}
	return LiveSessionToken{
		Value:   base64.StdEncoding.EncodeToString(lst),
		Expires: time.UnixMilli(r.ExpiresMS).UTC(),
	}, nil
}

var (
	errLSTMismatch  = errors.New("the live session token IBKR computed does not match ours (live_session_token_signature mismatch): check the access token secret, the encryption key and the DH parameters")
	errDHOutOfRange = errors.New("IBKR's diffie_hellman_response is outside [2, p-2]: check the DH parameters")
)

// Number is a JSON scalar (number, string or bool) kept as its text: IBKR
// sends numbers as strings and strings as numbers depending on the endpoint,
// and prices must stay exact decimals, never floats.
type Number string

// UnmarshalJSON accepts a string, number, bool or null.
func (f *Number) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*f = ""
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = Number(s)
	case b[0] == '{' || b[0] == '[':
		return errors.New("expected a scalar")
	default:
		*f = Number(b)
	}
	return nil
}

// hmacSHA1 returns HMAC-SHA1(key, msg).
func hmacSHA1(key, msg []byte) []byte {
	mac := hmac.New(sha1.New, key)
	mac.Write(msg)
	return mac.Sum(nil)
}
