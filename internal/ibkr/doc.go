// Package ibkr is Ordertune's client for the Interactive Brokers Web API with
// first-party OAuth 1.0a: it parses a subscriber's credentials, negotiates the
// live session token (LST) with a Diffie-Hellman handshake signed by RSA-SHA256,
// signs every other request with HMAC-SHA256, paces requests below IBKR's rate
// limits and offers typed calls for the order path.
//
// Everything that goes on the wire follows shared/ibkr/PROTOCOL.md byte for
// byte; the tests pin it to the shared vectors (testdata/vectors.json).
//
// Errors from IBKR are *Error values with a Kind the rest of the product acts
// on (re-handshake, re-initialise the brokerage session, reconcile an order
// whose outcome is unknown, ...): use KindOf or errors.As. Each Kind has its
// code of the error vocabulary (Kind.Code, one tested table) and its words
// for users (Explain).
//
// TestConnection is the one Test Connection step machine: the CLI prints its
// result, the broker package stores and audits it. This package is an
// adapter: it knows no feature (never broker or trading) and not the
// simulator, which must reject what real IBKR would reject.
//
// Secret material (private keys, the access token secret, the LST) is never
// logged, formatted or returned in an error message.
package ibkr
