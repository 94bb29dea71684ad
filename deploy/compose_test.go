// Package deploy holds no Go code; its tests check the deployment files
// against the program: docker-compose.yml as Docker Compose itself loads it
// (compose-go), deploy/k8s as the Kubernetes API's types, each container's
// command line run by the real binary and each environment loaded by
// internal/config. No Docker engine or cluster runs here.
package deploy

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	corev1 "k8s.io/api/core/v1"

	"github.com/ordertune/ordertune/internal/seal"
)

// trialFiles are the files the compose trial is made of.
type trialFiles struct {
	compose, nginx, script, roles []byte
	readme                        string
}

func readTrial(t *testing.T) trialFiles {
	t.Helper()
	root := repoRoot(t)
	read := func(p string) []byte {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return trialFiles{
		compose: read("docker-compose.yml"),
		nginx:   read("deploy/nginx-compose.conf"),
		script:  read("deploy/compose-secrets.sh"),
		roles:   read("deploy/postgres-roles.sh"),
		readme:  string(read("deploy/README.md")),
	}
}

// loadCompose loads the file as `docker compose` does, every profile on and
// no variable set (so ${NAME:-default} gives the default).
func loadCompose(t testing.TB, content []byte) (*types.Project, error) {
	root := repoRoot(t)
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yml"), Content: content}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("ordertune", true); o.Profiles = []string{"*"} })
}

// secretsRun is one run of deploy/compose-secrets.sh on copies of
// deploy/secrets/*.example.
type secretsRun struct {
	in, out          string
	ordertune, pgUID int // the owners it was told to give the files
	output           string
	err              error
}

// runSecrets runs the script with sh, as the compose service does. As
// root (developers, CI) the files go to the real uids; otherwise to the
// caller's own, so the ownership checks still mean something.
func runSecrets(t testing.TB, script []byte, in string) secretsRun {
	t.Helper()
	dir := tempDir(t)
	r := secretsRun{in: in, out: filepath.Join(dir, "out"), ordertune: imageUID, pgUID: 999}
	if os.Geteuid() != 0 {
		r.ordertune, r.pgUID = os.Geteuid(), os.Geteuid()
	}
	path := filepath.Join(dir, "compose-secrets.sh")
	if err := os.WriteFile(path, script, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(r.out, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := execShell(ctx, path)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "IN=" + in, "OUT=" + r.out,
		"ORDERTUNE_UID=" + strconv.Itoa(r.ordertune), "POSTGRES_UID=" + strconv.Itoa(r.pgUID)}
	out, err := cmd.CombinedOutput()
	r.output, r.err = string(out), err
	return r
}

// trialSecrets is runSecrets on the examples, once per script text: the
// script starts some thirty processes, and the mutation tests check the
// same script many times. Its directories live until TestMain's end.
func trialSecrets(t testing.TB, script []byte) secretsRun {
	trialMu.Lock()
	defer trialMu.Unlock()
	if r, ok := trialRuns[string(script)]; ok {
		return r
	}
	r := runSecrets(t, script, exampleSecrets(t))
	trialRuns[string(script)] = r
	return r
}

var (
	trialMu   sync.Mutex
	trialRuns = map[string]secretsRun{}
)

// exampleSecrets copies deploy/secrets/*.example to a directory under the
// names without .example, as the trial's first step does.
func exampleSecrets(t testing.TB) string {
	t.Helper()
	src := filepath.Join(repoRoot(t), "deploy", "secrets")
	examples, err := filepath.Glob(filepath.Join(src, "*.example"))
	if err != nil || len(examples) == 0 {
		t.Fatalf("no deploy/secrets/*.example: %v", err)
	}
	in := tempDir(t)
	for _, ex := range examples {
		b, err := os.ReadFile(ex)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(in, strings.TrimSuffix(filepath.Base(ex), ".example")), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return in
}

// volumeMount is where service s mounts the named volume, or "".
func volumeMount(s types.ServiceConfig, volume string) string {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Source == volume {
			return v.Target
		}
	}
	return ""
}

// bindMount is the bind mount of host path src (relative to the
// repository) in service s.
func bindMount(t testing.TB, s types.ServiceConfig, src string) (types.ServiceVolumeConfig, bool) {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Source == filepath.Join(repoRoot(t), src) {
			return v, true
		}
	}
	return types.ServiceVolumeConfig{}, false
}

// checkCompose checks docker-compose.yml as a working trial with N
// replicas; see deploy/README.md, "Compose trial".
func checkCompose(t testing.TB, f trialFiles) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	p, err := loadCompose(t, f.compose)
	if err != nil {
		return []string{"docker-compose.yml does not load: " + err.Error()}
	}
	svc := map[string]types.ServiceConfig{}
	for _, name := range []string{"secrets", "postgres", "migrate", "ordertune", "nginx", "admin", "sim"} {
		s, err := p.GetService(name)
		if err != nil {
			bad("service %s: %v", name, err)
			continue
		}
		svc[name] = s
	}
	if len(problems) > 0 {
		return problems
	}
	img := readImage(t)

	// The secrets: copied by a root one-shot into a volume, each file owned
	// by the user of the service that reads it.
	sec := svc["secrets"]
	if u, _, _ := strings.Cut(sec.User, ":"); u != "0" && u != "root" {
		bad("secrets: must run as root (user %q) to give the files their owners", sec.User)
	}
	if m, ok := bindMount(t, sec, "deploy/compose-secrets.sh"); !ok || !slices.Equal(sec.Entrypoint, []string{"/bin/sh", m.Target}) {
		bad("secrets: must run deploy/compose-secrets.sh (entrypoint %q)", sec.Entrypoint)
	}
	if m, ok := bindMount(t, sec, "deploy/secrets"); !ok || m.Target != "/in" || m.ReadOnly {
		bad("secrets: must mount deploy/secrets at /in, writable (the master key is generated there)")
	}
	if volumeMount(sec, "trial-secrets") != "/out" {
		bad("secrets: must mount the volume trial-secrets at /out")
	}
	run := trialSecrets(t, f.script)
	if run.err != nil {
		return append(problems, fmt.Sprintf("deploy/compose-secrets.sh on the examples: %v\n%s", run.err, run.output))
	}
	// hostPath maps a path in service s's volume trial-secrets to the
	// script's output, checking the file is there and only owner's.
	hostPath := func(s types.ServiceConfig, path string, owner int) string {
		mount := volumeMount(s, "trial-secrets")
		rel, ok := strings.CutPrefix(path, mount+"/")
		if mount == "" || !ok {
			bad("%s: %s is not in the volume trial-secrets", s.Name, path)
			return path
		}
		host := filepath.Join(run.out, rel)
		if uid, mode, err := fileOwner(host); err != nil || uid != owner || mode != 0o400 {
			bad("%s: %s: the script makes it uid %d mode %o (%v), want uid %d mode 400: readable by the service's user", s.Name, path, uid, mode, err, owner)
		}
		if d := s.DependsOn["secrets"]; d.Condition != types.ServiceConditionCompletedSuccessfully {
			bad("%s: reads trial-secrets, so it must depend on secrets with condition service_completed_successfully", s.Name)
		}
		return host
	}

	// Every service of the Ordertune image: the image's non-root user, a
	// command line the binary understands, the configuration contract.
	for _, name := range []string{"migrate", "ordertune", "admin", "sim"} {
		s := svc[name]
		if s.Image != svc["ordertune"].Image || s.Build == nil || s.Build.Dockerfile != "deploy/Dockerfile" {
			bad("%s: want the image built from deploy/Dockerfile, as ordertune's", name)
		}
		if u, _, _ := strings.Cut(s.User, ":"); u != "" && u != strconv.Itoa(imageUID) && u != "nonroot" {
			bad("%s: user %q; the image's nonroot user (uid %d) is the one the secrets are made for", name, s.User, imageUID)
		}
		args, err := img.argv(s.Entrypoint, s.Command)
		if err != nil {
			bad("%s: %v", name, err)
			continue
		}
		local := slices.Clone(args)
		for i, a := range local {
			switch {
			case strings.HasPrefix(a, "/run/"):
				local[i] = hostPath(s, a, run.ordertune)
			case i > 0 && local[i-1] == "--addr":
				local[i] = "127.0.0.1:0" // serve on loopback, any port, for the check
			}
		}
		if err := checkArgv(t, local); err != nil {
			bad("%s: %v", name, err)
		}
		env := map[string]string{}
		var list []corev1.EnvVar
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range s.Environment {
				if !yield(k) {
					return
				}
			}
		}) {
			v := ""
			if s.Environment[k] != nil {
				v = *s.Environment[k]
			}
			if strings.HasSuffix(k, "_FILE") {
				v = hostPath(s, v, run.ordertune)
			}
			env[k] = v
			list = append(list, corev1.EnvVar{Name: k, Value: v})
		}
		problems = append(problems, checkEnv(name, list)...)
		for _, secret := range []string{"DATABASE_URL", "ORDERTUNE_MIGRATE_DATABASE_URL", "ORDERTUNE_MASTER_KEYS"} {
			if _, ok := env[secret]; ok {
				bad("%s: %s must come from a file (%s_FILE), not the compose file", name, secret, secret)
			}
		}
		cfg, err := loadConfig(env)
		if err != nil {
			bad("%s: %v", name, err)
			continue
		}
		if name == "ordertune" {
			problems = append(problems, checkReplicas(t, s, svc, cfg, f, run)...)
		}
	}
	if m := svc["migrate"]; !slices.Equal(m.Command, []string{"migrate", "up"}) {
		bad("migrate: must run `ordertune migrate up`, runs %q", m.Command)
	}
	if d := svc["ordertune"].DependsOn["migrate"]; d.Condition != types.ServiceConditionCompletedSuccessfully {
		bad("ordertune: must wait for migrate to complete successfully (a replica refuses an out-of-date schema)")
	}

	// The first admin: a one-shot, run when asked, with a password file.
	adm := svc["admin"]
	if !slices.Contains(adm.Command, "--password-file") || !slices.Contains(adm.Command, "admin") || len(adm.Profiles) == 0 {
		bad("admin: want `user create … --role admin --password-file FILE` in a profile (run once: docker compose run --rm admin)")
	}
	if !strings.Contains(f.readme, "docker compose run --rm admin") {
		bad("deploy/README.md must say how to create the first admin: docker compose run --rm admin")
	}

	// PostgreSQL reads its own two files, and the URLs agree with them.
	pg := svc["postgres"]
	pgFile := func(name string) string {
		v := pg.Environment[name]
		if v == nil {
			bad("postgres: %s is not set", name)
			return ""
		}
		b, _ := os.ReadFile(hostPath(pg, *v, run.pgUID))
		return strings.TrimSpace(string(b))
	}
	pgPassword, serverPassword := pgFile("POSTGRES_PASSWORD_FILE"), pgFile("SERVER_DB_PASSWORD_FILE")
	if !strings.Contains(string(f.roles), "SERVER_DB_PASSWORD_FILE") {
		bad("deploy/postgres-roles.sh does not read SERVER_DB_PASSWORD_FILE")
	}
	role := regexp.MustCompile(`CREATE ROLE (\w+) LOGIN`).FindSubmatch(f.roles)
	for _, u := range []struct{ file, user, password string }{
		{"database_url", "", serverPassword},
		{"migrate_database_url", valueOf(pg.Environment["POSTGRES_USER"]), pgPassword},
	} {
		if u.user == "" && role != nil {
			u.user = string(role[1])
		}
		b, _ := os.ReadFile(filepath.Join(run.out, "ordertune", u.file))
		pu, err := url.Parse(strings.TrimSpace(string(b)))
		if err != nil {
			bad("deploy/secrets/%s.example: %v", u.file, err)
			continue
		}
		pw, _ := pu.User.Password()
		if pu.User.Username() != u.user || pw != u.password || pu.Hostname() != "postgres" || strings.TrimPrefix(pu.Path, "/") != valueOf(pg.Environment["POSTGRES_DB"]) {
			bad("deploy/secrets/%s.example: want user %s with the password of its PostgreSQL file, at postgres/%s", u.file, u.user, valueOf(pg.Environment["POSTGRES_DB"]))
		}
	}

	// The simulator, reachable from the replicas and from the host.
	sim := svc["sim"]
	i := slices.Index(sim.Command, "--addr")
	if i < 0 || i+1 >= len(sim.Command) {
		return append(problems, "sim: give --addr")
	}
	host, port, _ := net.SplitHostPort(sim.Command[i+1])
	if host != "0.0.0.0" {
		bad("sim: --addr %s: Docker's port mapping reaches the container's own address, not its loopback; listen on 0.0.0.0", sim.Command[i+1])
	}
	published := ""
	for _, pc := range sim.Ports {
		if strconv.Itoa(int(pc.Target)) == port && pc.HostIP == "127.0.0.1" {
			published = pc.Published
		}
	}
	if published == "" {
		bad("sim: publish port %s on the host's 127.0.0.1, to register consumers from the host", port)
	}
	if want := "sim register --sim http://127.0.0.1:" + published; !strings.Contains(f.readme, want) {
		bad("deploy/README.md must show how to register a consumer from the host: %s", want)
	}
	if got := valueOf(svc["ordertune"].Environment["ORDERTUNE_IBKR_BASE_URL"]); got != "http://sim:"+port+"/v1/api" {
		bad("ordertune: ORDERTUNE_IBKR_BASE_URL=%s, want the simulator at http://sim:%s/v1/api", got, port)
	}
	return problems
}

