package ibkr

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestTradesSigningByteExact pins GET /iserver/account/trades?days=7 the way
// the shared vectors pin the other calls: the days parameter is folded into
// the base string in sorted order, and the signature is HMAC-SHA256 with the
// vectors' live session token over exactly this text.
func TestTradesSigningByteExact(t *testing.T) {
	v := loadVectors(t)
	s := vectorSigner(t, v)
	const nonce, ts = "000000000000000000000000c1018719", "1714489561"
	base, params, err := splitURL("https://api.ibkr.com/v1/api/iserver/account/trades?days=7")
	if err != nil {
		t.Fatal(err)
	}
	got := s.sign("GET", base, params, nonce, ts)
	wantBase := "GET&https%3A%2F%2Fapi.ibkr.com%2Fv1%2Fapi%2Fiserver%2Faccount%2Ftrades&" +
		"days%3D7%26oauth_consumer_key%3D" + v.Credentials.ConsumerKey + "%26oauth_nonce%3D" + nonce +
		"%26oauth_signature_method%3DHMAC-SHA256%26oauth_timestamp%3D" + ts + "%26oauth_token%3D" + v.Credentials.AccessToken
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(wantBase))
	wantSig := base64.StdEncoding.EncodeToString(m.Sum(nil))
	if diff := cmp.Diff(map[string]string{"base": wantBase, "sig": wantSig}, map[string]string{"base": string(got.base), "sig": got.signature}); diff != "" {
		t.Errorf("trades signing (-want +got):\n%s", diff)
	}
}

// TestTradesDaysParameter: the current day sends no parameter (IBKR's
// default), more days are asked for up to seven.
func TestTradesDaysParameter(t *testing.T) {
	f := newFake(t)
	f.respond("GET /iserver/account/trades", 200, `[]`)
	s, _ := vectorSession(t, f)
	for _, days := range []int{-1, 0, 1, 3, 7, 90} {
		if _, err := s.Trades(context.Background(), days); err != nil {
			t.Fatalf("days %d: %v", days, err)
		}
	}
	var got []string
	for _, r := range f.recorded() {
		if r.Path == "/iserver/account/trades" {
			got = append(got, r.Query)
		}
	}
	if diff := cmp.Diff([]string{"", "", "", "days=3", "days=7", "days=7"}, got); diff != "" {
		t.Errorf("queries sent (-want +got):\n%s", diff)
	}
}

func TestParseTrades(t *testing.T) {
	body := `[
		{"execution_id":"0000e0d5.6576fd38.01.01","symbol":"AAPL","side":"B","order_description":"Bought 10 @ 187.25 on NASDAQ","trade_time":"20240430-14:26:01","trade_time_r":1714487161000,"size":10,"price":"187.25","order_ref":"c-1","exchange":"NASDAQ","commission":"1.00","net_amount":1872.5,"account":"DU1234567","accountCode":"DU1234567","conid":265598,"conidEx":"265598","order_id":1234567890},
		{"execution_id":"e2","side":"S","trade_time":"20240430-14:26:01","size":"0.5","price":187,"accountCode":"DU7","conid":"265598"},
		{"execution_id":"e3","trade_time":"garbage","trade_time_r":-5}
	]`
	got, err := parseTrades([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := []Trade{
		{ExecutionID: "0000e0d5.6576fd38.01.01", OrderID: "1234567890", OrderRef: "c-1", Account: "DU1234567", Conid: 265598, Symbol: "AAPL",
			Side: "B", Size: "10", Price: "187.25", Commission: "1.00", TradeTimeMS: 1714487161000},
		{ExecutionID: "e2", Account: "DU7", Conid: 265598, Side: "S", Size: "0.5", Price: "187", TradeTimeMS: 1714487161000},
		{ExecutionID: "e3"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseTrades (-want +got):\n%s", diff)
	}
	for _, bad := range []string{`{}`, `"x"`, `[1]`, `[{"conid":{}}]`} {
		if _, err := parseTrades([]byte(bad)); err == nil {
			t.Errorf("parseTrades(%s) succeeded", bad)
		}
	}
}

// FuzzParseTrades feeds executions lists to their parser: it never panics,
// keeps one entry per element, and never invents a time.
func FuzzParseTrades(f *testing.F) {
	for _, s := range []string{
		`[{"execution_id":"e1","order_id":1,"order_ref":"c","account":"DU1","conid":265598,"symbol":"AAPL","side":"B","size":10,"price":"187.25","commission":"1.00","trade_time_r":1714489561000,"trade_time":"20240430-15:06:01"}]`,
		`[{"execution_id":"e1","size":"10","price":187.25,"trade_time_r":"1714489561000"}]`,
		`[{"trade_time":"99991231-23:59:59"},{"trade_time_r":"1e30"},{"trade_time_r":-1}]`,
		`[{"conid":"x"}]`, `[{"size":{}}]`, `null`, `[]`, `[null]`, ``, `{"orders":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		l, err := parseTrades(body)
		if err != nil {
			return
		}
		var raw []any
		_ = jsonUnmarshalStrict(body, &raw)
		if len(l) != len(raw) {
			t.Fatalf("%d trades from %d elements", len(l), len(raw))
		}
		for _, tr := range l {
			if tr.TradeTimeMS < 0 {
				t.Fatalf("negative trade time %d", tr.TradeTimeMS)
			}
		}
	})
}
