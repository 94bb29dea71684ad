package broker

import (
	"encoding/base64"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/ibkr"
)

// warmCache fills a cache with n ready sessions, installed the way a
// handshake leaves them (a 20-byte LST, distinct ids and tokens), without n
// handshakes. With paced, each account also holds a pacer, as it does in
// the seconds after its last request.
func warmCache(tb testing.TB, n int, paced bool) *Cache {
	now := time.Now()
	c := newCache(CacheConfig{}, ibkr.Options{BaseURL: "https://api.ibkr.com/v1/api"}, nil, nil)
	for i := range n {
		u := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		acct := fmt.Sprintf("DU%07d", i)
		conn := Conn{UserID: u, Mode: Paper, ConsumerKey: fmt.Sprintf("C%08d", i), AccountID: acct}
		pe := c.acquirePacer(acct, 0)
		lst := make([]byte, 20)
		lst[0], lst[1] = byte(i), byte(i>>8)
		tok := ibkr.LiveSessionToken{Value: base64.StdEncoding.EncodeToString(lst), Expires: now.Add(24 * time.Hour)}
		opts := c.opts
		opts.Pacer = pe.p
		s, err := ibkr.ResumeSession(opts, conn.ConsumerKey, fmt.Sprintf("%020x", i), ibkr.RealmLimitedPOA, tok)
		if err != nil {
			tb.Fatal(err)
		}
		t := c.tenant(u)
		t.mu.Lock()
		c.install(t, &prepared{sess: s, conn: conn, accessToken: fmt.Sprintf("%020x", i), realm: ibkr.RealmLimitedPOA})
		t.brokerage, t.accounts, t.lastUsed, t.lastTickle = true, true, now, now
		if !t.ready(now) {
			tb.Fatal("installed session is not ready")
		}
		t.mu.Unlock()
		c.releasePacer(pe)
	}
	if !paced {
		c.evictPacers(now.Add(time.Minute))
	}
	return c
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestMemoryOfWarmSessions: 10,000 warm cached sessions add at most 10 MiB
// of heap. Pacers exist only while an account's requests flow; the figure
// with every account's pacer alive is logged too.
func TestMemoryOfWarmSessions(t *testing.T) {
	const n = 10000
	for _, paced := range []bool{false, true} {
		before := heapInUse()
		c := warmCache(t, n, paced)
		after := heapInUse()
		if got := len(c.States()); got != n {
			t.Fatalf("cached sessions = %d, want %d", got, n)
		}
		runtime.KeepAlive(c)
		added := int64(after) - int64(before)
		t.Logf("%d warm sessions (pacers alive: %v) add %.2f MiB of heap (%d bytes per session)", n, paced, float64(added)/(1<<20), added/n)
		if !paced && added > 10<<20 {
			t.Errorf("%d warm sessions add %d bytes of heap, want at most 10 MiB", n, added)
		}
	}
}

// BenchmarkWarmSession measures a request served from a warm cache.
func BenchmarkWarmSession(b *testing.B) {
	c := warmCache(b, 1000, false)
	ctx := b.Context()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			u := fmt.Sprintf("00000000-0000-4000-8000-%012d", i%1000)
			if _, _, err := c.Session(ctx, u); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
