package ibkrsim_test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/clocktest"
	"github.com/ordertune/ordertune/internal/ibkrsim"
)

// vectorServer is a simulator seeded with the vectors' consumer, its clock and
// randomness under the test's control.
type vectorServer struct {
	sim   *ibkrsim.Server
	srv   *httptest.Server
	clock *clocktest.Clock
	rnd   *secretReader
}

func newVectorServer(t *testing.T, v *vectors, publicBase string, lenient bool) *vectorServer {
	t.Helper()
	vs := &vectorServer{clock: clocktest.New(time.Unix(1714489460, 0)), rnd: &secretReader{}}
	vs.rnd.Set("01")
	vs.sim = ibkrsim.New(ibkrsim.Config{
		PublicBaseURL:       publicBase,
		Clock:               vs.clock.Now,
		Rand:                vs.rnd,
		LenientQuerySigning: lenient,
		Pacing:              ibkrsim.Pacing{Disabled: true},
	})
	if err := vs.sim.AddConsumer(v.consumer()); err != nil {
		t.Fatal(err)
	}
	vs.srv = httptest.NewServer(vs.sim)
	t.Cleanup(vs.srv.Close)
	return vs
}

func unixOf(t *testing.T, ts string) time.Time {
	t.Helper()
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return time.Unix(n, 0)
}

// lstHandshake replays a recorded LST request at its own timestamp with the
// recorded server secret.
func (vs *vectorServer) lstHandshake(t *testing.T, v *vectors, name string) (int, string) {
	t.Helper()
	for _, c := range v.LSTCases {
		if c.Name == name {
			vs.clock.Set(unixOf(t, c.Request.Timestamp))
			vs.rnd.Set(c.Server.ServerSecretHex)
			return sendRaw(t, vs.srv.URL, http.MethodPost, "/v1/api/oauth/live_session_token", "", c.Request.Authorization, "", "")
		}
	}
	t.Fatalf("no LST case %q", name)
	return 0, ""
}

func TestVectorLSTResponses(t *testing.T) {
	v := loadVectors(t)
	vs := newVectorServer(t, v, "https://api.ibkr.com/v1/api", false)
	for _, c := range v.LSTCases {
		t.Run(c.Name, func(t *testing.T) {
			status, body := vs.lstHandshake(t, v, c.Name)
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, body)
			}
			if diff := cmp.Diff(c.Server.ResponseBody, body); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
			// The same request again is a replayed nonce.
			if status, body := vs.lstHandshake(t, v, c.Name); status != http.StatusUnauthorized {
				t.Errorf("replay: status %d, want 401: %s", status, body)
			}
		})
	}
}

// mutateByte changes c to a different character of the same class, so the
// change always alters the decoded value (never only the case of a %XX).
func mutateByte(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return '0' + (c-'0'+1)%10
	case c >= 'a' && c <= 'z':
		return 'a' + (c-'a'+1)%26
	case c >= 'A' && c <= 'Z':
		return 'A' + (c-'A'+1)%26
	default:
		return 'x'
	}
}

func mutateAt(s string, i int) string {
	return s[:i] + string(mutateByte(s[i])) + s[i+1:]
}

// wantRejected is the status of a mutated request: 401 for anything IBKR's
// OAuth layer sees, 404 once the path leaves /v1/api.
func wantRejected(path string) int {
	if !strings.HasPrefix(path, "/v1/api/") {
		return http.StatusNotFound
	}
	return http.StatusUnauthorized
}

func TestVectorLSTMutationsRejected(t *testing.T) {
	v := loadVectors(t)
	for _, name := range []string{"k_high_bit_set", "dh_response_odd_hex_length"} {
		t.Run(name, func(t *testing.T) {
			vs := newVectorServer(t, v, "https://api.ibkr.com/v1/api", false)
			var lc = v.LSTCases[0]
			for _, c := range v.LSTCases {
				if c.Name == name {
					lc = c
				}
			}
			vs.clock.Set(unixOf(t, lc.Request.Timestamp))
			vs.rnd.Set(lc.Server.ServerSecretHex)
			auth := lc.Request.Authorization
			const path = "/v1/api/oauth/live_session_token"
			for i := range len(auth) {
				m := mutateAt(auth, i)
				if status, body := sendRaw(t, vs.srv.URL, http.MethodPost, path, "", m, "", ""); status != http.StatusUnauthorized {
					t.Fatalf("header mutated at %d (%q): status %d, want 401: %s", i, m[max(0, i-10):min(len(m), i+10)], status, body)
				}
			}
			for i := 1; i < len(path); i++ {
				m := mutateAt(path, i)
				if status, body := sendRaw(t, vs.srv.URL, http.MethodPost, m, "", auth, "", ""); status != wantRejected(m) {
					t.Fatalf("path %s: status %d, want %d: %s", m, status, wantRejected(m), body)
				}
			}
			// Other transport-level refusals.
			for _, tc := range []struct {
				name, method, ct, body string
				want                   int
			}{
				{"GET", http.MethodGet, "", "", http.StatusMethodNotAllowed},
				{"body", http.MethodPost, "application/json", "{}", http.StatusBadRequest},
			} {
				if status, body := sendRaw(t, vs.srv.URL, tc.method, path, "", auth, tc.ct, tc.body); status != tc.want {
					t.Errorf("%s: status %d, want %d: %s", tc.name, status, tc.want, body)
				}
			}
			// Nothing above consumed the nonce: the untouched request works once.
			if status, body := sendRaw(t, vs.srv.URL, http.MethodPost, path, "", auth, "", ""); status != http.StatusOK {
				t.Fatalf("original: status %d: %s", status, body)
			}
			if status, _ := sendRaw(t, vs.srv.URL, http.MethodPost, path, "", auth, "", ""); status != http.StatusUnauthorized {
				t.Fatalf("replay: status %d, want 401", status)
			}
		})
	}
}

