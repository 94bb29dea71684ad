package ibkrsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FaultKind names a misbehaviour the control API can inject.
type FaultKind string

// The fault kinds of POST /sim/faults.
const (
	// FaultLatency delays matching requests by value (a Go duration or
	// milliseconds).
	FaultLatency FaultKind = "latency"
	// FaultStatus answers matching requests with the HTTP status in value
	// without handling them.
	FaultStatus FaultKind = "status"
	// FaultTimeoutAfterAccept handles the request (an order IS recorded), then
	// withholds the answer for value (default: none) and drops the connection.
	FaultTimeoutAfterAccept FaultKind = "timeout_after_accept"
	// FaultReplyQuestion makes matching order placements ask the question whose
	// message id is value (default o354).
	FaultReplyQuestion FaultKind = "reply_question"
	// FaultInvalidLST invalidates the consumer's live session token on a
	// matching request, which gets 401 (as do later ones until a new handshake).
	FaultInvalidLST FaultKind = "invalid_lst"
	// FaultCompeting makes another login take the brokerage session on a
	// matching request.
	FaultCompeting FaultKind = "competing"
	// FaultEmptyOrders answers GET /iserver/account/orders with an empty
	// list, the way IBKR does after its nightly reset or a re-login: the
	// list covers only the current brokerage session, while the orders
	// still exist, can be looked up by id and keep filling. Value is how
	// long it lasts on the simulator's clock (a duration or milliseconds);
	// none means until cleared. Path is ignored.
	FaultEmptyOrders FaultKind = "empty_orders"
	// FaultReject makes matching order placements and what-ifs refuse with
	// IBKR's text in value (e.g. "No trading permissions."), or with the
	// simulator's text for a kind of refusal named in value (see
	// RejectionText).
	FaultReject FaultKind = "reject"
	// FaultWarn adds the warning in value to matching what-if answers.
	FaultWarn FaultKind = "warn"
	// FaultHideFills makes the order status and the live orders list
	// show every order as working and unfilled, as a poll that missed a
	// fill would: the fills themselves happen and are listed among the
	// executions (GET /iserver/account/trades). Path is ignored.
	FaultHideFills FaultKind = "hide_fills"
)

// Fault is one injected misbehaviour, as POST /sim/faults takes it.
type Fault struct {
	// ID is assigned by the simulator.
	ID int64 `json:"id"`
	// Path selects requests by the path after /v1/api (the /v1/api prefix is
	// optional): a prefix, or a pattern with * segments as in path.Match.
	// Empty matches every request.
	Path string `json:"path"`
	// Kind is the misbehaviour.
	Kind FaultKind `json:"kind"`
	// Value is kind-specific: a duration, a status code or a message id.
	Value json.RawMessage `json:"value,omitempty"`
	// Count is how many matching requests it strikes; 0 means until cleared.
	Count int `json:"count"`
	// ConsumerKey, when set, restricts the fault to that consumer's requests.
	ConsumerKey string `json:"consumer_key,omitempty"`

	latency time.Duration
	status  int
	message string
	left    int
	// until ends a timed fault (FaultEmptyOrders with a value); zero means
	// until cleared.
	until time.Time
}

// parseFault validates f and decodes its value.
func parseFault(f Fault) (Fault, error) {
	raw := strings.TrimSpace(string(f.Value))
	str := raw
	if strings.HasPrefix(raw, `"`) {
		if err := json.Unmarshal(f.Value, &str); err != nil {
			return f, fmt.Errorf("value: %w", err)
		}
	}
	if f.Count < 0 {
		return f, errors.New("count must be >= 0")
	}
	f.Path = strings.TrimPrefix(strings.TrimSpace(f.Path), APIPrefix)
	if _, err := path.Match(f.Path, "/"); err != nil {
		return f, fmt.Errorf("path: %w", err)
	}
	switch f.Kind {
	case FaultLatency, FaultTimeoutAfterAccept:
		d, err := parseDuration(str)
		if err != nil {
			return f, fmt.Errorf("value: %w", err)
		}
		if f.Kind == FaultLatency && d <= 0 {
			return f, errors.New("latency needs a positive value")
		}
		f.latency = d
	case FaultStatus:
		n, err := strconv.Atoi(str)
		if err != nil || n < 100 || n > 599 {
			return f, errors.New("status needs an HTTP status code as value")
		}
		f.status = n
	case FaultReplyQuestion:
		f.message = str
		if f.message == "" {
			f.message = "o354"
		}
	case FaultEmptyOrders:
		d, err := parseDuration(str)
		if err != nil {
			return f, fmt.Errorf("value: %w", err)
		}
		f.latency = d
		f.Path = "/iserver/account/orders"
	case FaultReject, FaultWarn:
		f.message = str
		if f.message == "" {
			return f, fmt.Errorf("%s needs IBKR's text as value", f.Kind)
		}
		if t, ok := RejectionText(str); ok && f.Kind == FaultReject {
			f.message = t
		}
	case FaultHideFills:
		f.Path = ""
	case FaultInvalidLST, FaultCompeting:
	default:
		return f, fmt.Errorf("unknown kind %q", f.Kind)
	}
	f.left = f.Count
	return f, nil
}

