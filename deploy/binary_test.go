package deploy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/ordertune/ordertune/api"
	"github.com/ordertune/ordertune/internal/config"
)

// The deployment files are checked against the real program: its binary
// runs each container's command line, its configuration loader reads each
// container's environment, and its OpenAPI document (kept equal to the
// server's routes by internal/httpapi's tests) names the probe routes.

// imageUID is the uid of distroless's "nonroot" user, the image's USER.
const imageUID = 65532

// leaseReleaseTimeout is how long serve gives itself to release its leases
// after the requests in flight finished (services.releaseLeases).
const leaseReleaseTimeout = 5 * time.Second

// repoRoot is the repository's top directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// tempRoot holds what the tests make and share between tests: the binary,
// the secrets script's runs. TestMain removes it.
var tempRoot string

// TestMain removes what the tests made.
func TestMain(m *testing.M) {
	var err error
	tempRoot, err = os.MkdirTemp("", "ordertune-deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(tempRoot)
	os.Exit(code)
}

// tempDir is a new directory under tempRoot: unlike t.TempDir, it outlives
// the test, for the caches.
func tempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp(tempRoot, "")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// ordertuneBinary builds cmd/ordertune once per test run.
func ordertuneBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(tempRoot, "ordertune")
		goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
		cmd := exec.Command(goTool, "build", "-o", binPath, "./cmd/ordertune")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/ordertune: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// image is what the final stage of deploy/Dockerfile sets.
type image struct {
	entrypoint, cmd []string
	user            string
}

var execForm = regexp.MustCompile(`(?m)^(ENTRYPOINT|CMD|USER)\s+(.+)$`)

// readImage reads ENTRYPOINT, CMD and USER of deploy/Dockerfile; the build
// stage sets none of them.
func readImage(t testing.TB) image {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var img image
	for _, m := range execForm.FindAllStringSubmatch(string(b), -1) {
		switch m[1] {
		case "USER":
			img.user = strings.TrimSpace(m[2])
		case "ENTRYPOINT", "CMD":
			list := regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(m[2], -1)
			var argv []string
			for _, a := range list {
				argv = append(argv, a[1])
			}
			if m[1] == "ENTRYPOINT" {
				img.entrypoint = argv
			} else {
				img.cmd = argv
			}
		}
	}
	if len(img.entrypoint) != 1 || !strings.HasSuffix(img.entrypoint[0], "/ordertune") {
		t.Fatalf("deploy/Dockerfile: ENTRYPOINT %q, want the ordertune binary (exec form)", img.entrypoint)
	}
	// distroless's nonroot user is 65532; a numeric USER must say so.
	if u, _, _ := strings.Cut(img.user, ":"); u != "nonroot" && u != fmt.Sprint(imageUID) {
		t.Fatalf("deploy/Dockerfile: USER %q, want nonroot (uid %d)", img.user, imageUID)
	}
	return img
}

// argv is the command line a container runs: command replaces the image's
// ENTRYPOINT, args its CMD, as in Kubernetes and Compose. It returns the
// arguments after the binary, or a problem.
func (img image) argv(command, args []string) ([]string, error) {
	full := append(append([]string(nil), img.entrypoint...), img.cmd...)
	switch {
	case len(command) > 0:
		full = append(append([]string(nil), command...), args...)
	case args != nil:
		full = append(append([]string(nil), img.entrypoint...), args...)
	}
	if full[0] != img.entrypoint[0] {
		return nil, fmt.Errorf("runs %q, not the image's %s", full[0], img.entrypoint[0])
	}
	return full[1:], nil
}

// lockedBuffer is a bytes.Buffer safe to read while a process writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// checkArgv runs the real binary with a container's arguments and an empty
// environment. A command line the program understands gets as far as its
// configuration and stops there, saying which variable is not set; a
// server that needs none (the simulator) starts serving and is stopped. An
// unknown command, action or flag fails before that, with its usage.
func checkArgv(t testing.TB, args []string) error {
	t.Helper()
	key := strings.Join(args, "\x00")
	argvMu.Lock()
	defer argvMu.Unlock()
	if err, ok := argvChecked[key]; ok {
		return err
	}
	err := runArgv(t, args)
	argvChecked[key] = err
	return err
}

// argvChecked remembers checkArgv's answers: the same command line gets the
// same answer, and the mutation tests ask for most of them many times.
var (
	argvMu      sync.Mutex
	argvChecked = map[string]error{}
)

func runArgv(t testing.TB, args []string) error {
	bin := ordertuneBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{}
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			if notSet.MatchString(stderr.String()) {
				return nil
			}
			return fmt.Errorf("ordertune %s: does not get as far as its configuration: %s", strings.Join(args, " "), lastLine(stderr.String()))
		case <-tick.C:
			if strings.Contains(stdout.String(), " serving ") {
				cancel()
				<-done
				return nil
			}
		case <-ctx.Done():
			<-done
			return fmt.Errorf("ordertune %s: neither failed nor served within 20 s", strings.Join(args, " "))
		}
	}
}

// notSet is how the program says a required variable is missing.
var notSet = regexp.MustCompile(`is not set|neither \S+ nor \S+ is set`)

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// configContract is every variable internal/config reads: the names Load
// asks its getenv for, secrets' NAME_FILE forms included.
func configContract() map[string]bool {
	names := map[string]bool{}
	config.Load(func(name string) string { names[name] = true; return "" }, false)
	return names
}

// probeRoutes maps the operationIds of api/openapi.yaml's GET operations
// to their paths.
func probeRoutes(t testing.TB) map[string]string {
	t.Helper()
	routesOnce.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(api.Spec())
		if err != nil {
			routesErr = err
			return
		}
		routes = map[string]string{}
		for path, item := range doc.Paths.Map() {
			if item.Get != nil {
				routes[item.Get.OperationID] = path
			}
		}
	})
	if routesErr != nil {
		t.Fatal(routesErr)
	}
	return routes
}

var (
	routesOnce sync.Once
	routes     map[string]string
	routesErr  error
)
