package ibkr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestHandshakeOverHTTP(t *testing.T) {
	f := newFake(t)
	o, _ := vectorOptions(t, f)
	creds := vectorCredentials(t, f.v)
	s, err := Handshake(context.Background(), o, creds)
	if err != nil {
		t.Fatalf("Handshake: %v", err)
	}
	lc := f.v.LSTCases[0]
	got := map[string]any{"lst": s.Token().Value, "expires": s.Expires()}
	want := map[string]any{"lst": lc.Derived.LST, "expires": time.UnixMilli(lc.Server.ExpirationMS).UTC()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("token (-want +got):\n%s", diff)
	}
	reqs := f.recorded()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	// Same parameters as the vector, only the URL differs, so the header
	// agrees with the vector up to the signature.
	wantPrefix := `OAuth realm="limited_poa", diffie_hellman_challenge="` + lc.Request.Challenge + `", oauth_consumer_key="QAVECTORA", oauth_nonce="0000000000000000000000005eed0000", oauth_signature="`
	if !strings.HasPrefix(r.Auth, wantPrefix) || !strings.HasSuffix(r.Auth, `", oauth_signature_method="RSA-SHA256", oauth_timestamp="1714489460", oauth_token="eb31c080cc0bd45b2f55"`) {
		t.Errorf("Authorization = %s", r.Auth)
	}
	if r.Method != "POST" || r.Body != "" || r.Query != "" {
		t.Errorf("request = %+v", r)
	}
}

func TestHandshakeFailures(t *testing.T) {
	v := loadVectors(t)
	lc := v.LSTCases[0]
	p := mustHexInt(t, v.Credentials.DHPrimeHex)
	pMinus1 := p.Text(16)[:len(p.Text(16))-1] + string(p.Text(16)[len(p.Text(16))-1]-1)
	body := func(b string, sig string) string {
		return fmt.Sprintf(`{"diffie_hellman_response":%q,"live_session_token_signature":%q,"live_session_token_expiration":%d}`, b, sig, lc.Server.ExpirationMS)
	}
	tests := []struct {
		name      string
		responses []func(w http.ResponseWriter)
		wantKind  Kind
		wantReqs  int
		wantText  string
	}{
		{"empty B is retried once", []func(http.ResponseWriter){
			reply(200, body("", lc.Server.Signature)), reply(200, lc.Server.ResponseBody)}, "", 2, ""},
		{"empty B twice", []func(http.ResponseWriter){
			reply(200, body("", lc.Server.Signature)), reply(200, body("", lc.Server.Signature))}, KindBadResponse, 2, ""},
		{"B = 1 out of range", []func(http.ResponseWriter){reply(200, body("1", lc.Server.Signature))}, KindBadResponse, 1, ""},
		{"B = p-1 out of range", []func(http.ResponseWriter){reply(200, body(pMinus1, lc.Server.Signature))}, KindBadResponse, 1, ""},
		{"signature mismatch", []func(http.ResponseWriter){reply(200, body(lc.Server.DHResponse, v.LSTCases[1].Server.Signature))}, KindInvalidSignature, 1, "does not match"},
		{"expiration as string", []func(http.ResponseWriter){reply(200, strings.Replace(lc.Server.ResponseBody, fmt.Sprint(lc.Server.ExpirationMS), fmt.Sprintf("%q", fmt.Sprint(lc.Server.ExpirationMS)), 1))}, "", 1, ""},
		{"invalid consumer", []func(http.ResponseWriter){reply(401, `{"error":"id: 3132, error: invalid consumer","statusCode":401}`)}, KindConsumerNotRecognized, 1, "invalid consumer"},
		{"no access secret", []func(http.ResponseWriter){reply(401, `{"error":"id: 1, error: LST failed, error: No access secret key found for access token","statusCode":401}`)}, KindInvalidAccessToken, 1, ""},
		{"bad signature", []func(http.ResponseWriter){reply(401, `{"error":"id: 7, error: invalid signature","statusCode":401}`)}, KindInvalidSignature, 1, "invalid signature"},
		{"server error", []func(http.ResponseWriter){reply(503, `upstream down`)}, KindUnavailable, 1, "upstream down"},
		{"rate limited", []func(http.ResponseWriter){replyHeader(429, "Retry-After", "7", `{"error":"too many"}`)}, KindRateLimited, 1, ""},
		{"not json", []func(http.ResponseWriter){reply(200, `<html>`)}, KindBadResponse, 1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			var n atomic.Int32
			f.handle("POST /oauth/live_session_token", func(w http.ResponseWriter, r *http.Request) {
				i := int(n.Add(1)) - 1
				tc.responses[min(i, len(tc.responses)-1)](w)
			})
			o, _ := vectorOptions(t, f)
			s, err := Handshake(context.Background(), o, vectorCredentials(t, v))
			if got := KindOf(err); got != tc.wantKind {
				t.Fatalf("KindOf(%v) = %q, want %q", err, got, tc.wantKind)
			}
			if int(n.Load()) != tc.wantReqs {
				t.Errorf("%d requests, want %d", n.Load(), tc.wantReqs)
			}
			if tc.wantKind == "" {
				if s.Token().Value != lc.Derived.LST {
					t.Error("wrong LST")
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatal("not an *Error")
			}
			if e.Endpoint != lstEndpoint || !strings.Contains(e.Text, tc.wantText) {
				t.Errorf("error = %+v", e)
			}
			if tc.wantKind == KindRateLimited && e.RetryAfter != 7*time.Second {
				t.Errorf("RetryAfter = %s", e.RetryAfter)
			}
		})
	}
}

