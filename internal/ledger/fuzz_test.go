package ledger

import (
	"math/big"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/trading"
)

// FuzzReadExecution: whatever IBKR's executions hold, what the ledger
// stores fits its columns: a positive quantity and price, a commission of
// at least 0, BUY or SELL, bounded ids.
func FuzzReadExecution(f *testing.F) {
	f.Add("0000e0d5.6576e0a8.01.01", "1234567890", "0b6a3c1e-6f4e-4c4e-9c3e-2f1d5a7b8c9d", "AAPL", "BUY", "300", "190.50", "1.5", int64(1764000000000))
	f.Add("", "", "", "", "SELL", "0", "-1", "-1.00", int64(0))
	f.Add("x", "1", "c", "BRK B", "SELL", "1e3", "1.123456789", "NaN", int64(-1))
	f.Fuzz(func(t *testing.T, id, order, coid, symbol, side, qty, price, comm string, ms int64) {
		e := trading.Execution{ID: id, OrderID: order, COID: coid, Symbol: symbol, Side: side, Quantity: qty, Price: price, Commission: comm}
		if ms != 0 {
			e.At = time.UnixMilli(ms)
		}
		r, ok := readExecution(e)
		if !ok {
			return
		}
		for _, v := range []string{r.qty, r.price} {
			x, ok := new(big.Rat).SetString(v)
			if !ok || x.Sign() <= 0 || len(v) > 21 {
				t.Fatalf("stored a quantity or price %q", v)
			}
		}
		if r.commission != nil {
			if x, ok := new(big.Rat).SetString(*r.commission); !ok || x.Sign() < 0 {
				t.Fatalf("stored a commission %q", *r.commission)
			}
		}
		if y := r.e.At.UTC().Year(); y < 1990 || y > 9999 {
			t.Fatalf("stored a time %s", r.e.At)
		}
		if r.side != "BUY" && r.side != "SELL" || r.id == "" || len(r.id) > 64 || len(r.ticker) > 20 {
			t.Fatalf("stored %+v", r)
		}
	})
}
