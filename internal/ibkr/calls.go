package ibkr

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// InitBrokerage opens the brokerage session (POST /iserver/auth/ssodh/init),
// taking it over from another login (compete). Every /iserver call needs it.
// An answer that is not authenticated is a KindNoBrokerageSession error; a
// competing session is returned as is for the caller to report.
func (s *Session) InitBrokerage(ctx context.Context) (AuthStatus, error) {
	return s.initBrokerage(ctx, true)
}

// InitBrokerageIfFree opens the brokerage session only when no other login
// (Client Portal, TWS) holds it: compete:false, so IBKR leaves a competing
// login alone and answers with it (st.Competing, and a
// KindNoBrokerageSession error).
func (s *Session) InitBrokerageIfFree(ctx context.Context) (AuthStatus, error) {
	return s.initBrokerage(ctx, false)
}

func (s *Session) initBrokerage(ctx context.Context, compete bool) (AuthStatus, error) {
	c := call{op: "init brokerage session", method: http.MethodPost, endpoint: "/iserver/auth/ssodh/init"}
	st, err := fetch(ctx, s, c, nil, map[string]bool{"publish": true, "compete": compete}, parseAuthStatus)
	if err != nil {
		return AuthStatus{}, err
	}
	if !st.Authenticated {
		return st, notAuthenticated(c, st)
	}
	return st, nil
}