// parseDuration takes "250ms", "2s" or a number of milliseconds; "" is zero.
func parseDuration(s string) (time.Duration, error) {
	if s == "" || s == "null" {
		return 0, nil
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if n < 0 {
			return 0, errors.New("negative duration")
		}
		return time.Duration(n * float64(time.Millisecond)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	return d, nil
}

// faultSet is the active faults.
type faultSet struct {
	mu     sync.Mutex
	nextID int64
	list   []*Fault
}

func (fs *faultSet) add(f Fault) Fault {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.nextID++
	f.ID = fs.nextID
	fs.list = append(fs.list, &f)
	return f
}

// clear removes the fault with that id, or all when id is 0, and reports
// whether anything was removed.
func (fs *faultSet) clear(id int64) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if id == 0 {
		n := len(fs.list)
		fs.list = nil
		return n > 0
	}
	for i, f := range fs.list {
		if f.ID == id {
			fs.list = append(fs.list[:i], fs.list[i+1:]...)
			return true
		}
	}
	return false
}

func (fs *faultSet) snapshot() []Fault {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := make([]Fault, 0, len(fs.list))
	for _, f := range fs.list {
		c := *f
		c.Count = f.left
		out = append(out, c)
	}
	return out
}

// take finds the first fault of kind matching rel and consumer key, charges
// one use and returns a copy.
func (fs *faultSet) take(kind FaultKind, rel, consumerKey string) (Fault, bool) {
	return fs.takeAt(kind, rel, consumerKey, time.Time{})
}

// takeAt is take for timed faults: one whose end is not after now has
// expired and is removed.
func (fs *faultSet) takeAt(kind FaultKind, rel, consumerKey string, now time.Time) (Fault, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i := 0; i < len(fs.list); i++ {
		f := fs.list[i]
		if !f.until.IsZero() && !now.IsZero() && !now.Before(f.until) {
			fs.list = append(fs.list[:i], fs.list[i+1:]...)
			i--
			continue
		}
		if f.Kind != kind || !pathMatches(f.Path, rel) {
			continue
		}
		if f.ConsumerKey != "" && f.ConsumerKey != consumerKey {
			continue
		}
		out := *f
		if f.Count > 0 {
			f.left--
			if f.left <= 0 {
				fs.list = append(fs.list[:i], fs.list[i+1:]...)
			}
		}
		return out, true
	}
	return Fault{}, false
}

func pathMatches(pattern, rel string) bool {
	if pattern == "" {
		return true
	}
	if strings.Contains(pattern, "*") {
		ok, _ := path.Match(pattern, rel)
		return ok
	}
	return rel == pattern || strings.HasPrefix(rel, strings.TrimSuffix(pattern, "/")+"/")
}

// serveThenDrop runs h to completion (so an order is recorded), withholds the
// answer for the fault's time or until the client gives up, then drops the
// connection without a response.
func (s *Server) serveThenDrop(w http.ResponseWriter, r *http.Request, h http.Handler, f Fault) {
	h.ServeHTTP(&discardWriter{}, r)
	if f.latency > 0 {
		t := time.NewTimer(f.latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		}
	}
	if hj, ok := w.(http.Hijacker); ok {
		conn, _, err := hj.Hijack()
		if err == nil {
			_ = conn.Close()
			return
		}
	}
	// Without a hijackable connection the server's documented way to abort a
	// response is this sentinel panic, which net/http recovers silently.
	panic(http.ErrAbortHandler)
}

// discardWriter swallows the answer a dropped connection never delivers.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header {
	if d.h == nil {
		d.h = make(http.Header)
	}
	return d.h
}
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}
