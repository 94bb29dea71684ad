package deploy

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// k8sDir holds the Kubernetes manifests, one object per file.
const k8sDir = "k8s"

// The database connections a replica holds besides its order locks
// (deploy/README.md): the pool's default on a 2-CPU node and the lease
// pools'; and what PostgreSQL's default max_connections (100) leaves
// after its 3 reserved for superusers.
const (
	poolOn2CPUs  = 8
	leaseConns   = 5
	pgConnBudget = 97
)

// k8sSet is deploy/k8s parsed into the Kubernetes API's own types.
type k8sSet struct {
	deployments []*appsv1.Deployment
	jobs        []*batchv1.Job
	services    []*corev1.Service
	pdbs        []*policyv1.PodDisruptionBudget
	secrets     []*corev1.Secret
	accounts    []*corev1.ServiceAccount
	configMaps  []*corev1.ConfigMap
	ingresses   []*networkingv1.Ingress
	policies    []*networkingv1.NetworkPolicy
}

// parseK8s parses every file strictly: a field the API does not have, a
// duplicate key or a kind this test does not know is a problem.
func parseK8s(files map[string][]byte) (*k8sSet, []string) {
	set := &k8sSet{}
	var problems []string
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range files {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range names {
		data := files[name]
		if regexp.MustCompile(`(?m)^---`).Match(data) {
			problems = append(problems, name+": one object per file, please (no ---)")
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(data, &tm); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 Deployment":
			o := &appsv1.Deployment{}
			set.deployments, obj = append(set.deployments, o), o
		case "batch/v1 Job":
			o := &batchv1.Job{}
			set.jobs, obj = append(set.jobs, o), o
		case "v1 Service":
			o := &corev1.Service{}
			set.services, obj = append(set.services, o), o
		case "policy/v1 PodDisruptionBudget":
			o := &policyv1.PodDisruptionBudget{}
			set.pdbs, obj = append(set.pdbs, o), o
		case "v1 Secret":
			o := &corev1.Secret{}
			set.secrets, obj = append(set.secrets, o), o
		case "v1 ServiceAccount":
			o := &corev1.ServiceAccount{}
			set.accounts, obj = append(set.accounts, o), o
		case "v1 ConfigMap":
			o := &corev1.ConfigMap{}
			set.configMaps, obj = append(set.configMaps, o), o
		case "networking.k8s.io/v1 Ingress":
			o := &networkingv1.Ingress{}
			set.ingresses, obj = append(set.ingresses, o), o
		case "networking.k8s.io/v1 NetworkPolicy":
			o := &networkingv1.NetworkPolicy{}
			set.policies, obj = append(set.policies, o), o
		default:
			problems = append(problems, fmt.Sprintf("%s: apiVersion %q kind %q: not a kind this test checks", name, tm.APIVersion, tm.Kind))
			continue
		}
		if err := yaml.UnmarshalStrict(data, obj); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", name, err))
		}
	}
	return set, problems
}

// documentedSecrets reads the `kubectl create secret generic NAME
// --from-file=KEY=…` commands of deploy/README.md's Kubernetes section:
// secret name → keys.
func documentedSecrets(readme string) map[string][]string {
	_, sec, _ := strings.Cut(readme, "\n## Kubernetes\n")
	sec, _, _ = strings.Cut(sec, "\n## ")
	sec = strings.ReplaceAll(sec, "\\\n", " ")
	out := map[string][]string{}
	for _, m := range regexp.MustCompile(`kubectl(?: -n \S+)? create secret generic (\S+)([^\n]*)`).FindAllStringSubmatch(sec, -1) {
		for _, k := range regexp.MustCompile(`--from-(?:file|literal)=([A-Za-z0-9._-]+)=`).FindAllStringSubmatch(m[2], -1) {
			out[m[1]] = append(out[m[1]], k[1])
		}
	}
	return out
}

