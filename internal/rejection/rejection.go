// Package rejection puts IBKR's refusal of an order in the user's words:
// it recognizes the kind of refusal in IBKR's text (a size limit, the
// pattern-day-trader rule, a missing permission or market data
// subscription, insufficient funds, outside trading hours) and gives one
// line saying what to do about it. IBKR's own words are always shown with
// the advice, never replaced by it.
//
// IBKR publishes no list of its refusal texts and words them differently
// per product and per release, so the table matches on the phrases that
// carry the meaning, in lower case; a text matching none gets the general
// advice.
package rejection

import (
	"strings"
	"unicode/utf8"
)

// Kind is a class of IBKR's refusals of an order.
type Kind string

// The kinds of refusal.
const (
	SizeLimit           Kind = "size_limit"
	PatternDayTrader    Kind = "pattern_day_trader"
	NoTradingPermission Kind = "no_trading_permission"
	NoMarketData        Kind = "no_market_data"
	InsufficientFunds   Kind = "insufficient_funds"
	OutsideTradingHours Kind = "outside_trading_hours"
	// Unknown is a refusal the table does not recognize.
	Unknown Kind = "unknown"
)

// GeneralAdvice is what to do about a refusal of an unknown kind: the
// connection works (Test Connection passed) but IBKR refused this order.
const GeneralAdvice = "IBKR refused this order although the connection works: check the order against your IBKR account — it may limit order size, be under the pattern-day-trader rule, or lack a market data subscription or trading permission."

// rule is one row of the table: a refusal whose lower-cased text contains
// every phrase of any one of anyOf is of kind.
type rule struct {
	kind   Kind
	anyOf  [][]string
	advice string
}

// rules is the table, in order: the first match wins. The pattern-day-
// trader rule comes before insufficient funds (IBKR's PDT refusal speaks
// of insufficient equity), and market data before permissions ("market
// data permissions" is a subscription, not a trading permission).
var rules = []rule{
	{PatternDayTrader, [][]string{{"pattern day"}, {"day trad"}, {"pdt"}},
		"Your account is under IBKR's pattern-day-trader rule: keep its equity above 25,000 USD, or wait until its day-trade count allows another, then confirm again."},
	{NoMarketData, [][]string{{"market data"}, {"marketdata"}},
		"Subscribe to US stock market data in IBKR's Client Portal (Settings → Market Data Subscriptions), then confirm again."},
	{SizeLimit, [][]string{{"size limit"}, {"size exceeds"}, {"quantity", "exceed"}, {"quantity", "too large"}, {"order size"}},
		"The order is larger than your IBKR account allows: lower your position size in Ordertune, or raise the size limit in IBKR's order precautions, then confirm again."},
	{NoTradingPermission, [][]string{{"trading permission"}, {"no permission"}, {"not permitted"}, {"not authorized to trade"}, {"not allowed to trade"}},
		"Your IBKR account may not trade this product: request the trading permission for US stocks in IBKR's Client Portal (Settings → Trading Permissions), then confirm again."},
	{InsufficientFunds, [][]string{{"insufficient"}, {"buying power"}, {"available funds"}, {"not enough funds"}, {"margin requirement"}, {"equity with loan"}},
		"The account cannot pay for this order: add funds at IBKR or lower your position size in Ordertune, then confirm again."},
	{OutsideTradingHours, [][]string{{"outside", "trading hours"}, {"outside", "regular hours"}, {"market is closed"}, {"exchange is closed"}, {"market closed"}, {"not accepting orders"}, {"trading hours"}},
		"IBKR does not take this order at this time of day: confirm again while the exchange accepts orders for the order's auction."},
}

// Explanation is a refusal in the user's words: its kind and what to do.
type Explanation struct {
	Kind   Kind   `json:"kind"`
	Advice string `json:"advice"`
}

// Explain classifies IBKR's text of a refusal and returns what to do about
// it; a text of no known kind (an empty one too) gets GeneralAdvice.
func Explain(text string) Explanation {
	lower := strings.ToLower(strings.ToValidUTF8(text, ""))
	if len(lower) > maxText {
		lower = lower[:maxText]
		for !utf8.ValidString(lower) {
			lower = lower[:len(lower)-1]
		}
	}
	// IBKR writes "day-trading" and "day  trading" too.
	lower = strings.Join(strings.Fields(strings.ReplaceAll(lower, "-", " ")), " ")
	for _, r := range rules {
		for _, all := range r.anyOf {
			if containsAll(lower, all) {
				return Explanation{Kind: r.kind, Advice: r.advice}
			}
		}
	}
	return Explanation{Kind: Unknown, Advice: GeneralAdvice}
}

// maxText bounds the text looked at: IBKR's refusals are a sentence or
// two, and a stored message is at most about 500 bytes.
const maxText = 2000

func containsAll(s string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// Kinds returns every kind of refusal, Unknown last.
func Kinds() []Kind {
	out := make([]Kind, 0, len(rules)+1)
	for _, r := range rules {
		out = append(out, r.kind)
	}
	return append(out, Unknown)
}
