package ibkr

import (
	"net/http"
	"time"
)

// maxIdlePerHost is how many idle connections to IBKR a process keeps.
// Every tenant's calls go to the one host api.ibkr.com, so net/http's
// default of 2 idle connections per host would make a burst of confirms
// (everyone pressing Confirm at the signal's publication) open, TLS-handshake
// and throw away a connection per call.
const maxIdlePerHost = 128

// NewTransport returns the HTTP transport for calls to IBKR: the default
// transport's proxy, dial and TLS settings, with enough idle connections
// kept to the one host that all tenants share, and a bound on how long a
// response's headers may take (a context deadline still bounds each call).
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = maxIdlePerHost
	t.MaxIdleConnsPerHost = maxIdlePerHost
	t.IdleConnTimeout = 90 * time.Second
	t.ResponseHeaderTimeout = 60 * time.Second
	return t
}
