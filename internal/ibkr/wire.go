package ibkr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Int64 parses the number as an integer ("265598", 265598 and 265598.0 all
// give 265598).
func (n Number) Int64() (int64, error) {
	s := strings.TrimSpace(string(n))
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f == float64(int64(f)) && f < 1<<62 && f > -(1<<62) {
		return int64(f), nil
	}
	return 0, fmt.Errorf("%q is not an integer", limitText(s))
}

// flexBool is a bool IBKR may send as true, "true", 1 or "1".
type flexBool bool

// UnmarshalJSON accepts a bool, a string or a number; null is false.
func (b *flexBool) UnmarshalJSON(data []byte) error {
	var n Number
	if err := n.UnmarshalJSON(data); err != nil {
		return err
	}
	switch strings.ToLower(strings.TrimSpace(string(n))) {
	case "true", "1":
		*b = true
	case "false", "0", "":
		*b = false
	default:
		return fmt.Errorf("%q is not a boolean", limitText(string(n)))
	}
	return nil
}

// conid is a contract id IBKR sends as a number or a string.
type conid int64

// UnmarshalJSON accepts 265598, "265598" and null (zero).
func (c *conid) UnmarshalJSON(data []byte) error {
	var n Number
	if err := n.UnmarshalJSON(data); err != nil {
		return err
	}
	if n == "" {
		*c = 0
		return nil
	}
	i, err := n.Int64()
	if err != nil {
		return fmt.Errorf("conid: %w", err)
	}
	*c = conid(i)
	return nil
}

// AuthStatus is the brokerage session state from ssodh/init, auth/status
// and tickle.
type AuthStatus struct {
	Authenticated bool
	Competing     bool
	Connected     bool
	// Message is IBKR's remark, often empty.
	Message string
	// Fail is IBKR's failure reason, when it gives one.
	Fail string
}

// Healthy reports whether the brokerage session can take orders:
// authenticated, connected and not taken by another login.
func (a AuthStatus) Healthy() bool { return a.Authenticated && a.Connected && !a.Competing }

type authStatusWire struct {
	Authenticated flexBool `json:"authenticated"`
	Competing     flexBool `json:"competing"`
	Connected     flexBool `json:"connected"`
	Message       string   `json:"message"`
	Fail          string   `json:"fail"`
}

func (w authStatusWire) status() AuthStatus {
	return AuthStatus{
		Authenticated: bool(w.Authenticated), Competing: bool(w.Competing), Connected: bool(w.Connected),
		Message: limitText(w.Message), Fail: limitText(w.Fail),
	}
}

// parseAuthStatus decodes ssodh/init and auth/status answers.
func parseAuthStatus(body []byte) (AuthStatus, error) {
	var w authStatusWire
	if err := decodeObject(body, &w); err != nil {
		return AuthStatus{}, err
	}
	return w.status(), nil
}

// TickleResult is the answer to POST /tickle.
type TickleResult struct {
	// Session is the value of the "api" cookie for the WebSocket.
	Session string
	// Collision reports IBKR's "collission" flag (sic).
	Collision bool
	// AuthStatus is the brokerage session state; Present is false when the
	// tickle carried none (no brokerage session yet).
	AuthStatus AuthStatus
	Present    bool
}

// parseTickle decodes a tickle answer.
func parseTickle(body []byte) (TickleResult, error) {
	var w struct {
		Session   string   `json:"session"`
		Collision flexBool `json:"collission"`
		IServer   *struct {
			AuthStatus *authStatusWire `json:"authStatus"`
		} `json:"iserver"`
	}
	if err := decodeObject(body, &w); err != nil {
		return TickleResult{}, err
	}
	r := TickleResult{Session: w.Session, Collision: bool(w.Collision)}
	if w.IServer != nil && w.IServer.AuthStatus != nil {
		r.AuthStatus, r.Present = w.IServer.AuthStatus.status(), true
	}
	return r, nil
}

// AccountList is the answer to GET /iserver/accounts.
type AccountList struct {
	Accounts        []string
	SelectedAccount string
	IsPaper         bool
}

// Has reports whether id is among the accounts (case-insensitive).
func (a *AccountList) Has(id string) bool {
	for _, acc := range a.Accounts {
		if strings.EqualFold(acc, id) {
			return true
		}
	}
	return false
}

// parseAccounts decodes GET /iserver/accounts.
func parseAccounts(body []byte) (AccountList, error) {
	var w struct {
		Accounts        []Number `json:"accounts"`
		SelectedAccount Number   `json:"selectedAccount"`
		IsPaper         flexBool `json:"isPaper"`
	}
	if err := decodeObject(body, &w); err != nil {
		return AccountList{}, err
	}
	l := AccountList{SelectedAccount: string(w.SelectedAccount), IsPaper: bool(w.IsPaper)}
	for _, a := range w.Accounts {
		if a != "" {
			l.Accounts = append(l.Accounts, string(a))
		}
	}
	return l, nil
}

// Stock is one entry of GET /trsrv/stocks for a symbol.
type Stock struct {
	Name       string
	AssetClass string
	Contracts  []StockContract
}

// StockContract is one listing of a stock.
type StockContract struct {
	Conid    int64
	Exchange string
	IsUS     bool
}

// parseStocks decodes GET /trsrv/stocks: symbol → entries.
func parseStocks(body []byte) (map[string][]Stock, error) {
	var w map[string][]struct {
		Name       string `json:"name"`
		AssetClass string `json:"assetClass"`
		Contracts  []struct {
			Conid    conid    `json:"conid"`
			Exchange string   `json:"exchange"`
			IsUS     flexBool `json:"isUS"`
		} `json:"contracts"`
	}
	if err := decodeObject(body, &w); err != nil {
		return nil, err
	}
	out := make(map[string][]Stock, len(w))
	for sym, entries := range w {
		for _, e := range entries {
			s := Stock{Name: e.Name, AssetClass: e.AssetClass}
			for _, c := range e.Contracts {
				s.Contracts = append(s.Contracts, StockContract{Conid: int64(c.Conid), Exchange: c.Exchange, IsUS: bool(c.IsUS)})
			}
			out[sym] = append(out[sym], s)
		}
	}
	return out, nil
}

// Listing is the single US stock listing chosen for a symbol.
type Listing struct {
	Symbol   string
	Name     string
	Conid    int64
	Exchange string
}

// ErrNoUSListing and ErrAmbiguousListing say why a symbol has no single US
// stock listing; USStock wraps them.
var (
	ErrNoUSListing      = errors.New("no US stock listing")
	ErrAmbiguousListing = errors.New("several US stock listings")
)

// pickUSListing chooses the one US listing of a stock among IBKR's entries.
// Several distinct US conids means we refuse rather than guess.
func pickUSListing(symbol string, entries []Stock) (Listing, error) {
	var found []Listing
	seen := map[int64]bool{}
	for _, e := range entries {
		if e.AssetClass != "" && !strings.EqualFold(e.AssetClass, "STK") {
			continue
		}
		for _, c := range e.Contracts {
			if !c.IsUS || c.Conid <= 0 || seen[c.Conid] {
				continue
			}
			seen[c.Conid] = true
			found = append(found, Listing{Symbol: symbol, Name: e.Name, Conid: c.Conid, Exchange: c.Exchange})
		}
	}
	switch len(found) {
	case 0:
		return Listing{}, fmt.Errorf("%s: %w among IBKR's %d entries", symbol, ErrNoUSListing, len(entries))
	case 1:
		return found[0], nil
	}
	desc := make([]string, len(found))
	for i, f := range found {
		desc[i] = fmt.Sprintf("%d (%s, %s)", f.Conid, f.Name, f.Exchange)
	}
	return Listing{}, fmt.Errorf("%s: %w: %s", symbol, ErrAmbiguousListing, strings.Join(desc, ", "))
}

// SecDef is one result of GET /iserver/secdef/search.
type SecDef struct {
	Conid       int64
	Symbol      string
	CompanyName string
	Description string
}

// parseSecDefSearch decodes the search results; conids arrive as strings.
func parseSecDefSearch(body []byte) ([]SecDef, error) {
	type wire struct {
		Conid       conid  `json:"conid"`
		Symbol      string `json:"symbol"`
		CompanyName string `json:"companyName"`
		Description string `json:"description"`
	}
	return decodeList(body, func(r wire) (SecDef, bool) {
		return SecDef{Conid: int64(r.Conid), Symbol: r.Symbol, CompanyName: r.CompanyName, Description: r.Description}, true
	})
}

// decodeObject decodes a JSON object (a null or empty body is an error).
func decodeObject(body []byte, v any) error {
	b := bytes.TrimSpace(body)
	if len(b) == 0 || b[0] != '{' {
		return errors.New("expected a JSON object")
	}
	return json.Unmarshal(b, v)
}

// decodeArray decodes a JSON array; null and an empty body are empty.
func decodeArray(body []byte, v any) error {
	b := bytes.TrimSpace(body)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	if b[0] != '[' {
		return errors.New("expected a JSON array")
	}
	return json.Unmarshal(b, v)
}

// decodeList decodes a JSON array of IBKR's wire records W (null and an
// empty body are empty) and converts each with conv, keeping those it
// reports ok.
func decodeList[W, T any](body []byte, conv func(W) (T, bool)) ([]T, error) {
	var list []W
	if err := decodeArray(body, &list); err != nil {
		return nil, err
	}
	out := make([]T, 0, len(list))
	for _, w := range list {
		if v, ok := conv(w); ok {
			out = append(out, v)
		}
	}
	return out, nil
}
