package ibkr

import (
	"bytes"
	"encoding/json"
	"math/big"
	"os"
	"strings"
	"testing"
)

// Every parser of outside input is fuzzed: it must never panic, and what it
// accepts must satisfy its own contract. Seeds come from the vectors and
// PROTOCOL.md's examples and run as part of go test.

func seedVectorsFile(f *testing.F) *vectorFile {
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		f.Fatal(err)
	}
	var v vectorFile
	if err := jsonUnmarshalStrict(b, &v); err != nil {
		f.Fatal(err)
	}
	return &v
}

func FuzzParseRSAPrivateKey(f *testing.F) {
	v := seedVectorsFile(f)
	c := v.Credentials
	for _, s := range []string{
		c.SignaturePrivateKeyPEM, c.EncryptionPrivateKeyPEM, c.SignaturePublicKeyPEM, c.DHParamPEM,
		crlf(c.SignaturePrivateKeyPEM), oneLine(c.EncryptionPrivateKeyPEM), jsonEscaped(c.SignaturePrivateKeyPEM),
		bareBody(c.SignaturePrivateKeyPEM), "", "-----BEGIN PRIVATE KEY-----", "-----BEGIN  -----\n-----END  -----",
		"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseRSAPrivateKey(s)
		if err != nil {
			if k != nil || !strings.HasPrefix(err.Error(), "the private key ") {
				t.Fatalf("bad failure: %v", err)
			}
			return
		}
		if k.N.BitLen() < MinRSAKeyBits {
			t.Fatalf("accepted a %d-bit key", k.N.BitLen())
		}
	})
}

func FuzzParseDHPrime(f *testing.F) {
	v := seedVectorsFile(f)
	for _, s := range []string{v.Credentials.DHParamPEM, v.Credentials.DHPrimeHex, "0x" + v.Credentials.DHPrimeHex, "", "00:ff", "-----BEGIN DH PARAMETERS-----\nMAA=\n-----END DH PARAMETERS-----"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseDHPrime(s)
		if err != nil {
			if p != nil {
				t.Fatal("value with error")
			}
			return
		}
		if p.BitLen() != DHPrimeBits || p.Bit(0) != 1 {
			t.Fatalf("accepted a %d-bit (or even) prime", p.BitLen())
		}
	})
}

func FuzzParseAccessTokenSecret(f *testing.F) {
	v := seedVectorsFile(f)
	key, err := ParseRSAPrivateKey(v.Credentials.EncryptionPrivateKeyPEM)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{v.Credentials.AccessTokenSecret, v.Credentials.AccessTokenSecret[:100], "", "====", "a b\nc\rd", `\n`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		secret, err := ParseAccessTokenSecret(s, key)
		if err == nil && (len(secret) == 0 || len(secret) > key.Size()) {
			t.Fatalf("accepted a %d-byte secret", len(secret))
		}
		if err != nil && len(s) >= 24 && strings.Contains(err.Error(), s[:24]) {
			t.Fatalf("error repeats the input: %v", err)
		}
	})
}

func FuzzParseSimpleFields(f *testing.F) {
	for _, s := range []string{"QAVECTORA", "TESTCONS", "eb31c080cc0bd45b2f55", "DU1234567", "U1", "du", " ", "ÄÖÜABCDEF"} {
		f.Add(s, "limited_poa")
	}
	f.Fuzz(func(t *testing.T, s, realm string) {
		if k, err := ParseConsumerKey(s); err == nil && k != TestConsumerKey && len(k) != 9 {
			t.Fatalf("consumer key %q accepted", k)
		}
		if tok, err := ParseAccessToken(s); err == nil && (tok == "" || !isHex(tok)) {
			t.Fatalf("access token %q accepted", tok)
		}
		if id, err := ParseAccountID(s); err == nil && !strings.HasPrefix(id, "U") && !strings.HasPrefix(id, "DU") {
			t.Fatalf("account id %q accepted", id)
		}
		if r, err := ParseRealm(realm, s); err == nil && r != RealmFor(s) {
			t.Fatalf("realm %q accepted for %q", r, s)
		}
	})
}