// notAuthenticated is the error for a brokerage session that is not up.
func notAuthenticated(c call, st AuthStatus) *Error {
	text := "brokerage session not authenticated"
	if m := firstNonEmpty(st.Fail, st.Message); m != "" {
		text += ": " + m
	}
	return &Error{Kind: KindNoBrokerageSession, Op: c.op, Method: c.method, Endpoint: c.endpoint, Status: http.StatusOK, Text: text}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// AuthStatus reads the brokerage session state (POST /iserver/auth/status).
func (s *Session) AuthStatus(ctx context.Context) (AuthStatus, error) {
	c := call{op: "auth status", method: http.MethodPost, endpoint: "/iserver/auth/status"}
	return fetch(ctx, s, c, nil, nil, parseAuthStatus)
}

// Tickle keeps the session alive (POST /tickle, about every 60 s). A tickle
// that reports the brokerage session as not authenticated is returned with a
// KindNoBrokerageSession error: re-initialise.
func (s *Session) Tickle(ctx context.Context) (TickleResult, error) {
	c := call{op: "tickle", method: http.MethodPost, endpoint: "/tickle"}
	t, err := fetch(ctx, s, c, nil, nil, parseTickle)
	if err != nil {
		return TickleResult{}, err
	}
	if !t.Present || !t.AuthStatus.Authenticated {
		return t, notAuthenticated(c, t.AuthStatus)
	}
	return t, nil
}

// Logout ends the session at IBKR (POST /logout); the LST is dead after it.
func (s *Session) Logout(ctx context.Context) error {
	c := call{op: "logout", method: http.MethodPost, endpoint: "/logout"}
	_, err := s.do(ctx, c, nil, nil, nil)
	return err
}

// Accounts lists the brokerage accounts (GET /iserver/accounts). IBKR wants
// this once per brokerage session before any order call.
func (s *Session) Accounts(ctx context.Context) (AccountList, error) {
	c := call{op: "list accounts", method: http.MethodGet, endpoint: "/iserver/accounts"}
	return fetch(ctx, s, c, nil, nil, parseAccounts)
}

// Stocks looks symbols up (GET /trsrv/stocks?symbols=A,B): symbol → entries.
func (s *Session) Stocks(ctx context.Context, symbols ...string) (map[string][]Stock, error) {
	c := call{op: "look up stocks", method: http.MethodGet, endpoint: "/trsrv/stocks"}
	return fetch(ctx, s, c, url.Values{"symbols": {strings.Join(symbols, ",")}}, nil, parseStocks)
}

// USStock returns the single US stock listing of symbol. It refuses (with
// ErrNoUSListing or ErrAmbiguousListing) rather than guess. Conids never
// change, so callers cache the answer.
func (s *Session) USStock(ctx context.Context, symbol string) (Listing, error) {
	symbol = strings.ToUpper(strings.TrimSpace(symbol))
	m, err := s.Stocks(ctx, symbol)
	if err != nil {
		return Listing{}, err
	}
	entries := m[symbol]
	if entries == nil {
		for k, v := range m {
			if strings.EqualFold(k, symbol) {
				entries = v
			}
		}
	}
	l, err := pickUSListing(symbol, entries)
	if err != nil {
		return Listing{}, fmt.Errorf("look up US stock: %w", err)
	}
	return l, nil
}

// SearchSecDef searches contracts (GET /iserver/secdef/search); secType
// may be empty.
func (s *Session) SearchSecDef(ctx context.Context, symbol, secType string) ([]SecDef, error) {
	c := call{op: "search contracts", method: http.MethodGet, endpoint: "/iserver/secdef/search"}
	q := url.Values{"symbol": {symbol}}
	if secType != "" {
		q.Set("secType", secType)
	}
	return fetch(ctx, s, c, q, nil, parseSecDefSearch)
}

// ReplyPolicy decides whether to confirm a reply question IBKR asks about an
// order; returning false declines it (the order is then not placed).
type ReplyPolicy func(q Question) bool

// ConfirmMessageIDs returns a ReplyPolicy that confirms a question only when
// every one of its message ids is in ids (e.g. "o163", "o354").
func ConfirmMessageIDs(ids ...string) ReplyPolicy {
	allowed := make(map[string]bool, len(ids))
	for _, id := range ids {
		allowed[id] = true
	}
	return func(q Question) bool {
		if len(q.MessageIDs) == 0 {
			return false
		}
		for _, id := range q.MessageIDs {
			if !allowed[id] {
				return false
			}
		}
		return true
	}
}

// PlacedOrder is the outcome of PlaceOrder.
type PlacedOrder struct {
	// Order is the accepted order (the first, for a single order).
	Order AcceptedOrder
	// All lists every accepted order of the answer.
	All []AcceptedOrder
	// Questions are the reply questions confirmed on the way.
	Questions []Question
}

// PlaceOrder places one order for accountID (POST
// /iserver/account/{id}/orders) and walks the reply chain with policy (nil
// declines every question), at most Options.MaxReplyChain questions long.
// IBKR wants no other order for the account while a reply chain is open:
// callers serialize orders per account (package trading's account lock).
//
// Errors to act on: KindDuplicateOrder (the cOID exists: reconcile),
// KindOutcomeUnknown (the order may exist: reconcile, never re-send
// blindly), KindOrderRejected (IBKR's text kept), KindQuestionDeclined.
func (s *Session) PlaceOrder(ctx context.Context, accountID string, o Order, policy ReplyPolicy) (*PlacedOrder, error) {
	if o.AcctID == "" {
		o.AcctID = accountID
	}
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("place order %s: %w", o.COID, err)
	}
	if o.AcctID != accountID {
		return nil, fmt.Errorf("place order %s: acctId %s differs from the account %s", o.COID, o.AcctID, accountID)
	}
	c := call{op: "place order " + o.COID, method: http.MethodPost,
		endpoint: "/iserver/account/" + url.PathEscape(accountID) + "/orders", placesOrder: true, orderCall: true}
	resp, err := fetch(ctx, s, c, nil, map[string][]Order{"orders": {o}}, parsePlaceResponse)
	if err != nil {
		return nil, err
	}
	var asked []Question
	for {
		switch {
		case resp.Rejected != "":
			return nil, classifyResponse(c, http.StatusOK, nil, rejectionBody(resp.Rejected))
		case resp.Question == nil:
			return &PlacedOrder{Order: resp.Accepted[0], All: resp.Accepted, Questions: asked}, nil
		}
		q := *resp.Question
		if len(asked) >= s.opts.MaxReplyChain {
			return nil, &Error{Kind: KindQuestionDeclined, Op: c.op, Method: c.method, Endpoint: c.endpoint, Status: http.StatusOK,
				Text: fmt.Sprintf("IBKR asked more than %d questions; the last one was not answered and the order is not placed: %s", s.opts.MaxReplyChain, strings.Join(q.Messages, " "))}
		}
		confirm := policy != nil && policy(q)
		if !confirm {
			// Declining tells IBKR to drop the order; its answer does not
			// change the outcome, so a failure here is only reported.
			_, derr := s.Reply(ctx, q.ID, false)
			e := &Error{Kind: KindQuestionDeclined, Op: c.op, Method: c.method, Endpoint: c.endpoint, Status: http.StatusOK,
				Text: "order not confirmed: " + strings.Join(q.Messages, " ") + " [" + strings.Join(q.MessageIDs, ",") + "]"}
			if derr != nil {
				e.Err = derr
			}
			return nil, e
		}
		asked = append(asked, q)
		resp, err = s.Reply(ctx, q.ID, true)
		if err != nil {
			return nil, err
		}
	}
}

