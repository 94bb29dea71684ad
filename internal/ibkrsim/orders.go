package ibkrsim

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// placeAnswer is IBKR's "accepted" element.
type placeAnswer struct {
	OrderID        string `json:"order_id"`
	OrderStatus    string `json:"order_status"`
	EncryptMessage string `json:"encrypt_message"`
}

// readOrder reads the one order of an order or what-if request for the
// path's account, refusing what IBKR refuses; ok is false when it has
// answered.
func (s *Server) readOrder(w http.ResponseWriter, r *http.Request) (o orderRequest, sec *Security, ok bool) {
	acct := r.PathValue("acct")
	if _, _, known := stateOf(r).c.account(acct); !known {
		writeBareError(w, http.StatusBadRequest, fmt.Sprintf("Account %s is not valid for this user", acct))
		return o, nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeBareError(w, http.StatusBadRequest, "malformed JSON body")
		return o, nil, false
	}
	reqs, err := parseOrderBody(body)
	if err != nil {
		writeBareError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), errOrder.Error()+": "))
		return o, nil, false
	}
	if len(reqs) != 1 {
		writeBareError(w, http.StatusBadRequest, "only one order per request is supported")
		return o, nil, false
	}
	o = reqs[0]
	if o.AcctID != "" && o.AcctID != acct {
		writeBareError(w, http.StatusBadRequest, fmt.Sprintf("acctId %s does not match the account in the path", o.AcctID))
		return o, nil, false
	}
	o.AcctID = acct
	if sec, ok = s.secs.byConid[o.Conid]; !ok {
		writeBareError(w, http.StatusBadRequest, fmt.Sprintf("Contract %d is not tradable: invalid conid", o.Conid))
	}
	return o, sec, ok
}

// handlePlaceOrder is POST /iserver/account/{acct}/orders.
func (s *Server) handlePlaceOrder(w http.ResponseWriter, r *http.Request) {
	st := stateOf(r)
	c := st.c
	o, sec, ok := s.readOrder(w, r)
	if !ok {
		return
	}
	acct := o.AcctID
	if f, ok := s.faults.take(FaultReject, strings.TrimPrefix(r.URL.Path, APIPrefix), c.key); ok {
		// IBKR refuses an order it will not take with its reason, and
		// records nothing.
		writeJSON(w, http.StatusOK, map[string]string{"error": f.message})
		return
	}
	var forced []string
	if f, ok := s.faults.take(FaultReplyQuestion, strings.TrimPrefix(r.URL.Path, APIPrefix), c.key); ok {
		forced = append(forced, f.message)
	}
	c.mu.Lock()
	qs := s.questionsFor(c, o, sec, forced)
	c.sess.anyOrder = true
	s.askOrAccept(w, c, &pendingOrder{account: acct, req: o, sec: sec, questions: qs}, st.now)
}

// askOrAccept answers with p's next question, or places p when none is
// left. The caller holds c.mu; askOrAccept releases it before placing,
// since accept takes the book's lock.
func (s *Server) askOrAccept(w http.ResponseWriter, c *consumer, p *pendingOrder, now time.Time) {
	if len(p.questions) == 0 {
		c.mu.Unlock()
		s.accept(w, c, p.account, p.req, p.sec, now)
		return
	}
	ans, err := s.ask(c, p, now)
	c.mu.Unlock()
	if err != nil {
		writeBareError(w, http.StatusInternalServerError, "internal error")
		return
	}
	writeJSON(w, http.StatusOK, ans)
}

// ask registers p under a fresh reply id and renders its first question; the
// caller holds c.mu.
func (s *Server) ask(c *consumer, p *pendingOrder, now time.Time) ([]questionReply, error) {
	id, err := s.newReplyID()
	if err != nil {
		return nil, err
	}
	for k, old := range c.pending {
		if now.Sub(old.asked) > pendingTTL {
			delete(c.pending, k)
		}
	}
	p.asked = now
	c.pending[id] = p
	q := p.questions[0]
	return []questionReply{{ID: id, Message: []string{questionText(q, p.req, p.sec)}, MessageIDs: []string{q}}}, nil
}

