package ibkrsim

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Questions configures IBKR's order reply questions.
type Questions struct {
	// NoFirstOrderQuestion stops the first order of a brokerage session from
	// asking FirstOrderMessageID.
	NoFirstOrderQuestion bool
	// FirstOrderMessageID is asked by the first order of each brokerage session
	// unless suppressed (default o163, IBKR's price-percentage constraint).
	FirstOrderMessageID string
	// Rules ask further questions of matching orders, in order, as a chain.
	Rules []QuestionRule
}

func (q Questions) withDefaults() Questions {
	if q.FirstOrderMessageID == "" {
		q.FirstOrderMessageID = "o163"
	}
	return q
}

// QuestionRule asks MessageID of orders matching every non-empty field.
type QuestionRule struct {
	MessageID string
	OrderType string
	TIF       string
	Side      string
	Ticker    string
	// MinQuantity and MinValue (quantity × reference price) are lower bounds
	// when positive.
	MinQuantity float64
	MinValue    float64
}

func (r QuestionRule) matches(o orderRequest, sec *Security) bool {
	return (r.OrderType == "" || r.OrderType == o.OrderType) &&
		(r.TIF == "" || r.TIF == o.TIF) &&
		(r.Side == "" || r.Side == o.Side) &&
		(r.Ticker == "" || strings.EqualFold(r.Ticker, sec.Ticker)) &&
		(r.MinQuantity <= 0 || o.Quantity >= r.MinQuantity) &&
		(r.MinValue <= 0 || o.Quantity*sec.RefPrice >= r.MinValue)
}

// questionText renders IBKR's wording for a message id.
func questionText(id string, o orderRequest, sec *Security) string {
	desc := fmt.Sprintf("%s %g %s %s", o.Side, o.Quantity, sec.Ticker, o.OrderType)
	if o.HasPrice {
		desc += fmt.Sprintf(" @ %.2f", o.Price)
	}
	const sure = "Are you sure you want to submit this order?"
	switch id {
	case "o163":
		return fmt.Sprintf("The following order \"%s\" price exceeds \nthe Percentage constraint of 3%%.\n%s", desc, sure)
	case "o354":
		return "You are submitting an order without market data. We strongly recommend against this as it may result in suboptimal fills.\n" + sure
	case "o382":
		return fmt.Sprintf("The following value exceeds the tick size limit: \"%s\".\n%s", desc, sure)
	case "o383":
		return fmt.Sprintf("The following order \"%s\" size exceeds the Size Limit of 500.\n%s", desc, sure)
	case "o403":
		return "This order will most likely trigger and fill immediately.\n" + sure
	case "o451":
		return fmt.Sprintf("The following order \"%s\" value estimate of %.2f USD exceeds \nthe Total Value Limit of 100,000 USD.\n%s", desc, o.Quantity*sec.RefPrice, sure)
	case "o10151":
		return "You are about to submit a market order. Market orders may be executed at a price different from the last traded price.\n" + sure
	case "o10153":
		return "<h4>Confirm Mandatory Cap Price</h4>To avoid trading at a price that is not consistent with a fair and orderly market, IB may set a cap (for a buy order) or floor (for a sell order).\n" + sure
	default:
		return sure
	}
}

// pendingOrder is an order waiting for replies to its question chain.
type pendingOrder struct {
	account   string
	req       orderRequest
	sec       *Security
	questions []string // message ids still to confirm, first is the one asked
	asked     time.Time
}

// pendingTTL bounds how long a reply id stays answerable, so abandoned
// chains do not pile up.
const pendingTTL = 10 * time.Minute

// questionReply is one element of IBKR's question answer.
type questionReply struct {
	ID           string   `json:"id"`
	Message      []string `json:"message"`
	IsSuppressed bool     `json:"isSuppressed"`
	MessageIDs   []string `json:"messageIds"`
}

// newReplyID makes a UUID-shaped reply id from the server's randomness.
func (s *Server) newReplyID() (string, error) {
	var b [16]byte
	if err := s.readRand(b[:]); err != nil {
		return "", fmt.Errorf("reply id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

// questionsFor lists the questions an order asks; the caller holds c.mu.
func (s *Server) questionsFor(c *consumer, o orderRequest, sec *Security, forced []string) []string {
	var ids []string
	seen := map[string]bool{}
	add := func(id string, force bool) {
		if seen[id] || (!force && c.sess.suppressed[id]) {
			return
		}
		seen[id] = true
		ids = append(ids, id)
	}
	if !c.sess.anyOrder && !s.cfg.Questions.NoFirstOrderQuestion {
		add(s.cfg.Questions.FirstOrderMessageID, false)
	}
	for _, r := range s.cfg.Questions.Rules {
		if r.MessageID != "" && r.matches(o, sec) {
			add(r.MessageID, false)
		}
	}
	for _, id := range forced {
		add(id, true)
	}
	return ids
}
