package passthrough_test

import (
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/trading"
)

// TestBridgeOrderUpdateFromConfirm: an order placed through the confirm
// flow (the trading service on the same broker cache) produces its sor
// update on the tenant's socket.
func TestBridgeOrderUpdateFromConfirm(t *testing.T) {
	e := newEnv(t, envOptions{})
	tn := e.tenant("DU5100001")
	svc, err := trading.New(trading.Config{Pool: e.pool, Broker: e.svc.Orders()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	var admin string
	if err := e.pool.QueryRow(ctx, `INSERT INTO users (email, role, password_hash, created_at, updated_at)
		VALUES ('a-' || gen_random_uuid() || '@example.test', 'admin', '!', now(), now()) RETURNING id`).Scan(&admin); err != nil {
		t.Fatal(err)
	}
	v := "5"
	if _, err := svc.SetPositionSize(ctx, tn.id, trading.PositionSize{Mode: trading.SizeShares, Value: &v}); err != nil {
		t.Fatal(err)
	}
	g, err := svc.CreateSignal(ctx, admin, trading.NewSignal{Ticker: "AAPL", Strategy: "I", Kind: "entry",
		SignalDate: "2026-11-20", EntryDate: time.Now().AddDate(0, 0, 7).Format(time.DateOnly), RefClose: "187.25", RSI2: "4.5", Return2D: "-0.031",
		EntryMode: trading.NextOpenMarket, ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}

	c := e.mustDial(ctx, t, tn)
	send(ctx, t, c, `sor+{}`)
	conf, _, err := svc.Confirm(ctx, tn.id, g.ID, "bridge-key-1", "BUY")
	if err != nil {
		t.Fatalf("confirm: %v", err)
	}
	seen, err := readUntilRef(ctx, c, conf.ID)
	if err != nil {
		t.Fatalf("no sor update for confirmation %s: %v", conf.ID, err)
	}
	args := seen[len(seen)-1]["args"].([]any)
	o := args[0].(map[string]any)
	if o["acct"] != tn.account || o["side"] != "BUY" || o["totalSize"] != float64(5) {
		t.Errorf("sor order = %v", o)
	}
}