// accept registers the cOID and the order, fills what fills at once, and
// answers IBKR's accepted shape.
func (s *Server) accept(w http.ResponseWriter, c *consumer, acct string, o orderRequest, sec *Security, now time.Time) {
	_, b, _ := c.account(acct)
	b.mu.Lock()
	if b.coidTaken(o.COID, now) {
		b.mu.Unlock()
		writeBareError(w, http.StatusBadRequest, fmt.Sprintf("Order couldn't be submitted: Local order ID=%s is already registered.", o.COID))
		return
	}
	ord := &order{
		id:          strconv.FormatInt(s.orderID.Add(1), 10),
		consumerKey: c.key,
		req:         o,
		sec:         sec,
		receivedAt:  now,
		status:      StatusSubmitted,
	}
	if o.TIF == "OPG" || o.OrderType == "MOC" {
		ord.status = StatusPreSubmitted
	}
	answerStatus := ord.status
	if o.COID != "" {
		if len(b.coids) >= 10000 {
			for k, at := range b.coids {
				if now.Sub(at) >= coidTTL {
					delete(b.coids, k)
				}
			}
		}
		b.coids[o.COID] = now
	}
	b.orders[ord.id] = ord
	b.seq = append(b.seq, ord)
	if ord.status == StatusSubmitted && marketable(o, sec.RefPrice) {
		s.fillOrder(ord, sec.RefPrice, now, false)
	}
	b.mu.Unlock()
	writeJSON(w, http.StatusOK, []placeAnswer{{OrderID: ord.id, OrderStatus: answerStatus, EncryptMessage: "1"}})
}

// marketable reports whether an order fills at price: market orders always,
// limit orders at or better than their limit.
func marketable(o orderRequest, price float64) bool {
	if o.OrderType != "LMT" {
		return true
	}
	if o.Side == "BUY" {
		return price <= o.Price
	}
	return price >= o.Price
}

// fillOrder fills the order's remaining quantity at price, or the configured
// fraction of it. In an auction the unfilled rest is cancelled; otherwise it
// keeps working. The caller holds the book's mu.
func (s *Server) fillOrder(o *order, price float64, now time.Time, auction bool) {
	qty := o.remaining()
	if f := s.cfg.PartialFillFraction; f > 0 && f < 1 {
		part := math.Floor(qty * f)
		if part < 1 {
			part = math.Min(qty, 1)
		}
		qty = part
	}
	if qty > 0 {
		exec := fmt.Sprintf("%08x.%08x.01.01", s.orderID.Load()&0xffffffff, len(o.fills)+1)
		exec = strings.ToLower(exec)
		o.addFill(qty, price, now, o.id+"."+exec)
	}
	switch {
	case o.remaining() <= 0:
		o.status = StatusFilled
	case auction:
		o.status = StatusCancelled
	default:
		o.status = StatusSubmitted
	}
}

// handleReply is POST /iserver/reply/{id}: confirming moves along the chain
// and finally places the order; declining drops it.
func (s *Server) handleReply(w http.ResponseWriter, r *http.Request) {
	st := stateOf(r)
	c := st.c
	var body struct {
		Confirmed *bool `json:"confirmed"`
	}
	if err := decodeJSON(r, &body); err != nil || body.Confirmed == nil {
		writeBareError(w, http.StatusBadRequest, "confirmed is required")
		return
	}
	id := r.PathValue("id")
	c.mu.Lock()
	p, ok := c.pending[id]
	if ok {
		delete(c.pending, id)
		ok = st.now.Sub(p.asked) <= pendingTTL
	}
	if !ok {
		c.mu.Unlock()
		writeBareError(w, http.StatusBadRequest, fmt.Sprintf("Reply id %s is not valid or has expired", id))
		return
	}
	if !*body.Confirmed {
		c.mu.Unlock()
		writeBareError(w, http.StatusBadRequest, "Order was not confirmed and has not been submitted")
		return
	}
	p.questions = p.questions[1:]
	s.askOrAccept(w, c, p, st.now)
}

// findOrder looks an order up among the consumer's own accounts only, so one
// consumer never sees another's order.
func (c *consumer) findOrder(id string) (*order, *book) {
	for _, b := range c.books {
		b.mu.Lock()
		o := b.orders[id]
		b.mu.Unlock()
		if o != nil {
			return o, b
		}
	}
	return nil, nil
}

func sideLetter(side string) string {
	if side == "SELL" {
		return "S"
	}
	return "B"
}

func orderTypeName(t string) string {
	switch t {
	case "MKT":
		return "MARKET"
	case "LMT":
		return "LIMIT"
	default:
		return t
	}
}

func qtyString(q float64) string { return strconv.FormatFloat(q, 'f', 1, 64) }

func priceString(p float64) string { return strconv.FormatFloat(p, 'f', -1, 64) }

