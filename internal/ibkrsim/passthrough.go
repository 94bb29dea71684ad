package ibkrsim

import (
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The read-only routes a front end reaches through Ordertune's pass-through
// proxy: market data, contract details and the portfolio. Prices are made
// up but stable: a function of the ticker and the clock, so two calls at the
// same instant agree and tests can predict them.

// passthroughRoutes registers the read-only routes on the API mux.
func (s *Server) passthroughRoutes(m *http.ServeMux) {
	p := APIPrefix
	m.HandleFunc("GET "+p+"/iserver/marketdata/history", s.iserver(s.handleHistory))
	m.HandleFunc("GET "+p+"/iserver/marketdata/snapshot", s.iserver(s.handleSnapshot))
	m.HandleFunc("GET "+p+"/iserver/contract/{conid}/info", s.iserver(s.handleContractInfo))
	m.HandleFunc("GET "+p+"/portfolio/accounts", s.handlePortfolioAccounts)
	m.HandleFunc("GET "+p+"/portfolio/{acct}/positions", s.handlePositions)
	m.HandleFunc("GET "+p+"/portfolio/{acct}/positions/{page}", s.handlePositions)
	m.HandleFunc("GET "+p+"/portfolio/{acct}/summary", s.handleSummary)
}

// livePrice is the simulated last price of sec at now: the reference close
// moved by a slow wave of at most ±0.5% with a per-second wobble, to a cent.
func livePrice(sec *Security, now time.Time) float64 {
	phase := float64(fnv32(sec.Ticker)%360) * math.Pi / 180
	t := float64(now.UnixMilli()) / 1000
	wave := 0.004 * math.Sin(2*math.Pi*t/60+phase)
	wobble := float64(int(fnv32(sec.Ticker+strconv.FormatInt(now.Unix(), 10))%21)-10) / 10000
	return math.Round(sec.RefPrice*(1+wave+wobble/10)*100) / 100
}

// quote is a simulated snapshot of one contract.
type quote struct {
	last, bid, ask, open, high, low, prior float64
	volume                                 int64
}

func quoteOf(sec *Security, now time.Time) quote {
	last := livePrice(sec, now)
	q := quote{last: last, bid: round2(last - 0.01), ask: round2(last + 0.01), open: sec.OpenPrice, prior: sec.RefPrice}
	q.high = math.Max(math.Max(q.open, last), sec.RefPrice*1.002)
	q.low = math.Min(math.Min(q.open, last), sec.RefPrice*0.998)
	q.high, q.low = round2(q.high), round2(q.low)
	q.volume = int64(1_000_000 + fnv32(sec.Ticker)%9_000_000 + uint32(now.Unix()%86400)*10)
	return q
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

func money(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }

// snapshotFields renders IBKR's numeric market-data fields that the
// simulator knows; unknown fields are left out, as IBKR leaves out fields
// it has no value for.
func snapshotFields(sec *Security, q quote, fields []string) map[string]any {
	out := map[string]any{}
	change := q.last - q.prior
	for _, f := range fields {
		switch f {
		case "31":
			out[f] = money(q.last)
		case "55":
			out[f] = sec.Ticker
		case "70":
			out[f] = money(q.high)
		case "71":
			out[f] = money(q.low)
		case "82":
			out[f] = money(change)
		case "83":
			out[f] = strconv.FormatFloat(math.Round(change/q.prior*10000)/100, 'f', 2, 64)
		case "84":
			out[f] = money(q.bid)
		case "85":
			out[f] = "100"
		case "86":
			out[f] = money(q.ask)
		case "87":
			out[f] = strconv.FormatInt(q.volume, 10)
		case "88":
			out[f] = "200"
		case "7295":
			out[f] = money(q.open)
		case "7741":
			out[f] = money(q.prior)
		}
	}
	return out
}

// defaultSnapshotFields are sent when a request names none: last, bid, ask.
func defaultSnapshotFields() []string { return []string{"31", "84", "86"} }

// splitList splits a comma list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// handleSnapshot is GET /iserver/marketdata/snapshot?conids=A,B&fields=31,84.
func (s *Server) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	st := stateOf(r)
	conids := splitList(r.URL.Query().Get("conids"))
	if len(conids) == 0 {
		writeError(w, http.StatusBadRequest, "Bad Request: conids required")
		return
	}
	if len(conids) > 100 {
		writeError(w, http.StatusBadRequest, "Bad Request: at most 100 conids")
		return
	}
	fields := splitList(r.URL.Query().Get("fields"))
	if len(fields) == 0 {
		fields = defaultSnapshotFields()
	}
	out := make([]map[string]any, 0, len(conids))
	for _, cs := range conids {
		id, err := strconv.Atoi(cs)
		if err != nil || id <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("Bad Request: invalid conid %q", limit(cs)))
			return
		}
		row := map[string]any{"conid": id, "conidEx": cs, "server_id": "q0", "_updated": st.now.UnixMilli(), "6119": "q0", "6509": "RpB"}
		if sec, ok := s.secs.byConid[id]; ok {
			for k, v := range snapshotFields(sec, quoteOf(sec, st.now), fields) {
				row[k] = v
			}
		}
		out = append(out, row)
	}
	writeJSON(w, http.StatusOK, out)
}

