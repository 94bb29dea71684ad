package ibkr

import (
	"cmp"
	"context"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// PortfolioAccount is one account of GET /portfolio/accounts.
type PortfolioAccount struct {
	ID   string
	Type string
}

// PortfolioAccounts lists the accounts the portfolio endpoints serve (GET
// /portfolio/accounts, paced to 1 per 5 s). IBKR wants this call before
// any other /portfolio request of a session: without it, positions may be
// refused or answered empty.
func (s *Session) PortfolioAccounts(ctx context.Context) ([]PortfolioAccount, error) {
	c := call{op: "portfolio accounts", method: http.MethodGet, endpoint: "/portfolio/accounts"}
	return fetch(ctx, s, c, nil, nil, parsePortfolioAccounts)
}

// parsePortfolioAccounts decodes the portfolio account list.
func parsePortfolioAccounts(body []byte) ([]PortfolioAccount, error) {
	type wire struct {
		ID        string `json:"id"`
		AccountID string `json:"accountId"`
		Type      string `json:"type"`
	}
	return decodeList(body, func(w wire) (PortfolioAccount, bool) {
		id := cmp.Or(strings.TrimSpace(w.ID), strings.TrimSpace(w.AccountID))
		return PortfolioAccount{ID: limitText(id), Type: limitText(w.Type)}, id != ""
	})
}

// Position is one holding of GET /portfolio/{acct}/positions. The numbers
// are IBKR's as sent (decimal text).
type Position struct {
	Account string
	Conid   int64
	// Ticker is IBKR's ticker, or the contract description when absent.
	Ticker        string
	Quantity      Number
	AvgCost       Number
	MarketPrice   Number
	MarketValue   Number
	UnrealizedPnL Number
	Currency      string
	AssetClass    string
}

// maxPositionPages bounds how many pages of positions are read (IBKR
// answers 100 positions a page).
const maxPositionPages = 10

// Positions lists the account's positions (GET
// /portfolio/{acct}/positions/{page}, page by page until a short one). It
// primes the portfolio endpoints with PortfolioAccounts first, as IBKR
// demands, and refuses an account the list does not hold.
func (s *Session) Positions(ctx context.Context, accountID string) ([]Position, error) {
	accts, err := s.PortfolioAccounts(ctx)
	if err != nil {
		return nil, err
	}
	known := false
	for _, a := range accts {
		known = known || strings.EqualFold(a.ID, accountID)
	}
	c := call{op: "positions", method: http.MethodGet, endpoint: "/portfolio/" + url.PathEscape(accountID) + "/positions/0"}
	if !known {
		return nil, &Error{Kind: KindAccountNotFound, Op: c.op, Method: c.method, Endpoint: c.endpoint, Text: "the account is not among the portfolio accounts"}
	}
	var out []Position
	for page := 0; page < maxPositionPages; page++ {
		c.endpoint = "/portfolio/" + url.PathEscape(accountID) + "/positions/" + strconv.Itoa(page)
		l, err := fetch(ctx, s, c, nil, nil, parsePositions)
		if err != nil {
			return nil, err
		}
		out = append(out, l...)
		if len(l) < positionsPageSize {
			break
		}
	}
	return out, nil
}

// positionsPageSize is how many positions IBKR puts on a full page.
const positionsPageSize = 100

// parsePositions decodes one page of positions, dropping closed ones
// (IBKR lists a position closed today with quantity 0) and those without
// a readable quantity.
func parsePositions(body []byte) ([]Position, error) {
	type wire struct {
		AcctID        string `json:"acctId"`
		Conid         conid  `json:"conid"`
		ContractDesc  string `json:"contractDesc"`
		Ticker        string `json:"ticker"`
		Position      Number `json:"position"`
		AvgCost       Number `json:"avgCost"`
		MktPrice      Number `json:"mktPrice"`
		MktValue      Number `json:"mktValue"`
		UnrealizedPnl Number `json:"unrealizedPnl"`
		Currency      string `json:"currency"`
		AssetClass    string `json:"assetClass"`
	}
	return decodeList(body, func(w wire) (Position, bool) {
		if q, err := strconv.ParseFloat(strings.TrimSpace(string(w.Position)), 64); err != nil || q == 0 || math.IsInf(q, 0) {
			return Position{}, false
		}
		t := cmp.Or(strings.TrimSpace(w.Ticker), strings.TrimSpace(w.ContractDesc))
		return Position{Account: limitText(w.AcctID), Conid: int64(w.Conid), Ticker: limitText(t),
			Quantity: w.Position, AvgCost: w.AvgCost, MarketPrice: w.MktPrice, MarketValue: w.MktValue,
			UnrealizedPnL: w.UnrealizedPnl, Currency: limitText(w.Currency), AssetClass: limitText(w.AssetClass)}, true
	})
}
