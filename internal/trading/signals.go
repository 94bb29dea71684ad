package trading

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/audit"
	"github.com/ordertune/ordertune/internal/errs"
	"github.com/ordertune/ordertune/internal/market"
	"github.com/ordertune/ordertune/internal/pagecursor"
)

// Entry modes (DESIGN.md §2) and the IBKR orders they become.
const (
	NextOpenMarket = "next_open_market" // MKT, tif OPG
	NextOpenLimit  = "next_open_limit"  // LMT, tif OPG, price = limit
	SignalClose    = "signal_close"     // MOC, tif DAY
)

// Signal is a published signal as clients see it.
type Signal struct {
	ID string `json:"id"`
	// NewSignal is what the admin published; its fields are the signal's
	// (JSON flattens them into the signal's object).
	NewSignal
	CreatedAt   time.Time  `json:"created_at"`
	WithdrawnAt *time.Time `json:"withdrawn_at"`
	// Status is "open", "expired" or "withdrawn".
	Status string `json:"status"`
	// MyConfirmation is the caller's latest confirmation of the signal, set
	// by ListSignals.
	MyConfirmation *Confirmation `json:"my_confirmation"`
	// Sellable is, for an open exit signal in ListSignals, how many shares
	// confirming it would sell for the caller (0: nothing to sell), so a
	// page offers Confirm Sell only when there is something to sell.
	Sellable *int64 `json:"sellable,omitempty"`
}

// NewSignal is what an admin publishes (POST /signals).
type NewSignal struct {
	Ticker     string    `json:"ticker"`
	Strategy   string    `json:"strategy"`
	Kind       string    `json:"kind"`
	SignalDate string    `json:"signal_date"`
	EntryDate  string    `json:"entry_date"`
	RefClose   string    `json:"ref_close"`
	RSI2       string    `json:"rsi2"`
	Return2D   string    `json:"return_2d"`
	EntryMode  string    `json:"entry_mode"`
	LimitPrice *string   `json:"limit_price"`
	ExpiresAt  time.Time `json:"expires_at"`
}

var (
	tickerRE   = regexp.MustCompile(`^[A-Z][A-Z0-9.]{0,9}$`)
	strategies = map[string]bool{"I": true, "II": true, "III": true, "IV": true, "V": true, "VI": true, "VII": true, "VIII": true, "IX": true}
)

// The years a signal's dates may fall in. PostgreSQL refuses some dates
// time.Parse accepts (year 0), and no trading signal is dated centuries
// away; a bound keeps both out.
const (
	minSignalYear = 1990
	maxSignalYear = 2199
)

// parseSignalDate parses a YYYY-MM-DD date within the signal years; its
// error is the field's message.
func parseSignalDate(s string) (time.Time, error) {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, errors.New("must be a date YYYY-MM-DD")
	}
	if d.Year() < minSignalYear || d.Year() > maxSignalYear {
		return time.Time{}, fmt.Errorf("must be in the years %d to %d", minSignalYear, maxSignalYear)
	}
	return d, nil
}

// auction returns the auction an entry mode's orders go to.
func auction(entryMode string) market.Auction {
	if entryMode == SignalClose {
		return market.Close
	}
	return market.Open
}

// check validates a NewSignal and normalizes the ticker. A signal's
// confirmations close at the latest at its order's auction cut-off on the
// entry date (the next trading day's when the exchange is closed that
// day): an expiry left out is that cut-off.
func (n *NewSignal) check(clock *market.Clock) error {
	var fe []errs.FieldError
	add := func(field, msg string) { fe = append(fe, errs.FieldError{Field: field, Message: msg}) }
	n.Ticker = strings.ToUpper(strings.TrimSpace(n.Ticker))
	if !tickerRE.MatchString(n.Ticker) {
		add("ticker", "must be a NASDAQ symbol such as AAPL")
	}
	if !strategies[n.Strategy] {
		add("strategy", "must be one of I to IX")
	}
	if n.Kind != "entry" && n.Kind != "exit" {
		add("kind", "must be entry or exit")
	}
	var sd, ed time.Time
	var err error
	if sd, err = parseSignalDate(n.SignalDate); err != nil {
		add("signal_date", err.Error())
	}
	if ed, err = parseSignalDate(n.EntryDate); err != nil {
		add("entry_date", err.Error())
	} else if !sd.IsZero() && ed.Before(sd) {
		add("entry_date", "must not be before signal_date")
	}
	if r, ok := parseDecimal(n.RefClose); !ok || r.Sign() <= 0 {
		add("ref_close", "must be a positive decimal string such as \"187.25\"")
	}
	// rsi2 and return_2d are numeric(12,6): six integer digits at most.
	if r, ok := parseDecimal(n.RSI2); !ok || !fitsDigits(r, 6) {
		add("rsi2", "must be a decimal string below 1000000")
	}
	if r, ok := parseDecimal(n.Return2D); !ok || !fitsDigits(r, 6) {
		add("return_2d", "must be a decimal string below 1000000")
	}
	switch n.EntryMode {
	case NextOpenLimit:
		if n.LimitPrice == nil {
			add("limit_price", "is required for next_open_limit")
		} else if r, ok := parseDecimal(*n.LimitPrice); !ok || r.Sign() <= 0 {
			add("limit_price", "must be a positive decimal string")
		}
	case NextOpenMarket, SignalClose:
		if n.LimitPrice != nil {
			add("limit_price", "is only for next_open_limit")
		}
	default:
		add("entry_mode", "must be next_open_market, next_open_limit or signal_close")
	}
	if !n.ExpiresAt.IsZero() {
		if y := n.ExpiresAt.UTC().Year(); y < minSignalYear || y > maxSignalYear {
			add("expires_at", fmt.Sprintf("must be in the years %d to %d", minSignalYear, maxSignalYear))
		}
	}
	if !ed.IsZero() && (n.EntryMode == NextOpenMarket || n.EntryMode == NextOpenLimit || n.EntryMode == SignalClose) {
		cutoff, _ := clock.CutoffOn(auction(n.EntryMode), ed)
		switch {
		case n.ExpiresAt.IsZero():
			n.ExpiresAt = cutoff
		case n.ExpiresAt.After(cutoff):
			add("expires_at", fmt.Sprintf("must not be after the order's auction cut-off on the entry date, %s",
				cutoff.In(clock.Location()).Format("2006-01-02 15:04 MST")))
		}
	}
	if len(fe) > 0 {
		return errs.Fields("invalid signal", fe...)
	}
	return nil
}