// handleOrderStatus is GET /iserver/account/order/status/{id}.
func (s *Server) handleOrderStatus(w http.ResponseWriter, r *http.Request) {
	st := stateOf(r)
	id := r.PathValue("id")
	o, b := st.c.findOrder(id)
	if o == nil {
		writeBareError(w, http.StatusNotFound, fmt.Sprintf("OrderID %s doesn't exist", id))
		return
	}
	_, hide := s.faults.take(FaultHideFills, "/iserver/account/order/status/"+id, st.c.key)
	b.mu.Lock()
	defer b.mu.Unlock()
	status, filled, avg := o.shown(hide)
	oid, _ := strconv.ParseInt(o.id, 10, 64)
	out := map[string]any{
		"sub_type": nil, "request_id": "0", "server_id": "0",
		"order_id": oid, "conidex": strconv.Itoa(o.sec.Conid), "conid": o.sec.Conid,
		"symbol": o.sec.Ticker, "side": sideLetter(o.req.Side),
		"contract_description_1": o.sec.Ticker, "listing_exchange": "NASDAQ.NMS",
		"company_name": o.sec.Name, "size": qtyString(o.req.Quantity - filled), "total_size": qtyString(o.req.Quantity),
		"currency": "USD", "account": b.id, "order_type": orderTypeName(o.req.OrderType),
		"cum_fill": qtyString(filled), "order_status": status, "tif": o.req.TIF,
		"sec_type": "STK", "order_ref": o.req.COID,
		"cannot_cancel_order": !o.working() && !hide,
		"order_time":          o.receivedAt.UTC().Format("060102150405"),
	}
	if filled > 0 {
		out["average_price"] = priceString(avg)
	}
	if o.req.HasPrice {
		out["limit_price"] = priceString(o.req.Price)
	}
	writeJSON(w, http.StatusOK, out)
}

// handleLiveOrders is GET /iserver/account/orders: this session's orders of
// the consumer's accounts, order_ref = cOID.
func (s *Server) handleLiveOrders(w http.ResponseWriter, r *http.Request) {
	st := stateOf(r)
	c := st.c
	c.mu.Lock()
	first := !c.sess.ordersCalled
	c.sess.ordersCalled = true
	c.mu.Unlock()
	list := []map[string]any{}
	_, reset := s.faults.takeAt(FaultEmptyOrders, "/iserver/account/orders", c.key, st.now)
	if reset || first && s.cfg.FirstOrdersCallEmpty {
		writeJSON(w, http.StatusOK, map[string]any{"orders": list, "snapshot": false})
		return
	}
	_, hide := s.faults.take(FaultHideFills, "/iserver/account/orders", c.key)
	for _, b := range c.books {
		b.mu.Lock()
		for _, o := range b.seq {
			status, filled, avg := o.shown(hide)
			oid, _ := strconv.ParseInt(o.id, 10, 64)
			m := map[string]any{
				"acct": b.id, "conidex": strconv.Itoa(o.sec.Conid), "conid": o.sec.Conid,
				"orderId": oid, "cashCcy": "USD",
				"sizeAndFills": fmt.Sprintf("%g/%g", filled, o.req.Quantity),
				"description1": o.sec.Ticker, "ticker": o.sec.Ticker, "secType": "STK",
				"listingExchange":   "NASDAQ.NMS",
				"remainingQuantity": o.req.Quantity - filled, "filledQuantity": filled, "totalSize": o.req.Quantity,
				"companyName": o.sec.Name, "status": status, "order_ccp_status": status,
				"origOrderType": orderTypeName(o.req.OrderType), "orderType": orderTypeName(o.req.OrderType),
				"side": o.req.Side, "timeInForce": o.req.TIF, "order_ref": o.req.COID,
				"lastExecutionTime_r": o.receivedAt.UnixMilli(),
			}
			if filled > 0 {
				m["avgPrice"] = priceString(avg)
			}
			if o.req.HasPrice {
				m["price"] = priceString(o.req.Price)
			}
			list = append(list, m)
		}
		b.mu.Unlock()
	}
	writeJSON(w, http.StatusOK, map[string]any{"orders": list, "snapshot": true})
}

// maxTradeDays is how far back GET /iserver/account/trades reaches: the
// current day and six before it.
const maxTradeDays = 7

