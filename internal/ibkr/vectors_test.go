package ibkr

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// vectorFile mirrors testdata/vectors.json (a copy of shared/ibkr/vectors.json).
type vectorFile struct {
	Credentials struct {
		CredentialsInput
		AccessTokenSecretPlainHex string `json:"access_token_secret_plain_hex"`
		Prepend                   string `json:"prepend"`
		SignaturePublicKeyPEM     string `json:"signature_public_key_pem"`
		EncryptionPublicKeyPEM    string `json:"encryption_public_key_pem"`
		DHGenerator               int    `json:"dh_generator"`
	} `json:"credentials"`
	LSTCases []struct {
		Name    string `json:"name"`
		Request struct {
			Method        string            `json:"method"`
			URL           string            `json:"url"`
			DHRandomHex   string            `json:"dh_random_hex"`
			Nonce         string            `json:"nonce"`
			Timestamp     string            `json:"timestamp"`
			Challenge     string            `json:"diffie_hellman_challenge"`
			OAuthParams   map[string]string `json:"oauth_params"`
			ParamString   string            `json:"parameter_string"`
			BaseString    string            `json:"base_string"`
			SignatureB64  string            `json:"signature_b64"`
			SignaturePct  string            `json:"signature_pct"`
			Authorization string            `json:"authorization"`
		} `json:"request"`
		Server struct {
			ResponseBody string `json:"response_body"`
			DHResponse   string `json:"diffie_hellman_response"`
			Signature    string `json:"live_session_token_signature"`
			ExpirationMS int64  `json:"live_session_token_expiration"`
		} `json:"server"`
		Derived struct {
			KHex                    string `json:"k_hex"`
			KBitLength              int    `json:"k_bit_length"`
			KHighBitSet             bool   `json:"k_high_bit_set"`
			KJavaBytesHex           string `json:"k_java_bytes_hex"`
			KJavaBytesLen           int    `json:"k_java_bytes_len"`
			DHResponseHexLen        int    `json:"dh_response_hex_len"`
			LST                     string `json:"live_session_token"`
			LSTSignature            string `json:"live_session_token_signature"`
			LSTIfKUnsigned          string `json:"lst_if_k_unsigned"`
			LSTSignatureIfKUnsigned string `json:"lst_signature_if_k_unsigned"`
		} `json:"derived"`
	} `json:"lst_cases"`
	RequestCasesLSTFrom string        `json:"request_cases_lst_from"`
	RequestCases        []requestCase `json:"request_cases"`
	Official            struct {
		ConsumerKey  string `json:"consumer_key"`
		AccessToken  string `json:"access_token"`
		Realm        string `json:"realm"`
		LST          string `json:"live_session_token"`
		LSTSignature string `json:"live_session_token_signature"`
		GetRequest   struct {
			Method       string `json:"method"`
			URL          string `json:"url"`
			Nonce        string `json:"nonce"`
			Timestamp    string `json:"timestamp"`
			BaseString   string `json:"base_string"`
			SignatureB64 string `json:"signature_b64"`
		} `json:"get_request"`
	} `json:"official_vectors"`
}

type requestCase struct {
	Name          string            `json:"name"`
	Method        string            `json:"method"`
	URL           string            `json:"url"`
	QueryMode     string            `json:"query_mode"`
	Body          string            `json:"body"`
	ContentType   string            `json:"content_type"`
	Nonce         string            `json:"nonce"`
	Timestamp     string            `json:"timestamp"`
	OAuthParams   map[string]string `json:"oauth_params"`
	ParamString   string            `json:"parameter_string"`
	BaseString    string            `json:"base_string"`
	SignatureB64  string            `json:"signature_b64"`
	SignaturePct  string            `json:"signature_pct"`
	Authorization string            `json:"authorization"`
}

func loadVectors(t testing.TB) *vectorFile {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.LSTCases) != 4 || len(v.RequestCases) == 0 {
		t.Fatalf("vectors incomplete: %d lst cases, %d request cases", len(v.LSTCases), len(v.RequestCases))
	}
	return &v
}

func vectorCredentials(t testing.TB, v *vectorFile) *Credentials {
	t.Helper()
	c, err := ParseCredentials(v.Credentials.CredentialsInput)
	if err != nil {
		t.Fatalf("ParseCredentials(vector credentials): %v", err)
	}
	return c
}

func mustHexInt(t testing.TB, s string) *big.Int {
	t.Helper()
	n, ok := new(big.Int).SetString(s, 16)
	if !ok {
		t.Fatalf("bad hex %q", s)
	}
	return n
}

