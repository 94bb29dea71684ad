package trading_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/ordertune/ordertune/internal/broker"
	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim"
	"github.com/ordertune/ordertune/internal/postgres/pgtest"
	"github.com/ordertune/ordertune/internal/seal"
	"github.com/ordertune/ordertune/internal/trading"
	"github.com/ordertune/ordertune/internal/trading/tradetest"
)

// TestConfirmThroughTheBrokerCache runs the confirm flow on the broker
// package's sealed connections and session cache (the production wiring):
// a plain confirm, then one whose LST IBKR refuses mid-flow, which the
// cache repairs; each places exactly one order.
func TestConfirmThroughTheBrokerCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	env := tradetest.NewEnv(t, fastSim(), tradetest.SimBrokerOptions{})
	bs, err := broker.New(broker.Config{Pool: pool, Ring: seal.RandomRing("test"),
		IBKR:             ibkr.Options{BaseURL: env.URL + ibkrsim.APIPrefix},
		AllowedQuestions: broker.DefaultAllowedQuestions()})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := trading.New(trading.Config{Pool: pool, Broker: bs.Orders()})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{env: env, pool: pool, svc: svc, admin: tradetest.NewUser(t, pool, "admin")}
	u := tradetest.NewUser(t, pool, "subscriber")
	uc := env.Connect(t, u, "")
	saveConnection(t, bs, svc, u, uc, "3")
	p, err := svc.Preview(ctx, u, w.signal(t, nil).ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Broker.Mode != "paper" || p.Broker.AccountIDMasked != broker.MaskAccountID(uc.AccountID) {
		t.Errorf("preview broker = %+v", p.Broker)
	}
	first, _, err := svc.Confirm(ctx, u, p.SignalID, "k1", "BUY")
	if err != nil || first.Status != trading.StatusSubmitted {
		t.Fatalf("confirm = (%s, %v), want submitted", first.Status, err)
	}
	env.Fault(t, ibkrsim.Fault{Path: ordersPath, Kind: ibkrsim.FaultInvalidLST, Count: 1})
	second, _, err := svc.Confirm(ctx, u, w.signal(t, nil).ID, "k2", "BUY")
	if err != nil || second.Status != trading.StatusSubmitted {
		t.Fatalf("confirm after LST refusal = (%s, %v), want submitted", second.Status, err)
	}
	orders := env.Orders(t)
	if len(orders) != 2 || orders[0].COID != first.ID || orders[1].COID != second.ID || orders[0].Account != uc.AccountID {
		b, _ := json.Marshal(orders)
		t.Errorf("orders = %s, want one per confirmation on %s", b, uc.AccountID)
	}
	if h := bs.Cache().Handshakes(); h != 2 {
		t.Errorf("handshakes = %d, want 2 (one new LST after the refusal)", h)
	}
}

// saveConnection saves uc as u's active paper connection through the
// broker service bs, as Settings → Broker does, and sets u's position size
// to shares.
func saveConnection(t *testing.T, bs *broker.Service, svc *trading.Service, u string, uc ibkrsim.UserCredentials, shares string) {
	t.Helper()
	ctx := context.Background()
	in := broker.Input{ConsumerKey: uc.ConsumerKey, AccessToken: uc.AccessToken, AccessTokenSecret: uc.AccessTokenSecret,
		SignatureKeyPEM: uc.SignaturePrivateKeyPEM, EncryptionKeyPEM: uc.EncryptionPrivateKeyPEM, DHParams: uc.DHPrimeHex, AccountID: uc.AccountID}
	if _, err := bs.Save(ctx, u, broker.Paper, in, broker.Actor{UserID: u}); err != nil {
		t.Fatal(err)
	}
	if err := bs.SetActive(ctx, u, broker.Paper, broker.Actor{UserID: u}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetPositionSize(ctx, u, trading.PositionSize{Mode: trading.SizeShares, Value: &shares}); err != nil {
		t.Fatal(err)
	}
}
