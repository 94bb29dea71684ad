package ibkrsim

import (
	"encoding/json"
	"math"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestBaseStrings rebuilds every recorded base string from its parts.
func TestBaseStrings(t *testing.T) {
	data, err := os.ReadFile("../ibkr/testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		LSTCases []struct {
			Request struct {
				URL         string            `json:"url"`
				OAuthParams map[string]string `json:"oauth_params"`
				BaseString  string            `json:"base_string"`
			} `json:"request"`
		} `json:"lst_cases"`
		Credentials struct {
			Prepend string `json:"prepend"`
		} `json:"credentials"`
		RequestCases []struct {
			Name        string            `json:"name"`
			Method      string            `json:"method"`
			URL         string            `json:"url"`
			QueryMode   string            `json:"query_mode"`
			OAuthParams map[string]string `json:"oauth_params"`
			BaseString  string            `json:"base_string"`
		} `json:"request_cases"`
		Official struct {
			Get struct {
				Method     string `json:"method"`
				URL        string `json:"url"`
				Nonce      string `json:"nonce"`
				Timestamp  string `json:"timestamp"`
				BaseString string `json:"base_string"`
			} `json:"get_request"`
			ConsumerKey string `json:"consumer_key"`
			AccessToken string `json:"access_token"`
		} `json:"official_vectors"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	toKV := func(m map[string]string) []kv {
		var out []kv
		for k, val := range m {
			out = append(out, kv{k, val})
		}
		return out
	}
	for _, c := range v.LSTCases {
		got := baseString(v.Credentials.Prepend, "POST", c.Request.URL, toKV(c.Request.OAuthParams))
		if diff := cmp.Diff(c.Request.BaseString, got); diff != "" {
			t.Errorf("LST base string (-want +got):\n%s", diff)
		}
	}
	for _, c := range v.RequestCases {
		u, _ := url.Parse(c.URL)
		signed := strings.SplitN(c.URL, "?", 2)[0]
		params := toKV(c.OAuthParams)
		switch c.QueryMode {
		case "include":
			params = append(params, flatten(u.Query())...)
		case "in_url":
			signed = c.URL
		}
		if diff := cmp.Diff(c.BaseString, baseString("", c.Method, signed, params)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.Name, diff)
		}
	}
	g := v.Official.Get
	u, _ := url.Parse(g.URL)
	params := append(flatten(u.Query()),
		kv{"oauth_consumer_key", v.Official.ConsumerKey}, kv{"oauth_nonce", g.Nonce},
		kv{"oauth_signature_method", "HMAC-SHA256"}, kv{"oauth_timestamp", g.Timestamp}, kv{"oauth_token", v.Official.AccessToken})
	if diff := cmp.Diff(g.BaseString, baseString("", g.Method, strings.SplitN(g.URL, "?", 2)[0], params)); diff != "" {
		t.Errorf("official (-want +got):\n%s", diff)
	}
}

func TestParseOrderBody(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []orderRequest
		err        string
	}{
		{"envelope", `{"orders":[{"acctId":"DU1","conid":265598,"cOID":"x","orderType":"MKT","side":"BUY","quantity":10,"tif":"OPG"}]}`,
			[]orderRequest{{AcctID: "DU1", Conid: 265598, COID: "x", OrderType: "MKT", Side: "BUY", Quantity: 10, TIF: "OPG"}}, ""},
		{"bare array, string numbers", `[{"conid":"265598","orderType":"LMT","side":"SELL","quantity":"2.5","tif":"DAY","price":"187.25"}]`,
			[]orderRequest{{Conid: 265598, OrderType: "LMT", Side: "SELL", Quantity: 2.5, TIF: "DAY", Price: 187.25, HasPrice: true}}, ""},
		{"MOC DAY", `[{"conid":1,"orderType":"MOC","side":"SELL","quantity":1,"tif":"DAY"}]`,
			[]orderRequest{{Conid: 1, OrderType: "MOC", Side: "SELL", Quantity: 1, TIF: "DAY"}}, ""},
		{"no orders key", `{"order":[]}`, nil, "orders is required"},
		{"fractional conid", `[{"conid":1.5,"orderType":"MKT","side":"BUY","quantity":1,"tif":"DAY"}]`, nil, "conid is required"},
		{"negative quantity", `[{"conid":1,"orderType":"MKT","side":"BUY","quantity":-1,"tif":"DAY"}]`, nil, "quantity must be"},
		{"MOC GTC", `[{"conid":1,"orderType":"MOC","side":"BUY","quantity":1,"tif":"GTC"}]`, nil, "MOC orders need tif DAY"},
		{"zero price", `[{"conid":1,"orderType":"LMT","side":"BUY","quantity":1,"tif":"DAY","price":0}]`, nil, "price must be"},
		{"scalar", `42`, nil, "malformed JSON body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseOrderBody([]byte(tc.body))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzParseOrderBody checks that the order parser never panics and that what
// it accepts satisfies IBKR's field rules.
func FuzzParseOrderBody(f *testing.F) {
	f.Add(`{"orders":[{"acctId":"DU1234567","conid":265598,"cOID":"vec-pub-0001","orderType":"MKT","side":"BUY","quantity":1,"tif":"DAY"}]}`)
	f.Add(`[{"conid":"1","orderType":"LMT","side":"SELL","quantity":"1e3","tif":"OPG","price":1}]`)
	f.Add(`{"orders":null}`)
	f.Add(`[{"conid":1e400}]`)
	f.Fuzz(func(t *testing.T, body string) {
		orders, err := parseOrderBody([]byte(body))
		if err != nil {
			return
		}
		if len(orders) == 0 {
			t.Fatal("accepted an empty order list")
		}
		for _, o := range orders {
			if o.Conid <= 0 || !(o.Quantity > 0) || math.IsInf(o.Quantity, 0) {
				t.Fatalf("accepted %+v", o)
			}
			if o.OrderType == "LMT" && !(o.HasPrice && o.Price > 0) {
				t.Fatalf("LMT without price accepted: %+v", o)
			}
			if o.OrderType == "MOC" && o.TIF != "DAY" {
				t.Fatalf("MOC %s accepted", o.TIF)
			}
			switch o.TIF {
			case "DAY", "GTC", "OPG":
			default:
				t.Fatalf("tif %q accepted", o.TIF)
			}
		}
	})
}
