package ibkrsim

// rejections are IBKR-like refusal texts of an order, by the name a reject
// fault may give as its value instead of the text itself ({"kind":
// "reject", "value": "insufficient_funds"}). IBKR publishes no list; these
// follow the wordings its Web API and TWS show.
var rejections = map[string]string{
	"size_limit":            "Order rejected - reason: The following order size exceeds the Size Limit of 500 shares set in your order precautions.",
	"pattern_day_trader":    "Order rejected - reason: This account is flagged as a Pattern Day Trader and its Equity with Loan Value of 18,250.00 USD is below the 25,000.00 USD minimum required for day trading.",
	"no_trading_permission": "Order rejected - reason: You do not have trading permissions for this instrument (STK on NASDAQ).",
	"no_market_data":        "Order rejected - reason: Market data subscription required: you have no market data for this contract on NASDAQ.",
	"insufficient_funds":    "Order rejected - reason: Insufficient buying power: the order's initial margin of 51,230.00 USD exceeds the available funds of 12,400.00 USD.",
	"outside_trading_hours": "Order rejected - reason: The exchange is closed: this order is not accepted outside regular trading hours.",
}

// RejectionText returns the simulator's IBKR text for a named kind of
// refusal (size_limit, pattern_day_trader, no_trading_permission,
// no_market_data, insufficient_funds, outside_trading_hours).
func RejectionText(kind string) (string, bool) {
	t, ok := rejections[kind]
	return t, ok
}

// RejectionKinds returns the names RejectionText knows.
func RejectionKinds() []string {
	return []string{"size_limit", "pattern_day_trader", "no_trading_permission", "no_market_data", "insufficient_funds", "outside_trading_hours"}
}
