package ibkrsim

import (
	"net/http"
	"time"
)

// brokerSession is the /iserver bridge of one consumer. Its zero value is "no
// bridge". The owning consumer's mu guards it.
type brokerSession struct {
	bridge       bool // ssodh/init succeeded and the session has not died
	competing    bool // another login holds the brokerage session
	lastActive   time.Time
	accountsSeen bool            // GET /iserver/accounts was called in this session
	suppressed   map[string]bool // reply questions suppressed in this session
	ordersCalled bool            // the first live-orders call was made
	anyOrder     bool            // an order was placed (the first one asks o163)
	// portfolioPrimed: GET /portfolio/accounts was called with this live
	// session token, as IBKR wants before other /portfolio calls.
	portfolioPrimed bool
}

// compete simulates another login taking the brokerage session.
func (b *brokerSession) compete() {
	if b.bridge {
		b.competing = true
	}
}

// afterToken is the session once the consumer's live session token is
// replaced or dropped: this token's bridge is gone, but another login that
// holds the username's brokerage session holds it still, until an init
// with compete:true takes it back.
func (b brokerSession) afterToken() brokerSession {
	return brokerSession{competing: b.competing}
}

// alive expires an idle session and reports whether /iserver can be served.
func (b *brokerSession) alive(now time.Time, idle time.Duration) bool {
	if b.bridge && now.Sub(b.lastActive) > idle {
		*b = brokerSession{}
	}
	return b.bridge && !b.competing
}

const (
	serverName    = "JifN19053"
	serverVersion = "Build 10.25.0p, Dec 5, 2023 5:48:12 PM"
	simMAC        = "98:F2:B3:23:BF:A0"
)

// authStatus is IBKR's iserver status object.
type authStatus struct {
	Authenticated bool              `json:"authenticated"`
	Competing     bool              `json:"competing"`
	Connected     bool              `json:"connected"`
	Message       string            `json:"message"`
	MAC           string            `json:"MAC"`
	ServerInfo    map[string]string `json:"serverInfo"`
	Fail          string            `json:"fail"`
}

func (b *brokerSession) status() authStatus {
	return authStatus{
		Authenticated: b.bridge && !b.competing,
		Competing:     b.competing,
		Connected:     b.bridge,
		MAC:           simMAC,
		ServerInfo:    map[string]string{"serverName": serverName, "serverVersion": serverVersion},
	}
}

// touch checks the session for expiry and records activity; the caller holds
// c.mu.
func (s *Server) touch(c *consumer, now time.Time) bool {
	ok := s.sessionAlive(c, now)
	if c.sess.bridge {
		c.sess.lastActive = now
	}
	return ok
}

// iserver wraps /iserver handlers: without a live brokerage session IBKR
// answers "no bridge".
func (s *Server) iserver(h http.HandlerFunc) http.HandlerFunc {
	return s.needBridge(s.touch, h)
}

// bridged wraps the /iserver/auth handlers, which answer while another login
// competes for the session so that the client can see it.
func (s *Server) bridged(h http.HandlerFunc) http.HandlerFunc {
	return s.needBridge(func(c *consumer, now time.Time) bool {
		s.touch(c, now)
		return c.sess.bridge || c.sess.competing
	}, h)
}

// needBridge wraps h: unless ok, run under the consumer's lock, holds, IBKR
// answers "no bridge" instead.
func (s *Server) needBridge(ok func(c *consumer, now time.Time) bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		st := stateOf(r)
		st.c.mu.Lock()
		pass := ok(st.c, st.now)
		st.c.mu.Unlock()
		if !pass {
			writeError(w, http.StatusBadRequest, "Bad Request: no bridge")
			return
		}
		h(w, r)
	}
}

// accountsFirst wraps order calls: IBKR refuses them until /iserver/accounts
// was read in this brokerage session.
func (s *Server) accountsFirst(h http.HandlerFunc) http.HandlerFunc {
	return s.iserver(func(w http.ResponseWriter, r *http.Request) {
		st := stateOf(r)
		st.c.mu.Lock()
		seen := st.c.sess.accountsSeen
		st.c.mu.Unlock()
		if !seen {
			writeBareError(w, http.StatusBadRequest, "Please query /accounts first")
			return
		}
		h(w, r)
	})
}

