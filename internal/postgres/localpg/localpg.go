// Package localpg runs a private PostgreSQL cluster from the machine's server
// binaries, for the demo and the tests: a data folder, a free loopback port,
// and a clean stop.
//
// PostgreSQL refuses to run as root, so when the process is root the cluster
// runs as the unprivileged "postgres" system user, which then owns the data
// folder.
package localpg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Options configures a cluster.
type Options struct {
	// DataDir is the cluster's data folder; an existing cluster there is reused.
	DataDir string
	// Port is the TCP port on 127.0.0.1; 0 picks a free one.
	Port int
	// Fast turns off durability (fsync, full-page writes) for throwaway
	// clusters. Never for data anyone wants to keep.
	Fast bool
	// Settings are more server settings, "name=value" each, passed as -c
	// (scripts/storm loads pg_stat_statements with one).
	Settings []string
	// Log receives progress lines; nil discards them.
	Log func(format string, args ...any)
}

// Cluster is a running PostgreSQL server started by Start.
type Cluster struct {
	dir  string
	port int
	bin  string
	cred *syscall.Credential
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the server's exit error, valid once done is closed

	stopOnce sync.Once
}

// TestURLEnv names the variable through which `ordertune devdb` hands its
// cluster's superuser URL to the test processes it runs.
const TestURLEnv = "ORDERTUNE_TEST_POSTGRES_URL"

// SuperUser is the cluster's superuser; it authenticates by trust, which is
// safe because the cluster listens on loopback only and is private to this
// machine's user.
const SuperUser = "postgres"

// FindBinaries returns the folder holding initdb and postgres: the one on
// PATH, else the newest /usr/lib/postgresql/*/bin.
func FindBinaries() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("postgres"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL server binaries (initdb, postgres) not found on PATH or under /usr/lib/postgresql/*/bin; " +
		"install them with: sudo apt-get install -y postgresql (Debian/Ubuntu)")
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Start initialises the data folder if it holds no cluster, starts the server
// and waits until it accepts connections. The server is a child of this
// process and dies with it; call Stop for a clean shutdown.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	logf := opts.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, bin: bin, done: make(chan struct{})}
	if os.Geteuid() == 0 {
		if c.cred, err = unprivileged(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data folder: %w", err)
	}
	if c.cred != nil {
		if err := chownTree(dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		logf("initialising PostgreSQL cluster in %s", dir)
		out, err := c.command(ctx, "initdb", "-D", dir, "-U", SuperUser, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-instructions").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("initdb: %w: %s", err, strings.TrimSpace(string(out)))
		}
	}
	if pid := runningPID(dir); pid > 0 {
		return nil, fmt.Errorf("a PostgreSQL server (pid %d) is already running on %s; stop it first (kill -INT %d)", pid, dir, pid)
	}

	c.port = opts.Port
	if c.port == 0 {
		if c.port, err = freePort(); err != nil {
			return nil, err
		}
	}
	args := []string{"-D", dir, "-p", strconv.Itoa(c.port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300", "-c", "shared_buffers=64MB"}
	if opts.Fast {
		args = append(args, "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off")
	}
	for _, kv := range opts.Settings {
		args = append(args, "-c", kv)
	}
	logPath := filepath.Join(dir, "server.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open server log: %w", err)
	}
	if c.cred != nil {
		_ = os.Chown(logPath, int(c.cred.Uid), int(c.cred.Gid))
	}
	// Not exec.CommandContext: the server must outlive ctx until Stop.
	c.cmd = c.command(context.Background(), "postgres", args...)
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	// Its own process group keeps a terminal's Ctrl-C away from the server,
	// so we stop it after the code using it; the death signal stops it if
	// this process dies first.
	c.cmd.SysProcAttr.Setpgid = true
	c.cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	if err := c.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	go func() {
		c.err = c.cmd.Wait()
		logFile.Close()
		close(c.done)
	}()
	logf("starting PostgreSQL on 127.0.0.1:%d", c.port)
	if err := c.waitReady(ctx, 60*time.Second); err != nil {
		c.Stop()
		return nil, fmt.Errorf("%w (server log: %s)", err, logPath)
	}
	return c, nil
}

func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd
}

func (c *Cluster) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-c.done:
			return fmt.Errorf("postgres exited during start-up: %v", c.err)
		case <-ctx.Done():
			return fmt.Errorf("postgres did not accept connections within %s: %v", limit, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// URL returns a connection URL for database db as the superuser.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", SuperUser, c.port, db)
}

// Port returns the TCP port the server listens on.
func (c *Cluster) Port() int { return c.port }

// PID is the server's (the postmaster's) process id.
func (c *Cluster) PID() int { return c.cmd.Process.Pid }

// DataDir returns the cluster's data folder.
func (c *Cluster) DataDir() string { return c.dir }

// Stop shuts the server down cleanly ("fast" shutdown: open sessions are
// ended, everything committed is kept) and waits for it to exit.
func (c *Cluster) Stop() error { return c.stop(syscall.SIGINT) }

// Crash kills the server the way a power cut would ("immediate" shutdown):
// no checkpoint, crash recovery on the next start. Tests use it to prove
// nothing committed is lost and nothing uncommitted is acted upon.
func (c *Cluster) Crash() error { return c.stop(syscall.SIGQUIT) }

func (c *Cluster) stop(sig syscall.Signal) error {
	c.stopOnce.Do(func() {
		_ = c.cmd.Process.Signal(sig)
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	})
	return nil
}

// Restart starts the server again on the same data folder and port after
// Stop or Crash.
func (c *Cluster) Restart(ctx context.Context, opts Options) (*Cluster, error) {
	<-c.done
	opts.DataDir, opts.Port = c.dir, c.port
	return Start(ctx, opts)
}

// Done is closed when the server process has exited.
func (c *Cluster) Done() <-chan struct{} { return c.done }

func unprivileged() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, errors.New(`PostgreSQL refuses to run as root and there is no "postgres" system user; ` +
			"install Debian's postgresql package (apt-get install -y postgresql) or run as an unprivileged user")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

func chownTree(dir string, uid, gid int) error {
	// The parent folders must be reachable by the unprivileged user.
	for p := filepath.Dir(dir); p != "/" && p != "."; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(p, fi.Mode().Perm()|0o011); err != nil {
				return fmt.Errorf("make %s reachable for the postgres user: %w", p, err)
			}
		}
	}
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// runningPID returns the pid of a live server owning dir, or 0. A pid file
// left by a crash is ignored: postgres removes stale ones itself.
func runningPID(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return 0
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0
	}
	// A recycled pid may belong to another program; only a postgres counts.
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err == nil && !strings.HasPrefix(strings.TrimSpace(string(comm)), "postgres") {
		return 0
	}
	return pid
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
