package main

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ordertune/ordertune/internal/config"
	"github.com/ordertune/ordertune/internal/httpapi"
	"github.com/ordertune/ordertune/internal/lease"
	"github.com/ordertune/ordertune/internal/metrics"
	"github.com/ordertune/ordertune/internal/seal"
)

// replicaID names this process among the replicas: the host name, for
// people reading the leases table, and random bytes, so a restarted
// process never mistakes its predecessor's leases for its own.
func replicaID() string {
	b := make([]byte, 6)
	rand.Read(b)
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return -1
	}, host)
	if len(host) > 40 {
		host = host[:40]
	}
	if host == "" {
		host = "replica"
	}
	return host + "-" + hex.EncodeToString(b)
}

// newReplication builds this replica's session leases and what the HTTP
// layer needs to forward a tenant's requests to the replica owning its
// session. One replica alone holds every lease it is asked for, at the
// cost of one statement per tenant's first use and one per renewal
// interval.
func newReplication(cfg config.Config, log zerolog.Logger, pool, renewPool *pgxpool.Pool, ring *seal.Ring, m *metrics.Metrics,
	onLost func(lease.Key)) (*lease.Manager, *httpapi.Replication, *metrics.Replicas, error) {
	var leases *lease.Manager
	rm := m.RegisterReplicas(func() int { return leases.Count() })
	leases, err := lease.New(lease.Config{
		Pool: pool, RenewPool: renewPool, Replica: replicaID(), URL: cfg.InternalURL, TTL: cfg.LeaseTTL,
		Log: log.With().Str("worker", "leases").Logger(), OnLost: onLost,
		OnRenew: rm.Renewal, OnTakeover: rm.Takeover,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return leases, &httpapi.Replication{Leases: leases, Ring: ring, OnForward: rm.Forwarded}, rm, nil
}

// boundURL is where the other replicas reach this one when
// ORDERTUNE_INTERNAL_URL is unset: http:// and the address bound. An
// address bound on every interface (0.0.0.0:8080 or [::]:8080, as in a
// container) names no host another replica could reach — each would
// forward to itself — so this machine's first global unicast address
// (IPv4 first, from ifaddrs) stands in; with none, it is alone: loopback.
func boundURL(bound net.Addr, ifaddrs func() ([]net.Addr, error)) string {
	tcp, ok := bound.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return "http://" + bound.String()
	}
	host := "127.0.0.1"
	if addrs, err := ifaddrs(); err == nil {
		var v4, v6 net.IP
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || !ipn.IP.IsGlobalUnicast() {
				continue
			}
			if ipn.IP.To4() != nil && v4 == nil {
				v4 = ipn.IP.To4()
			} else if ipn.IP.To4() == nil && v6 == nil {
				v6 = ipn.IP
			}
		}
		switch {
		case v4 != nil:
			host = v4.String()
		case v6 != nil:
			host = v6.String()
		}
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}
