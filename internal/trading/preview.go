package trading

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/risk"
)

// BrokerInfo names where an order goes.
type BrokerInfo struct {
	Name            string `json:"name"`
	Mode            Mode   `json:"mode"`
	AccountIDMasked string `json:"account_id_masked"`
}

// Preview is exactly what the confirm dialog shows, and exactly the order
// that Confirm places.
type Preview struct {
	SignalID       string     `json:"signal_id"`
	Ticker         string     `json:"ticker"`
	Side           Side       `json:"side"`
	OrderType      OrderKind  `json:"order_type"`
	TIF            string     `json:"tif"`
	LimitPrice     *string    `json:"limit_price"`
	Quantity       int64      `json:"quantity"`
	EstimatedValue string     `json:"estimated_value"`
	Broker         BrokerInfo `json:"broker"`
	// Limits are the user's entry limits with what this order would make
	// each; empty for an exit, which no entry limit refuses.
	Limits []risk.Line `json:"limits"`
	// CutoffAt is when confirmations close: the signal's expiry, at the
	// latest its order's auction cut-off.
	CutoffAt time.Time `json:"cutoff_at"`
	// AuctionDate is the trading day whose auction the order is for: the
	// entry date, or the next trading day when the exchange is closed then.
	AuctionDate string `json:"auction_date"`
	// WhatIf is the broker's what-if for the order, or nil when it could
	// not be had; it never blocks a confirm by itself.
	WhatIf *WhatIf `json:"whatif"`

	refPrice  string  // the signal's reference close
	accountID string  // the unmasked account, never shown
	signal    *Signal // what the preview was computed from
}

// orderShape maps an entry mode to IBKR's order type and time in force.
func orderShape(entryMode string) (orderType OrderKind, tif string) {
	switch entryMode {
	case NextOpenLimit:
		return Limit, "OPG"
	case SignalClose:
		return MarketOnClose, "DAY"
	default:
		return Market, "OPG"
	}
}

// Preview computes what confirming signalID would place for userID, and
// asks the broker's what-if what it would cost: commission, margin, and
// whether the account may trade it at all.
func (s *Service) Preview(ctx context.Context, userID, signalID string) (Preview, error) {
	g, err := s.Signal(ctx, signalID)
	if err != nil {
		return Preview{}, err
	}
	p, err := s.preview(ctx, userID, g, nil)
	if err != nil {
		return Preview{}, err
	}
	sn, err := s.risk.Snapshot(ctx, userID)
	if err != nil {
		return Preview{}, err
	}
	p.Limits = limitLines(sn, p)
	p.WhatIf = s.whatIf(ctx, userID, p)
	return p, nil
}

// limitLines are p's limit lines: none for an exit.
func limitLines(sn risk.Snapshot, p Preview) []risk.Line {
	if p.Side == Sell {
		return []risk.Line{}
	}
	return sn.Check(string(p.Broker.Mode), p.Quantity, p.EstimatedValue)
}

// checkRisk refuses p when a switch or, for an entry, a limit of sn
// refuses it. It fills p's limit lines.
func (s *Service) checkRisk(ctx context.Context, userID string, sn risk.Snapshot, p *Preview) error {
	if err := sn.Gate(string(p.Broker.Mode), p.Side == Sell); err != nil {
		return err
	}
	p.Limits = limitLines(sn, *p)
	return risk.Refusal(p.Limits)
}

// auditRefusal records a limit's refusal of p in the audit trail (a
// confirm refused by a limit leaves no other trace) and returns err.
func (s *Service) auditRefusal(ctx context.Context, userID string, p Preview, err error) error {
	var le *risk.LimitError
	if errors.As(err, &le) {
		if aerr := s.risk.RecordRefusal(ctx, userID, p.SignalID, string(p.Broker.Mode), le.Line); aerr != nil {
			return fmt.Errorf("audit a refused confirm: %w", aerr)
		}
	}
	return err
}

// whatIf asks the broker about p's order; a failure is logged and leaves
// the preview without it, since IBKR answering the real order is what
// counts.
func (s *Service) whatIf(ctx context.Context, userID string, p Preview) *WhatIf {
	if p.Quantity <= 0 {
		return nil
	}
	conid, err := s.conid(ctx, userID, p.Ticker)
	if err == nil {
		var w WhatIf
		if w, err = s.broker.WhatIf(ctx, userID, p.order(conid, "")); err == nil {
			w = w.explained()
			return &w
		}
	}
	s.logger(ctx).Info().Err(err).Str("signal_id", p.SignalID).Msg("what-if unavailable; preview without it")
	return nil
}

// order is the order p describes, with its contract and client order id.
func (p Preview) order(conid int64, coid string) Order {
	return Order{Account: Account{Mode: p.Broker.Mode, ID: p.accountID}, Conid: conid, COID: coid,
		OrderType: p.OrderType, Side: p.Side, Quantity: p.Quantity, TIF: p.TIF, LimitPrice: p.LimitPrice}
}

