package ibkr

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Order is one order as IBKR's place-order endpoint takes it (PROTOCOL.md §6).
// Our entry modes are MKT + OPG, LMT + OPG + Price, and MOC + DAY.
type Order struct {
	AcctID    string `json:"acctId"`
	Conid     int64  `json:"conid"`
	COID      string `json:"cOID"`
	OrderType string `json:"orderType"`
	Side      string `json:"side"`
	Quantity  int64  `json:"quantity"`
	TIF       string `json:"tif"`
	// Price is the limit price as a decimal ("187.25"), sent as a JSON
	// number; required for LMT, absent otherwise.
	Price json.Number `json:"price,omitempty"`
}

// validate checks what IBKR requires before anything is sent.
func (o Order) validate() error {
	var probs []string
	if o.Conid <= 0 {
		probs = append(probs, "conid must be positive")
	}
	if strings.TrimSpace(o.COID) == "" {
		probs = append(probs, "cOID is required (it makes the order idempotent)")
	}
	if o.Side != "BUY" && o.Side != "SELL" {
		probs = append(probs, "side must be BUY or SELL")
	}
	if o.Quantity <= 0 {
		probs = append(probs, "quantity must be positive")
	}
	if o.OrderType == "" {
		probs = append(probs, "orderType is required")
	}
	if o.TIF == "" {
		probs = append(probs, "tif is required")
	}
	switch {
	case o.OrderType == "LMT" && o.Price == "":
		probs = append(probs, "price is required for LMT")
	case o.OrderType != "LMT" && o.Price != "":
		probs = append(probs, "price is only for LMT orders")
	case o.Price != "":
		if f, err := o.Price.Float64(); err != nil || f <= 0 {
			probs = append(probs, "price must be a positive decimal")
		}
	}
	if len(probs) > 0 {
		return fmt.Errorf("invalid order: %s", strings.Join(probs, "; "))
	}
	return nil
}

// Question is a reply question IBKR asks before it accepts an order.
type Question struct {
	// ID is the reply id for POST /iserver/reply/{id}.
	ID         string
	Messages   []string
	MessageIDs []string
}

// AcceptedOrder is an order IBKR took.
type AcceptedOrder struct {
	OrderID     string
	OrderStatus string
	// LocalOrderID is the cOID when IBKR echoes it.
	LocalOrderID string
}

// PlaceResponse is one answer of the place-order or reply endpoint: exactly
// one of Accepted (non-empty), Question or Rejected is set.
type PlaceResponse struct {
	Accepted []AcceptedOrder
	Question *Question
	// Rejected is IBKR's reason when it refused the order.
	Rejected string
}

// placeItemWire is one element of the place-order union.
type placeItemWire struct {
	OrderID      Number          `json:"order_id"`
	OrderStatus  string          `json:"order_status"`
	LocalOrderID Number          `json:"local_order_id"`
	ID           Number          `json:"id"`
	Message      json.RawMessage `json:"message"`
	MessageIDs   []Number        `json:"messageIds"`
	Error        Number          `json:"error"`
}

// parsePlaceResponse decodes the place/reply union: an array (or single
// object) of accepted orders or a question, or {"error": ...}.
func parsePlaceResponse(body []byte) (PlaceResponse, error) {
	b := bytes.TrimSpace(body)
	var items []placeItemWire
	switch {
	case len(b) == 0:
		return PlaceResponse{}, errors.New("empty answer")
	case b[0] == '{':
		var one placeItemWire
		if err := json.Unmarshal(b, &one); err != nil {
			return PlaceResponse{}, err
		}
		items = []placeItemWire{one}
	case b[0] == '[':
		if err := json.Unmarshal(b, &items); err != nil {
			return PlaceResponse{}, err
		}
	default:
		return PlaceResponse{}, errors.New("expected a JSON array or object")
	}
	var r PlaceResponse
	for _, it := range items {
		switch {
		case it.Error != "":
			return PlaceResponse{Rejected: limitText(string(it.Error))}, nil
		case it.OrderID != "":
			r.Accepted = append(r.Accepted, AcceptedOrder{OrderID: string(it.OrderID), OrderStatus: it.OrderStatus, LocalOrderID: string(it.LocalOrderID)})
		case it.ID != "" && r.Question == nil:
			q := &Question{ID: string(it.ID)}
			q.Messages = parseMessages(it.Message)
			for _, id := range it.MessageIDs {
				q.MessageIDs = append(q.MessageIDs, string(id))
			}
			r.Question = q
		}
	}
	switch {
	case r.Question != nil:
		// An order is not placed while a question is open.
		r.Accepted = nil
	case len(r.Accepted) == 0:
		return PlaceResponse{}, errors.New("neither an order id, a question nor an error")
	}
	return r, nil
}

