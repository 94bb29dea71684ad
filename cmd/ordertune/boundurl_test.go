package main

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestBoundURL(t *testing.T) {
	ipnet := func(s string) net.Addr {
		ip, n, err := net.ParseCIDR(s)
		if err != nil {
			t.Fatal(err)
		}
		n.IP = ip
		return n
	}
	lo, lo6 := ipnet("127.0.0.1/8"), ipnet("::1/128")
	linkLocal := ipnet("fe80::1/64")
	eth0, eth0v6 := ipnet("172.18.0.5/16"), ipnet("fd00::5/64")
	tests := []struct {
		name  string
		bound string
		addrs []net.Addr
		err   error
		want  string
	}{
		{"a named address is used as bound", "10.1.2.3:8080", []net.Addr{lo, eth0}, nil, "http://10.1.2.3:8080"},
		{"loopback stays loopback", "127.0.0.1:43123", []net.Addr{lo, eth0}, nil, "http://127.0.0.1:43123"},
		{"every interface: the container's address", "0.0.0.0:8080", []net.Addr{lo, lo6, linkLocal, eth0v6, eth0}, nil, "http://172.18.0.5:8080"},
		{"every interface, IPv6 only", "[::]:8080", []net.Addr{lo, lo6, linkLocal, eth0v6}, nil, "http://[fd00::5]:8080"},
		{"every interface, loopback only", "0.0.0.0:8080", []net.Addr{lo, lo6}, nil, "http://127.0.0.1:8080"},
		{"interfaces unreadable", "[::]:8080", nil, errors.New("no netlink"), "http://127.0.0.1:8080"},
	}
	for _, tt := range tests {
		bound, err := net.ResolveTCPAddr("tcp", tt.bound)
		if err != nil {
			t.Fatal(err)
		}
		got := boundURL(bound, func() ([]net.Addr, error) { return tt.addrs, tt.err })
		if got != tt.want {
			t.Errorf("%s: boundURL(%s) = %s, want %s", tt.name, tt.bound, got, tt.want)
		}
	}
}

// TestBoundURLReachable binds every interface, as a container does, and
// reaches the listener at the URL the other replicas would forward to.
func TestBoundURLReachable(t *testing.T) {
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("me")) })}
	go srv.Serve(l)
	defer srv.Close()
	u := boundURL(l.Addr(), net.InterfaceAddrs)
	if strings.Contains(u, "0.0.0.0") || strings.Contains(u, "[::]") {
		t.Fatalf("boundURL = %s: another replica cannot reach an unspecified address", u)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(u + "/")
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %s", u, resp.Status)
	}
}
