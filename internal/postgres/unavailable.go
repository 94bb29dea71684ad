package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// Unavailable reports whether err says the database could not be reached
// or went away — a refused or dropped connection, a server shutting down
// or starting up, no connection slot — rather than that a statement was
// wrong. Such a failure is the service's temporary state, answered as
// "unavailable, retry later", never as a bug.
func Unavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false // a client that went away is not an outage
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08 is connection exception; 57P01..57P03 are admin and
		// crash shutdown and "cannot connect now"; 53300 is too many
		// connections.
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" ||
			pgErr.Code == "57P03" || pgErr.Code == "53300"
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	var opErr *net.OpError
	switch {
	case errors.As(err, &connErr), errors.As(err, &opErr), errors.As(err, &netErr):
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	}
	// pgconn reports a connection it found closed by text only.
	return strings.Contains(err.Error(), "conn closed")
}
