package ibkrsim

import "net/http"

// apiRoutes maps IBKR's endpoints; every handler runs after the OAuth check.
func (s *Server) apiRoutes() *http.ServeMux {
	m := http.NewServeMux()
	p := APIPrefix
	m.HandleFunc("POST "+p+"/tickle", s.handleTickle)
	m.HandleFunc("POST "+p+"/logout", s.handleLogout)
	m.HandleFunc("GET "+p+"/trsrv/stocks", s.handleStocks)

	m.HandleFunc("POST "+p+"/iserver/auth/ssodh/init", s.handleSSODHInit)
	m.HandleFunc("POST "+p+"/iserver/auth/status", s.bridged(s.handleAuthStatus))
	m.HandleFunc("GET "+p+"/iserver/auth/status", s.bridged(s.handleAuthStatus))
	m.HandleFunc("GET "+p+"/iserver/accounts", s.iserver(s.handleAccounts))
	m.HandleFunc("GET "+p+"/iserver/secdef/search", s.iserver(s.handleSecdefSearch))
	m.HandleFunc("POST "+p+"/iserver/secdef/search", s.iserver(s.handleSecdefSearch))
	m.HandleFunc("POST "+p+"/iserver/questions/suppress", s.iserver(s.handleSuppress))
	m.HandleFunc("POST "+p+"/iserver/questions/suppress/reset", s.iserver(s.handleSuppressReset))

	m.HandleFunc("POST "+p+"/iserver/account/{acct}/orders", s.accountsFirst(s.handlePlaceOrder))
	m.HandleFunc("POST "+p+"/iserver/account/{acct}/orders/whatif", s.accountsFirst(s.handleWhatIf))
	m.HandleFunc("POST "+p+"/iserver/reply/{id}", s.accountsFirst(s.handleReply))
	m.HandleFunc("GET "+p+"/iserver/account/order/status/{id}", s.accountsFirst(s.handleOrderStatus))
	m.HandleFunc("GET "+p+"/iserver/account/orders", s.accountsFirst(s.handleLiveOrders))
	m.HandleFunc("GET "+p+"/iserver/account/trades", s.accountsFirst(s.handleTrades))
	m.HandleFunc("DELETE "+p+"/iserver/account/{acct}/order/{id}", s.accountsFirst(s.handleCancel))
	s.passthroughRoutes(m)
	return m
}
