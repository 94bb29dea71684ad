package ibkrsim

import (
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// SimOrder is an order as GET /sim/orders reports it.
type SimOrder struct {
	COID        string    `json:"cOID"`
	Account     string    `json:"account"`
	Conid       int       `json:"conid"`
	Ticker      string    `json:"ticker"`
	Side        string    `json:"side"`
	Quantity    float64   `json:"quantity"`
	OrderType   string    `json:"order_type"`
	TIF         string    `json:"tif"`
	LimitPrice  *float64  `json:"limit_price,omitempty"`
	Status      string    `json:"status"`
	Filled      float64   `json:"filled_quantity"`
	AvgPrice    float64   `json:"avg_fill_price"`
	OrderID     string    `json:"order_id"`
	ConsumerKey string    `json:"consumer_key"`
	ReceivedAt  time.Time `json:"received_at"`
}

func (o *order) sim(account string) SimOrder {
	so := SimOrder{
		COID: o.req.COID, Account: account, Conid: o.sec.Conid, Ticker: o.sec.Ticker,
		Side: o.req.Side, Quantity: o.req.Quantity, OrderType: o.req.OrderType, TIF: o.req.TIF,
		Status: o.status, Filled: o.filled, AvgPrice: o.avgPrice, OrderID: o.id,
		ConsumerKey: o.consumerKey, ReceivedAt: o.receivedAt.UTC(),
	}
	if o.req.HasPrice {
		p := o.req.Price
		so.LimitPrice = &p
	}
	return so
}

// allBooks returns every account book, sorted by account id.
func (s *Server) allBooks() []*book {
	s.mu.RLock()
	out := make([]*book, 0, len(s.books))
	for _, b := range s.books {
		out = append(out, b)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// Orders returns every order the simulator accepted, oldest first.
func (s *Server) Orders() []SimOrder {
	var out []SimOrder
	for _, b := range s.allBooks() {
		b.mu.Lock()
		for _, o := range b.seq {
			out = append(out, o.sim(b.id))
		}
		b.mu.Unlock()
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].ReceivedAt.Equal(out[j].ReceivedAt) {
			return out[i].ReceivedAt.Before(out[j].ReceivedAt)
		}
		return out[i].OrderID < out[j].OrderID
	})
	return out
}

// AuctionResult is what an auction did.
type AuctionResult struct {
	Filled    int        `json:"filled"`
	Cancelled int        `json:"cancelled"`
	Orders    []SimOrder `json:"orders"`
}

// RunAuction runs the opening auction (open = true: OPG orders) or the closing
// one (MOC orders). prices overrides per-ticker auction prices.
func (s *Server) RunAuction(open bool, prices map[string]float64) AuctionResult {
	now := s.clock()
	res := AuctionResult{Orders: []SimOrder{}}
	for _, b := range s.allBooks() {
		b.mu.Lock()
		for _, o := range b.seq {
			if o.status != StatusPreSubmitted {
				continue
			}
			if open != (o.req.TIF == "OPG") || !open && o.req.OrderType != "MOC" {
				continue
			}
			price := o.sec.ClosePrice
			if open {
				price = o.sec.OpenPrice
			}
			if p, ok := prices[o.sec.Ticker]; ok && p > 0 {
				price = p
			}
			if marketable(o.req, price) {
				s.fillOrder(o, price, now, true)
			} else {
				o.status = StatusCancelled
			}
			if o.filled > 0 {
				res.Filled++
			} else {
				res.Cancelled++
			}
			res.Orders = append(res.Orders, o.sim(b.id))
		}
		b.mu.Unlock()
	}
	return res
}

// AddFault injects a fault and returns it with its id.
func (s *Server) AddFault(f Fault) (Fault, error) {
	pf, err := parseFault(f)
	if err != nil {
		return Fault{}, err
	}
	if pf.Kind == FaultEmptyOrders && pf.latency > 0 {
		pf.until = s.clock().Add(pf.latency)
	}
	return s.faults.add(pf), nil
}

// ClearFaults removes the fault with id, or every fault when id is 0.
func (s *Server) ClearFaults(id int64) { s.faults.clear(id) }

func (s *Server) controlRoutes() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /sim/orders", func(w http.ResponseWriter, r *http.Request) {
		orders := s.Orders()
		if orders == nil {
			orders = []SimOrder{}
		}
		if acct := r.URL.Query().Get("account"); acct != "" {
			kept := orders[:0]
			for _, o := range orders {
				if o.Account == acct {
					kept = append(kept, o)
				}
			}
			orders = kept
		}
		writeJSON(w, http.StatusOK, orders)
	})
	m.HandleFunc("GET /sim/stats", s.handleStats)
	m.HandleFunc("GET /sim/executions", func(w http.ResponseWriter, r *http.Request) {
		list := []SimExecution{}
		acct := r.URL.Query().Get("account")
		for _, e := range s.Executions() {
			if acct == "" || e.Account == acct {
				list = append(list, e)
			}
		}
		writeJSON(w, http.StatusOK, list)
	})
	m.HandleFunc("GET /sim/positions", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Positions(r.URL.Query().Get("account")))
	})
	m.HandleFunc("POST /sim/consumers", func(w http.ResponseWriter, r *http.Request) {
		var c Consumer
		if err := decodeJSON(r, &c); err != nil {
			writeError(w, http.StatusBadRequest, "malformed JSON: "+err.Error())
			return
		}
		if err := s.AddConsumer(c); err != nil {
			status := http.StatusUnprocessableEntity
			if strings.Contains(err.Error(), "already registered") {
				status = http.StatusConflict
			}
			writeError(w, status, err.Error())
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"consumer_key": c.ConsumerKey})
	})
	m.HandleFunc("GET /sim/totals", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Totals())
	})
	m.HandleFunc("GET /sim/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.faults.snapshot())
	})
	m.HandleFunc("POST /sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		if err := decodeJSON(r, &f); err != nil {
			writeError(w, http.StatusBadRequest, "malformed JSON: "+err.Error())
			return
		}
		added, err := s.AddFault(f)
		if err != nil {
			writeError(w, http.StatusUnprocessableEntity, err.Error())
			return
		}
		writeJSON(w, http.StatusCreated, added)
	})
	m.HandleFunc("DELETE /sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var id int64
		if v := r.URL.Query().Get("id"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				writeError(w, http.StatusBadRequest, "id must be a positive integer")
				return
			}
			id = n
		}
		s.ClearFaults(id)
		w.WriteHeader(http.StatusNoContent)
	})
	auction := func(open bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var body struct {
				Prices map[string]float64 `json:"prices"`
			}
			if err := decodeJSON(r, &body); err != nil && !errors.Is(err, io.EOF) {
				writeError(w, http.StatusBadRequest, "malformed JSON: "+err.Error())
				return
			}
			writeJSON(w, http.StatusOK, s.RunAuction(open, body.Prices))
		}
	}
	m.HandleFunc("POST /sim/auction/open", auction(true))
	m.HandleFunc("POST /sim/auction/close", auction(false))
	m.HandleFunc("GET /sim/securities", func(w http.ResponseWriter, r *http.Request) {
		type row struct {
			Ticker     string  `json:"ticker"`
			Name       string  `json:"name"`
			Conid      int     `json:"conid"`
			RefPrice   float64 `json:"ref_price"`
			OpenPrice  float64 `json:"open_price"`
			ClosePrice float64 `json:"close_price"`
		}
		var out []row
		for _, sec := range s.Securities() {
			out = append(out, row{sec.Ticker, sec.Name, sec.Conid, sec.RefPrice, sec.OpenPrice, sec.ClosePrice})
		}
		writeJSON(w, http.StatusOK, out)
	})
	s.maintenanceRoutes(m)
	m.HandleFunc("/sim/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "Not Found")
	})
	return m
}
