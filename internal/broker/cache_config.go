package broker

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// CacheConfig tunes the session cache. Zero fields take the defaults.
type CacheConfig struct {
	// RenewBefore is how long before the live session token expires a new
	// one is made (default 1 h).
	RenewBefore time.Duration
	// RenewJitter spreads renewals over this much more time (default 30
	// min), so thousands of tenants do not renew in the same second.
	RenewJitter time.Duration
	// FailureBackoff is how long a failed handshake is remembered before the
	// next request tries again (default 5 s).
	FailureBackoff time.Duration
	// RepairEvery is each tenant's handshake budget for repairs: after
	// IBKR refused a live session token (401) and a new one was made, more
	// refusals within this time (default 15 s) are answered as errors
	// instead of making yet another token. A request IBKR refuses whatever
	// the token (a signature it cannot verify) then costs one handshake,
	// not one per request.
	RepairEvery time.Duration
	// TickleEvery is the keep-alive period (default 60 s; IBKR asks for
	// about a minute).
	TickleEvery time.Duration
	// ActiveWithin limits keep-alive to tenants that used their session
	// this recently (default 24 h).
	ActiveWithin time.Duration
	// CallTimeout bounds one handshake-and-init or one tickle (default 30 s).
	CallTimeout time.Duration
	// KeepAliveWorkers bounds the tickles in flight at once (default 8).
	KeepAliveWorkers int
	// MaxFlights bounds the sessions being made at once — handshake,
	// brokerage session, accounts, each a round trip to IBKR plus the
	// credentials' read — across tenants (default 64). A burst of cold
	// tenants (every tenant's first request after a restart) then queues
	// for a flight, holding nothing, instead of sending thousands of
	// credential reads to the database pool at once ahead of everyone
	// else's queries. CallTimeout counts from the flight's start.
	//
	// A flight mostly waits for IBKR (four round trips), so the bound is
	// a rate: about flights / (4 × IBKR's latency) new sessions a second.
	// With IBKR 50 ms away, 32 flights held a server to 78–89 a second
	// with two-thirds of its CPU idle; 64 and 128 both made 93–152 on the
	// same two cores, CPU-bound, and 128 starved /readyz of a connection
	// (scripts/BENCHMARKS.md, fifth session, 2).
	MaxFlights int
	// Maintenance reports whether IBKR is in one of its restart windows at
	// a time, and until when; the keep-alive pauses then and repairs the
	// sessions the restart ended once it is over, and Test Connection
	// explains its failures by it. Nil means never.
	Maintenance func(time.Time) (until time.Time, restarting bool)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Jitter returns a duration in [0, max); nil means math/rand/v2.
	Jitter func(max time.Duration) time.Duration
	// Leases, when set, are the tenant session leases of a replicated
	// deployment: the cache hand-shakes and acts only for tenants whose
	// lease this replica holds. Nil means one replica owning every tenant.
	Leases Leases
	// OnHandshake, when set, is told each handshake's result: "ok" or the
	// IBKR failure kind (for metrics).
	OnHandshake func(result string)
	// OnSessionRestored, when set, is told each time a tenant's session is
	// ready again after a flight (re)established it: a new live session
	// token (the first, a repair, a renewal), the brokerage session
	// re-opened after IBKR lost it, or taken back from a competing login.
	// It runs on the flight's goroutine after the requests waiting for
	// the session went on, without locks held; it must return quickly and
	// must not call IBKR (queue the work instead). With leases only the
	// owner of the tenant's lease makes sessions, so one replica is told.
	OnSessionRestored func(SessionRestored)
}

func (c CacheConfig) withDefaults() CacheConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.RenewBefore, time.Hour)
	def(&c.RenewJitter, 30*time.Minute)
	def(&c.FailureBackoff, 5*time.Second)
	def(&c.RepairEvery, 15*time.Second)
	def(&c.TickleEvery, time.Minute)
	def(&c.ActiveWithin, 24*time.Hour)
	def(&c.CallTimeout, 30*time.Second)
	if c.KeepAliveWorkers <= 0 {
		c.KeepAliveWorkers = 8
	}
	if c.MaxFlights <= 0 {
		c.MaxFlights = 64
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Jitter == nil {
		c.Jitter = func(max time.Duration) time.Duration {
			if max <= 0 {
				return 0
			}
			return rand.N(max)
		}
	}
	return c
}

// Conn describes the connection a cached session belongs to.
type Conn struct {
	UserID      string
	Mode        Mode
	ConsumerKey string
	// AccountID is the IBKR account orders go to (a paper DU… account
	// under Paper, a live U… account under Live).
	AccountID string
}

// Format prints the account id masked.
func (c Conn) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "broker.Conn{user:%s mode:%s consumer_key:%s account:%s}", c.UserID, c.Mode, c.ConsumerKey, MaskAccountID(c.AccountID))
}