// checkReplicas checks the scaled service and the nginx in front of it.
func checkReplicas(t testing.TB, s types.ServiceConfig, svc map[string]types.ServiceConfig, cfg configSubset, f trialFiles, run secretsRun) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if s.ContainerName != "" {
		bad("ordertune: container_name %q: `--scale ordertune=3` needs a name per container", s.ContainerName)
	}
	if len(s.Ports) > 0 {
		bad("ordertune: publishes a host port; with --scale the replicas would fight over it (nginx is the way in)")
	}
	if _, ok := s.Environment["ORDERTUNE_INTERNAL_URL"]; ok {
		bad("ordertune: ORDERTUNE_INTERNAL_URL is the same for every replica; leave it unset (each uses its own address)")
	}
	host, addrPort, _ := net.SplitHostPort(cfg.addr)
	if host != "0.0.0.0" && host != "" && host != "::" {
		bad("ordertune: ORDERTUNE_ADDR=%s: nginx and the other replicas reach the container's address; listen on 0.0.0.0", cfg.addr)
	}
	need := cfg.shutdown + leaseReleaseTimeout + time.Second
	if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) < need {
		bad("ordertune: stop_grace_period must cover ORDERTUNE_SHUTDOWN_TIMEOUT (%s) and the lease release (%s): at least %s", cfg.shutdown, leaseReleaseTimeout, need)
	}
	keys, err := os.ReadFile(filepath.Join(run.out, "ordertune", "master_keys"))
	if _, perr := seal.ParseRing(strings.TrimSpace(string(keys))); err != nil || perr != nil {
		bad("the master key the trial generates does not open: %v %v", err, perr)
	}

	ng := svc["nginx"]
	if m, ok := bindMount(t, ng, "deploy/nginx-compose.conf"); !ok || m.Target != "/etc/nginx/conf.d/default.conf" {
		bad("nginx: mount deploy/nginx-compose.conf as /etc/nginx/conf.d/default.conf")
	}
	if v := regexp.MustCompile(`^nginx:(\d+)\.(\d+)`).FindStringSubmatch(ng.Image); v == nil || atoi(v[1])*1000+atoi(v[2]) < 1027 {
		bad("nginx: image %q: want nginx 1.27.3 or newer, pinned (upstream servers with resolve)", ng.Image)
	}
	conf := string(f.nginx)
	srv := regexp.MustCompile(`(?m)^\s*server\s+(\S+?):(\d+)\s[^;]*\bresolve\b`).FindStringSubmatch(conf)
	if srv == nil || srv[1] != s.Name || srv[2] != addrPort {
		bad("nginx-compose.conf: want `server %s:%s resolve …` in the upstream, so every replica is found and found again", s.Name, addrPort)
	}
	if !regexp.MustCompile(`(?m)^\s*resolver\s+127\.0\.0\.11\b`).MatchString(conf) || !regexp.MustCompile(`(?m)^\s*zone\s`).MatchString(conf) {
		bad("nginx-compose.conf: `resolve` needs `resolver 127.0.0.11` (Docker's DNS) and a `zone` in the upstream")
	}
	listen := regexp.MustCompile(`(?m)^\s*listen\s+(\d+)`).FindStringSubmatch(conf)
	public, _ := url.Parse(cfg.publicURL)
	found := false
	for _, pc := range ng.Ports {
		if listen != nil && strconv.Itoa(int(pc.Target)) == listen[1] && pc.Published == public.Port() {
			found = true
		}
	}
	if !found {
		bad("nginx: publish its listen port on the host as ORDERTUNE_PUBLIC_URL's port (%s)", cfg.publicURL)
	}
	return problems
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func valueOf(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// TestComposeTrial checks docker-compose.yml and the files it uses.
func TestComposeTrial(t *testing.T) {
	for _, p := range checkCompose(t, readTrial(t)) {
		t.Error(p)
	}
}
