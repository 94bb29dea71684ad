package ibkr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// WhatIf is IBKR's preview of an order that is not placed: its commission,
// the change to the account's initial margin, the equity with loan after
// it, and IBKR's warnings. Amounts are decimal strings in the account's
// currency. Refusal is IBKR's reason when it would not take the order (no
// trading permission, insufficient funds); the figures are then empty.
type WhatIf struct {
	Commission          string
	InitialMarginChange string
	EquityWithLoanAfter string
	Warnings            []string
	Refusal             string
}

// WhatIf asks IBKR what placing o would do, without placing it
// (POST /iserver/account/{acct}/orders/whatif). The order needs no cOID.
func (s *Session) WhatIf(ctx context.Context, accountID string, o Order) (WhatIf, error) {
	if o.AcctID == "" {
		o.AcctID = accountID
	}
	c := call{op: "what-if order", method: http.MethodPost, orderCall: true,
		endpoint: "/iserver/account/" + url.PathEscape(accountID) + "/orders/whatif"}
	if o.AcctID != accountID || o.Conid <= 0 || o.Quantity <= 0 || (o.Side != "BUY" && o.Side != "SELL") {
		return WhatIf{}, fmt.Errorf("%s: need the account, a conid, a side and a positive quantity", c.op)
	}
	body, err := s.do(ctx, c, nil, map[string][]Order{"orders": {o}}, nil)
	var e *Error
	if errors.As(err, &e) && e.Text != "" {
		switch e.Kind {
		case KindOrderRejected, KindNoPermission, KindRequestFailed:
			// IBKR's answer to the order itself: what the user must read
			// before confirming, not a failure of the preview.
			return WhatIf{Refusal: e.Text}, nil
		}
	}
	if err != nil {
		return WhatIf{}, err
	}
	w, err := parseWhatIf(body)
	if err != nil {
		return WhatIf{}, badResponse(c, err)
	}
	return w, nil
}

type whatIfWire struct {
	Amount *struct {
		Commission string `json:"commission"`
	} `json:"amount"`
	Equity *struct {
		After string `json:"after"`
	} `json:"equity"`
	Initial *struct {
		Change string `json:"change"`
	} `json:"initial"`
	Warn  *string `json:"warn"`
	Error *string `json:"error"`
}

// parseWhatIf reads IBKR's what-if answer, whose figures are formatted for
// people ("1,866.50 USD (10 Shares)"): the first number of each is kept.
func parseWhatIf(body []byte) (WhatIf, error) {
	var w whatIfWire
	if err := json.Unmarshal(body, &w); err != nil {
		return WhatIf{}, err
	}
	if w.Error != nil && strings.TrimSpace(*w.Error) != "" {
		return WhatIf{Refusal: limitText(strings.TrimSpace(*w.Error))}, nil
	}
	if w.Amount == nil || w.Equity == nil || w.Initial == nil {
		return WhatIf{}, errors.New("what-if answer without amount, equity or initial margin")
	}
	var out WhatIf
	var err error
	if out.Commission, err = leadingDecimal(w.Amount.Commission); err != nil {
		return WhatIf{}, fmt.Errorf("commission: %w", err)
	}
	if out.InitialMarginChange, err = leadingDecimal(w.Initial.Change); err != nil {
		return WhatIf{}, fmt.Errorf("initial margin change: %w", err)
	}
	if out.EquityWithLoanAfter, err = leadingDecimal(w.Equity.After); err != nil {
		return WhatIf{}, fmt.Errorf("equity with loan after: %w", err)
	}
	if w.Warn != nil {
		for _, line := range strings.Split(*w.Warn, "\n") {
			// IBKR prefixes a warning with its code: "21/You are trying …".
			if _, text, ok := strings.Cut(line, "/"); ok && strings.Trim(line[:strings.Index(line, "/")], "0123456789") == "" {
				line = text
			}
			if line = strings.TrimSpace(line); line != "" {
				out.Warnings = append(out.Warnings, limitText(line))
			}
		}
	}
	return out, nil
}

var leadingNumber = regexp.MustCompile(`^-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?`)

// leadingDecimal returns the number a figure starts with, without its
// thousands separators: "-1,234.5 USD" → "-1234.5".
func leadingDecimal(s string) (string, error) {
	s = strings.TrimSpace(s)
	m := leadingNumber.FindString(s)
	if m == "" || len(m) > 40 {
		return "", fmt.Errorf("%q is not a number", limitText(s))
	}
	return strings.ReplaceAll(m, ",", ""), nil
}
