package ibkrsim

import (
	"fmt"
	"math"
	"net/http"
	"strings"
)

// What-if answers follow IBKR's shape: each figure a formatted string with
// thousands separators and the currency, e.g. "1,866.50 USD (10 Shares)".
type whatIfAmount struct {
	Amount     string `json:"amount"`
	Commission string `json:"commission"`
	Total      string `json:"total"`
}

type whatIfChange struct {
	Current string `json:"current"`
	Change  string `json:"change"`
	After   string `json:"after"`
}

type whatIfAnswer struct {
	Amount      *whatIfAmount `json:"amount"`
	Equity      *whatIfChange `json:"equity"`
	Initial     *whatIfChange `json:"initial"`
	Maintenance *whatIfChange `json:"maintenance"`
	Position    *whatIfChange `json:"position"`
	Warn        *string       `json:"warn"`
	Error       *string       `json:"error"`
}

// SimEquity is the equity with loan of every simulated account before a
// what-if; the simulator keeps no cash ledger.
const SimEquity = 1_000_000.0

// WhatIfCommission is the simulator's commission for quantity shares worth
// value: IBKR's fixed US-stock pricing, USD 0.005 a share, at least USD 1
// and at most 1 % of the trade's value.
func WhatIfCommission(quantity, value float64) float64 {
	c := math.Max(0.005*quantity, 1)
	return math.Round(math.Min(c, 0.01*value)*100) / 100
}

// handleWhatIf previews an order without placing it
// (POST /iserver/account/{acct}/orders/whatif): its value at the limit price
// or the last close, the commission, and the initial (Reg T, 50 %) and
// maintenance (25 %) margin it would add. A "reject" fault answers IBKR's
// refusal text instead, a "warn" fault adds a warning.
func (s *Server) handleWhatIf(w http.ResponseWriter, r *http.Request) {
	st := stateOf(r)
	o, sec, ok := s.readOrder(w, r)
	if !ok {
		return
	}
	rel := strings.TrimPrefix(r.URL.Path, APIPrefix)
	if f, ok := s.faults.take(FaultReject, rel, st.c.key); ok {
		text := f.message
		writeJSON(w, http.StatusOK, whatIfAnswer{Error: &text})
		return
	}
	price := sec.RefPrice
	if o.HasPrice {
		price = o.Price
	}
	value := o.Quantity * price
	commission := WhatIfCommission(o.Quantity, value)
	sign := 1.0
	if o.Side == "SELL" {
		sign = -1
	}
	ans := whatIfAnswer{
		Amount: &whatIfAmount{
			Amount:     fmt.Sprintf("%s USD (%s Shares)", ibkrAmount(value), ibkrAmount(o.Quantity)),
			Commission: ibkrAmount(commission) + " USD",
			Total:      ibkrAmount(value+commission) + " USD",
		},
		Equity:      change(SimEquity, -commission),
		Initial:     change(0, sign*0.5*value),
		Maintenance: change(0, sign*0.25*value),
		Position:    change(0, sign*o.Quantity),
	}
	if f, ok := s.faults.take(FaultWarn, rel, st.c.key); ok {
		ans.Warn = &f.message
	}
	writeJSON(w, http.StatusOK, ans)
}

func change(current, delta float64) *whatIfChange {
	return &whatIfChange{Current: ibkrAmount(current), Change: ibkrAmount(delta), After: ibkrAmount(current + delta)}
}

// ibkrAmount formats v as IBKR's what-if does: thousands separators, and
// decimals only when there are cents.
func ibkrAmount(v float64) string {
	neg := v < 0
	cents := int64(math.Round(math.Abs(v) * 100))
	whole, frac := cents/100, cents%100
	digits := fmt.Sprint(whole)
	var b strings.Builder
	if neg && cents != 0 {
		b.WriteByte('-')
	}
	for i, d := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	if frac != 0 {
		fmt.Fprintf(&b, ".%02d", frac)
	}
	return b.String()
}