// handleSSODHInit is POST /iserver/auth/ssodh/init. compete:true takes the
// session back from a competing login; compete:false leaves it competing.
func (s *Server) handleSSODHInit(w http.ResponseWriter, r *http.Request) {
	st := stateOf(r)
	var body struct {
		Publish *bool `json:"publish"`
		Compete *bool `json:"compete"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &body); err != nil {
			writeError(w, http.StatusBadRequest, "Bad Request: malformed JSON")
			return
		}
	}
	compete := body.Compete == nil || *body.Compete
	c := st.c
	c.mu.Lock()
	c.stats.Inits++
	if s.sessionAlive(c, st.now) {
		// Another login (or another replica) held a live brokerage
		// session: this init takes it over.
		c.stats.CompetingTakeovers++
	}
	if c.sess.competing && !compete {
		status := c.sess.status()
		c.mu.Unlock()
		writeJSON(w, http.StatusOK, status)
		return
	}
	if c.sess.competing {
		c.stats.OtherLoginsSignedOut++
	}
	c.sess = brokerSession{bridge: true, lastActive: st.now}
	clear(c.pending)
	status := c.sess.status()
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, status)
}

// handleAuthStatus is GET or POST /iserver/auth/status.
func (s *Server) handleAuthStatus(w http.ResponseWriter, r *http.Request) {
	st := stateOf(r)
	st.c.mu.Lock()
	status := st.c.sess.status()
	st.c.mu.Unlock()
	writeJSON(w, http.StatusOK, status)
}

// handleTickle is POST /tickle: it keeps the session alive and reports the
// iserver status, which is authenticated:false once the session died.
func (s *Server) handleTickle(w http.ResponseWriter, r *http.Request) {
	st := stateOf(r)
	c := st.c
	s.totals.tickles.Add(1)
	c.mu.Lock()
	s.touch(c, st.now)
	status := c.sess.status()
	sid := c.apiSID
	remaining := c.lstExp.Sub(st.now).Milliseconds()
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"session":    sid,
		"ssoExpires": remaining,
		"collission": status.Competing,
		"userId":     userID(c.key),
		"hmds":       map[string]string{"error": "no bridge"},
		"iserver":    map[string]any{"authStatus": status},
	})
}

// userID derives a stable numeric user id from the consumer key.
func userID(key string) int {
	h := 0
	for i := 0; i < len(key); i++ {
		h = (h*31 + int(key[i])) % 90000000
	}
	return 10000000 + h
}

// handleLogout is POST /logout: it ends the brokerage session and the live
// session token.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	st := stateOf(r)
	st.c.mu.Lock()
	st.c.dropLST()
	st.c.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]bool{"status": true})
}

// handleAccounts is GET /iserver/accounts; it unlocks the order calls for this
// brokerage session.
func (s *Server) handleAccounts(w http.ResponseWriter, r *http.Request) {
	st := stateOf(r)
	c := st.c
	c.mu.Lock()
	c.sess.accountsSeen = true
	c.mu.Unlock()
	ids := make([]string, 0, len(c.accounts))
	props := map[string]any{}
	aliases := map[string]string{}
	for _, a := range c.accounts {
		ids = append(ids, a.ID)
		props[a.ID] = map[string]bool{"hasChildAccounts": false, "supportsCashQty": true, "supportsFractions": true, "allowCustomerTime": false}
		aliases[a.ID] = a.ID
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"accounts":        ids,
		"acctProps":       props,
		"aliases":         aliases,
		"allowFeatures":   map[string]any{"showGFIS": true, "allowFXConv": true, "allowTypeAhead": true, "allowCrypto": false},
		"chartPeriods":    map[string][]string{"STK": {"*"}},
		"groups":          []string{},
		"profiles":        []string{},
		"selectedAccount": ids[0],
		"serverInfo":      map[string]string{"serverName": serverName, "serverVersion": serverVersion},
		"sessionId":       c.apiSIDLocked(),
		"isFT":            false,
		"isPaper":         c.accounts[0].Paper,
	})
}

func (c *consumer) apiSIDLocked() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.apiSID
}

// handleSuppress is POST /iserver/questions/suppress.
func (s *Server) handleSuppress(w http.ResponseWriter, r *http.Request) {
	st := stateOf(r)
	var body struct {
		MessageIDs []string `json:"messageIds"`
	}
	if err := decodeJSON(r, &body); err != nil || len(body.MessageIDs) == 0 {
		writeBareError(w, http.StatusBadRequest, "messageIds is required")
		return
	}
	st.c.mu.Lock()
	if st.c.sess.suppressed == nil {
		st.c.sess.suppressed = make(map[string]bool)
	}
	for _, id := range body.MessageIDs {
		st.c.sess.suppressed[id] = true
	}
	st.c.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"status": "submitted"})
}

// handleSuppressReset is POST /iserver/questions/suppress/reset.
func (s *Server) handleSuppressReset(w http.ResponseWriter, r *http.Request) {
	st := stateOf(r)
	st.c.mu.Lock()
	st.c.sess.suppressed = nil
	st.c.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"status": "submitted"})
}
