package tradetest

import (
	"time"

	"golang.org/x/time/rate"

	"github.com/ordertune/ordertune/internal/ibkr"
	"github.com/ordertune/ordertune/internal/ibkrsim"
)

// FastPacing paces the simulator like IBKR but lists the live orders every
// 50 ms instead of every 5 s, so that reconciliation runs in milliseconds.
func FastPacing() ibkrsim.Pacing {
	return ibkrsim.Pacing{OrdersListInterval: 50 * time.Millisecond, PerSecond: 1000, Burst: 1000}
}

// FastLimits is the client's pacer matching FastPacing.
func FastLimits() ibkr.PacerLimits {
	every := rate.Every(60 * time.Millisecond)
	return ibkr.PacerLimits{Global: 500, LiveOrders: every, Trades: every, Tickle: 1, PortfolioAccounts: every}
}
