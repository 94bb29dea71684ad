// Package arch holds the design's dependency rule as a test: httpapi →
// features → adapters, never back. The test (go list based) fails naming
// the offending import when a package reaches up, sideways into a feature
// it must not know, or into test support.
//
// The layers:
//
//	programs   cmd/..., scripts/...          wire the parts; may import anything
//	httpapi    internal/httpapi              the HTTP surface
//	features   auth, broker, trading, passthrough, rewrap
//	adapters   ibkr, ibkrsim, postgres, seal, audit, metrics, config, logging
//	vocabulary errs
//
// Among the features only two edges exist: broker implements the Broker
// interface trading declares (broker → trading), and passthrough runs on
// broker's sessions (passthrough → broker). Trading never imports ibkr,
// httpapi or broker; ibkr never imports broker; ibkr and ibkrsim (the
// client and the simulator of one protocol) never import each other, so
// the simulator cannot lean on the client's internals. Test support
// (clocktest, logtest, pgtest, simtest, tradetest) is imported only by
// tests and programs.
package arch