// limit shortens client text echoed in an error.
func limit(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// parseSpan reads IBKR's period and bar sizes ("5min", "1h", "2d", "1w",
// "1m", "1y") as a duration (months 30 days, years 365).
func parseSpan(s string) (time.Duration, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || i > 4 {
		return 0, fmt.Errorf("invalid size %q", limit(s))
	}
	n, _ := strconv.Atoi(s[:i])
	if n <= 0 {
		return 0, fmt.Errorf("invalid size %q", limit(s))
	}
	day := 24 * time.Hour
	unit := map[string]time.Duration{
		"min": time.Minute, "mins": time.Minute, "h": time.Hour, "hour": time.Hour, "hours": time.Hour,
		"d": day, "w": 7 * day, "m": 30 * day, "y": 365 * day,
	}[s[i:]]
	if unit == 0 || time.Duration(n) > maxSpan/unit {
		return 0, fmt.Errorf("invalid size %q", limit(s))
	}
	return time.Duration(n) * unit, nil
}

// maxSpan bounds a period or bar size (IBKR's history reaches back decades,
// not centuries), which also keeps the arithmetic far from overflowing.
const maxSpan = 50 * 365 * 24 * time.Hour

// maxHistoryBars bounds one history answer, as IBKR does (1000 points).
const maxHistoryBars = 1000

// handleHistory is GET /iserver/marketdata/history?conid=&period=&bar=: OHLC
// bars of a stable random walk that ends at the reference close.
func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	st := stateOf(r)
	q := r.URL.Query()
	sec, ok := s.security(w, q.Get("conid"), "conid required")
	if !ok {
		return
	}
	periodText, barText := q.Get("period"), q.Get("bar")
	if periodText == "" {
		periodText = "1w"
	}
	if barText == "" {
		barText = "1d"
	}
	period, err1 := parseSpan(periodText)
	bar, err2 := parseSpan(barText)
	if err1 != nil || err2 != nil || bar > period {
		writeError(w, http.StatusBadRequest, "Bad Request: invalid period or bar")
		return
	}
	n := int(period / bar)
	if n > maxHistoryBars {
		n = maxHistoryBars
	}
	end := st.now.Truncate(bar)
	bars := historyBars(sec, end, bar, n)
	hi, lo := 0.0, math.Inf(1)
	for _, b := range bars {
		hi, lo = math.Max(hi, b["h"].(float64)), math.Min(lo, b["l"].(float64))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"serverId": "h0", "symbol": sec.Ticker, "text": sec.Name, "priceFactor": 100,
		"startTime": end.Add(-time.Duration(n-1) * bar).UTC().Format("20060102-15:04:05"),
		"high":      fmt.Sprintf("%d/0/0", int(math.Round(hi*100))), "low": fmt.Sprintf("%d/0/0", int(math.Round(lo*100))),
		"timePeriod": periodText, "barLength": int(bar / time.Second), "mdAvailability": "S",
		"mktDataDelay": 0, "outsideRth": false, "volumeFactor": 1, "priceDisplayRule": 1,
		"priceDisplayValue": "2", "negativeCapable": false, "messageVersion": 2,
		"data": bars, "points": len(bars) - 1, "travelTime": 12,
	})
}

// historyBars walks backwards from the reference close: each bar's close is
// the next bar's open moved by a stable step of at most ±1%.
func historyBars(sec *Security, end time.Time, bar time.Duration, n int) []map[string]any {
	out := make([]map[string]any, n)
	closePrice := sec.RefPrice
	for i := n - 1; i >= 0; i-- {
		t := end.Add(-time.Duration(n-1-i) * bar)
		step := float64(int(fnv32(sec.Ticker+t.UTC().Format(time.RFC3339))%201)-100) / 10000
		open := round2(closePrice / (1 + step))
		spread := math.Abs(closePrice-open) + closePrice*0.002
		out[i] = map[string]any{
			"o": open, "c": round2(closePrice),
			"h": round2(math.Max(open, closePrice) + spread/2), "l": round2(math.Min(open, closePrice) - spread/2),
			"v": float64(100000 + fnv32(sec.Ticker+t.String())%900000), "t": t.UnixMilli(),
		}
		closePrice = open
	}
	return out
}

