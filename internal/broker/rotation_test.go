package broker

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim/simtest"
	"github.com/ordertune/ordertune/internal/rewrap"
	"github.com/ordertune/ordertune/internal/seal"
)

// TestKeyRotationUnderLoad rotates the master key while a server opens
// sealed credentials at about 50 requests per second (and saves some):
// no request fails, and afterwards no row is left under the old key.
func TestKeyRotationUnderLoad(t *testing.T) {
	k1, _ := seal.GenerateKey("k1")
	k2, _ := seal.GenerateKey("k2")
	oldRing, _ := seal.ParseRing(k1)
	rotated, _ := seal.ParseRing(k2 + "," + k1)
	newOnly, _ := seal.ParseRing(k2)

	e := newEnv(t, envOptions{ring: oldRing})
	ctx := ctxT(t)
	const users = 30
	ids := make([]string, users)
	inputs := make([]Input, users)
	for i := range ids {
		ids[i] = e.user()
		inputs[i] = e.sim.register("", false)
		for _, m := range []Mode{Live, Paper} {
			in := inputs[i]
			if m == Paper && i%3 == 0 {
				in.EncryptionKeyPEM = "" // some rows have no encryption key (NULL)
				in.SignatureKeyPEM, in.AccessTokenSecret = pemOf(t, simtest.MustKeys(t).Encryption), inputs[i].AccessTokenSecret
			}
			if _, err := e.svc.Save(ctx, ids[i], m, in, Actor{}); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The servers restarted with the rotated ring: k2 seals, k1 still opens.
	svc, err := New(Config{Pool: e.pool, Ring: rotated, IBKR: ibkr.Options{BaseURL: e.sim.baseURL()}})
	if err != nil {
		t.Fatal(err)
	}
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var i int
		fmt.Sscan(r.URL.Query().Get("i"), &i)
		u := ids[i%users]
		var err error
		if i%10 == 9 {
			_, err = svc.Save(r.Context(), u, Live, inputs[i%users], Actor{})
		} else {
			err = svc.OpenSaved(r.Context(), u, Mode(r.URL.Query().Get("mode")))
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		served.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	var failed, sent atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond) // 50 requests per second
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				sent.Add(1)
				mode := Live
				if i%2 == 1 {
					mode = Paper
				}
				resp, err := http.Get(fmt.Sprintf("%s/?i=%d&mode=%s", srv.URL, i, mode))
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != http.StatusNoContent {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}()
		}
	}()

	// Between batches, wait for the server to answer more requests, so the
	// rotation really runs interleaved with the traffic.
	waitServed := func() {
		n := served.Load()
		for served.Load() < n+3 && failed.Load() == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	waitServed()
	res, err := rewrap.Run(ctx, e.pool, rotated, rewrap.Product(), rewrap.Options{BatchSize: 8, Progress: func(rewrap.Result) { waitServed() }})
	if err != nil {
		t.Fatal(err)
	}
	waitServed()
	close(stop)
	wg.Wait()

	t.Logf("%d requests during the rotation, %d failed; %+v", sent.Load(), failed.Load(), res)
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed during the rotation; first: %v", failed.Load(), sent.Load(), firstErr.Load())
	}
	var resealed int64
	for _, r := range res {
		resealed += r.Resealed
		if r.Failed != 0 {
			t.Errorf("%s: %d rows did not open", r.Column, r.Failed)
		}
	}
	if resealed == 0 {
		t.Error("nothing was re-sealed")
	}
	rem, err := rewrap.Remaining(ctx, e.pool, rotated, rewrap.Product())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]map[string]int64{}, rem); diff != "" {
		t.Errorf("rows left under the old key (-want +got):\n%s", diff)
	}

	// rewrap lists exactly the broker's sealed columns, with its aad.
	var listed []string
	for _, c := range rewrap.Product() {
		if c.Table == "broker_connections" {
			listed = append(listed, c.Column)
			if c.Field != c.Column || c.UserColumn != "user_id" || c.ScopeColumn != "mode" {
				t.Errorf("rewrap's %s: field %q user %q scope %q; the broker seals with (user_id, column, mode)", c.Column, c.Field, c.UserColumn, c.ScopeColumn)
			}
		}
	}
	if diff := cmp.Diff(SealedFields(), listed); diff != "" {
		t.Errorf("rewrap's broker columns (-broker +rewrap):\n%s", diff)
	}

	// k1 can now be retired: the ring with k2 alone opens everything.
	retired, err := New(Config{Pool: e.pool, Ring: newOnly})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range ids {
		for _, m := range []Mode{Live, Paper} {
			if err := retired.OpenSaved(context.Background(), u, m); err != nil {
				t.Errorf("after retiring k1, %s %s: %v", u, m, err)
			}
		}
	}
}
