package httpapi

import (
	"net/http"

	"github.com/ordertune/ordertune/internal/auth"
)

// routePolicies is the authorization table: one row for every route, with
// who may call it. TestEveryRouteHasAPolicy fails for a registered route
// without a row, and TestRoutesRefuseWhatTheTableRefuses calls each one as
// everyone the row excludes. Features add their rows here.
//
// Paths are echo's, with :params. A row's default is a fully authenticated
// session (password and TOTP); partial rows are the only ones a
// password-only session reaches. A route programs may call with an API
// token names the scopes that admit it, e.g. for publishing signals:
// adminOnly().orScope(auth.ScopeSignalsWrite).
//
// Sensitive actions (issue 16's step-up) are marked .sensitive(): they
// need a second factor entered in the last five minutes, and API tokens
// never pass them. Every admin write is sensitive;
// TestSensitiveRoutesNeedStepUp drives each marked route.
func routePolicies() map[string]policy {
	t := map[string]policy{
		// Operations and the UI's files: no account needed.
		routeKey(http.MethodGet, "/healthz"):          public(),
		routeKey(http.MethodGet, "/readyz"):           public(),
		routeKey(http.MethodGet, "/metrics"):          public(),
		routeKey(http.MethodGet, "/api/openapi.yaml"): public(),
		routeKey(http.MethodGet, WebAssetsPath):       public(),

		// Authentication and 2FA.
		routeKey(http.MethodGet, apiPrefix+"/auth/signup"):  public(),
		routeKey(http.MethodPost, apiPrefix+"/auth/signup"): public(),
		routeKey(http.MethodPost, apiPrefix+"/auth/login"):  public(),
		// "Forgot password?": the link's token is the credential.
		routeKey(http.MethodPost, apiPrefix+"/auth/password-reset"):          public(),
		routeKey(http.MethodPost, apiPrefix+"/auth/password-reset/complete"): public(),
		routeKey(http.MethodPost, apiPrefix+"/auth/totp"):                    secondStep(),
		routeKey(http.MethodPost, apiPrefix+"/auth/logout"):                  secondStep(),
		routeKey(http.MethodGet, apiPrefix+"/me"):                            secondStep(),
		routeKey(http.MethodPost, apiPrefix+"/me/totp/setup"):                secondStep(),
		routeKey(http.MethodPost, apiPrefix+"/me/totp/enable"):               secondStep(),
		routeKey(http.MethodPost, apiPrefix+"/auth/step-up"):                 signedIn(),
		routeKey(http.MethodPost, apiPrefix+"/me/password"):                  signedIn().sensitive(),
		routeKey(http.MethodPost, apiPrefix+"/me/recovery-codes"):            signedIn().sensitive(),

		// Admin: users and API tokens.
		routeKey(http.MethodGet, apiPrefix+"/admin/users"):                 adminOnly(),
		routeKey(http.MethodPost, apiPrefix+"/admin/users"):                adminOnly().sensitive(),
		routeKey(http.MethodPatch, apiPrefix+"/admin/users/:id"):           adminOnly().sensitive(),
		routeKey(http.MethodPost, apiPrefix+"/admin/users/:id/totp/reset"): adminOnly().sensitive(),
		routeKey(http.MethodGet, apiPrefix+"/admin/tokens"):                adminOnly(),
		routeKey(http.MethodPost, apiPrefix+"/admin/tokens"):               adminOnly().sensitive(),
		routeKey(http.MethodDelete, apiPrefix+"/admin/tokens/:id"):         adminOnly().sensitive(),

		// Settings → Broker: the caller's own connections (the tenant is
		// the principal, never a path parameter); sessions for admins.
		routeKey(http.MethodGet, apiPrefix+"/broker"):             signedIn(),
		routeKey(http.MethodPut, apiPrefix+"/broker/active"):      signedIn().sensitiveWhen(), // to live
		routeKey(http.MethodPut, apiPrefix+"/broker/:mode"):       signedIn().sensitive(),
		routeKey(http.MethodPost, apiPrefix+"/broker/:mode/test"): signedIn(),
		routeKey(http.MethodDelete, apiPrefix+"/broker/:mode"):    signedIn().sensitive(),
		routeKey(http.MethodGet, apiPrefix+"/admin/sessions"):     adminOnly(),
		// What IBKR's answers do: the user's choice on a competing login,
		// an admin's per-user reply-question allowlist.
		routeKey(http.MethodPut, apiPrefix+"/broker/session-preference"):          signedIn(),
		routeKey(http.MethodGet, apiPrefix+"/admin/users/:id/reply-questions"):    adminOnly(),
		routeKey(http.MethodPut, apiPrefix+"/admin/users/:id/reply-questions"):    adminOnly().sensitive(),
		routeKey(http.MethodDelete, apiPrefix+"/admin/users/:id/reply-questions"): adminOnly().sensitive(),

		// Signals, settings, confirmations (tenant rows are the caller's own:
		// another tenant's id is "not found"), the admin log and audit trail.
		routeKey(http.MethodGet, apiPrefix+"/market/clock"):              signedIn(),
		routeKey(http.MethodGet, apiPrefix+"/signals"):                   signedIn(),
		routeKey(http.MethodPost, apiPrefix+"/signals"):                  adminOnly().orScope(auth.ScopeSignalsWrite),
		routeKey(http.MethodGet, apiPrefix+"/signals/:id"):               signedIn(),
		routeKey(http.MethodDelete, apiPrefix+"/signals/:id"):            adminOnly(),
		routeKey(http.MethodGet, apiPrefix+"/signals/:id/preview"):       signedIn(),
		routeKey(http.MethodPost, apiPrefix+"/signals/:id/confirm"):      signedIn(),
		routeKey(http.MethodGet, apiPrefix+"/settings"):                  signedIn(),
		routeKey(http.MethodPut, apiPrefix+"/settings/position-size"):    signedIn().sensitiveWhen(), // raising it
		routeKey(http.MethodGet, apiPrefix+"/confirmations"):             signedIn(),
		routeKey(http.MethodGet, apiPrefix+"/confirmations/:id"):         ownData(),
		routeKey(http.MethodPost, apiPrefix+"/confirmations/:id/cancel"): ownData(),
		routeKey(http.MethodGet, apiPrefix+"/admin/confirmations"):       adminOnly(),
		routeKey(http.MethodGet, apiPrefix+"/admin/confirmations/:id"):   adminOnly(),
		routeKey(http.MethodGet, apiPrefix+"/admin/audit"):               adminOnly(),
		routeKey(http.MethodGet, apiPrefix+"/admin/audit/verify"):        adminOnly(),

		// Notifications, their preferences and webhook endpoints: the
		// caller's own (another user's id is "not found"). Browser use
		// only: no API token scope admits them.
		routeKey(http.MethodGet, apiPrefix+"/notifications"):           signedIn(),
		routeKey(http.MethodPost, apiPrefix+"/notifications/read-all"): signedIn(),
		routeKey(http.MethodPost, apiPrefix+"/notifications/:id/read"): ownData(),
		routeKey(http.MethodGet, apiPrefix+"/settings/notifications"):  signedIn(),
		routeKey(http.MethodPut, apiPrefix+"/settings/notifications"):  signedIn(),
		routeKey(http.MethodGet, apiPrefix+"/webhooks"):                signedIn(),
		routeKey(http.MethodPost, apiPrefix+"/webhooks"):               signedIn().sensitive(), // a new place our events (and their data) go
		routeKey(http.MethodDelete, apiPrefix+"/webhooks/:id"):         ownData(),
		routeKey(http.MethodPost, apiPrefix+"/webhooks/:id/test"):      ownData(),
		routeKey(http.MethodGet, apiPrefix+"/webhooks/:id/deliveries"): ownData(),

		// Risk: the caller's own limits and pause; the platform's
		// ceilings and halts for admins.
		routeKey(http.MethodGet, apiPrefix+"/settings/risk"): signedIn(),
		routeKey(http.MethodPut, apiPrefix+"/settings/risk"): signedIn().sensitiveWhen(), // raising a limit, resuming
		routeKey(http.MethodGet, apiPrefix+"/admin/risk"):    adminOnly(),
		routeKey(http.MethodPut, apiPrefix+"/admin/risk"):    adminOnly().sensitive(),

		// Positions, trades and P&L: the caller's own (the ledger).
		routeKey(http.MethodGet, apiPrefix+"/positions"):      signedIn(),
		routeKey(http.MethodGet, apiPrefix+"/trades"):         signedIn(),
		routeKey(http.MethodPost, apiPrefix+"/trades/import"): signedIn(),
		routeKey(http.MethodGet, apiPrefix+"/pnl"):            signedIn(),

		// IBKR pass-through: the caller's own IBKR session, signed in with
		// password and second factor; no API tokens (browser use).
		routeKey(http.MethodGet, apiPrefix+"/ibkr/ws"): signedIn(),
		routeKey(http.MethodGet, apiPrefix+"/ibkr/*"):  signedIn(),
	}
	for _, p := range WebPagePaths() {
		t[routeKey(http.MethodGet, p)] = public() // each serves index.html; the data behind it is guarded
	}
	return t
}