func reply(status int, body string) func(http.ResponseWriter) {
	return replyHeader(status, "", "", body)
}

func replyHeader(status int, k, v, body string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if k != "" {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func TestHandshakeRejectsIncompleteCredentials(t *testing.T) {
	f := newFake(t)
	o, _ := vectorOptions(t, f)
	c := vectorCredentials(t, f.v)
	c.AccessTokenSecret = nil
	if _, err := Handshake(context.Background(), o, c); err == nil {
		t.Fatal("Handshake without a secret succeeded")
	}
	if n := len(f.recorded()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

// TestSignedCallClassification drives each typed call into each answer IBKR
// is known to give and checks the Kind.
func TestSignedCallClassification(t *testing.T) {
	order := Order{AcctID: "DU1234567", Conid: 265598, COID: "c-1", OrderType: "MKT", Side: "BUY", Quantity: 1, TIF: "OPG"}
	place := func(s *Session) error {
		_, err := s.PlaceOrder(context.Background(), "DU1234567", order, nil)
		return err
	}
	accounts := func(s *Session) error { _, err := s.Accounts(context.Background()); return err }
	status := func(s *Session) error { _, err := s.OrderStatus(context.Background(), "1"); return err }
	cancel := func(s *Session) error { _, err := s.CancelOrder(context.Background(), "DU1234567", "1"); return err }
	tickle := func(s *Session) error { _, err := s.Tickle(context.Background()); return err }
	initB := func(s *Session) error { _, err := s.InitBrokerage(context.Background()); return err }
	const placePath = "POST /iserver/account/DU1234567/orders"
	tests := []struct {
		name     string
		route    string
		status   int
		body     string
		header   [2]string
		call     func(*Session) error
		want     Kind
		wantText string
		retry    time.Duration
	}{
		{"401 on signed call is an expired token", "GET /iserver/accounts", 401, `{"error":"not authorized"}`, [2]string{}, accounts, KindTokenExpired, "", 0},
		{"410 is an expired token", "GET /iserver/accounts", 410, ``, [2]string{}, accounts, KindTokenExpired, "Gone", 0},
		{"no bridge", "GET /iserver/accounts", 400, `{"error":"Bad Request: no bridge","statusCode":400}`, [2]string{}, accounts, KindNoBrokerageSession, "no bridge", 0},
		{"accounts not queried 500", placePath, 500, `{"error":"Please query /accounts first"}`, [2]string{}, place, KindAccountsNotQueried, "", 0},
		{"accounts not queried 400", "GET /iserver/account/order/status/1", 400, `{"error":"Please query /accounts first"}`, [2]string{}, status, KindAccountsNotQueried, "", 0},
		{"rate limited", "GET /iserver/accounts", 429, ``, [2]string{"Retry-After", "12"}, accounts, KindRateLimited, "", 12 * time.Second},
		{"rate limited without Retry-After", "GET /iserver/accounts", 429, ``, [2]string{}, accounts, KindRateLimited, "", time.Second},
		{"5xx unavailable", "GET /iserver/accounts", 503, `{"error":"Service Unavailable"}`, [2]string{}, accounts, KindUnavailable, "", 0},
		{"duplicate cOID", placePath, 200, `{"error":"Order couldn't be submitted: Local order ID=c-1 is already registered."}`, [2]string{}, place, KindDuplicateOrder, "Local order ID=c-1", 0},
		{"duplicate cOID as 400", placePath, 400, `{"error":"Order couldn't be submitted: Local order ID=c-1 is already registered."}`, [2]string{}, place, KindDuplicateOrder, "", 0},
		{"rejected 200", placePath, 200, `{"error":"Insufficient buying power"}`, [2]string{}, place, KindOrderRejected, "Insufficient buying power", 0},
		{"rejected in array", placePath, 200, `[{"error":"Order price exceeds the limit"}]`, [2]string{}, place, KindOrderRejected, "Order price exceeds the limit", 0},
		{"rejected 400", placePath, 400, `{"error":"Invalid order type"}`, [2]string{}, place, KindOrderRejected, "Invalid order type", 0},
		{"account not found", placePath, 400, `{"error":"Account DU1234567 not found"}`, [2]string{}, place, KindAccountNotFound, "", 0},
		{"no permission 403", placePath, 403, `{"error":"Forbidden"}`, [2]string{}, place, KindNoPermission, "", 0},
		{"no permission text", placePath, 400, `{"error":"No trading permissions for this contract"}`, [2]string{}, place, KindNoPermission, "", 0},
		{"gateway timeout on an order", placePath, 504, `Gateway Timeout`, [2]string{}, place, KindOutcomeUnknown, "", 0},
		{"gateway timeout on a read", "GET /iserver/accounts", 504, ``, [2]string{}, accounts, KindUnavailable, "Gateway Timeout", 0},
		{"garbage answer to an order", placePath, 200, `<html>`, [2]string{}, place, KindOutcomeUnknown, "", 0},
		{"garbage answer to a read", "GET /iserver/accounts", 200, `[1,2]`, [2]string{}, accounts, KindBadResponse, "", 0},
		{"cancel refused", "DELETE /iserver/account/DU1234567/order/1", 400, `{"error":"OrderID 1 doesn't exist"}`, [2]string{}, cancel, KindOrderRejected, "doesn't exist", 0},
		{"tickle not authenticated", "POST /tickle", 200, `{"session":"abc","iserver":{"authStatus":{"authenticated":false,"connected":false,"competing":false}}}`, [2]string{}, tickle, KindNoBrokerageSession, "", 0},
		{"tickle without brokerage session", "POST /tickle", 200, `{"session":"abc"}`, [2]string{}, tickle, KindNoBrokerageSession, "", 0},
		{"ssodh failure", "POST /iserver/auth/ssodh/init", 500, `{"error":"failed to generate sso dh token"}`, [2]string{}, initB, KindUnavailable, "sso dh", 0},
		{"ssodh not authenticated", "POST /iserver/auth/ssodh/init", 200, `{"authenticated":false,"connected":true,"competing":false,"message":"not yet"}`, [2]string{}, initB, KindNoBrokerageSession, "not yet", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.handle(tc.route, func(w http.ResponseWriter, r *http.Request) {
				if tc.header[0] != "" {
					w.Header().Set(tc.header[0], tc.header[1])
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			s, _ := vectorSession(t, f)
			err := tc.call(s)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if e.Kind != tc.want || !strings.Contains(e.Text, tc.wantText) || e.RetryAfter != tc.retry {
				t.Errorf("got kind %q text %q retry %s; want %q %q %s", e.Kind, e.Text, e.RetryAfter, tc.want, tc.wantText, tc.retry)
			}
			if want := strings.SplitN(tc.route, " ", 2)[1]; e.Endpoint != want {
				t.Errorf("Endpoint = %q, want %q", e.Endpoint, want)
			}
		})
	}
}

// TestTransportFailures: a broken connection or timeout after an order was
// sent is an unknown outcome; the same on a read, or before sending, is
// "unavailable".
func TestTransportFailures(t *testing.T) {
	order := Order{Conid: 265598, COID: "c-2", OrderType: "LMT", Price: "187.25", Side: "BUY", Quantity: 3, TIF: "OPG"}
	hangUp := func(w http.ResponseWriter, r *http.Request) {
		hj, ok := w.(http.Hijacker)
		if !ok {
			t.Error("no hijacker")
			return
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			conn.Close()
		}
	}
	t.Run("order, connection dropped after sending", func(t *testing.T) {
		f := newFake(t)
		f.handle("POST /iserver/account/DU1234567/orders", hangUp)
		s, _ := vectorSession(t, f)
		_, err := s.PlaceOrder(context.Background(), "DU1234567", order, nil)
		if KindOf(err) != KindOutcomeUnknown {
			t.Fatalf("KindOf(%v) = %q", err, KindOf(err))
		}
		if got := f.recorded(); len(got) != 1 || !strings.Contains(got[0].Body, `"price":187.25`) {
			t.Errorf("requests = %+v", got)
		}
	})
	t.Run("reply confirmation, connection dropped", func(t *testing.T) {
		f := newFake(t)
		f.respond("POST /iserver/account/DU1234567/orders", 200, `[{"id":"q1","message":["sure?"],"messageIds":["o163"]}]`)
		f.handle("POST /iserver/reply/q1", hangUp)
		s, _ := vectorSession(t, f)
		_, err := s.PlaceOrder(context.Background(), "DU1234567", order, ConfirmMessageIDs("o163"))
		if KindOf(err) != KindOutcomeUnknown {
			t.Fatalf("KindOf(%v) = %q", err, KindOf(err))
		}
	})
	t.Run("order, timeout after sending", func(t *testing.T) {
		f := newFake(t)
		release := make(chan struct{})
		f.handle("POST /iserver/account/DU1234567/orders", func(w http.ResponseWriter, r *http.Request) {
			<-release
		})
		defer close(release)
		s, _ := vectorSession(t, f)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := s.PlaceOrder(ctx, "DU1234567", order, nil)
		if KindOf(err) != KindOutcomeUnknown || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("KindOf(%v) = %q", err, KindOf(err))
		}
	})
	t.Run("read, connection dropped", func(t *testing.T) {
		f := newFake(t)
		f.handle("GET /iserver/accounts", hangUp)
		s, _ := vectorSession(t, f)
		_, err := s.Accounts(context.Background())
		if KindOf(err) != KindUnavailable {
			t.Fatalf("KindOf(%v) = %q", err, KindOf(err))
		}
	})
	t.Run("order, connection refused", func(t *testing.T) {
		f := newFake(t)
		s, _ := vectorSession(t, f)
		f.srv.Close()
		_, err := s.PlaceOrder(context.Background(), "DU1234567", order, nil)
		if KindOf(err) != KindUnavailable {
			t.Fatalf("KindOf(%v) = %q", err, KindOf(err))
		}
	})
	t.Run("order, context cancelled before sending", func(t *testing.T) {
		f := newFake(t)
		s, _ := vectorSession(t, f)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := s.PlaceOrder(ctx, "DU1234567", order, nil)
		if KindOf(err) != KindUnavailable || !errors.Is(err, context.Canceled) {
			t.Fatalf("KindOf(%v) = %q", err, KindOf(err))
		}
		if n := len(f.recorded()); n != 0 {
			t.Errorf("%d requests sent", n)
		}
	})
}

func TestFormBodySigned(t *testing.T) {
	f := newFake(t)
	f.respond("POST /form", 200, `{}`)
	s, _ := vectorSession(t, f)
	c := call{op: "form", method: "post", endpoint: "/form"}
	if _, err := s.do(context.Background(), c, url.Values{"q": {"a b"}}, nil, url.Values{"x": {"1,2"}, "y": {"é"}}); err != nil {
		t.Fatal(err)
	}
	r := f.recorded()[0]
	if r.Body != "x=1%2C2&y=%C3%A9" || r.ContentType != "application/x-www-form-urlencoded" || r.Query != "q=a+b" {
		t.Errorf("request = %+v", r)
	}
}
