package ibkrsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
)

// Order statuses as IBKR names them.
const (
	StatusPreSubmitted = "PreSubmitted"
	StatusSubmitted    = "Submitted"
	StatusFilled       = "Filled"
	StatusCancelled    = "Cancelled"
)

// coidTTL is how long IBKR keeps a cOID registered per account.
const coidTTL = 24 * time.Hour

// book holds one account's orders; mu guards everything in it.
type book struct {
	id     string
	mu     sync.Mutex
	orders map[string]*order
	seq    []*order
	coids  map[string]time.Time
}

func newBook(id string) *book {
	return &book{id: id, orders: make(map[string]*order), coids: make(map[string]time.Time)}
}

// coidTaken reports whether cOID is registered on this account within 24 h;
// the caller holds b.mu.
func (b *book) coidTaken(coid string, now time.Time) bool {
	if coid == "" {
		return false
	}
	at, ok := b.coids[coid]
	return ok && now.Sub(at) < coidTTL
}

type fill struct {
	execID string
	qty    float64
	price  float64
	at     time.Time
}

// order is one accepted order. Its book's mu guards the mutable fields.
type order struct {
	id          string
	consumerKey string
	req         orderRequest
	sec         *Security
	receivedAt  time.Time
	status      string
	filled      float64
	avgPrice    float64
	fills       []fill
}

func (o *order) remaining() float64 { return math.Max(0, o.req.Quantity-o.filled) }

// working reports whether the order can still fill or be cancelled.
func (o *order) working() bool {
	return o.status == StatusPreSubmitted || o.status == StatusSubmitted
}

// shown is the order's status, filled quantity and average price as the
// order status and the live orders list show them; hide (the hide_fills
// fault) shows a filled order as still working, as a missed poll would.
// The caller holds the book's mu.
func (o *order) shown(hide bool) (status string, filled, avg float64) {
	if hide && o.filled > 0 {
		return StatusSubmitted, 0, 0
	}
	return o.status, o.filled, o.avgPrice
}

// addFill records an execution and updates the average price.
func (o *order) addFill(qty, price float64, at time.Time, execID string) {
	total := o.avgPrice*o.filled + qty*price
	o.filled += qty
	o.avgPrice = math.Round(total/o.filled*10000) / 10000
	o.fills = append(o.fills, fill{execID: execID, qty: qty, price: price, at: at})
}

// orderRequest is one order of a placement body, validated.
type orderRequest struct {
	AcctID    string
	Conid     int
	COID      string
	OrderType string
	Side      string
	Quantity  float64
	TIF       string
	Price     float64
	HasPrice  bool
}

// wireOrder is the JSON of one order as clients send it.
type wireOrder struct {
	AcctID    string          `json:"acctId"`
	Conid     json.RawMessage `json:"conid"`
	COID      string          `json:"cOID"`
	OrderType string          `json:"orderType"`
	Side      string          `json:"side"`
	Quantity  json.RawMessage `json:"quantity"`
	TIF       string          `json:"tif"`
	Price     json.RawMessage `json:"price"`
}

// errOrder is the class of every order validation error; its text is shown to
// the client as IBKR would.
var errOrder = errors.New("order rejected")

func orderErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errOrder, fmt.Sprintf(format, a...))
}

// parseOrderBody reads {"orders":[…]} or a bare array and validates each
// order's fields (not the account or contract, which need server state).
func parseOrderBody(body []byte) ([]orderRequest, error) {
	trimmed := strings.TrimSpace(string(body))
	var wire []wireOrder
	switch {
	case strings.HasPrefix(trimmed, "["):
		if err := json.Unmarshal([]byte(trimmed), &wire); err != nil {
			return nil, orderErr("malformed JSON body")
		}
	case strings.HasPrefix(trimmed, "{"):
		var env struct {
			Orders *[]wireOrder `json:"orders"`
		}
		if err := json.Unmarshal([]byte(trimmed), &env); err != nil {
			return nil, orderErr("malformed JSON body")
		}
		if env.Orders == nil {
			return nil, orderErr("orders is required")
		}
		wire = *env.Orders
	default:
		return nil, orderErr("malformed JSON body")
	}
	if len(wire) == 0 {
		return nil, orderErr("orders is empty")
	}
	out := make([]orderRequest, 0, len(wire))
	for _, w := range wire {
		o, err := validateOrder(w)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

func validateOrder(w wireOrder) (orderRequest, error) {
	o := orderRequest{AcctID: w.AcctID, COID: w.COID, OrderType: w.OrderType, Side: w.Side, TIF: w.TIF}
	conid, ok := jsonNumber(w.Conid)
	if !ok || conid != math.Trunc(conid) || conid <= 0 || conid > math.MaxInt32 {
		return o, orderErr("conid is required and must be a positive integer")
	}
	o.Conid = int(conid)
	switch o.OrderType {
	case "MKT", "LMT", "MOC":
	case "":
		return o, orderErr("orderType is required")
	default:
		return o, orderErr("orderType %q is not supported", o.OrderType)
	}
	switch o.Side {
	case "BUY", "SELL":
	case "":
		return o, orderErr("side is required")
	default:
		return o, orderErr("side must be BUY or SELL")
	}
	q, ok := jsonNumber(w.Quantity)
	if !ok || !(q > 0) || math.IsInf(q, 0) || q > 1e9 {
		return o, orderErr("quantity must be a positive number")
	}
	o.Quantity = q
	switch o.TIF {
	case "DAY", "GTC":
	case "OPG":
		if o.OrderType == "MOC" {
			return o, orderErr("MOC orders need tif DAY")
		}
	case "":
		return o, orderErr("tif is required")
	default:
		return o, orderErr("tif %q is not supported", o.TIF)
	}
	if o.OrderType == "MOC" && o.TIF != "DAY" {
		return o, orderErr("MOC orders need tif DAY")
	}
	if len(w.Price) > 0 && string(w.Price) != "null" {
		p, ok := jsonNumber(w.Price)
		if !ok || !(p > 0) || math.IsInf(p, 0) {
			return o, orderErr("price must be a positive number")
		}
		o.Price, o.HasPrice = p, true
	}
	if o.OrderType == "LMT" && !o.HasPrice {
		return o, orderErr("price is required for LMT orders")
	}
	if len(o.COID) > 64 {
		return o, orderErr("cOID is too long")
	}
	return o, nil
}

// jsonNumber accepts a JSON number or a numeric string, as IBKR's parser does.
func jsonNumber(raw json.RawMessage) (float64, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err == nil {
		return f, !math.IsNaN(f)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, false
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(s)), &f); err != nil || strings.TrimSpace(s) == "" {
		return 0, false
	}
	return f, true
}