func FuzzParseCredentialsJSON(f *testing.F) {
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		f.Fatal(err)
	}
	i := bytes.Index(b, []byte(`"credentials": {`))
	j := bytes.Index(b, []byte(`"lst_cases"`))
	if i < 0 || j < i {
		f.Fatal("vectors layout changed")
	}
	f.Add([]byte(strings.TrimSuffix(strings.TrimSpace(string(b[i+len(`"credentials": `):j])), ",")))
	f.Add([]byte(`{"consumer_key":"TESTCONS"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var in CredentialsInput
		if jsonUnmarshalStrict(data, &in) != nil {
			return
		}
		c, err := ParseCredentials(in)
		if err == nil {
			if c.SignatureKey == nil || c.EncryptionKey == nil || c.DHPrime == nil || len(c.AccessTokenSecret) == 0 {
				t.Fatal("incomplete credentials accepted")
			}
			return
		}
		ce, ok := err.(*CredentialsError)
		if !ok || len(ce.FieldErrors) == 0 {
			t.Fatalf("error %T without field errors", err)
		}
	})
}

func FuzzParseLSTResponse(f *testing.F) {
	v := seedVectorsFile(f)
	for _, lc := range v.LSTCases {
		f.Add([]byte(lc.Server.ResponseBody))
	}
	f.Add([]byte(`{"diffie_hellman_response":"","live_session_token_signature":"","live_session_token_expiration":0}`))
	f.Add([]byte(`{"diffie_hellman_challenge":"1f","live_session_token_signature":"543c55477d6cbb0e792d1e4f8111cec7305ba3f4","live_session_token_expiration":"1714575860000"}`))
	c, err := ParseCredentials(v.Credentials.CredentialsInput)
	if err != nil {
		f.Fatal(err)
	}
	a := new(big.Int).SetBytes([]byte{0x9f, 0x3c})
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseLSTResponse(body)
		if err != nil {
			return
		}
		if r.DHResponse == "" || len(r.Signature) != 40 || r.ExpiresMS <= 0 {
			t.Fatalf("accepted %+v", r)
		}
		if len(r.DHResponse) > 600 {
			return // keep modular exponentiation cheap under fuzzing
		}
		// finishLST must refuse, not panic, on whatever B and signature.
		if tok, err := finishLST(r, a, c); err == nil && tok.Value == "" {
			t.Fatal("empty token")
		}
	})
}

func FuzzParseResponses(f *testing.F) {
	seeds := []string{
		`{"authenticated":true,"competing":false,"connected":true,"message":"","MAC":"98:F2","serverInfo":{"serverName":"x"}}`,
		`{"session":"0123456789abcdef0123456789abcdef","ssoExpires":460311,"collission":false,"userId":1,"iserver":{"authStatus":{"authenticated":"true","competing":0,"connected":1}}}`,
		`{"accounts":["DU1234567"],"selectedAccount":"DU1234567","isPaper":true}`,
		`{"AAPL":[{"name":"APPLE INC","assetClass":"STK","contracts":[{"conid":265598,"exchange":"NASDAQ","isUS":true},{"conid":38708077,"exchange":"MEXI","isUS":false}]},{"name":"APPLE INC-CDR","contracts":[{"conid":532640894,"exchange":"AEQLIT","isUS":false}]}]}`,
		`[{"conid":"265598","companyName":"APPLE INC","symbol":"AAPL","description":"NASDAQ"}]`,
		`[{"order_id":"1234567890","order_status":"Submitted","encrypt_message":"1"}]`,
		`[{"id":"07a13a5a-4a48-44a5-bb25-5ab37b79186c","message":["Are you sure you want to submit this order?"],"isSuppressed":false,"messageIds":["o163"]}]`,
		`{"error":"Order couldn't be submitted: Local order ID=x is already registered."}`,
		`{"order_id":1,"conid":"265598","order_status":"Filled","cum_fill":"10","size":10,"average_price":187.25}`,
		`{"orders":[{"orderId":1,"order_ref":"c","status":"Filled","filledQuantity":10,"remainingQuantity":"0","avgPrice":"1.5"}],"snapshot":true}`,
		`[{"execution_id":"e1","order_ref":"c","size":"10","price":187.25,"trade_time_r":"1714489561000"}]`,
		`{"msg":"Request was submitted","order_id":1,"conid":265598,"account":"DU1"}`,
		`null`, `[]`, `{}`, `[null]`, `{"conid":{}}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		switch which % 10 {
		case 0:
			parseAuthStatus(body)
		case 1:
			parseTickle(body)
		case 2:
			if l, err := parseAccounts(body); err == nil {
				for _, a := range l.Accounts {
					if a == "" {
						t.Fatal("empty account id")
					}
				}
			}
		case 3:
			if m, err := parseStocks(body); err == nil {
				for sym, entries := range m {
					if l, err := pickUSListing(sym, entries); err == nil && l.Conid <= 0 {
						t.Fatal("picked a non-positive conid")
					}
				}
			}
		case 4:
			parseSecDefSearch(body)
		case 5:
			r, err := parsePlaceResponse(body)
			if err == nil {
				n := 0
				if len(r.Accepted) > 0 {
					n++
				}
				if r.Question != nil {
					n++
				}
				if r.Rejected != "" {
					n++
				}
				if n != 1 {
					t.Fatalf("union with %d shapes: %+v", n, r)
				}
			}
		case 6:
			if st, err := parseOrderStatus(body); err == nil && st.Status == "" {
				t.Fatal("status without order_status")
			}
		case 7:
			parseLiveOrders(body)
		case 8:
			parseTrades(body)
		case 9:
			parseCancel(body)
			errorText(body)
			topLevelError(body)
		}
	})
}

// jsonUnmarshalStrict decodes JSON.
func jsonUnmarshalStrict(b []byte, v any) error { return json.Unmarshal(b, v) }