// parseMessages reads a question's "message": a list of strings or one.
func parseMessages(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		for i := range list {
			list[i] = limitText(list[i])
		}
		return list
	}
	var one string
	if json.Unmarshal(raw, &one) == nil && one != "" {
		return []string{limitText(one)}
	}
	return nil
}

// OrderStatus is GET /iserver/account/order/status/{orderId}.
type OrderStatus struct {
	OrderID string
	Conid   int64
	// Status is PreSubmitted, Submitted, Filled, Cancelled, Inactive, ...
	Status    string
	Side      string
	OrderType string
	TIF       string
	CumFill   Number
	TotalSize Number
	AvgPrice  Number
	Account   string
}

// parseOrderStatus decodes one order's status.
func parseOrderStatus(body []byte) (OrderStatus, error) {
	var w struct {
		OrderID      Number `json:"order_id"`
		Conid        conid  `json:"conid"`
		Status       string `json:"order_status"`
		Side         string `json:"side"`
		OrderType    string `json:"order_type"`
		TIF          string `json:"tif"`
		CumFill      Number `json:"cum_fill"`
		TotalSize    Number `json:"total_size"`
		Size         Number `json:"size"`
		AvgPrice     Number `json:"average_price"`
		Account      string `json:"account"`
		AccountAlias string `json:"acct"`
	}
	if err := decodeObject(body, &w); err != nil {
		return OrderStatus{}, err
	}
	s := OrderStatus{
		OrderID: string(w.OrderID), Conid: int64(w.Conid), Status: w.Status, Side: w.Side,
		OrderType: w.OrderType, TIF: w.TIF, CumFill: w.CumFill, TotalSize: cmp.Or(w.TotalSize, w.Size),
		AvgPrice: w.AvgPrice, Account: cmp.Or(w.Account, w.AccountAlias),
	}
	if s.Status == "" {
		return OrderStatus{}, errors.New("order_status missing")
	}
	return s, nil
}

// LiveOrder is one entry of GET /iserver/account/orders.
type LiveOrder struct {
	OrderID string
	// OrderRef is the cOID.
	OrderRef          string
	Account           string
	Conid             int64
	Ticker            string
	Side              string
	OrderType         string
	TIF               string
	Status            string
	FilledQuantity    Number
	RemainingQuantity Number
	TotalSize         Number
	AvgPrice          Number
	Price             Number
}