func TestVectorCredentials(t *testing.T) {
	v := loadVectors(t)
	c := vectorCredentials(t, v)
	got := map[string]string{
		"secret":  hex.EncodeToString(c.AccessTokenSecret),
		"prepend": hex.EncodeToString(c.AccessTokenSecret),
		"realm":   c.Realm,
		"prime":   c.DHPrime.Text(16),
	}
	want := map[string]string{
		"secret":  v.Credentials.AccessTokenSecretPlainHex,
		"prepend": v.Credentials.Prepend,
		"realm":   v.Credentials.Realm,
		"prime":   strings.ToLower(v.Credentials.DHPrimeHex),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("credentials (-want +got):\n%s", diff)
	}
	if c.EncryptionKeyDefaulted {
		t.Error("EncryptionKeyDefaulted = true with an explicit encryption key")
	}
	// The hex prime field alone yields the same prime as the PEM.
	in := v.Credentials.CredentialsInput
	in.DHParamPEM = ""
	c2, err := ParseCredentials(in)
	if err != nil {
		t.Fatalf("ParseCredentials(hex prime only): %v", err)
	}
	if c2.DHPrime.Cmp(c.DHPrime) != 0 {
		t.Error("dh_prime_hex and dh_param_pem give different primes")
	}
}

func TestVectorLSTRequests(t *testing.T) {
	v := loadVectors(t)
	c := vectorCredentials(t, v)
	for _, tc := range v.LSTCases {
		t.Run(tc.Name, func(t *testing.T) {
			rq := tc.Request
			// dh_random_hex is a number (one case has 62 digits): feed it to
			// the exponent reader as 32 big-endian bytes, as a CSPRNG would.
			a, err := newDHExponent(bytes.NewReader(mustHexInt(t, rq.DHRandomHex).FillBytes(make([]byte, dhExponentBytes))))
			if err != nil {
				t.Fatal(err)
			}
			req, err := buildLSTRequest(c, rq.URL, rq.Nonce, rq.Timestamp, a)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{
				"challenge":     req.challenge,
				"base_string":   string(req.base),
				"signature_b64": req.signature,
				"signature_pct": percentEncode(req.signature),
				"authorization": req.header,
				"prepend":       string(req.base[:len(v.Credentials.Prepend)]),
			}
			want := map[string]string{
				"challenge":     rq.Challenge,
				"base_string":   rq.BaseString,
				"signature_b64": rq.SignatureB64,
				"signature_pct": rq.SignaturePct,
				"authorization": rq.Authorization,
				"prepend":       v.Credentials.Prepend,
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("LST request (-want +got):\n%s", diff)
			}
			// The parameter string is the base string's last part, decoded.
			if !strings.HasSuffix(rq.BaseString, "&"+percentEncode(rq.ParamString)) {
				t.Errorf("parameter_string %q is not the encoded tail of the base string", rq.ParamString)
			}
			if rq.OAuthParams["diffie_hellman_challenge"] != req.challenge || rq.OAuthParams["oauth_signature_method"] != "RSA-SHA256" {
				t.Errorf("oauth_params disagree with the request: %v", rq.OAuthParams)
			}
		})
	}
}

