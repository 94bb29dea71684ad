package risk

import (
	"encoding/json"
	"math/big"
	"testing"
)

// FuzzUserUpdate feeds PUT /settings/risk bodies through the decoder and
// the validation: never a panic, and whatever passes is a well-formed
// limit no higher than its ceiling.
func FuzzUserUpdate(f *testing.F) {
	for _, s := range []string{
		`{"max_order_value":"5000"}`, `{"max_order_value":5000.5,"trading_paused":true}`,
		`{"max_shares_per_order":null}`, `{"max_orders_per_day":"3","max_daily_value":"1e9"}`,
		`{"max_daily_value":"-0.01"}`, `{"max_order_value":"１２"}`, `{"max_order_value":{}}`, `[]`, `nul`,
	} {
		f.Add(s)
	}
	ceilings := DefaultCeilings()
	f.Fuzz(func(t *testing.T, body string) {
		var in UserUpdate
		if json.Unmarshal([]byte(body), &in) != nil {
			return
		}
		got, err := in.apply(Limits{}, ceilings)
		if err != nil {
			return
		}
		for _, n := range Names {
			v := got.Get(n)
			if v == nil {
				continue
			}
			if _, err := parseLimit(n, *v); err != nil {
				t.Fatalf("%s = %q passed but does not parse: %v", n, *v, err)
			}
			r, _ := new(big.Rat).SetString(*v)
			if r.Cmp(rat(ceilings.Get(n))) > 0 {
				t.Fatalf("%s = %q above the ceiling", n, *v)
			}
		}
	})
}
