package risk_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/risk"
	"github.com/ordertune/ordertune/internal/trading/tradetest"
)

// BenchmarkHaltRead compares the two ways issue 16 offered for every
// replica to see a halt within a second: reading it at every confirm (the
// risk state's statement, GateQuery, which joins the platform row holding
// the halts), or keeping the platform row in memory, refreshed by
// LISTEN/NOTIFY, so that a confirm reads only the user's row. Both run as
// a confirm runs them: in its first batch, next to another statement, so
// neither costs a round trip of its own and the difference is the halt's
// share of the read.
//
//	ordertune devdb -- go test -run '^$' -bench BenchmarkHaltRead -count 5 ./internal/risk/
func BenchmarkHaltRead(b *testing.B) {
	ctx := context.Background()
	s, pool := newService(b, risk.Limits{MaxOrderValue: sp("100000")})
	u := tradetest.NewUser(b, pool, "subscriber")
	gate, gateArgs := s.GateQuery(u)
	reads := []struct {
		name string
		sql  string
		args []any
	}{
		{"read_at_confirm", gate, gateArgs},
		{"user_row_only", `
			SELECT u.max_order_value::text, u.max_shares_per_order::text, u.max_orders_per_day::text, u.max_daily_value::text,
				coalesce(u.trading_paused, false), coalesce(u.suspended, false), coalesce(u.suspended_reason, '')
			FROM (SELECT $1::uuid AS id) k LEFT JOIN risk_users u ON u.user_id = k.id`, []any{u}},
	}
	for _, r := range reads {
		b.Run(r.name, func(b *testing.B) {
			for b.Loop() {
				batch := &pgx.Batch{}
				batch.Queue(`SELECT mode, value::text FROM position_sizes WHERE user_id = $1`, u)
				batch.Queue(r.sql, r.args...)
				if err := pool.SendBatch(ctx, batch).Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
