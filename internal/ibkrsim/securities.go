package ibkrsim

import (
	"hash/fnv"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// Listing is one exchange listing of a security.
type Listing struct {
	Conid    int    `json:"conid"`
	Exchange string `json:"exchange"`
	IsUS     bool   `json:"isUS"`
}

// Security is one ticker of the built-in NASDAQ-100 table with its prices.
type Security struct {
	Ticker string
	Name   string
	// Conid is the US (NASDAQ) stock listing.
	Conid int
	// Foreign are the non-US listings of the same stock (e.g. MEXI).
	Foreign []Listing
	// CDR is a Canadian depositary receipt listing, 0 when none.
	CDR int
	// RefPrice is the previous close; OpenPrice and ClosePrice are what the
	// opening and closing auctions fill at.
	RefPrice, OpenPrice, ClosePrice float64
}

// secRow is one table row: ticker, name, conid (0: derived), reference price.
type secRow struct {
	t, name string
	conid   int
	price   float64
}

// nasdaq100 is the built-in table. Conids are IBKR's where known (AAPL's from
// the protocol notes) and otherwise stable made-up numbers derived from the
// ticker; prices are plausible, not real.
func nasdaq100() []secRow {
	return []secRow{
		{"AAPL", "APPLE INC", 265598, 187.25}, {"ABNB", "AIRBNB INC-CLASS A", 0, 142.10},
		{"ADBE", "ADOBE INC", 265768, 521.40}, {"ADI", "ANALOG DEVICES INC", 0, 198.75},
		{"ADP", "AUTOMATIC DATA PROCESSING", 0, 244.30}, {"ADSK", "AUTODESK INC", 0, 236.80},
		{"AEP", "AMERICAN ELECTRIC POWER", 0, 84.15}, {"AMAT", "APPLIED MATERIALS INC", 0, 205.60},
		{"AMD", "ADVANCED MICRO DEVICES", 4391, 158.90}, {"AMGN", "AMGEN INC", 0, 301.20},
		{"AMZN", "AMAZON.COM INC", 3691937, 181.05}, {"ANSS", "ANSYS INC", 0, 325.70},
		{"ARM", "ARM HOLDINGS PLC-ADR", 0, 118.40}, {"ASML", "ASML HOLDING NV-NY REG SHS", 0, 915.30},
		{"AVGO", "BROADCOM INC", 0, 1321.50}, {"AZN", "ASTRAZENECA PLC-SPONS ADR", 0, 75.90},
		{"BIIB", "BIOGEN INC", 0, 221.35}, {"BKNG", "BOOKING HOLDINGS INC", 0, 3612.00},
		{"BKR", "BAKER HUGHES CO", 0, 33.45}, {"CCEP", "COCA-COLA EUROPACIFIC PARTN", 0, 71.20},
		{"CDNS", "CADENCE DESIGN SYS INC", 0, 282.65}, {"CDW", "CDW CORP/DE", 0, 224.10},
		{"CEG", "CONSTELLATION ENERGY", 0, 201.85}, {"CHTR", "CHARTER COMMUNICATIONS INC-A", 0, 281.40},
		{"CMCSA", "COMCAST CORP-CLASS A", 0, 39.15}, {"COST", "COSTCO WHOLESALE CORP", 272997, 812.50},
		{"CPRT", "COPART INC", 0, 53.70}, {"CRWD", "CROWDSTRIKE HOLDINGS INC - A", 0, 318.90},
		{"CSCO", "CISCO SYSTEMS INC", 268084, 47.85}, {"CSGP", "COSTAR GROUP INC", 0, 77.30},
		{"CSX", "CSX CORP", 0, 33.90}, {"CTAS", "CINTAS CORP", 0, 684.20},
		{"CTSH", "COGNIZANT TECH SOLUTIONS-A", 0, 67.45}, {"DASH", "DOORDASH INC - A", 0, 112.60},
		{"DDOG", "DATADOG INC - CLASS A", 0, 118.25}, {"DLTR", "DOLLAR TREE INC", 0, 109.80},
		{"DXCM", "DEXCOM INC", 0, 115.40}, {"EA", "ELECTRONIC ARTS INC", 0, 133.10},
		{"EXC", "EXELON CORP", 0, 37.60}, {"FANG", "DIAMONDBACK ENERGY INC", 0, 198.30},
		{"FAST", "FASTENAL CO", 0, 64.25}, {"FTNT", "FORTINET INC", 0, 59.40},
		{"GEHC", "GE HEALTHCARE TECHNOLOGY", 0, 78.95}, {"GFS", "GLOBALFOUNDRIES INC", 0, 51.30},
		{"GILD", "GILEAD SCIENCES INC", 0, 65.70}, {"GOOG", "ALPHABET INC-CL C", 208813720, 178.35},
		{"GOOGL", "ALPHABET INC-CL A", 208813719, 176.90}, {"HON", "HONEYWELL INTERNATIONAL INC", 0, 201.15},
		{"IDXX", "IDEXX LABORATORIES INC", 0, 489.60}, {"ILMN", "ILLUMINA INC", 0, 104.25},
		{"INTC", "INTEL CORP", 270639, 31.40}, {"INTU", "INTUIT INC", 0, 628.75},
		{"ISRG", "INTUITIVE SURGICAL INC", 0, 398.20}, {"KDP", "KEURIG DR PEPPER INC", 0, 33.85},
		{"KHC", "KRAFT HEINZ CO/THE", 0, 35.10}, {"KLAC", "KLA CORP", 0, 785.40},
		{"LIN", "LINDE PLC", 0, 431.55}, {"LRCX", "LAM RESEARCH CORP", 0, 941.20},
		{"LULU", "LULULEMON ATHLETICA INC", 0, 312.75}, {"MAR", "MARRIOTT INTERNATIONAL -CL A", 0, 233.40},
		{"MCHP", "MICROCHIP TECHNOLOGY INC", 0, 89.95}, {"MDB", "MONGODB INC", 0, 248.30},
		{"MDLZ", "MONDELEZ INTERNATIONAL INC-A", 0, 68.45}, {"MELI", "MERCADOLIBRE INC", 0, 1702.00},
		{"META", "META PLATFORMS INC-CLASS A", 107113386, 494.80}, {"MNST", "MONSTER BEVERAGE CORP", 0, 50.25},
		{"MRNA", "MODERNA INC", 0, 121.60}, {"MRVL", "MARVELL TECHNOLOGY INC", 0, 70.35},
		{"MSFT", "MICROSOFT CORP", 272093, 427.50}, {"MU", "MICRON TECHNOLOGY INC", 0, 128.90},
		{"NFLX", "NETFLIX INC", 15124833, 641.30}, {"NVDA", "NVIDIA CORP", 4815747, 120.95},
		{"NXPI", "NXP SEMICONDUCTORS NV", 0, 263.70}, {"ODFL", "OLD DOMINION FREIGHT LINE", 0, 176.45},
		{"ON", "ON SEMICONDUCTOR", 0, 71.80}, {"ORLY", "O'REILLY AUTOMOTIVE INC", 0, 1043.00},
		{"PANW", "PALO ALTO NETWORKS INC", 0, 329.15}, {"PAYX", "PAYCHEX INC", 0, 120.40},
		{"PCAR", "PACCAR INC", 0, 104.60}, {"PDD", "PDD HOLDINGS INC", 0, 148.20},
		{"PEP", "PEPSICO INC", 11017, 166.75}, {"PYPL", "PAYPAL HOLDINGS INC", 0, 63.10},
		{"QCOM", "QUALCOMM INC", 273544, 201.40}, {"REGN", "REGENERON PHARMACEUTICALS", 0, 1015.00},
		{"ROP", "ROPER TECHNOLOGIES INC", 0, 541.30}, {"ROST", "ROSS STORES INC", 0, 142.95},
		{"SBUX", "STARBUCKS CORP", 0, 78.60}, {"SMCI", "SUPER MICRO COMPUTER INC", 0, 812.40},
		{"SNPS", "SYNOPSYS INC", 0, 566.20}, {"TEAM", "ATLASSIAN CORP-CL A", 0, 171.85},
		{"TMUS", "T-MOBILE US INC", 0, 176.30}, {"TSLA", "TESLA INC", 76792991, 182.60},
		{"TTD", "TRADE DESK INC/THE -CLASS A", 0, 94.75}, {"TTWO", "TAKE-TWO INTERACTIVE SOFTWRE", 0, 151.20},
		{"TXN", "TEXAS INSTRUMENTS INC", 0, 195.40}, {"VRSK", "VERISK ANALYTICS INC", 0, 266.85},
		{"VRTX", "VERTEX PHARMACEUTICALS INC", 0, 468.30}, {"WBA", "WALGREENS BOOTS ALLIANCE INC", 0, 16.45},
		{"WBD", "WARNER BROS DISCOVERY INC", 0, 8.15}, {"WDAY", "WORKDAY INC-CLASS A", 0, 221.70},
		{"XEL", "XCEL ENERGY INC", 0, 53.95}, {"ZS", "ZSCALER INC", 0, 192.30},
		// Not in the index, but in the protocol's examples.
		{"IBKR", "INTERACTIVE BROKERS GRO-CL A", 43645865, 121.45},
	}
}

// hasCDR reports whether ticker has a Canadian depositary receipt listing on
// AEQLIT.
func hasCDR(ticker string) bool {
	switch ticker {
	case "AAPL", "AMZN", "GOOGL", "META", "MSFT", "NFLX", "NVDA", "TSLA", "COST", "AMD":
		return true
	}
	return false
}

// securities is the immutable lookup table built by newSecurities.
type securities struct {
	byTicker map[string]*Security
	byConid  map[int]*Security
}

func fnv32(s string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return h.Sum32()
}

// derivedConid gives a stable plausible conid for a listing without a known one.
func derivedConid(ticker, exchange string, lo, span uint32) int {
	return int(lo + fnv32(ticker+"@"+exchange)%span)
}

// auctionPrice moves the reference price by a stable per-ticker amount of at
// most ±1.5%, rounded to a cent.
func auctionPrice(ref float64, ticker, which string) float64 {
	d := float64(int(fnv32(ticker+which)%301)-150) / 10000
	return math.Round(ref*(1+d)*100) / 100
}

func newSecurities() *securities {
	ss := &securities{byTicker: make(map[string]*Security), byConid: make(map[int]*Security)}
	for _, row := range nasdaq100() {
		sec := &Security{
			Ticker:     row.t,
			Name:       row.name,
			Conid:      row.conid,
			RefPrice:   row.price,
			OpenPrice:  auctionPrice(row.price, row.t, "open"),
			ClosePrice: auctionPrice(row.price, row.t, "close"),
		}
		if sec.Conid == 0 {
			sec.Conid = derivedConid(row.t, "NASDAQ", 300_000_000, 400_000_000)
		}
		mexi := derivedConid(row.t, "MEXI", 30_000_000, 200_000_000)
		if row.t == "AAPL" {
			mexi = 38708077
		}
		sec.Foreign = []Listing{{Conid: mexi, Exchange: "MEXI", IsUS: false}}
		if hasCDR(row.t) {
			sec.CDR = derivedConid(row.t, "AEQLIT", 500_000_000, 100_000_000)
			if row.t == "AAPL" {
				sec.CDR = 532640894
			}
		}
		ss.byTicker[row.t] = sec
		ss.byConid[sec.Conid] = sec
	}
	return ss
}

// Security returns the table's entry for ticker and reports whether it exists.
func (s *Server) Security(ticker string) (Security, bool) {
	sec, ok := s.secs.byTicker[strings.ToUpper(ticker)]
	if !ok {
		return Security{}, false
	}
	return *sec, true
}

// Securities returns every ticker of the built-in table, sorted.
func (s *Server) Securities() []Security {
	out := make([]Security, 0, len(s.secs.byTicker))
	for _, sec := range s.secs.byTicker {
		out = append(out, *sec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ticker < out[j].Ticker })
	return out
}

type stockEntry struct {
	Name       string    `json:"name"`
	AssetClass string    `json:"assetClass,omitempty"`
	Contracts  []Listing `json:"contracts"`
}

// handleStocks is GET /trsrv/stocks?symbols=A,B: integer conids, the US
// listing first, then non-US ones, and CDRs as a separate entry.
func (s *Server) handleStocks(w http.ResponseWriter, r *http.Request) {
	syms := r.URL.Query().Get("symbols")
	if strings.TrimSpace(syms) == "" {
		writeError(w, http.StatusBadRequest, "Bad Request: symbols required")
		return
	}
	out := make(map[string][]stockEntry)
	for _, sym := range strings.Split(syms, ",") {
		sym = strings.TrimSpace(sym)
		if sym == "" {
			continue
		}
		sec, ok := s.secs.byTicker[strings.ToUpper(sym)]
		if !ok {
			out[sym] = []stockEntry{}
			continue
		}
		entries := []stockEntry{{
			Name:       sec.Name,
			AssetClass: "STK",
			Contracts:  append([]Listing{{Conid: sec.Conid, Exchange: "NASDAQ", IsUS: true}}, sec.Foreign...),
		}}
		if sec.CDR != 0 {
			entries = append(entries, stockEntry{
				Name:      sec.Name + "-CDR",
				Contracts: []Listing{{Conid: sec.CDR, Exchange: "AEQLIT", IsUS: false}},
			})
		}
		out[sym] = entries
	}
	writeJSON(w, http.StatusOK, out)
}

type searchResult struct {
	Conid         string           `json:"conid"`
	CompanyHeader string           `json:"companyHeader"`
	CompanyName   string           `json:"companyName"`
	Symbol        string           `json:"symbol"`
	Description   string           `json:"description"`
	Restricted    *string          `json:"restricted"`
	Fop           *string          `json:"fop"`
	Opt           *string          `json:"opt"`
	War           *string          `json:"war"`
	Sections      []map[string]any `json:"sections"`
}

// handleSecdefSearch is GET/POST /iserver/secdef/search: conids as strings,
// as IBKR sends them here.
func (s *Server) handleSecdefSearch(w http.ResponseWriter, r *http.Request) {
	sym := r.URL.Query().Get("symbol")
	secType := r.URL.Query().Get("secType")
	if r.Method == http.MethodPost && sym == "" {
		var body struct {
			Symbol  string `json:"symbol"`
			SecType string `json:"secType"`
		}
		if err := decodeJSON(r, &body); err != nil {
			writeError(w, http.StatusBadRequest, "Bad Request: malformed JSON")
			return
		}
		sym, secType = body.Symbol, body.SecType
	}
	if strings.TrimSpace(sym) == "" {
		writeError(w, http.StatusBadRequest, "Bad Request: symbol required")
		return
	}
	out := []searchResult{}
	if secType != "" && !strings.EqualFold(secType, "STK") {
		writeJSON(w, http.StatusOK, out)
		return
	}
	sec, ok := s.secs.byTicker[strings.ToUpper(strings.TrimSpace(sym))]
	if ok {
		sections := []map[string]any{{"secType": "STK"}}
		out = append(out, searchResult{
			Conid: strconv.Itoa(sec.Conid), CompanyHeader: sec.Name + " - NASDAQ", CompanyName: sec.Name,
			Symbol: sec.Ticker, Description: "NASDAQ", Sections: sections,
		})
		for _, l := range sec.Foreign {
			out = append(out, searchResult{
				Conid: strconv.Itoa(l.Conid), CompanyHeader: sec.Name + " - " + l.Exchange, CompanyName: sec.Name,
				Symbol: sec.Ticker, Description: l.Exchange, Sections: sections,
			})
		}
	}
	writeJSON(w, http.StatusOK, out)
}
