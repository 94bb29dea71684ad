package ibkr

import (
	"cmp"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Signature methods IBKR uses.
const (
	sigRSASHA256  = "RSA-SHA256"
	sigHMACSHA256 = "HMAC-SHA256"
)

// param is one OAuth base-string parameter, with its value decoded (raw).
type param struct{ k, v string }

// sortParams orders parameters by key, then value, in byte order.
func sortParams(ps []param) {
	slices.SortFunc(ps, func(a, b param) int {
		if c := cmp.Compare(a.k, b.k); c != 0 {
			return c
		}
		return cmp.Compare(a.v, b.v)
	})
}

// unreserved reports whether RFC 3986 keeps c as is.
func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

const upperHex = "0123456789ABCDEF"

// appendEnc appends the RFC 3986 percent-encoding of s (upper-case hex).
func appendEnc(dst []byte, s string) []byte {
	// Copy runs of unreserved bytes at once: most of a base string is.
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			continue
		}
		dst = append(dst, s[start:i]...)
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		start = i + 1
	}
	return append(dst, s[start:]...)
}

// percentEncode returns the RFC 3986 percent-encoding of s.
func percentEncode(s string) string { return string(appendEnc(nil, s)) }

// appendBaseString appends prepend + METHOD & enc(url) & enc(k=v&k=v...).
// The joined parameter string is encoded once, which is the same as encoding
// each key and value and writing "=" and "&" as %3D and %26: values go in
// raw, so "AAPL,MSFT" becomes AAPL%2CMSFT, never %252C. params must be sorted.
func appendBaseString(dst []byte, prepend, method, baseURL string, params []param) []byte {
	dst = append(dst, prepend...)
	dst = append(dst, method...)
	dst = append(dst, '&')
	dst = appendEnc(dst, baseURL)
	dst = append(dst, '&')
	for i, p := range params {
		if i > 0 {
			dst = append(dst, "%26"...)
		}
		dst = appendEnc(dst, p.k)
		dst = append(dst, "%3D"...)
		dst = appendEnc(dst, p.v)
	}
	return dst
}

// headerParams are the values of an Authorization header; the layout is
// fixed (realm first, the rest in name order), so no sorting is needed.
type headerParams struct {
	realm, challenge, consumerKey, nonce, signature, method, timestamp, token string
}

// authorization renders the canonical Authorization header: realm first, the
// other parameters sorted by name, ", " between pairs, values percent-encoded.
func (h *headerParams) authorization() string {
	b := make([]byte, 0, 256+len(h.challenge)+len(h.signature)*3/2)
	b = append(b, `OAuth realm="`...)
	b = appendEnc(b, h.realm)
	b = append(b, '"')
	pair := func(k, v string) {
		b = append(b, ", "...)
		b = append(b, k...)
		b = append(b, `="`...)
		b = appendEnc(b, v)
		b = append(b, '"')
	}
	if h.challenge != "" {
		pair("diffie_hellman_challenge", h.challenge)
	}
	pair("oauth_consumer_key", h.consumerKey)
	pair("oauth_nonce", h.nonce)
	pair("oauth_signature", h.signature)
	pair("oauth_signature_method", h.method)
	pair("oauth_timestamp", h.timestamp)
	pair("oauth_token", h.token)
	return string(b)
}

// signer signs API requests with HMAC-SHA256 keyed by the decoded LST.
type signer struct {
	consumerKey, accessToken, realm string
	key                             []byte
	// macs recycles HMAC states keyed by key: building one costs two SHA-256
	// states and their key blocks on every request otherwise.
	macs sync.Pool
}

// mac returns a reset HMAC-SHA256 keyed by the LST; give it back with
// s.macs.Put.
func (s *signer) mac() hash.Hash {
	if h, ok := s.macs.Get().(hash.Hash); ok {
		h.Reset()
		return h
	}
	return hmac.New(sha256.New, s.key)
}

// signed is the outcome of signing one request.
type signed struct {
	base      []byte
	signature string // base64, not yet percent-encoded
	header    string
}

// sign signs method on baseURL (scheme://host[:port]/path, no query) with
// extra, the decoded query and form parameters, which it may reorder.
func (s *signer) sign(method, baseURL string, extra []param, nonce, timestamp string) signed {
	var arr [16]param
	ps := append(arr[:0], extra...)
	ps = append(ps,
		param{"oauth_consumer_key", s.consumerKey},
		param{"oauth_nonce", nonce},
		param{"oauth_signature_method", sigHMACSHA256},
		param{"oauth_timestamp", timestamp},
		param{"oauth_token", s.accessToken},
	)
	sortParams(ps)
	size := len(method) + 3*len(baseURL) + 2
	for _, p := range ps {
		size += 3*(len(p.k)+len(p.v)) + 6
	}
	base := appendBaseString(make([]byte, 0, size), "", method, baseURL, ps)
	mac := s.mac()
	mac.Write(base)
	var sum [sha256.Size]byte
	sig := base64.StdEncoding.EncodeToString(mac.Sum(sum[:0]))
	s.macs.Put(mac)
	h := headerParams{
		realm: s.realm, consumerKey: s.consumerKey, nonce: nonce, signature: sig,
		method: sigHMACSHA256, timestamp: timestamp, token: s.accessToken,
	}
	return signed{base: base, signature: sig, header: h.authorization()}
}

// valuesParams flattens decoded query or form values into parameters.
func valuesParams(dst []param, vs url.Values) []param {
	for k, list := range vs {
		for _, v := range list {
			dst = append(dst, param{k, v})
		}
	}
	return dst
}

// splitURL separates a URL into the part that is signed as the URL (without
// the query) and its decoded query parameters.
func splitURL(raw string) (string, []param, error) {
	base, rawQuery, _ := strings.Cut(raw, "?")
	if rawQuery == "" {
		return base, nil, nil
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", nil, err
	}
	return base, valuesParams(nil, q), nil
}

// randomNonce returns 32 random hex digits; IBKR wants fresh alphanumerics.
func randomNonce() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