// handleContractInfo is GET /iserver/contract/{conid}/info.
func (s *Server) handleContractInfo(w http.ResponseWriter, r *http.Request) {
	sec, ok := s.security(w, r.PathValue("conid"), "invalid conid")
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"cfi_code": "ESXXXX", "symbol": sec.Ticker, "cusip": nil, "expiry_full": nil, "con_id": sec.Conid,
		"maturity_date": nil, "industry": "Technology", "instrument_type": "STK", "trading_class": "NMS",
		"valid_exchanges": "SMART,AMEX,NYSE,CBOE,PHLX,ISE,CHX,ARCA,NASDAQ,DRCTEDGE,BEX,BATS,EDGEA,IEX",
		"allow_sell_long": false, "is_zero_commission_security": false, "local_symbol": sec.Ticker,
		"contract_clarification_type": nil, "classifier": nil, "currency": "USD", "text": nil,
		"underlying_con_id": 0, "r_t_h": true, "multiplier": nil, "underlying_issuer": nil,
		"contract_month": nil, "company_name": sec.Name, "size_increment": "0.0001",
		"exchange": "NASDAQ", "category": "Common Stock",
	})
}

// position is an account's holding of one contract, built from its fills.
type position struct {
	sec       *Security
	qty       float64
	cost      float64 // of the open quantity
	realized  float64
	cashDelta float64
}

// positions folds the book's fills into positions, oldest fill first; a
// sell reduces the open quantity at its average cost.
func positions(b *book) []*position {
	type ev struct {
		f    fill
		side string
		sec  *Security
	}
	var evs []ev
	b.mu.Lock()
	for _, o := range b.seq {
		for _, f := range o.fills {
			evs = append(evs, ev{f: f, side: o.req.Side, sec: o.sec})
		}
	}
	b.mu.Unlock()
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].f.at.Before(evs[j].f.at) })
	by := map[int]*position{}
	var order []int
	for _, e := range evs {
		p := by[e.sec.Conid]
		if p == nil {
			p = &position{sec: e.sec}
			by[e.sec.Conid] = p
			order = append(order, e.sec.Conid)
		}
		amount := e.f.qty * e.f.price
		if e.side == "BUY" {
			p.qty += e.f.qty
			p.cost += amount
			p.cashDelta -= amount
			continue
		}
		avg := 0.0
		if p.qty > 0 {
			avg = p.cost / p.qty
		}
		p.realized += (e.f.price - avg) * e.f.qty
		p.qty -= e.f.qty
		p.cost -= avg * e.f.qty
		p.cashDelta += amount
	}
	out := make([]*position, 0, len(order))
	for _, id := range order {
		out = append(out, by[id])
	}
	return out
}

// handlePortfolioAccounts is GET /portfolio/accounts: the consumer's
// accounts, which primes the other /portfolio calls.
func (s *Server) handlePortfolioAccounts(w http.ResponseWriter, r *http.Request) {
	c := stateOf(r).c
	c.mu.Lock()
	c.sess.portfolioPrimed = true
	c.mu.Unlock()
	out := []map[string]any{}
	for _, a := range c.accounts {
		typ := "INDIVIDUAL"
		if a.Paper {
			typ = "DEMO"
		}
		out = append(out, map[string]any{"id": a.ID, "accountId": a.ID, "accountVan": a.ID, "accountTitle": "Simulated " + a.ID,
			"displayName": a.ID, "currency": "USD", "type": typ, "tradingType": "STKNOPT", "covestor": false,
			"parent": map[string]any{"mmc": []any{}, "accountId": "", "isMParent": false, "isMChild": false, "isMultiplex": false},
			"desc":   a.ID})
	}
	writeJSON(w, http.StatusOK, out)
}

// ownBook returns the consumer's book of the account in the path, or
// answers IBKR's refusal for an account the user does not have (or, with
// PortfolioAccountsFirst, for a session that did not prime the portfolio).
func (s *Server) ownBook(w http.ResponseWriter, r *http.Request) (*book, bool) {
	acct := r.PathValue("acct")
	c := stateOf(r).c
	if s.cfg.PortfolioAccountsFirst {
		c.mu.Lock()
		primed := c.sess.portfolioPrimed
		c.mu.Unlock()
		if !primed {
			writeError(w, http.StatusBadRequest, "Please query /portfolio/accounts first")
			return nil, false
		}
	}
	_, b, ok := c.account(acct)
	if !ok {
		writeError(w, http.StatusUnauthorized, fmt.Sprintf("Account %s is not valid for this user", limit(acct)))
		return nil, false
	}
	return b, true
}

