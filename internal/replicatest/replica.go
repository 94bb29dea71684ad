package replicatest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Replica is one `ordertune serve` process: Argv and Env start it (again
// after Stop or Kill), on Addr.
type Replica struct {
	Name string
	Addr string
	Argv []string
	Env  []string
	// LogDir receives the process's output, one file per start.
	LogDir string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

// Start starts the process and waits until /readyz answers 200.
func (r *Replica) Start(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	r.starts++
	logPath := filepath.Join(r.LogDir, fmt.Sprintf("%s-%d.log", r.Name, r.starts))
	r.mu.Unlock()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(r.Argv[0], r.Argv[1:]...)
	cmd.Env = append(os.Environ(), r.Env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", r.Name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(exited) }()
	r.mu.Lock()
	r.cmd, r.exited = cmd, exited
	r.mu.Unlock()
	WaitReady(t, "http://"+r.Addr+"/readyz", 60*time.Second, exited)
}

// Kill ends the process with SIGKILL, as a lost machine, and waits for it.
func (r *Replica) Kill() { r.signal(syscall.SIGKILL, 0) }

// Stop sends SIGTERM (a rolling restart's step) and waits up to grace for
// the process to finish what is in flight and exit; it reports whether it
// did.
func (r *Replica) Stop(grace time.Duration) bool { return r.signal(syscall.SIGTERM, grace) }

func (r *Replica) signal(sig syscall.Signal, grace time.Duration) bool {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.mu.Unlock()
	if cmd == nil {
		return true
	}
	_ = cmd.Process.Signal(sig)
	if sig == syscall.SIGKILL {
		<-exited
		return true
	}
	select {
	case <-exited:
		return true
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-exited
		return false
	}
}

// Cleanup kills the process if it still runs; tests register it with
// t.Cleanup.
func (r *Replica) Cleanup() { r.Kill() }
