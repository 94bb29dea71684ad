package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a child process: the simulator or one `ordertune serve`.
type proc struct {
	name string
	cmd  *exec.Cmd
	url  string
	log  *os.File
}

// start runs bin with args and env, logging to dir/name.log, and waits
// until GET url+ready answers 200.
func start(name, dir, bin string, args, env []string, url, ready string) (*proc, error) {
	lf, err := os.OpenFile(dir+"/"+name+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, url: url, log: lf}
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(url + ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
	}
	p.stop()
	return nil, fmt.Errorf("%s not ready within 60 s (see %s/%s.log)", name, dir, name)
}

// stop ends the process with SIGTERM (SIGKILL after 30 s) and waits.
func (p *proc) stop() {
	if p == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
	p.log.Close()
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// clockTick is the unit of /proc/<pid>/stat's times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// statFields returns the fields of /proc/<pid>/stat after the command.
func statFields(pid int) []string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	return strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
}

// cpuOf returns the CPU time pid used (all threads, user and system),
// with children it has waited for when reaped is true.
func cpuOf(pid int, reaped bool) time.Duration {
	f := statFields(pid)
	if len(f) < 15 {
		return 0
	}
	// After the command: state ppid ... utime(12) stime(13) cutime(14) cstime(15), 1-based from state.
	n := 0
	idx := []int{11, 12}
	if reaped {
		idx = append(idx, 13, 14)
	}
	for _, i := range idx {
		v, _ := strconv.Atoi(f[i])
		n += v
	}
	return time.Duration(n) * clockTick
}

// pgCPU is the CPU time of the PostgreSQL server: the postmaster, every
// process it runs, and those that ended.
func pgCPU(postmaster int) time.Duration {
	t := cpuOf(postmaster, true)
	for _, p := range pgProcs(postmaster) {
		t += p.cpu
	}
	return t
}

// pgProc is one PostgreSQL process's CPU time and what it is: a client
// backend (by its database user), autovacuum, the WAL writer, …
type pgProc struct {
	kind string
	cpu  time.Duration
}

// pgProcs reads every process the postmaster runs, by pid.
func pgProcs(postmaster int) map[int]pgProc {
	m := map[int]pgProc{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == postmaster {
			continue
		}
		if f := statFields(pid); len(f) > 1 && f[1] == strconv.Itoa(postmaster) {
			m[pid] = pgProc{kind: pgKind(pid), cpu: cpuOf(pid, false)}
		}
	}
	return m
}

// pgKind names a PostgreSQL process by its title ("postgres: storm_app
// storm 127.0.0.1(5432) idle", "postgres: autovacuum worker storm").
func pgKind(pid int) string {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	t := strings.TrimPrefix(strings.TrimSpace(strings.ReplaceAll(string(raw), "\x00", " ")), "postgres: ")
	for _, k := range []string{"autovacuum worker", "autovacuum launcher", "walwriter", "checkpointer", "background writer", "logical replication", "walsender", "parallel worker"} {
		if strings.HasPrefix(t, k) {
			return k
		}
	}
	if f := strings.Fields(t); len(f) > 0 {
		return "backends of " + f[0]
	}
	return "other"
}

// pgSplit says where PostgreSQL's CPU between two readings went, by kind
// of process; "ended" is what processes that exited meanwhile used.
func pgSplit(before, after map[int]pgProc, total time.Duration) string {
	by := map[string]time.Duration{}
	var sum time.Duration
	for pid, a := range after {
		d := a.cpu - before[pid].cpu
		by[a.kind] += d
		sum += d
	}
	if total > sum {
		by["ended"] += total - sum
	}
	kinds := make([]string, 0, len(by))
	for k := range by {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return by[kinds[i]] > by[kinds[j]] })
	var parts []string
	for _, k := range kinds {
		if by[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %.2f s", k, by[k].Seconds()))
		}
	}
	return strings.Join(parts, ", ")
}

// rssOf returns VmRSS and VmHWM (peak) of pid in MiB.
func rssOf(pid int) (rss, peak float64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		switch k {
		case "VmRSS":
			rss = kb / 1024
		case "VmHWM":
			peak = kb / 1024
		}
	}
	return rss, peak
}

// loadAvg returns /proc/loadavg's three load averages.
func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// metric sums the samples of a Prometheus metric (every label set whose
// labels contain match) from a server's /metrics.
func metric(ctx context.Context, base, name, match string) (float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		if match != "" && !strings.Contains(line, match) {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			sum += v
		}
	}
	return sum, sc.Err()
}

// simStats reads the simulator's counters.
type simStats struct {
	Requests        int64 `json:"requests"`
	Handshakes      int64 `json:"handshakes"`
	Tickles         int64 `json:"tickles"`
	TooManyRequests int64 `json:"too_many_requests"`
	PenaltyBox      int64 `json:"penalty_box"`
	SessionsExpired int64 `json:"sessions_expired"`
}

func (a simStats) sub(b simStats) simStats {
	return simStats{a.Requests - b.Requests, a.Handshakes - b.Handshakes, a.Tickles - b.Tickles,
		a.TooManyRequests - b.TooManyRequests, a.PenaltyBox - b.PenaltyBox, a.SessionsExpired - b.SessionsExpired}
}

func getJSON(ctx context.Context, url string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func readSimStats(ctx context.Context, sim string) simStats {
	var s simStats
	if err := getJSON(ctx, sim+"/sim/totals", &s); err != nil {
		fmt.Fprintln(os.Stderr, "storm: sim stats:", err)
	}
	return s
}

// simOrder is what GET /sim/orders says of an order.
type simOrder struct {
	COID       string    `json:"cOID"`
	ReceivedAt time.Time `json:"received_at"`
}

func simOrders(ctx context.Context, sim string) ([]simOrder, error) {
	var list []simOrder
	if err := getJSON(ctx, sim+"/sim/orders", &list); err != nil {
		return nil, err
	}
	return list, nil
}