// rejectionBody rebuilds {"error": text} so classification sees IBKR's text.
func rejectionBody(text string) []byte {
	b, _ := json.Marshal(map[string]string{"error": text})
	return b
}

// Reply answers one reply question (POST /iserver/reply/{id}); the answer
// is the place-order union again (chains happen).
func (s *Session) Reply(ctx context.Context, replyID string, confirmed bool) (PlaceResponse, error) {
	c := call{op: "reply " + replyID, method: http.MethodPost, endpoint: "/iserver/reply/" + url.PathEscape(replyID), placesOrder: confirmed, orderCall: true}
	return fetch(ctx, s, c, nil, map[string]bool{"confirmed": confirmed}, parsePlaceResponse)
}

// SuppressQuestions suppresses reply questions by message id for the rest
// of the brokerage session (POST /iserver/questions/suppress).
func (s *Session) SuppressQuestions(ctx context.Context, messageIDs ...string) error {
	c := call{op: "suppress questions", method: http.MethodPost, endpoint: "/iserver/questions/suppress"}
	_, err := s.do(ctx, c, nil, map[string][]string{"messageIds": messageIDs}, nil)
	return err
}

// OrderStatus reads one order's status (GET
// /iserver/account/order/status/{orderId}).
func (s *Session) OrderStatus(ctx context.Context, orderID string) (OrderStatus, error) {
	c := call{op: "order status " + orderID, method: http.MethodGet, endpoint: "/iserver/account/order/status/" + url.PathEscape(orderID)}
	return fetch(ctx, s, c, nil, nil, parseOrderStatus)
}

// LiveOrders lists the session's orders (GET /iserver/account/orders, paced
// to 1 per 5 s). The first call after a session starts may be empty.
func (s *Session) LiveOrders(ctx context.Context) ([]LiveOrder, error) {
	c := call{op: "live orders", method: http.MethodGet, endpoint: "/iserver/account/orders"}
	return fetch(ctx, s, c, nil, nil, parseLiveOrders)
}

// MaxTradeDays is how far back IBKR's executions list reaches: the current
// day and the six before it.
const MaxTradeDays = 7

// Trades lists the executions of the current day and the days-1 before it
// (GET /iserver/account/trades?days=N, paced to 1 per 5 s); days <= 1
// sends no parameter (IBKR's default, the current day) and days above
// MaxTradeDays ask for MaxTradeDays. Each execution carries its order's
// cOID (OrderRef), so an order missing from the live orders list (which
// covers only the current brokerage session) is still found once it
// filled.
func (s *Session) Trades(ctx context.Context, days int) ([]Trade, error) {
	c := call{op: "trades", method: http.MethodGet, endpoint: "/iserver/account/trades"}
	var q url.Values
	if days > 1 {
		q = url.Values{"days": {strconv.Itoa(min(days, MaxTradeDays))}}
	}
	return fetch(ctx, s, c, q, nil, parseTrades)
}

// CancelOrder asks IBKR to cancel an order (DELETE
// /iserver/account/{acct}/order/{orderId}); the order's status says when it
// is actually cancelled.
func (s *Session) CancelOrder(ctx context.Context, accountID, orderID string) (CancelResult, error) {
	c := call{op: "cancel order " + orderID, method: http.MethodDelete,
		endpoint: "/iserver/account/" + url.PathEscape(accountID) + "/order/" + url.PathEscape(orderID), orderCall: true}
	return fetch(ctx, s, c, nil, nil, parseCancel)
}

// fetch sends c (query and jsonBody as for Session.do) and decodes the
// answer with parse; an answer parse refuses is a bad response.
func fetch[T any](ctx context.Context, s *Session, c call, query url.Values, jsonBody any, parse func([]byte) (T, error)) (T, error) {
	var zero T
	body, err := s.do(ctx, c, query, jsonBody, nil)
	if err != nil {
		return zero, err
	}
	v, err := parse(body)
	if err != nil {
		return zero, badResponse(c, err)
	}
	return v, nil
}