func mustHexBytes(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVectorLSTDerivation(t *testing.T) {
	v := loadVectors(t)
	c := vectorCredentials(t, v)
	for _, tc := range v.LSTCases {
		t.Run(tc.Name, func(t *testing.T) {
			a := mustHexInt(t, tc.Request.DHRandomHex)
			resp, err := parseLSTResponse([]byte(tc.Server.ResponseBody))
			if err != nil {
				t.Fatal(err)
			}
			B := mustHexInt(t, resp.DHResponse)
			K := new(big.Int).Exp(B, a, c.DHPrime)
			kb := javaBytes(K)
			tok, err := finishLST(resp, a, c)
			if err != nil {
				t.Fatalf("finishLST: %v", err)
			}
			unsigned := computeLSTUnsigned(K, c.AccessTokenSecret)
			got := map[string]any{
				"dh_response":         resp.DHResponse,
				"dh_response_hex_len": len(resp.DHResponse),
				"k_hex":               K.Text(16),
				"k_bit_length":        K.BitLen(),
				"k_high_bit_set":      K.BitLen()%8 == 0,
				"k_java_bytes_hex":    hex.EncodeToString(kb),
				"k_java_bytes_len":    len(kb),
				"lst":                 tok.Value,
				"lst_signature":       lstSignature(mustB64(t, tok.Value), c.ConsumerKey),
				"expires":             tok.Expires,
				"lst_if_k_unsigned":   base64.StdEncoding.EncodeToString(unsigned),
				"lst_sig_if_unsigned": lstSignature(unsigned, c.ConsumerKey),
				"unsigned_differs":    base64.StdEncoding.EncodeToString(unsigned) != tok.Value,
				"response_signature":  resp.Signature,
			}
			d := tc.Derived
			want := map[string]any{
				"dh_response":         tc.Server.DHResponse,
				"dh_response_hex_len": d.DHResponseHexLen,
				"k_hex":               d.KHex,
				"k_bit_length":        d.KBitLength,
				"k_high_bit_set":      d.KHighBitSet,
				"k_java_bytes_hex":    d.KJavaBytesHex,
				"k_java_bytes_len":    d.KJavaBytesLen,
				"lst":                 d.LST,
				"lst_signature":       d.LSTSignature,
				"expires":             time.UnixMilli(tc.Server.ExpirationMS).UTC(),
				"lst_if_k_unsigned":   d.LSTIfKUnsigned,
				"lst_sig_if_unsigned": d.LSTSignatureIfKUnsigned,
				// The wrong (unsigned) value differs exactly when Java adds the sign byte.
				"unsigned_differs":   d.KHighBitSet,
				"response_signature": tc.Server.Signature,
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("LST derivation (-want +got):\n%s", diff)
			}
		})
	}
}

// computeLSTUnsigned is the classic bug: keying the HMAC with big.Int.Bytes.
func computeLSTUnsigned(K *big.Int, secret []byte) []byte {
	return hmacSHA1(K.Bytes(), secret)
}

func mustB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func vectorSigner(t testing.TB, v *vectorFile) *signer {
	t.Helper()
	var lst string
	for _, tc := range v.LSTCases {
		if tc.Name == v.RequestCasesLSTFrom {
			lst = tc.Derived.LST
		}
	}
	if lst == "" {
		t.Fatalf("no LST case named %q", v.RequestCasesLSTFrom)
	}
	return &signer{
		consumerKey: v.Credentials.ConsumerKey,
		accessToken: v.Credentials.AccessToken,
		realm:       v.Credentials.Realm,
		key:         mustB64(t, lst),
	}
}

func TestVectorRequestSigning(t *testing.T) {
	v := loadVectors(t)
	s := vectorSigner(t, v)
	n := 0
	for _, rc := range v.RequestCases {
		if rc.QueryMode != "include" {
			// exclude and in_url are the simulator's lenient variants.
			continue
		}
		n++
		t.Run(rc.Name, func(t *testing.T) {
			base, params, err := splitURL(rc.URL)
			if err != nil {
				t.Fatal(err)
			}
			got := s.sign(rc.Method, base, params, rc.Nonce, rc.Timestamp)
			gotM := map[string]string{
				"base_string":   string(got.base),
				"signature_b64": got.signature,
				"signature_pct": percentEncode(got.signature),
				"authorization": got.header,
			}
			wantM := map[string]string{
				"base_string":   rc.BaseString,
				"signature_b64": rc.SignatureB64,
				"signature_pct": rc.SignaturePct,
				"authorization": rc.Authorization,
			}
			if diff := cmp.Diff(wantM, gotM); diff != "" {
				t.Errorf("request signing (-want +got):\n%s", diff)
			}
			if !strings.HasSuffix(rc.BaseString, "&"+percentEncode(rc.ParamString)) {
				t.Errorf("parameter_string %q is not the encoded tail of the base string", rc.ParamString)
			}
		})
	}
	if n < 10 {
		t.Fatalf("only %d include cases exercised", n)
	}
}

func TestOfficialTESTCONSVector(t *testing.T) {
	v := loadVectors(t)
	o := v.Official
	lst := mustB64(t, o.LST)
	if !validLSTSignature(lst, o.ConsumerKey, o.LSTSignature) {
		t.Errorf("official LST does not validate against %s", o.LSTSignature)
	}
	if got := lstSignature(lst, o.ConsumerKey); got != o.LSTSignature {
		t.Errorf("lstSignature = %s, want %s", got, o.LSTSignature)
	}
	if validLSTSignature(lst, "QAVECTORA", o.LSTSignature) {
		t.Error("official LST validates for the wrong consumer key")
	}
	realm, err := ParseRealm("", o.ConsumerKey)
	if err != nil || realm != o.Realm {
		t.Errorf("ParseRealm(TESTCONS) = %q, %v; want %q", realm, err, o.Realm)
	}
	s := &signer{consumerKey: o.ConsumerKey, accessToken: o.AccessToken, realm: realm, key: lst}
	gr := o.GetRequest
	base, params, err := splitURL(gr.URL)
	if err != nil {
		t.Fatal(err)
	}
	got := s.sign(gr.Method, base, params, gr.Nonce, gr.Timestamp)
	if diff := cmp.Diff(
		map[string]string{"base": gr.BaseString, "sig": gr.SignatureB64},
		map[string]string{"base": string(got.base), "sig": got.signature},
	); diff != "" {
		t.Errorf("official get_request (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(got.header, `OAuth realm="test_realm", oauth_consumer_key="TESTCONS", `) {
		t.Errorf("header = %s", got.header)
	}
}

// TestSignerConcurrent signs every include case from many goroutines at once
// with one signer (its HMAC states are pooled) and expects the vectors.
func TestSignerConcurrent(t *testing.T) {
	v := loadVectors(t)
	s := vectorSigner(t, v)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				for _, rc := range v.RequestCases {
					if rc.QueryMode != "include" {
						continue
					}
					base, params, err := splitURL(rc.URL)
					if err != nil {
						t.Error(err)
						return
					}
					if got := s.sign(rc.Method, base, params, rc.Nonce, rc.Timestamp); got.header != rc.Authorization {
						t.Errorf("%s: header %s", rc.Name, got.header)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}