func TestVectorLSTTimestampWindow(t *testing.T) {
	v := loadVectors(t)
	lc := v.LSTCases[0]
	ts := unixOf(t, lc.Request.Timestamp)
	for _, tc := range []struct {
		name string
		now  time.Time
		want int
	}{
		{"5 min late", ts.Add(5 * time.Minute), http.StatusOK},
		{"5 min early", ts.Add(-5 * time.Minute), http.StatusOK},
		{"too late", ts.Add(5*time.Minute + time.Second), http.StatusUnauthorized},
		{"too early", ts.Add(-5*time.Minute - time.Second), http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs := newVectorServer(t, v, "https://api.ibkr.com/v1/api", false)
			vs.clock.Set(tc.now)
			vs.rnd.Set(lc.Server.ServerSecretHex)
			status, body := sendRaw(t, vs.srv.URL, http.MethodPost, "/v1/api/oauth/live_session_token", "", lc.Request.Authorization, "", "")
			if status != tc.want {
				t.Fatalf("status %d, want %d: %s", status, tc.want, body)
			}
		})
	}
}

// requestTarget splits a vector URL into the path+query to send and the
// Host header.
func requestTarget(t *testing.T, raw string) (pathQuery, host string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	pq := u.EscapedPath()
	if u.RawQuery != "" {
		pq += "?" + u.RawQuery
	}
	return pq, u.Host
}

// requestServer is a vector server holding the LST the request cases use,
// or with no public base (the local-simulator case signs its own Host).
func requestServer(t *testing.T, v *vectors, local, lenient bool) *vectorServer {
	t.Helper()
	base := "https://api.ibkr.com/v1/api"
	if local {
		base = ""
	}
	vs := newVectorServer(t, v, base, lenient)
	lc := v.LSTCases[0]
	for _, c := range v.LSTCases {
		if c.Name == v.RequestCasesLSTFrom {
			lc = c
		}
	}
	vs.clock.Set(unixOf(t, lc.Request.Timestamp))
	vs.rnd.Set(lc.Server.ServerSecretHex)
	srvURL, hc, host := vs.srv.URL, http.DefaultClient, ""
	if local {
		// The LST was recorded against https://api.ibkr.com: the same
		// simulator behind TLS, addressed as that host, verifies it.
		tlsSrv := httptest.NewTLSServer(vs.sim)
		t.Cleanup(tlsSrv.Close)
		srvURL, hc, host = tlsSrv.URL, tlsSrv.Client(), "api.ibkr.com"
	}
	if status, body := sendRawWith(t, hc, srvURL, http.MethodPost, "/v1/api/oauth/live_session_token", host, lc.Request.Authorization, "", ""); status != http.StatusOK {
		t.Fatalf("LST: %d %s", status, body)
	}
	return vs
}

func (vs *vectorServer) send(t *testing.T, rc requestCase, pathQuery, host, auth string) (int, string) {
	t.Helper()
	vs.clock.Set(unixOf(t, rc.Timestamp))
	return sendRaw(t, vs.srv.URL, rc.Method, pathQuery, host, auth, rc.ContentType, rc.Body)
}

// caseServer starts a server for the request case rc and returns it with
// rc's path and query, the Host header to send (none for IBKR's own host)
// and whether rc's URL is a local one.
func caseServer(t *testing.T, v *vectors, rc requestCase, lenient bool) (vs *vectorServer, pq, host string, local bool) {
	t.Helper()
	pq, host = requestTarget(t, rc.URL)
	local = !strings.HasPrefix(rc.URL, "https://api.ibkr.com/")
	vs = requestServer(t, v, local, lenient)
	if !local {
		host = ""
	}
	return vs, pq, host, local
}

