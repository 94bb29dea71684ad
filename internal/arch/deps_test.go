package arch

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/ordertune/ordertune/"

// rank orders the layers: a package may import packages of a lower rank
// only (and the edges in sideways).
var rank = map[string]int{
	"internal/errs": 0, "api": 0, "web": 0, "migrations": 0, "deploy": 0, // the vocabulary and embedded files
	"internal/rejection": 0, // IBKR's refusals of an order in the user's words: a leaf
	"internal/market":    0, // the exchange's clock: a leaf that config, trading and httpapi read
	"internal/ids":       0, // the UUIDs that name rows: made and checked in one place
	"internal/tick":      0, // a worker's periodic step: a leaf

	"internal/audit": 1, "internal/config": 1, "internal/ibkr": 1, "internal/ibkrsim": 1, "internal/logging": 1,
	"internal/metrics": 1, "internal/postgres": 1, "internal/postgres/localpg": 1, "internal/seal": 1,
	"internal/lease":            1, // one owner replica per tenant session (broker asks it)
	"internal/pagecursor":       1, // the lists' keyset cursor (trading, ledger)
	"internal/notify/mailcatch": 1, // an SMTP server keeping what it receives (tests, the demo)

	"internal/auth": 2, "internal/broker": 2, "internal/trading": 2, "internal/passthrough": 2, "internal/rewrap": 2,
	"internal/canary": 3, // the key ring check at start: uses rewrap's list of sealed columns
	"internal/notify": 2, // events queued in the caller's transaction, delivered by river
	"internal/risk":   2, // pre-trade risk: trading asks it (sideways), httpapi serves its settings
	"internal/ledger": 2, // executions, positions, P&L: reads through trading's Broker (sideways)

	"internal/httpapi": 3,
}

// sideways are the allowed imports between packages of one rank.
var sideways = map[[2]string]bool{
	{"internal/broker", "internal/trading"}:     true, // broker implements trading.Broker
	{"internal/trading", "internal/risk"}:       true, // trading asks risk "may this order go?"
	{"internal/passthrough", "internal/broker"}: true, // the pass-through runs on broker's sessions
	{"internal/ledger", "internal/trading"}:     true, // the ledger reads through trading.Broker and records fills through trading
}

// testSupport are packages for tests (and programs) only.
var testSupport = map[string]bool{
	"internal/clocktest": true, "internal/logging/logtest": true, "internal/postgres/pgtest": true,
	"internal/ibkrsim/simtest": true, "internal/trading/tradetest": true, "internal/arch": true,
	"internal/replicatest":   true,
	"internal/seal/sealtest": true,
}

// never are imports forbidden even indirectly (through any chain).
var never = [][2]string{
	{"internal/trading", "internal/ibkr"},
	{"internal/trading", "internal/httpapi"},
	{"internal/trading", "internal/broker"},
	{"internal/ibkr", "internal/broker"},
	{"internal/ibkr", "internal/ibkrsim"},
	{"internal/ibkrsim", "internal/ibkr"},
	{"internal/ledger", "internal/ibkr"},
	{"internal/ledger", "internal/broker"},
}

// readSources opens every Go file of the module, so that go test's cache
// counts them among what this test read: go list, a process of its own,
// is invisible to it, and an import added since the last run would
// otherwise be answered with that run's cached "ok".
func readSources(t *testing.T) {
	t.Helper()
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && path != "../.." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules"):
			return filepath.SkipDir
		case d.IsDir() || !strings.HasSuffix(path, ".go"):
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		return f.Close()
	})
	if err != nil {
		t.Fatalf("read the module's sources: %v", err)
	}
}

// goList runs go list in the module and returns, per package, the module's
// packages it names (with the module prefix cut).
func goList(t *testing.T, args ...string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	m := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], module) {
			continue
		}
		var own []string
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, module) {
				own = append(own, strings.TrimPrefix(imp, module))
			}
		}
		m[strings.TrimPrefix(f[0], module)] = own
	}
	return m
}

// violations checks the direct imports of production code against the
// layers, and returns one line per offending import.
func violations(imports map[string][]string) []string {
	var bad []string
	for pkg, imps := range imports {
		program := strings.HasPrefix(pkg, "cmd/") || strings.HasPrefix(pkg, "scripts/")
		r, ranked := rank[pkg]
		if !program && !ranked && !testSupport[pkg] {
			bad = append(bad, pkg+": a package the dependency rule does not know; give it a layer in internal/arch")
			continue
		}
		for _, imp := range imps {
			switch {
			case program, testSupport[pkg]:
				// Programs wire everything; test support builds worlds.
			case slices.Contains(never, [2]string{pkg, imp}):
				bad = append(bad, pkg+" imports "+imp+": forbidden by the design")
			case testSupport[imp]:
				bad = append(bad, pkg+" imports "+imp+": test support is for tests only")
			case rank[imp] >= r && !sideways[[2]string{pkg, imp}]:
				bad = append(bad, pkg+" imports "+imp+": the dependency rule is httpapi → features → adapters, never back or sideways")
			}
		}
	}
	slices.Sort(bad)
	return bad
}

func TestDependencyRule(t *testing.T) {
	readSources(t)
	for _, v := range violations(goList(t, "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...")) {
		t.Error(v)
	}
	for _, n := range never {
		deps := goList(t, "-deps", "-f", "{{.ImportPath}}", "./"+n[0])
		if _, ok := deps[n[1]]; ok {
			t.Errorf("%s imports %s (directly or through another package): forbidden by the design", n[0], n[1])
		}
	}
}

// TestViolationsNameTheImport proves the check can fail, and says which
// import broke the rule.
func TestViolationsNameTheImport(t *testing.T) {
	got := violations(map[string][]string{
		"internal/trading": {"internal/errs", "internal/ibkr", "internal/httpapi"},
		"internal/ibkr":    {"internal/broker"},
		"internal/broker":  {"internal/trading", "internal/trading/tradetest"},
		"internal/newpkg":  nil,
	})
	want := []string{
		"internal/broker imports internal/trading/tradetest: test support is for tests only",
		"internal/ibkr imports internal/broker: forbidden by the design",
		"internal/newpkg: a package the dependency rule does not know; give it a layer in internal/arch",
		"internal/trading imports internal/httpapi: forbidden by the design",
		"internal/trading imports internal/ibkr: forbidden by the design",
	}
	if !slices.Equal(got, want) {
		t.Errorf("violations =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