// checkK8s checks the invariants of the manifest set; readme is
// deploy/README.md.
func checkK8s(t testing.TB, files map[string][]byte, readme string) []string {
	set, problems := parseK8s(files)
	if len(problems) > 0 {
		return problems
	}
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	// Secrets: each one referenced is a Secret here (placeholders only) or
	// created by a documented command, with the key used.
	secretKeys := documentedSecrets(readme)
	for _, s := range set.secrets {
		for k, v := range s.StringData {
			if !strings.Contains(v, "change-me") {
				bad("Secret %s: key %s holds a value; keep only change-me placeholders in the repository", s.Name, k)
			}
			secretKeys[s.Name] = append(secretKeys[s.Name], k)
		}
		if len(s.Data) > 0 {
			bad("Secret %s: data in the repository; document `kubectl create secret` instead", s.Name)
		}
	}
	accounts := map[string]bool{"": true, "default": true}
	for _, a := range set.accounts {
		accounts[a.Name] = true
	}

	if len(set.deployments) != 1 || len(set.jobs) != 1 {
		return append(problems, fmt.Sprintf("want one Deployment (the server) and one Job (the migration), have %d and %d", len(set.deployments), len(set.jobs)))
	}
	dep, job := set.deployments[0], set.jobs[0]
	img := readImage(t)
	routes := probeRoutes(t)

	// The server.
	where := "Deployment " + dep.Name
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas < 2 {
		bad("%s: replicas must be at least 2 (one replica is one point of failure)", where)
	}
	sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
	podLabels := labels.Set(dep.Spec.Template.Labels)
	if err != nil || sel.Empty() || !sel.Matches(podLabels) {
		bad("%s: its selector does not select its own pods", where)
	}
	ps := dep.Spec.Template.Spec
	problems = append(problems, checkPod(t, where, ps, img, secretKeys, accounts)...)
	srv := container(ps, "ordertune")
	if srv == nil {
		return append(problems, where+": no container named ordertune")
	}
	if args, err := img.argv(srv.Command, srv.Args); err != nil || len(args) == 0 || args[0] != "serve" {
		bad("%s: the container must run `ordertune serve` (%v %v)", where, args, err)
	}
	env := envMap(srv.Env)
	for _, n := range []string{"ORDERTUNE_MIGRATE_DATABASE_URL", "ORDERTUNE_MIGRATE_DATABASE_URL_FILE"} {
		if _, ok := env[n]; ok {
			bad("%s: %s gives the server the schema owner's rights; only the migration Job has it", where, n)
		}
	}
	cfg, err := containerConfig(t, ps, srv)
	if err != nil {
		bad("%s: %v", where, err)
	}
	_, addrPort, _ := net.SplitHostPort(cfg.Addr)
	if host, _, _ := net.SplitHostPort(cfg.Addr); host != "" && host != "0.0.0.0" && host != "::" {
		bad("%s: ORDERTUNE_ADDR=%s: the kubelet and the other replicas reach the pod on its IP; listen on 0.0.0.0", where, cfg.Addr)
	}
	if !containerPortMatches(srv, intstr.FromString("http"), addrPort) {
		bad("%s: the port named http is not ORDERTUNE_ADDR's %s", where, addrPort)
	}
	// Forwarding reaches the owner at its pod IP, from the downward API.
	if v := env["POD_IP"]; v.ValueFrom == nil || v.ValueFrom.FieldRef == nil || v.ValueFrom.FieldRef.FieldPath != "status.podIP" {
		bad("%s: POD_IP must come from the downward API (fieldRef status.podIP)", where)
	}
	if u, err := url.Parse(cfg.InternalURL); err != nil || u.Hostname() != testPodIP || u.Port() != addrPort {
		bad("%s: ORDERTUNE_INTERNAL_URL=%q: want http://$(POD_IP):%s, the pod's own address", where, env["ORDERTUNE_INTERNAL_URL"].Value, addrPort)
	}
	for _, p := range []struct {
		kind, op string
		probe    *corev1.Probe
	}{{"readiness", "readyz", srv.ReadinessProbe}, {"liveness", "healthz", srv.LivenessProbe}, {"startup", "healthz", srv.StartupProbe}} {
		if p.kind == "startup" && p.probe == nil {
			continue // optional; on /readyz it would restart pods waiting for the migration
		}
		if p.probe == nil || p.probe.HTTPGet == nil {
			bad("%s: no HTTP %s probe", where, p.kind)
			continue
		}
		if want := routes[p.op]; want == "" || p.probe.HTTPGet.Path != want {
			bad("%s: %s probe on %q, want the server's %s route %q", where, p.kind, p.probe.HTTPGet.Path, p.op, want)
		}
		if !containerPortMatches(srv, p.probe.HTTPGet.Port, addrPort) {
			bad("%s: the %s probe's port %s is not ORDERTUNE_ADDR's %s", where, p.kind, p.probe.HTTPGet.Port.String(), addrPort)
		}
	}
	// The SIGTERM hand-over must finish before the SIGKILL.
	var pause time.Duration
	if srv.Lifecycle != nil && srv.Lifecycle.PreStop != nil && srv.Lifecycle.PreStop.Sleep != nil {
		pause = time.Duration(srv.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	need := pause + cfg.ShutdownPeriod + leaseReleaseTimeout + time.Second
	if ps.TerminationGracePeriodSeconds == nil || time.Duration(*ps.TerminationGracePeriodSeconds)*time.Second < need {
		bad("%s: terminationGracePeriodSeconds must cover the preStop pause (%s), ORDERTUNE_SHUTDOWN_TIMEOUT (%s) and the lease release (%s), plus a second: at least %s",
			where, pause, cfg.ShutdownPeriod, leaseReleaseTimeout, need)
	}
	if s := dep.Spec.Strategy.RollingUpdate; dep.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || s == nil || s.MaxUnavailable == nil || s.MaxUnavailable.IntValue() != 0 {
		bad("%s: a rolling update must keep every replica until its successor is ready (maxUnavailable: 0)", where)
	}

	// The disruption budget and the Service select exactly these pods.
	replicas := 1
	if dep.Spec.Replicas != nil {
		replicas = int(*dep.Spec.Replicas)
	}
	// Every pod of a rolling update holds its connections at once.
	pods := replicas
	if s := dep.Spec.Strategy.RollingUpdate; s != nil && s.MaxSurge != nil {
		surge, _ := intstr.GetScaledValueFromIntOrPercent(s.MaxSurge, replicas, true)
		pods += surge
	}
	if per := poolOn2CPUs + cfg.OrderLockConns + leaseConns; pods*per > pgConnBudget {
		bad("%s: %d pods during a rolling update × (pool %d + ORDERTUNE_ORDER_LOCK_CONNS %d + leases %d) = %d connections, above the %d PostgreSQL's default max_connections leaves; lower ORDERTUNE_ORDER_LOCK_CONNS",
			where, pods, poolOn2CPUs, cfg.OrderLockConns, leaseConns, pods*per, pgConnBudget)
	}
	if len(set.pdbs) == 0 {
		bad("no PodDisruptionBudget for the server")
	}
	for _, pdb := range set.pdbs {
		s, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || s.Empty() || !s.Matches(podLabels) {
			bad("PodDisruptionBudget %s: does not select the server's pods", pdb.Name)
		}
		down := 0
		switch {
		case pdb.Spec.MaxUnavailable != nil:
			down, _ = intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, replicas, false)
		case pdb.Spec.MinAvailable != nil:
			up, _ := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, replicas, true)
			down = replicas - up
		}
		if down < 1 || down > replicas-1 {
			bad("PodDisruptionBudget %s: allows %d of %d replicas down at once; want at least one disruption (drains must progress) and at least one replica left", pdb.Name, down, replicas)
		}
	}
	if len(set.services) == 0 {
		bad("no Service for the server")
	}
	for _, svc := range set.services {
		if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
			bad("Service %s: does not select the server's pods", svc.Name)
		}
		for _, p := range svc.Spec.Ports {
			if !containerPortMatches(srv, p.TargetPort, addrPort) {
				bad("Service %s: targetPort %s is not the server's port %s", svc.Name, p.TargetPort.String(), addrPort)
			}
		}
	}

	// The migration.
	where = "Job " + job.Name
	jps := job.Spec.Template.Spec
	problems = append(problems, checkPod(t, where, jps, img, secretKeys, accounts)...)
	if jps.RestartPolicy != corev1.RestartPolicyNever && jps.RestartPolicy != corev1.RestartPolicyOnFailure {
		bad("%s: restartPolicy %q, want Never or OnFailure", where, jps.RestartPolicy)
	}
	if job.Spec.BackoffLimit == nil {
		bad("%s: set backoffLimit", where)
	}
	if len(jps.Containers) != 1 {
		return append(problems, where+": want one container")
	}
	mc := &jps.Containers[0]
	if args, err := img.argv(mc.Command, mc.Args); err != nil || !slices.Equal(args, []string{"migrate", "up"}) {
		bad("%s: the container must run `ordertune migrate up`, runs %v %v", where, args, err)
	}
	if mc.Image != srv.Image {
		bad("%s: image %s, the server's is %s: migrate with the binary that will serve", where, mc.Image, srv.Image)
	}
	if _, ok := envMap(mc.Env)["ORDERTUNE_MIGRATE_DATABASE_URL_FILE"]; !ok {
		bad("%s: migrates as the schema's owner: set ORDERTUNE_MIGRATE_DATABASE_URL_FILE", where)
	}
	if _, err := containerConfig(t, jps, mc); err != nil {
		bad("%s: %v", where, err)
	}
	return problems
}

// readK8s reads deploy/k8s and deploy/README.md.
func readK8s(t *testing.T) (map[string][]byte, string) {
	t.Helper()
	entries, err := os.ReadDir(k8sDir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(k8sDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	return files, string(readme)
}

// TestKubernetesManifests parses every file of deploy/k8s into the API's
// types and checks the set against the program.
func TestKubernetesManifests(t *testing.T) {
	files, readme := readK8s(t)
	if len(files) == 0 {
		t.Fatal("deploy/k8s is empty")
	}
	for _, p := range checkK8s(t, files, readme) {
		t.Error(p)
	}
}