// preview computes the order; ps is the user's position size when the
// caller already read it.
func (s *Service) preview(ctx context.Context, userID string, g Signal, ps *PositionSize) (Preview, error) {
	switch g.Status {
	case "withdrawn":
		return Preview{}, errs.E(errs.Conflict, "this signal was withdrawn; it can no longer be confirmed")
	case "expired":
		return Preview{}, errs.E(errs.PastCutoff, "confirmations of this signal closed at %s, its order's auction cut-off; it can no longer be confirmed",
			g.ExpiresAt.In(s.cfg.Market.Location()).Format("2006-01-02 15:04 MST"))
	}
	p := Preview{SignalID: g.ID, Ticker: g.Ticker, LimitPrice: g.LimitPrice, refPrice: g.RefClose, signal: &g, CutoffAt: g.ExpiresAt}
	if ed, err := time.Parse(time.DateOnly, g.EntryDate); err == nil {
		_, day := s.cfg.Market.CutoffOn(auction(g.EntryMode), ed)
		p.AuctionDate = day.Date.Format(time.DateOnly)
	}
	p.OrderType, p.TIF = orderShape(g.EntryMode)
	var err error
	if g.Kind == "entry" {
		p.Side = Buy
		p.Quantity, err = s.entryQuantity(ctx, userID, g, ps)
	} else {
		p.Side = Sell
		p.Quantity, err = s.exitQuantity(ctx, s.pool, userID, g, "")
	}
	if err != nil {
		return Preview{}, err
	}
	price, _ := parseDecimal(g.RefClose)
	if g.LimitPrice != nil {
		price, _ = parseDecimal(*g.LimitPrice)
	}
	if price == nil {
		return Preview{}, fmt.Errorf("preview %s: signal has an unreadable price", g.ID)
	}
	p.EstimatedValue = formatDecimal(price.Mul(price, ratInt(p.Quantity)), 2)
	acct, err := s.broker.ActiveAccount(ctx, userID)
	if err != nil {
		return Preview{}, err
	}
	p.Broker = BrokerInfo{Name: "Interactive Brokers", Mode: acct.Mode, AccountIDMasked: acct.Masked}
	p.accountID = acct.ID
	return p, nil
}

// entryQuantity applies the user's position size to the signal's
// reference close.
func (s *Service) entryQuantity(ctx context.Context, userID string, g Signal, known *PositionSize) (int64, error) {
	var ps PositionSize
	if known != nil {
		ps = *known
	} else {
		var err error
		if ps, err = positionSize(ctx, s.pool, userID); err != nil {
			return 0, fmt.Errorf("read position size: %w", err)
		}
	}
	switch ps.Mode {
	case SizeDollars:
		amount, ok1 := parseDecimal(*ps.Value)
		ref, ok2 := parseDecimal(g.RefClose)
		if !ok1 || !ok2 || ref.Sign() <= 0 {
			return 0, fmt.Errorf("entry quantity: unreadable amount or price")
		}
		q := floorDiv(amount, ref)
		if q <= 0 {
			return 0, errs.E(errs.Invalid, "your position size of $%s buys no whole share of %s at %s; raise it in Settings → Position size", *ps.Value, g.Ticker, g.RefClose)
		}
		return q, nil
	case SizeShares:
		q, err := strconv.ParseInt(*ps.Value, 10, 64)
		if err != nil || q <= 0 {
			return 0, fmt.Errorf("entry quantity: unreadable share count")
		}
		return q, nil
	}
	return 0, errs.E(errs.Invalid, "no position size is set, so no order can be placed; set one in Settings → Position size")
}

// exitQuantity is what the user's matching entry (same strategy and
// ticker, newest first) filled, less what exits since that entry sold or
// still may sell: a second exit signal for the same position sells only
// what is left. The confirmation except (the one being placed) does not
// count against itself.
func (s *Service) exitQuantity(ctx context.Context, q execer, userID string, g Signal, except string) (int64, error) {
	var filled, sold int64
	err := q.QueryRow(ctx, `
		WITH entry AS (
			SELECT c.filled_quantity, c.created_at
			FROM confirmations c JOIN signals e ON e.id = c.signal_id
			WHERE c.user_id = $1 AND c.side = 'BUY' AND e.kind = 'entry' AND e.strategy = $2 AND e.ticker = $3
			  AND c.filled_quantity >= 1
			ORDER BY c.created_at DESC, c.id DESC
			LIMIT 1)
		SELECT floor(entry.filled_quantity)::bigint, coalesce((
			SELECT ceil(sum(CASE
				WHEN x.status IN ('filled', 'cancelled', 'failed') OR (x.status = 'partially_filled' AND x.next_check_at IS NULL)
				THEN x.filled_quantity ELSE x.quantity END))::bigint
			FROM confirmations x JOIN signals xs ON xs.id = x.signal_id
			WHERE x.user_id = $1 AND x.side = 'SELL' AND xs.kind = 'exit' AND xs.strategy = $2 AND xs.ticker = $3
			  AND x.created_at >= entry.created_at AND x.id::text <> $4), 0)
		FROM entry`, userID, g.Strategy, g.Ticker, except).Scan(&filled, &sold)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, errs.E(errs.Invalid, "nothing to sell: you have no filled entry of strategy %s in %s", g.Strategy, g.Ticker)
	}
	if err != nil {
		return 0, fmt.Errorf("exit quantity: %w", err)
	}
	if filled-sold <= 0 {
		return 0, errs.E(errs.Invalid, "nothing left to sell: the %d shares your strategy %s entry in %s bought are already sold or being sold", filled, g.Strategy, g.Ticker)
	}
	return filled - sold, nil
}