func TestVectorRequestCases(t *testing.T) {
	v := loadVectors(t)
	for _, lenient := range []bool{false, true} {
		t.Run("lenient="+strconv.FormatBool(lenient), func(t *testing.T) {
			for _, rc := range v.RequestCases {
				t.Run(rc.Name, func(t *testing.T) {
					vs, pq, host, _ := caseServer(t, v, rc, lenient)
					accepted := rc.QueryMode == "include" || lenient || !strings.Contains(rc.URL, "?")
					status, body := vs.send(t, rc, pq, host, rc.Authorization)
					if got := status != http.StatusUnauthorized; got != accepted {
						t.Fatalf("status %d (accepted=%v, want %v): %s", status, got, accepted, body)
					}
					if accepted {
						if status, body := vs.send(t, rc, pq, host, rc.Authorization); status != http.StatusUnauthorized {
							t.Fatalf("replayed nonce: status %d, want 401: %s", status, body)
						}
					}
				})
			}
		})
	}
}

func TestVectorRequestMutationsRejected(t *testing.T) {
	v := loadVectors(t)
	for _, rc := range v.RequestCases {
		if rc.QueryMode != "include" {
			continue
		}
		t.Run(rc.Name, func(t *testing.T) {
			vs, pq, host, local := caseServer(t, v, rc, false)
			for i := range len(rc.Authorization) {
				m := mutateAt(rc.Authorization, i)
				if status, body := vs.send(t, rc, pq, host, m); status != http.StatusUnauthorized {
					t.Fatalf("header mutated at %d (%q): status %d, want 401: %s", i, m[max(0, i-10):min(len(m), i+10)], status, body)
				}
			}
			for i := 1; i < len(pq); i++ {
				m := mutateAt(pq, i)
				path, _, _ := strings.Cut(m, "?")
				if status, body := vs.send(t, rc, m, host, rc.Authorization); status != wantRejected(path) {
					t.Fatalf("URL %s: status %d, want %d: %s", m, status, wantRejected(path), body)
				}
			}
			if local {
				for i := range len(host) {
					m := mutateAt(host, i)
					if status, body := vs.send(t, rc, pq, m, rc.Authorization); status != http.StatusUnauthorized {
						t.Fatalf("Host %s: status %d, want 401: %s", m, status, body)
					}
				}
			}
			other := map[string]string{"GET": "POST", "POST": "PUT", "DELETE": "GET"}[rc.Method]
			if status, _ := sendRaw(t, vs.srv.URL, other, pq, host, rc.Authorization, rc.ContentType, rc.Body); status != http.StatusUnauthorized {
				t.Fatalf("method %s: status %d, want 401", other, status)
			}
			vs.clock.Set(unixOf(t, rc.Timestamp).Add(6 * time.Minute))
			if status, _ := sendRaw(t, vs.srv.URL, rc.Method, pq, host, rc.Authorization, rc.ContentType, rc.Body); status != http.StatusUnauthorized {
				t.Fatalf("6 minutes late: status %d, want 401", status)
			}
			// None of the refusals consumed the nonce.
			if status, body := vs.send(t, rc, pq, host, rc.Authorization); status == http.StatusUnauthorized {
				t.Fatalf("original refused after the sweep: %s", body)
			}
		})
	}
}

// TestVectorUnsignedKRejected signs with the LST a client gets when it drops
// Java's sign byte from K: the simulator must refuse it.
func TestVectorUnsignedKRejected(t *testing.T) {
	v := loadVectors(t)
	for _, lc := range v.LSTCases {
		t.Run(lc.Name, func(t *testing.T) {
			vs := newVectorServer(t, v, "https://api.ibkr.com/v1/api", false)
			if status, body := vs.lstHandshake(t, v, lc.Name); status != http.StatusOK {
				t.Fatalf("LST: %d %s", status, body)
			}
			c := newClient(t, vs.srv, v.consumer(), parsePrivateKey(t, v.Credentials.SignaturePrivateKeyPEM), vs.clock.Now)
			c.signAs = "https://api.ibkr.com/v1/api"
			good, _ := base64.StdEncoding.DecodeString(lc.Derived.LST)
			unsigned, _ := base64.StdEncoding.DecodeString(lc.Derived.LSTIfKUnsigned)
			wantUnsigned := http.StatusOK
			if lc.Derived.KHighBitSet {
				wantUnsigned = http.StatusUnauthorized
			}
			r := c.callWith(unsigned, http.MethodGet, "/trsrv/stocks?symbols=AAPL", nil)
			mustStatus(t, "LST without sign byte", r, wantUnsigned)
			r = c.callWith(good, http.MethodGet, "/trsrv/stocks?symbols=AAPL", nil)
			mustStatus(t, "correct LST", r, http.StatusOK)
		})
	}
}
