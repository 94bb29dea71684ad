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

// TestTransportReusesConnections sends two waves of concurrent calls to one
// host: the second wave must find every connection of the first one idle
// and open none (net/http's default transport keeps 2 and would open ~30).
func TestTransportReusesConnections(t *testing.T) {
	var opened atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	const calls = 32
	wave := func() {
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
	first := opened.Load()
	if first == 0 || first > calls {
		t.Fatalf("first wave opened %d connections, want 1..%d", first, calls)
	}
	wave()
	if again := opened.Load() - first; again != 0 {
		t.Errorf("second wave opened %d new connections, want 0 (the first wave's %d should have stayed idle)", again, first)
	}
}
