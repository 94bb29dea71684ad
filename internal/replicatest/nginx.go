// Package replicatest runs several `ordertune serve` replicas behind a real
// nginx for tests and benchmarks: the nginx configuration (round robin, the
// retries a replicated deployment needs), nginx itself as a subprocess with
// everything under a temporary folder, and the replica processes.
package replicatest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// NginxConfig is the configuration of a private nginx balancing upstreams
// (host:port) round robin on listen (host:port), with every file under dir.
// A replica that refuses connections (killed, or shutting down) is skipped
// and the request, even a POST, goes to the next one: nothing reached the
// dead replica, and a confirm carries its Idempotency-Key anyway. This is
// deploy/nginx.conf's upstream, reduced to what a test needs.
func NginxConfig(dir, listen string, upstreams []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "worker_processes 1;\ndaemon off;\npid %s;\nerror_log %s warn;\n",
		filepath.Join(dir, "nginx.pid"), filepath.Join(dir, "error.log"))
	// Each request through nginx holds two connections (client and
	// upstream): 4,096 made nginx close idle client connections under the
	// storm's 2,000 at once, and a POST sent on one at that moment failed
	// with a reset (scripts/storm, 2,000 tenants in one second).
	b.WriteString("worker_rlimit_nofile 20000;\nevents { worker_connections 10000; }\nhttp {\n  access_log off;\n")
	for _, t := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&b, "  %s_temp_path %s;\n", t, filepath.Join(dir, "tmp", t))
	}
	b.WriteString("  upstream ordertune {\n")
	for _, u := range upstreams {
		fmt.Fprintf(&b, "    server %s max_fails=1 fail_timeout=1s;\n", u)
	}
	b.WriteString("    keepalive 64;\n  }\n")
	fmt.Fprintf(&b, `  server {
    listen %s;
    client_max_body_size 1m;
    location / {
      proxy_pass http://ordertune;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Request-ID $request_id;
      proxy_next_upstream error timeout non_idempotent;
      proxy_next_upstream_tries 3;
      proxy_connect_timeout 2s;
      proxy_read_timeout 75s;
    }
  }
}
`, listen)
	return b.String()
}

// NginxBinary returns the nginx executable, or "" when none is installed
// (scripts/ensure-deps.sh nginx installs Debian's).
func NginxBinary() string {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	return ""
}

// StartNginx starts nginx in front of upstreams and returns its base URL;
// it is stopped when t ends. It fails the test when nginx is missing.
func StartNginx(t testing.TB, upstreams []string) string {
	t.Helper()
	url, stop, err := RunNginx(t.TempDir(), upstreams)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return url
}

// RunNginx starts nginx in front of upstreams with every file under dir
// and returns its base URL and the function that stops it: StartNginx for
// programs that are not tests (scripts/storm), the same configuration.
func RunNginx(dir string, upstreams []string) (url string, stop func(), err error) {
	bin := NginxBinary()
	if bin == "" {
		return "", nil, errors.New("nginx is not installed: run scripts/ensure-deps.sh nginx (make test does)")
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return "", nil, err
	}
	listen, err := LoopbackAddr()
	if err != nil {
		return "", nil, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(NginxConfig(dir, listen, upstreams)), 0o600); err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start nginx: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stop = func() {
		_ = cmd.Process.Signal(os.Interrupt) // nginx's fast shutdown
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-done:
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return "", nil, fmt.Errorf("nginx exited: %v\n%s", err, b)
		default:
		}
		if c, err := net.DialTimeout("tcp", listen, 200*time.Millisecond); err == nil {
			c.Close()
			return "http://" + listen, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, errors.New("nginx did not start listening")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// LoopbackAddr returns a loopback address with a port free right now, for
// programs (scripts/storm, scripts/coldstart) as well as tests.
func LoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := LoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// WaitReady polls url until it answers 200, or fails t after timeout.
func WaitReady(t testing.TB, url string, timeout time.Duration, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("the process behind %s exited before it was ready", url)
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200", url)
}