// parseLiveOrders decodes {"orders": [...]} (or a bare array).
func parseLiveOrders(body []byte) ([]LiveOrder, error) {
	type wire struct {
		OrderID           Number `json:"orderId"`
		OrderRef          string `json:"order_ref"`
		Acct              string `json:"acct"`
		Account           string `json:"account"`
		Conid             conid  `json:"conid"`
		Ticker            string `json:"ticker"`
		Side              string `json:"side"`
		OrderType         string `json:"orderType"`
		TIF               string `json:"timeInForce"`
		Status            string `json:"status"`
		FilledQuantity    Number `json:"filledQuantity"`
		RemainingQuantity Number `json:"remainingQuantity"`
		TotalSize         Number `json:"totalSize"`
		AvgPrice          Number `json:"avgPrice"`
		Price             Number `json:"price"`
	}
	b := bytes.TrimSpace(body)
	if len(b) > 0 && b[0] == '{' {
		var w struct {
			Orders json.RawMessage `json:"orders"`
		}
		if err := json.Unmarshal(b, &w); err != nil {
			return nil, err
		}
		b = w.Orders
	}
	return decodeList(b, func(w wire) (LiveOrder, bool) {
		return LiveOrder{
			OrderID: string(w.OrderID), OrderRef: w.OrderRef, Account: cmp.Or(w.Acct, w.Account), Conid: int64(w.Conid),
			Ticker: w.Ticker, Side: w.Side, OrderType: w.OrderType, TIF: w.TIF, Status: w.Status,
			FilledQuantity: w.FilledQuantity, RemainingQuantity: w.RemainingQuantity,
			TotalSize: w.TotalSize, AvgPrice: w.AvgPrice, Price: w.Price,
		}, true
	})
}

// Trade is one execution of GET /iserver/account/trades.
type Trade struct {
	ExecutionID string
	OrderID     string
	// OrderRef is the cOID.
	OrderRef string
	Account  string
	Conid    int64
	Symbol   string
	// Side is IBKR's "B"/"S" (or BUY/SELL).
	Side       string
	Size       Number
	Price      Number
	Commission Number
	// TradeTimeMS is the execution time in epoch milliseconds (from
	// trade_time_r, else trade_time read as UTC); 0 when neither is
	// readable.
	TradeTimeMS int64
}

// tradeTimeLayout is trade_time's layout, e.g. "20240430-14:26:01" (UTC).
const tradeTimeLayout = "20060102-15:04:05"

// parseTrades decodes the executions list.
func parseTrades(body []byte) ([]Trade, error) {
	type wire struct {
		ExecutionID Number `json:"execution_id"`
		OrderID     Number `json:"order_id"`
		OrderRef    string `json:"order_ref"`
		Account     string `json:"account"`
		AccountCode string `json:"accountCode"`
		Conid       conid  `json:"conid"`
		Symbol      string `json:"symbol"`
		Side        string `json:"side"`
		Size        Number `json:"size"`
		Price       Number `json:"price"`
		Commission  Number `json:"commission"`
		TradeTimeR  Number `json:"trade_time_r"`
		TradeTime   string `json:"trade_time"`
	}
	return decodeList(body, func(w wire) (Trade, bool) {
		t := Trade{
			ExecutionID: string(w.ExecutionID), OrderID: string(w.OrderID), OrderRef: w.OrderRef, Account: cmp.Or(w.Account, w.AccountCode),
			Conid: int64(w.Conid), Symbol: w.Symbol, Side: w.Side, Size: w.Size, Price: w.Price, Commission: w.Commission,
		}
		if ms, err := w.TradeTimeR.Int64(); err == nil && ms > 0 {
			t.TradeTimeMS = ms
		} else if at, err := time.Parse(tradeTimeLayout, strings.TrimSpace(w.TradeTime)); err == nil && at.Unix() > 0 {
			t.TradeTimeMS = at.UnixMilli()
		}
		return t, true
	})
}

// CancelResult is IBKR's acknowledgement of a cancel request: a request,
// not yet a cancellation (watch the order's status).
type CancelResult struct {
	Message string
	OrderID string
	Conid   int64
	Account string
}

// parseCancel decodes the cancel acknowledgement.
func parseCancel(body []byte) (CancelResult, error) {
	var w struct {
		Msg     string `json:"msg"`
		OrderID Number `json:"order_id"`
		Conid   conid  `json:"conid"`
		Account string `json:"account"`
	}
	if err := decodeObject(body, &w); err != nil {
		return CancelResult{}, err
	}
	return CancelResult{Message: limitText(w.Msg), OrderID: string(w.OrderID), Conid: int64(w.Conid), Account: w.Account}, nil
}
