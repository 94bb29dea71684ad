package deploy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordertune/ordertune/internal/replicatest"
)

// TestNginxComposeConf runs deploy/nginx-compose.conf in a real nginx (the
// Debian package the replicas test uses) in front of two stand-in replicas.
// Debian's nginx predates `resolve` in upstreams (1.27.3), so the one
// upstream server line is replaced by the two replicas' loopback addresses,
// as Docker's DNS would answer; everything else runs as written.
func TestNginxComposeConf(t *testing.T) {
	bin := replicatest.NginxBinary()
	if bin == "" {
		t.Fatal("nginx is not installed: run scripts/ensure-deps.sh nginx (make test does)")
	}
	seen := map[string]int{}
	var (
		mu    sync.Mutex
		hosts []string
	)
	replica := func(name string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hosts = append(hosts, r.Host+" "+r.Header.Get("X-Request-ID"))
			mu.Unlock()
			fmt.Fprint(w, name)
		}))
		t.Cleanup(s.Close)
		return s
	}
	a, b := replica("a"), replica("b")

	conf, err := os.ReadFile("nginx-compose.conf")
	if err != nil {
		t.Fatal(err)
	}
	serverLine := regexp.MustCompile(`(?m)^\s*server\s+ordertune:8080\s+resolve\s+([^;]*);`)
	if !serverLine.Match(conf) {
		t.Fatal("nginx-compose.conf: no `server ordertune:8080 resolve …;` line")
	}
	site := serverLine.ReplaceAllString(string(conf), fmt.Sprintf("    server %s $1;\n    server %s $1;",
		strings.TrimPrefix(a.URL, "http://"), strings.TrimPrefix(b.URL, "http://")))
	listen := replicatest.FreeAddr(t)
	site = strings.Replace(site, "listen 80;", "listen "+listen+";", 1)

	dir := t.TempDir()
	var main strings.Builder
	fmt.Fprintf(&main, "worker_processes 1;\ndaemon off;\npid %s;\nerror_log %s warn;\nevents {}\nhttp {\n  access_log off;\n",
		filepath.Join(dir, "nginx.pid"), filepath.Join(dir, "error.log"))
	for _, tmp := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&main, "  %s_temp_path %s;\n", tmp, filepath.Join(dir, tmp))
	}
	main.WriteString(site + "\n}\n")
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(main.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-t", "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log")).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })

	c := &http.Client{Timeout: 5 * time.Second}
	get := func(p string) (int, string) {
		var err error
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			var resp *http.Response
			if resp, err = c.Get("http://" + listen + p); err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return resp.StatusCode, string(body)
			}
		}
		t.Fatalf("GET %s: %v", p, err)
		return 0, ""
	}
	for range 4 {
		code, body := get("/readyz")
		if code != http.StatusOK {
			t.Fatalf("GET /readyz through nginx: %d", code)
		}
		seen[body]++
	}
	if seen["a"] != 2 || seen["b"] != 2 {
		t.Errorf("4 requests reached the replicas %v; want round robin, 2 each", seen)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, h := range hosts {
		host, id, _ := strings.Cut(h, " ")
		if host != listen || id == "" {
			t.Errorf("a replica got Host %q and X-Request-ID %q; want the browser's Host with its port (%s) and nginx's request id", host, id, listen)
		}
	}
	if code, _ := get("/metrics"); code != http.StatusNotFound {
		t.Errorf("GET /metrics through nginx: %d, want 404 (not for the host's browser)", code)
	}
}
