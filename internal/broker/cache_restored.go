package broker

import "time"

// Why a tenant's session was restored (SessionRestored.Reason).
const (
	// RestoredNew is the first live session token this replica made for
	// the tenant: after Ordertune started, after new credentials or
	// another mode, or after the tenant's lease came to this replica.
	RestoredNew = "new"
	// RestoredRepair is a new live session token after IBKR refused the
	// old one or it expired (a restart at IBKR, a token superseded).
	RestoredRepair = "repair"
	// RestoredRenewal is a new live session token made ahead of the old
	// one's expiry, on schedule; nothing was lost.
	RestoredRenewal = "renewal"
	// RestoredBrokerage is the brokerage session re-opened on a token
	// IBKR still accepts, after IBKR lost it (its nightly restart).
	RestoredBrokerage = "brokerage"
	// RestoredTakenBack is the brokerage session taken back from a
	// competing login.
	RestoredTakenBack = "taken_back"
)

// SessionRestored says that a tenant's IBKR session is ready again after
// it was (re)established: what happened at IBKR while it was not, such as
// fills that order polling missed, may be worth reading now.
type SessionRestored struct {
	Conn Conn
	// Reason is one of the Restored… constants.
	Reason string
}

// restoreReason says why a flight starting now prepares t's session, or ""
// when it only queries accounts again. The caller holds t.mu.
func (c *Cache) restoreReason(t *tenant, now time.Time) string {
	switch {
	case t.tok.Value == "" || !c.owns(t):
		return RestoredNew
	case t.lstBad || !now.Before(t.tok.Expires):
		return RestoredRepair
	case !now.Before(t.renewAt):
		return RestoredRenewal
	case !t.brokerage || t.competing:
		return RestoredBrokerage
	}
	return ""
}

// sessionRestored tells CacheConfig.OnSessionRestored of r, when both are
// set. The flight calls it last, after its waiters went on and without
// locks held.
func (c *Cache) sessionRestored(r *SessionRestored) {
	if r != nil && c.cfg.OnSessionRestored != nil {
		c.cfg.OnSessionRestored(*r)
	}
}