// handlePositions is GET /portfolio/{acct}/positions[/{page}]: the open
// positions from the account's own fills (page 0 holds them all).
func (s *Server) handlePositions(w http.ResponseWriter, r *http.Request) {
	st := stateOf(r)
	b, ok := s.ownBook(w, r)
	if !ok {
		return
	}
	if page := r.PathValue("page"); page != "" {
		if n, err := strconv.Atoi(page); err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "Bad Request: invalid page")
			return
		} else if n > 0 {
			writeJSON(w, http.StatusOK, []any{})
			return
		}
	}
	out := []map[string]any{}
	for _, p := range positions(b) {
		if p.qty == 0 {
			continue
		}
		mkt := livePrice(p.sec, st.now)
		avg := p.cost / p.qty
		out = append(out, map[string]any{
			"acctId": b.id, "conid": p.sec.Conid, "contractDesc": p.sec.Ticker, "position": p.qty,
			"mktPrice": mkt, "mktValue": round2(mkt * p.qty), "currency": "USD",
			"avgCost": round4(avg), "avgPrice": round4(avg), "realizedPnl": round2(p.realized),
			"unrealizedPnl": round2((mkt - avg) * p.qty), "assetClass": "STK", "ticker": p.sec.Ticker,
			"name": p.sec.Name, "listingExchange": "NASDAQ", "isUS": true,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

func round4(f float64) float64 { return math.Round(f*10000) / 10000 }

// startingCash is what every simulated account holds before its fills.
const startingCash = 1_000_000.0

// handleSummary is GET /portfolio/{acct}/summary: IBKR's summary fields
// (amount, currency, value, ...) from the account's fills.
func (s *Server) handleSummary(w http.ResponseWriter, r *http.Request) {
	st := stateOf(r)
	b, ok := s.ownBook(w, r)
	if !ok {
		return
	}
	cash, gross := startingCash, 0.0
	for _, p := range positions(b) {
		cash += p.cashDelta
		gross += math.Abs(p.qty * livePrice(p.sec, st.now))
	}
	net := cash + gross
	ts := st.now.UnixMilli()
	field := func(amount float64) map[string]any {
		return map[string]any{"amount": round2(amount), "currency": "USD", "isNull": false, "timestamp": ts, "value": nil, "severity": 0}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"accountcode":         map[string]any{"amount": 0, "currency": nil, "isNull": false, "timestamp": ts, "value": b.id, "severity": 0},
		"accounttype":         map[string]any{"amount": 0, "currency": nil, "isNull": false, "timestamp": ts, "value": "INDIVIDUAL", "severity": 0},
		"netliquidation":      field(net),
		"totalcashvalue":      field(cash),
		"settledcash":         field(cash),
		"grosspositionvalue":  field(gross),
		"equitywithloanvalue": field(net),
		"availablefunds":      field(cash),
		"buyingpower":         field(math.Max(0, cash) * 4),
		"initmarginreq":       field(gross * 0.25),
		"maintmarginreq":      field(gross * 0.25),
		"excessliquidity":     field(net - gross*0.25),
	})
}

// SimPosition is one open position as GET /sim/positions reports it.
type SimPosition struct {
	Account  string  `json:"account"`
	Ticker   string  `json:"ticker"`
	Conid    int     `json:"conid"`
	Quantity float64 `json:"quantity"`
	AvgCost  float64 `json:"avg_cost"`
	// Realized is the profit of the position's sells at its average cost,
	// before commissions.
	Realized float64 `json:"realized"`
}

// Positions returns the open positions of account (empty: of every
// account), by account and then in the order they were opened.
func (s *Server) Positions(account string) []SimPosition {
	out := []SimPosition{}
	for _, b := range s.allBooks() {
		if account != "" && b.id != account {
			continue
		}
		for _, p := range positions(b) {
			if p.qty == 0 {
				continue
			}
			out = append(out, SimPosition{Account: b.id, Ticker: p.sec.Ticker, Conid: p.sec.Conid, Quantity: p.qty,
				AvgCost: round4(p.cost / p.qty), Realized: round2(p.realized)})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Account < out[j].Account })
	return out
}

// security finds the security of a request's conid, the text raw. When
// there is none it answers IBKR's 400, saying bad (such as "conid
// required") for a conid that is not a positive number, and reports false.
func (s *Server) security(w http.ResponseWriter, raw, bad string) (*Security, bool) {
	id, err := strconv.Atoi(raw)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, "Bad Request: "+bad)
		return nil, false
	}
	sec, ok := s.secs.byConid[id]
	if !ok {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Bad Request: unknown conid %d", id))
	}
	return sec, ok
}
