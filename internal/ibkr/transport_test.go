package ibkr

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// TestTransportReusesConnections sends two waves of 32 calls to one host,
// each wave held at the server until all 32 are in, so that each needs 32
// connections at once: the second wave must find all of the first wave's
// connections idle and open none (net/http's default transport keeps 2 and
// opens 30).
func TestTransportReusesConnections(t *testing.T) {
	const calls = 32
	var (
		opened  atomic.Int64
		barrier atomic.Pointer[sync.WaitGroup]
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := barrier.Load()
		b.Done()
		b.Wait() // every call of the wave is in flight, each on its own connection
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	client := &http.Client{Transport: NewTransport()}
	wave := func() {
		b := &sync.WaitGroup{}
		b.Add(calls)
		barrier.Store(b)
		var wg sync.WaitGroup
		for range calls {
			wg.Go(func() {
				resp, err := client.Get(srv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			})
		}
		wg.Wait()
	}
	wave()
	if first := opened.Load(); first != calls {
		t.Fatalf("first wave opened %d connections, want %d", first, calls)
	}
	wave()
	if again := opened.Load() - calls; again != 0 {
		t.Errorf("second wave opened %d new connections, want 0 (the first wave's %d should have stayed idle)", again, calls)
	}
}