// handleTrades is GET /iserver/account/trades[?days=N]: the executions of
// the consumer's accounts on the current day (UTC on the simulator's
// clock) and the N-1 days before it, at most 7; without days, the current
// day only, as IBKR does.
func (s *Server) handleTrades(w http.ResponseWriter, r *http.Request) {
	st := stateOf(r)
	days := 1
	if v := r.URL.Query().Get("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeBareError(w, http.StatusBadRequest, "days must be a positive integer")
			return
		}
		days = min(n, maxTradeDays)
	}
	y, m, d := st.now.UTC().Date()
	from := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -(days - 1))
	out := []map[string]any{}
	for _, e := range st.c.executions(from) {
		out = append(out, map[string]any{
			"execution_id": e.ExecutionID, "symbol": e.Ticker, "side": sideLetter(e.Side),
			"order_description": fmt.Sprintf("%s %g @ %s on NASDAQ", map[string]string{"BUY": "Bought", "SELL": "Sold"}[e.Side], e.Quantity, priceString(e.Price)),
			"trade_time":        e.At.UTC().Format("20060102-15:04:05"), "trade_time_r": e.At.UnixMilli(),
			"size": e.Quantity, "price": priceString(e.Price), "order_ref": e.COID,
			"exchange": "NASDAQ", "commission": strconv.FormatFloat(e.Commission, 'f', 2, 64),
			"net_amount": math.Round(e.Quantity*e.Price*100) / 100,
			"account":    e.Account, "accountCode": e.Account, "company_name": e.name,
			"contract_description_1": e.Ticker, "sec_type": "STK", "listing_exchange": "NASDAQ.NMS",
			"conid": e.Conid, "conidEx": strconv.Itoa(e.Conid), "order_id": e.OrderID,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// SimExecution is one fill as GET /sim/executions reports it.
type SimExecution struct {
	ExecutionID string    `json:"execution_id"`
	Account     string    `json:"account"`
	OrderID     string    `json:"order_id"`
	COID        string    `json:"cOID"`
	Ticker      string    `json:"ticker"`
	Conid       int       `json:"conid"`
	Side        string    `json:"side"`
	Quantity    float64   `json:"quantity"`
	Price       float64   `json:"price"`
	Commission  float64   `json:"commission"`
	At          time.Time `json:"at"`

	name string
}

// executionsOf lists b's fills at or after from (zero: all), oldest first;
// it takes b.mu.
func (b *book) executionsOf(from time.Time) []SimExecution {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []SimExecution
	for _, o := range b.seq {
		for _, f := range o.fills {
			if f.at.Before(from) {
				continue
			}
			out = append(out, SimExecution{ExecutionID: f.execID, Account: b.id, OrderID: o.id, COID: o.req.COID,
				Ticker: o.sec.Ticker, Conid: o.sec.Conid, Side: o.req.Side, Quantity: f.qty, Price: f.price,
				Commission: WhatIfCommission(f.qty, f.qty*f.price), At: f.at.UTC(), name: o.sec.Name})
		}
	}
	return out
}

// executions lists the fills of c's accounts at or after from, oldest
// first.
func (c *consumer) executions(from time.Time) []SimExecution {
	var out []SimExecution
	for _, b := range c.books {
		out = append(out, b.executionsOf(from)...)
	}
	sortExecutions(out)
	return out
}

// Executions returns every fill the simulator made, oldest first.
func (s *Server) Executions() []SimExecution {
	var out []SimExecution
	for _, b := range s.allBooks() {
		out = append(out, b.executionsOf(time.Time{})...)
	}
	sortExecutions(out)
	return out
}

func sortExecutions(l []SimExecution) {
	sort.SliceStable(l, func(i, j int) bool { return l[i].At.Before(l[j].At) })
}

// handleCancel is DELETE /iserver/account/{acct}/order/{id}: a request to
// cancel, which the simulator carries out at once.
func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request) {
	st := stateOf(r)
	acct, id := r.PathValue("acct"), r.PathValue("id")
	_, b, ok := st.c.account(acct)
	if !ok {
		writeBareError(w, http.StatusBadRequest, fmt.Sprintf("Account %s is not valid for this user", acct))
		return
	}
	b.mu.Lock()
	o := b.orders[id]
	if o == nil {
		b.mu.Unlock()
		writeBareError(w, http.StatusNotFound, fmt.Sprintf("OrderID %s doesn't exist", id))
		return
	}
	if !o.working() {
		status := o.status
		b.mu.Unlock()
		writeBareError(w, http.StatusBadRequest, fmt.Sprintf("OrderID %s cannot be cancelled: it is %s", id, status))
		return
	}
	o.status = StatusCancelled
	conid := o.sec.Conid
	b.mu.Unlock()
	oid, _ := strconv.ParseInt(id, 10, 64)
	writeJSON(w, http.StatusOK, map[string]any{"msg": "Request was submitted", "order_id": oid, "conid": conid, "account": acct})
}