// signalColumns are read by scanSignal, in order.
const signalColumns = `s.id, s.ticker, s.strategy, s.kind, s.signal_date::text, s.entry_date::text,
	s.ref_close::text, s.rsi2::text, s.return_2d::text, s.entry_mode, s.limit_price::text,
	s.expires_at, s.created_at, s.withdrawn_at`

func scanSignal(row pgx.Row, now time.Time, extra ...any) (Signal, error) {
	var g Signal
	dest := append([]any{&g.ID, &g.Ticker, &g.Strategy, &g.Kind, &g.SignalDate, &g.EntryDate,
		&g.RefClose, &g.RSI2, &g.Return2D, &g.EntryMode, &g.LimitPrice,
		&g.ExpiresAt, &g.CreatedAt, &g.WithdrawnAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return Signal{}, err
	}
	g.RefClose, g.RSI2, g.Return2D = trimDecimal(g.RefClose), trimDecimal(g.RSI2), trimDecimal(g.Return2D)
	g.LimitPrice = trimPtr(g.LimitPrice)
	g.ExpiresAt, g.CreatedAt = g.ExpiresAt.UTC(), g.CreatedAt.UTC()
	if g.WithdrawnAt != nil {
		t := g.WithdrawnAt.UTC()
		g.WithdrawnAt = &t
	}
	switch {
	case g.WithdrawnAt != nil:
		g.Status = "withdrawn"
	case !now.Before(g.ExpiresAt):
		g.Status = "expired"
	default:
		g.Status = "open"
	}
	return g, nil
}

// CreateSignal publishes a signal on behalf of actorID (an admin, or the
// creator of the API token that posted it).
func (s *Service) CreateSignal(ctx context.Context, actorID string, n NewSignal) (Signal, error) {
	if err := n.check(s.cfg.Market); err != nil {
		return Signal{}, err
	}
	now := s.cfg.Now().UTC()
	id := s.cfg.NewID()
	var g Signal
	err := s.tx(ctx, func(tx pgx.Tx) error {
		row := tx.QueryRow(ctx, `
			WITH s AS (
				INSERT INTO signals (id, ticker, strategy, kind, signal_date, entry_date, ref_close, rsi2, return_2d,
					entry_mode, limit_price, expires_at, created_by, created_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
				RETURNING *)
			SELECT `+signalColumns+` FROM s`,
			id, n.Ticker, n.Strategy, n.Kind, n.SignalDate, n.EntryDate, n.RefClose, n.RSI2, n.Return2D,
			n.EntryMode, n.LimitPrice, n.ExpiresAt.UTC(), nullable(actorID), now)
		var err error
		if g, err = scanSignal(row, now); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Event{At: now, ActorID: actorID, Action: "signal.publish", Subject: id,
			Details: map[string]any{"ticker": g.Ticker, "strategy": g.Strategy, "kind": g.Kind, "entry_mode": g.EntryMode}})
	})
	if err != nil {
		return Signal{}, fmt.Errorf("publish signal: %w", err)
	}
	return g, nil
}

