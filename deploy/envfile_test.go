package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ordertune/ordertune/internal/config"
)

// TestEnvExample checks deploy/ordertune.env.example, the systemd unit's
// environment: every variable, set or commented out, is one internal/config
// reads, and the ones set load (the secret files stand in by placeholders).
func TestEnvExample(t *testing.T) {
	b, err := os.ReadFile("ordertune.env.example")
	if err != nil {
		t.Fatal(err)
	}
	contract := configContract()
	dir := t.TempDir()
	env := map[string]string{}
	line := regexp.MustCompile(`^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$`)
	for _, l := range strings.Split(string(b), "\n") {
		m := line.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil {
			continue
		}
		if !contract[m[2]] {
			t.Errorf("%s is not read by internal/config", m[2])
		}
		if m[1] != "" {
			continue
		}
		v := m[3]
		if strings.HasSuffix(m[2], "_FILE") {
			v = filepath.Join(dir, filepath.Base(v))
			if err := os.WriteFile(v, []byte("placeholder"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		env[m[2]] = v
	}
	if len(env) == 0 {
		t.Fatal("no variables found")
	}
	if _, err := config.Load(func(n string) string { return env[n] }, false); err != nil {
		t.Error(err)
	}
}
