// Package ibkrsim is a simulator of IBKR's Web API server side: the first-party
// OAuth 1.0a handshake and request signing, the brokerage session, contracts,
// orders with an auction model, pacing and injectable faults. It trusts nothing
// a client sends and rejects what IBKR would reject; it shares no code with the
// client in internal/ibkr on purpose, so a client bug cannot hide behind a
// shared one.
//
// # IBKR's API (under /v1/api)
//
// POST /oauth/live_session_token verifies RSA-SHA256 over prepend + base
// string and answers the server half of Diffie-Hellman. Every other request is
// verified with HMAC-SHA256 keyed by the consumer's current live session token
// (query and form parameters folded in; JSON bodies never signed). Served:
// /tickle, /logout, /trsrv/stocks, /iserver/auth/ssodh/init, /iserver/auth/status,
// /iserver/accounts, /iserver/secdef/search, /iserver/questions/suppress[/reset],
// /iserver/account/{acct}/orders, /iserver/reply/{id},
// /iserver/account/order/status/{id}, /iserver/account/orders,
// /iserver/account/trades[?days=N] (the current day, or N days up to 7) and
// DELETE /iserver/account/{acct}/order/{id}.
//
// One brokerage session per username: another login (the competing fault)
// holds it until an init with compete:true takes it back, whatever happens
// to the consumer's live session token meanwhile; an init with
// compete:false leaves it and answers competing.
// The read-only routes a front end reaches through Ordertune's pass-through
// (passthrough.go) add /iserver/marketdata/snapshot and /history and
// /iserver/contract/{conid}/info (prices a stable function of ticker and
// clock), and /portfolio/accounts, /portfolio/{acct}/positions[/{page}]
// and /summary from the account's own fills (with
// Config.PortfolioAccountsFirst, only after /portfolio/accounts, as IBKR
// demands).
//
// GET /ws (ws.go) is IBKR's streaming WebSocket: it authenticates by the
// api=<session from /tickle> cookie and the oauth_token query parameter,
// streams "smd+<conid>" ticks for smd subscriptions and "sor" updates of
// the consumer's own orders, and closes with 1008 when that session ends.
//
// Refusals follow IBKR's shapes: OAuth failures are 401
// {"error":"id: N, error: invalid consumer|invalid signature|…","statusCode":401};
// a missing brokerage session is 400 {"error":"Bad Request: no bridge",…};
// order-path errors are {"error":"…"} — 400 for validation, a duplicate cOID
// ("Order couldn't be submitted: Local order ID=… is already registered."),
// "Please query /accounts first", a foreign account, a declined or stale reply
// and a cancel of a finished order; 404 for an unknown order id. Pacing answers
// 429 with Retry-After. Where IBKR publishes no text, the simulator's is
// plausible and stable; clients should classify by endpoint and status.
//
// # Control API (under /sim)
//
// GET /sim/orders lists every accepted order; POST /sim/consumers registers a
// Consumer; POST /sim/faults and DELETE /sim/faults[?id=N] inject and clear
// Faults; GET /sim/executions[?account=] lists every fill with its
// commission (IBKR's fixed US-stock pricing: USD 0.005 a share, 1 to 1 % of
// the value); GET /sim/positions[?account=] lists the open positions; POST /sim/auction/open and /sim/auction/close run the auctions
// (optional body {"prices":{"AAPL":190.5}}); GET /sim/securities lists the
// ticker table with its prices. POST /sim/maintenance/start and /end begin
// and end one of IBKR's restart windows (every API call 503; brokerage
// sessions gone afterwards); POST /sim/clock {"offset":"-2h"} or
// {"now":"RFC 3339"} moves the simulator's clock. GET /sim/stats counts per
// consumer what its clients did (handshakes, superseded-token refusals,
// inits, competing take-overs, other logins signed out, requests): see
// ConsumerStats. GET /sim/totals counts what was answered over all
// consumers (requests, handshakes, tickles, pacing's 429s and penalty-box
// answers, brokerage sessions that expired idle): see Totals.
//
// Config.Latency (`ordertune sim --latency 50ms`) holds every IBKR API
// request before it is served, as a distant IBKR would; unlike the latency
// fault it applies to every request and never runs out, and pacing stays on.
//
// POST /iserver/account/{acct}/orders/whatif previews an order: its value,
// IBKR's fixed commission (USD 0.005 a share, 1 to 1 % of the value), Reg T
// initial and maintenance margin, and the equity after, formatted as IBKR
// formats them. The "reject" fault answers an order or a what-if with IBKR's
// refusal text (value); "warn" adds a what-if warning.
//
// A Fault strikes requests whose path after /v1/api matches Path (a prefix, or
// a path.Match pattern such as /iserver/account/*/orders), optionally only one
// consumer's, Count times (0: until cleared). latency and status strike before
// the OAuth check; invalid_lst, competing and timeout_after_accept after it;
// reply_question when an order is placed. empty_orders empties the orders
// list, as IBKR's nightly reset or a re-login does, for its value's time on
// the simulator's clock or until cleared, while the orders live on;
// hide_fills shows filled orders as working and unfilled in the order
// status and the orders list (a poll that missed the fill), while the
// executions list them.
package ibkrsim