// Signal returns one signal.
func (s *Service) Signal(ctx context.Context, id string) (Signal, error) {
	if !validID(id) {
		return Signal{}, errs.E(errs.NotFound, "no such signal")
	}
	now := s.cfg.Now()
	g, err := scanSignal(s.pool.QueryRow(ctx, `SELECT `+signalColumns+` FROM signals s WHERE s.id = $1`, id), now)
	if errors.Is(err, pgx.ErrNoRows) {
		return Signal{}, errs.E(errs.NotFound, "no such signal")
	}
	if err != nil {
		return Signal{}, fmt.Errorf("read signal %s: %w", id, err)
	}
	return g, nil
}

// SignalFilter selects signals for ListSignals.
type SignalFilter struct {
	// Status is "open" (the default: not withdrawn, not expired) or "all".
	Status string
	Limit  int
	Cursor string
}

// ListSignals lists signals newest first, each with userID's latest
// confirmation of it.
func (s *Service) ListSignals(ctx context.Context, userID string, f SignalFilter) ([]Signal, string, error) {
	limit, cur, err := parsePage(f.Limit, f.Cursor)
	if err != nil {
		return nil, "", err
	}
	var openOnly bool
	switch f.Status {
	case "", "open":
		openOnly = true
	case "all":
	default:
		return nil, "", errs.Fields("invalid filter", errs.FieldError{Field: "status", Message: "must be open or all"})
	}
	now := s.cfg.Now().UTC()
	args := []any{openOnly, now, limit + 1, userID}
	where := ""
	if cur != nil {
		where = ` AND (s.created_at, s.id) < ($5, $6)`
		args = append(args, cur.At, cur.ID)
	}
	rows, err := s.pool.Query(ctx, `
		SELECT `+signalColumns+`, c.id
		FROM signals s
		LEFT JOIN LATERAL (
			SELECT id FROM confirmations c
			WHERE c.user_id = $4 AND c.signal_id = s.id
			ORDER BY c.created_at DESC, c.id DESC LIMIT 1) c ON true
		WHERE (NOT $1 OR (s.withdrawn_at IS NULL AND s.expires_at > $2))`+where+`
		ORDER BY s.created_at DESC, s.id DESC
		LIMIT $3`, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list signals: %w", err)
	}
	var out []Signal
	var confIDs []*string
	for rows.Next() {
		var cid *string
		g, err := scanSignal(rows, now, &cid)
		if err != nil {
			rows.Close()
			return nil, "", fmt.Errorf("list signals: %w", err)
		}
		out = append(out, g)
		confIDs = append(confIDs, cid)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list signals: %w", err)
	}
	next := ""
	if len(out) > limit {
		out, confIDs = out[:limit], confIDs[:limit]
		last := out[limit-1]
		next = pagecursor.Encode(last.CreatedAt, last.ID)
	}
	var ids []string
	for _, cid := range confIDs {
		if cid != nil {
			ids = append(ids, *cid)
		}
	}
	if len(ids) > 0 {
		crows, err := s.pool.Query(ctx, `SELECT `+confColumns+` FROM confirmations c WHERE c.user_id = $1 AND c.id = ANY($2)`, userID, ids)
		if err != nil {
			return nil, "", fmt.Errorf("list signals: %w", err)
		}
		confs, err := pgx.CollectRows(crows, func(r pgx.CollectableRow) (Confirmation, error) { return scanConfirmation(r) })
		if err != nil {
			return nil, "", fmt.Errorf("list signals: %w", err)
		}
		byID := make(map[string]*Confirmation, len(confs))
		for i := range confs {
			confs[i].UserID = ""
			byID[confs[i].ID] = &confs[i]
		}
		for i, cid := range confIDs {
			if cid != nil {
				out[i].MyConfirmation = byID[*cid]
			}
		}
	}
	for i := range out {
		if out[i].Kind != "exit" || out[i].Status != "open" {
			continue
		}
		q, err := s.exitQuantity(ctx, s.pool, userID, out[i], "")
		if e := errs.As(err); e != nil && e.Code == errs.Invalid {
			q, err = 0, nil
		}
		if err != nil {
			return nil, "", fmt.Errorf("list signals: %w", err)
		}
		out[i].Sellable = &q
	}
	if out == nil {
		out = []Signal{}
	}
	return out, next, nil
}

// WithdrawSignal withdraws a signal: it can no longer be confirmed.
// Confirmations already made are not touched.
func (s *Service) WithdrawSignal(ctx context.Context, actorID, id string) error {
	if !validID(id) {
		return errs.E(errs.NotFound, "no such signal")
	}
	now := s.cfg.Now().UTC()
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE signals SET withdrawn_at = $2 WHERE id = $1 AND withdrawn_at IS NULL`, id, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM signals WHERE id = $1)`, id).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				return errs.E(errs.NotFound, "no such signal")
			}
			return nil // already withdrawn: withdrawing is idempotent
		}
		return audit.Record(ctx, tx, audit.Event{At: now, ActorID: actorID, Action: "signal.withdraw", Subject: id})
	})
	if err != nil && errs.As(err) == nil {
		return fmt.Errorf("withdraw signal %s: %w", id, err)
	}
	return err
}

// nullable turns "" into NULL.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
