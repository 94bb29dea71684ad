package broker

import (
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/ibkr"
)

// A pacer is shared by every holder of one account and outlives its last
// use by pacerLinger; only then may it be dropped.
func TestPacerLeases(t *testing.T) {
	clock := newFakeClock()
	c := newCache(CacheConfig{Now: clock.Now}, ibkr.Options{}, nil, nil)
	count := func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.pacers)
	}

	a := c.acquirePacer("DU1", 0)
	b := c.acquirePacer("DU1", 0)
	other := c.acquirePacer("DU2", 0)
	if a.p != b.p || a.p == other.p {
		t.Fatalf("one account must share one pacer, two accounts must not")
	}
	clock.Advance(time.Hour)
	c.evictPacers(clock.Now())
	if n := count(); n != 2 {
		t.Fatalf("pacers held are dropped: %d left, want 2", n)
	}
	c.releasePacer(a)
	c.releasePacer(b)
	c.releasePacer(other)
	clock.Advance(pacerLinger - time.Second)
	c.evictPacers(clock.Now())
	if n := count(); n != 2 {
		t.Fatalf("pacers dropped before they lingered: %d left, want 2", n)
	}
	// A session handed out keeps its pacer for the lease.
	c.releasePacer(c.acquirePacer("DU2", sessionLease))
	clock.Advance(2 * time.Second)
	c.evictPacers(clock.Now())
	if n := count(); n != 1 {
		t.Fatalf("after the linger: %d pacers, want only the leased one", n)
	}
	if again := c.acquirePacer("DU2", 0); again.p != other.p {
		t.Error("the leased pacer was replaced")
	}
}
