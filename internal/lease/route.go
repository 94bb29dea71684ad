package lease

import (
	"context"
	"errors"
	"time"
)

// remoteFor bounds how long a remote owner read from the database is
// trusted without asking again: a forward that fails forgets it sooner.
const remoteFor = 2 * time.Second

// remote is another replica's lease as last read.
type remote struct {
	owner Owner
	until time.Time // local time
}

// Route decides where k's requests are served: here (true) when this
// replica holds or can take the lease, else at the returned owner. A lease
// held here costs no database round trip; another replica's is remembered
// briefly (until its expiry, at most two seconds) so that forwarding does
// not cost one either.
func (m *Manager) Route(ctx context.Context, k Key) (Owner, bool, error) {
	if _, ok := m.Held(k); ok {
		return Owner{}, true, nil
	}
	now := m.cfg.Now()
	m.mu.Lock()
	r, ok := m.remote[k]
	m.mu.Unlock()
	if ok && now.Before(r.until) {
		return r.owner, false, nil
	}
	// Most requests that reach here belong to another replica's live
	// lease: reading it is one statement and locks nothing, where a
	// failed take would lock the row against its owner's renewal and
	// read it afterwards anyway.
	var err error
	if o, found, oerr := m.owner(ctx, `user_id = $1 AND mode = $2`, k.UserID, k.Mode); oerr != nil {
		err = oerr
	} else if found && o.Replica != m.cfg.Replica {
		err = &BusyError{Key: k, Owner: o}
	} else {
		_, err = m.Acquire(ctx, k)
	}
	var busy *BusyError
	switch {
	case err == nil:
		return Owner{}, true, nil
	case errors.As(err, &busy) && busy.Owner.Replica != "":
		until := now.Add(remoteFor)
		// The owner's expiry is database time; the local clock may differ
		// a little, which only makes the entry live a little shorter or
		// longer than the lease (a failed forward forgets it anyway).
		if left := busy.Owner.ExpiresAt.Sub(now); left < remoteFor {
			until = now.Add(max(left, 0))
		}
		m.mu.Lock()
		m.remote[k] = remote{owner: busy.Owner, until: until}
		if len(m.remote) > maxRemote {
			m.pruneRemote(now)
		}
		m.mu.Unlock()
		return busy.Owner, false, nil
	default:
		return Owner{}, false, err
	}
}

// Forget drops what Route remembers of k's owner: a forward to it failed
// (it died or is shutting down).
func (m *Manager) Forget(k Key) {
	m.mu.Lock()
	delete(m.remote, k)
	m.mu.Unlock()
}

// maxRemote bounds the remembered remote owners.
const maxRemote = 100000

// pruneRemote drops expired remote entries; the caller holds m.mu.
func (m *Manager) pruneRemote(now time.Time) {
	for k, r := range m.remote {
		if !now.Before(r.until) {
			delete(m.remote, k)
		}
	}
}
