package ibkr_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/ordertune/ordertune/internal/ibkr"
)

// During IBKR's restart every call is unavailable; afterwards the live
// session token still works but the brokerage session must be opened again.
func TestE2EMaintenanceWindow(t *testing.T) {
	e, s := newConnectedSimEnv(t)
	ctx := context.Background()

	e.control("POST", "/sim/maintenance/start", nil, http.StatusOK)
	if _, err := s.Tickle(ctx); ibkr.KindOf(err) != ibkr.KindUnavailable {
		t.Fatalf("tickle during maintenance: %v", err)
	}
	e.control("POST", "/sim/maintenance/end", nil, http.StatusOK)

	if _, err := s.Accounts(ctx); ibkr.KindOf(err) != ibkr.KindNoBrokerageSession {
		t.Fatalf("after maintenance the brokerage session is gone, got %v", err)
	}
	if _, err := s.InitBrokerage(ctx); err != nil {
		t.Fatalf("re-open the brokerage session: %v", err)
	}
	if _, err := s.Accounts(ctx); err != nil {
		t.Fatalf("accounts after re-opening: %v", err)
	}
}

// The control API moves the simulator's clock: a day later the live session
// token has expired.
func TestE2ESimulatorClock(t *testing.T) {
	e, s := newConnectedSimEnv(t)
	ctx := context.Background()
	e.control("POST", "/sim/clock", map[string]string{"offset": "25h"}, http.StatusOK)
	if _, err := s.Tickle(ctx); ibkr.KindOf(err) != ibkr.KindTokenExpired {
		t.Fatalf("tickle 25 h later: %v", err)
	}
	e.control("POST", "/sim/clock", map[string]string{"offset": "bogus"}, http.StatusBadRequest)
}
