package broker

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/ibkr"
)

// TestKnownSecretSavesADecryption: a tenant's next handshake (IBKR
// restarted) reuses the access token secret its first one decrypted. When
// the connection is saved again on another replica, which this cache never
// hears of, the sealed columns differ and the new secret is decrypted (were
// the old one reused, IBKR would refuse the handshake); after Invalidate
// nothing is remembered.
func TestKnownSecretSavesADecryption(t *testing.T) {
	e := newEnv(t, envOptions{fake: true})
	ctx := ctxT(t)
	u, _ := e.connected("DU1234567")
	c := e.svc.Cache()
	check := func(what string, handshakes, decrypts int64) {
		t.Helper()
		if got, want := [2]int64{c.Handshakes(), c.SecretDecrypts()}, [2]int64{handshakes, decrypts}; got != want {
			t.Errorf("%s: handshakes and decryptions %v, want %v", what, got, want)
		}
	}
	mustAccounts(t, ctx, c, u)
	check("first handshake", 1, 1)

	e.sim.restart()
	e.clock.Advance(20 * time.Second) // past the tenant's repair budget
	mustAccounts(t, ctx, c, u)
	check("after IBKR restarted", 2, 1)

	replica, err := New(Config{Pool: e.pool, Ring: e.ring, Now: e.clock.Now,
		IBKR: ibkr.Options{BaseURL: e.sim.baseURL(), Now: e.clock.Now}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := replica.Save(ctx, u, Paper, e.sim.register("DU1234567", true), Actor{UserID: u}); err != nil {
		t.Fatal(err)
	}
	e.sim.restart()
	e.clock.Advance(20 * time.Second)
	mustAccounts(t, ctx, c, u)
	check("after the connection was saved again elsewhere", 3, 2)

	c.Invalidate(u)
	mustAccounts(t, ctx, c, u)
	check("after Invalidate", 4, 3)
}

// TestKnownSecretPrintsRedacted: the remembered secret never reaches a
// log line by a stray %v.
func TestKnownSecretPrintsRedacted(t *testing.T) {
	k := knownSecret{secret: []byte("s3cr3t-bytes")}
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k)} {
		if strings.Contains(s, "s3cr3t") || strings.Contains(s, "115 51") {
			t.Errorf("knownSecret printed as %q", s)
		}
	}
}

// BenchmarkRepairHandshake measures one tenant's new handshake through the
// cache — its connection read and opened, the credentials parsed, the
// handshake with the simulator over loopback HTTP (in this process) — with
// the access token secret decrypted again, as every handshake did before
// the cache remembered it (and as the first after a restart still does),
// and with it remembered. cpu-µs/op is this process's CPU time.
//
//	go test -run '^$' -bench RepairHandshake -benchtime 200x ./internal/broker/
func BenchmarkRepairHandshake(b *testing.B) {
	e := newEnv(b, envOptions{})
	ctx := context.Background()
	u, _ := e.connected("DU1234567")
	c := e.svc.Cache()
	if _, _, err := c.Session(ctx, u); err != nil {
		b.Fatal(err)
	}
	t := c.tenant(u)
	for _, remember := range []bool{false, true} {
		name := "secret=decrypted"
		if remember {
			name = "secret=remembered"
		}
		b.Run(name, func(b *testing.B) {
			cpu0 := processCPU(b)
			for b.Loop() {
				if !remember {
					t.mu.Lock()
					t.known.wipe()
					t.mu.Unlock()
				}
				p, err := c.handshake(ctx, t)
				if err != nil {
					b.Fatal(err)
				}
				c.release(p)
			}
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// processCPU is the CPU time this process used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
