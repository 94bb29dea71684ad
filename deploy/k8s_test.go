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

	"github.com/ordertune/ordertune/internal/config"
)

// k8sDir holds the Kubernetes manifests, one object per file.
const k8sDir = "k8s"

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
	}{{"readiness", "readyz", srv.ReadinessProbe}, {"liveness", "healthz", srv.LivenessProbe}} {
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

// checkPod checks what the server's and the migration's pods share: the
// image's non-root user, hardening, resources, the command line the binary
// understands, the configuration contract and the secrets.
func checkPod(t testing.TB, where string, ps corev1.PodSpec, img image, secretKeys map[string][]string, accounts map[string]bool) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(where+": "+format, args...)) }
	if !accounts[ps.ServiceAccountName] {
		bad("serviceAccountName %q is not defined here", ps.ServiceAccountName)
	}
	psc := ps.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		bad("set securityContext.runAsNonRoot")
	}
	if psc == nil || psc.FSGroup == nil || *psc.FSGroup != imageUID {
		bad("securityContext.fsGroup must be %d: secret files are root-owned, the group makes them readable", imageUID)
	}
	for _, c := range ps.Containers {
		uid := int64(-1)
		if psc != nil && psc.RunAsUser != nil {
			uid = *psc.RunAsUser
		}
		if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
			uid = *c.SecurityContext.RunAsUser
		}
		if uid != imageUID {
			bad("container %s runs as uid %d, want the image's nonroot %d", c.Name, uid, imageUID)
		}
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			bad("container %s: want allowPrivilegeEscalation false, readOnlyRootFilesystem true, capabilities drop ALL", c.Name)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			bad("container %s: want cpu and memory requests and a memory limit", c.Name)
		}
		args, err := img.argv(c.Command, c.Args)
		if err == nil {
			err = checkArgv(t, args)
		}
		if err != nil {
			bad("container %s: %v", c.Name, err)
		}
		problems = append(problems, checkEnv(where+": container "+c.Name, c.Env)...)
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				r := e.ValueFrom.SecretKeyRef
				if !slices.Contains(secretKeys[r.Name], r.Key) {
					bad("env %s: Secret %s key %s is neither defined here nor created in deploy/README.md", e.Name, r.Name, r.Key)
				}
			}
		}
		if len(c.EnvFrom) > 0 {
			bad("container %s: envFrom hides which variables are set; name each", c.Name)
		}
	}
	for _, v := range ps.Volumes {
		if v.Secret == nil {
			continue
		}
		if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o040 == 0 {
			bad("volume %s: defaultMode must let the group (fsGroup %d) read the files", v.Name, imageUID)
		}
		if len(v.Secret.Items) == 0 {
			bad("volume %s: list the keys (items), so a missing one fails the pod at once", v.Name)
		}
		for _, it := range v.Secret.Items {
			if !slices.Contains(secretKeys[v.Secret.SecretName], it.Key) {
				bad("volume %s: Secret %s key %s is neither defined here nor created in deploy/README.md (kubectl create secret generic %s --from-file=%s=…)",
					v.Name, v.Secret.SecretName, it.Key, v.Secret.SecretName, it.Key)
			}
		}
	}
	return problems
}

// checkEnv checks a container's variables against the configuration
// contract. A variable the program does not read is allowed only as a
// $(NAME) in a later variable's value (POD_IP into ORDERTUNE_INTERNAL_URL);
// Kubernetes leaves a reference to a later or unknown variable as it is.
func checkEnv(where string, env []corev1.EnvVar) []string {
	var problems []string
	contract := configContract()
	ref := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	defined := map[string]bool{}
	used := map[string]bool{}
	for _, e := range env {
		for _, m := range ref.FindAllStringSubmatch(e.Value, -1) {
			if !defined[m[1]] {
				problems = append(problems, fmt.Sprintf("%s: %s refers to $(%s), not defined before it", where, e.Name, m[1]))
			}
			used[m[1]] = true
		}
		if defined[e.Name] {
			problems = append(problems, fmt.Sprintf("%s: %s is set twice", where, e.Name))
		}
		defined[e.Name] = true
	}
	for _, e := range env {
		if !contract[e.Name] && !used[e.Name] {
			problems = append(problems, fmt.Sprintf("%s: %s is not read by internal/config (a typo, or a variable that was renamed)", where, e.Name))
		}
	}
	return problems
}

// testPodIP stands in for the downward API's status.podIP.
const testPodIP = "10.42.0.7"

// containerConfig loads the container's configuration with internal/config:
// $(NAME) references expanded, the pod IP made up, and each NAME_FILE that
// points into a mounted Secret replaced by a file with a placeholder.
func containerConfig(t testing.TB, ps corev1.PodSpec, c *corev1.Container) (config.Config, error) {
	dir := t.TempDir()
	vals := map[string]string{}
	ref := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	for _, e := range c.Env {
		v := ref.ReplaceAllStringFunc(e.Value, func(m string) string { return vals[m[2:len(m)-1]] })
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP":
			v = testPodIP
		case e.ValueFrom != nil:
			v = "placeholder"
		}
		if strings.HasSuffix(e.Name, "_FILE") {
			key, err := secretFile(ps, c, v)
			if err != nil {
				return config.Config{}, fmt.Errorf("%s: %v", e.Name, err)
			}
			v = filepath.Join(dir, key)
			if err := os.WriteFile(v, []byte("placeholder-"+key), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		vals[e.Name] = v
	}
	return config.Load(func(n string) string { return vals[n] }, false)
}

// secretFile reports which key of a mounted Secret the container path is.
func secretFile(ps corev1.PodSpec, c *corev1.Container, path string) (string, error) {
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok {
			continue
		}
		for _, v := range ps.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			for _, it := range v.Secret.Items {
				if it.Path == rel {
					return it.Key, nil
				}
			}
		}
	}
	return "", fmt.Errorf("%s is no key of a Secret mounted in the container", path)
}

func envMap(env []corev1.EnvVar) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range env {
		m[e.Name] = e
	}
	return m
}

func container(ps corev1.PodSpec, name string) *corev1.Container {
	for i := range ps.Containers {
		if ps.Containers[i].Name == name {
			return &ps.Containers[i]
		}
	}
	return nil
}

// containerPortMatches reports whether port (a name or a number) is one of
// the container's ports and that port is want.
func containerPortMatches(c *corev1.Container, port intstr.IntOrString, want string) bool {
	for _, p := range c.Ports {
		if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
			return fmt.Sprint(p.ContainerPort) == want
		}
	}
	return false
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

// TestKubernetesChecksCatchMistakes breaks the manifests one way at a time,
// as an edit could, and expects the checks to name each mistake.
func TestKubernetesChecksCatchMistakes(t *testing.T) {
	files, readme := readK8s(t)
	tests := []struct {
		file, old, new string
		want           string
	}{
		{"deployment.yaml", "revisionHistoryLimit: 5", "revisionHistoryLimt: 5", "unknown field"},
		{"deployment.yaml", "apiVersion: apps/v1", "apiVersion: apps/v1beta2", "not a kind"},
		{"deployment.yaml", "path: /readyz", "path: /ready", "readiness probe"},
		{"deployment.yaml", "path: /healthz", "path: /readyz", "liveness probe"},
		{"deployment.yaml", "port: http\n            initialDelaySeconds", "port: 9090\n            initialDelaySeconds", "liveness probe's port"},
		{"deployment.yaml", "replicas: 3", "replicas: 1", "at least 2"},
		{"deployment.yaml", "name: ORDERTUNE_LEASE_TTL", "name: ORDERTUNE_LEASE_TIME", "ORDERTUNE_LEASE_TIME is not read"},
		{"deployment.yaml", `value: "15s"` + "\n            - name: ORDERTUNE_LEASE_TTL", `value: "15 seconds"` + "\n            - name: ORDERTUNE_LEASE_TTL", "ORDERTUNE_SHUTDOWN_TIMEOUT"},
		{"deployment.yaml", "http://$(POD_IP):8080", "http://$(POD_IP):9090", "ORDERTUNE_INTERNAL_URL"},
		{"deployment.yaml", "fieldPath: status.podIP", "fieldPath: metadata.name", "downward API"},
		{"deployment.yaml", `value: "0.0.0.0:8080"`, `value: "127.0.0.1:8080"`, "listen on 0.0.0.0"},
		{"deployment.yaml", "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: 20", "terminationGracePeriodSeconds"},
		{"deployment.yaml", "runAsUser: 65532", "runAsUser: 1000", "uid 1000"},
		{"deployment.yaml", "defaultMode: 0440", "defaultMode: 0400", "defaultMode"},
		{"deployment.yaml", "key: master_keys", "key: master_key", "key master_key is neither"},
		{"deployment.yaml", `args: ["serve"]`, `args: ["server"]`, "unknown command"},
		{"deployment.yaml", `args: ["serve"]`, `args: ["serve", "--migrations"]`, "flag provided but not defined"},
		{"deployment.yaml", "maxUnavailable: 0", "maxUnavailable: 1", "maxUnavailable: 0"},
		{"deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem"},
		{"deployment.yaml", "value: /etc/ordertune/secrets/database_url", "value: /etc/ordertune/database_url", "DATABASE_URL_FILE"},
		{"migrate-job.yaml", `args: ["migrate", "up"]`, `args: ["migrate", "upp"]`, "must run `ordertune migrate up`"},
		{"migrate-job.yaml", `args: ["migrate", "up"]`, `args: ["migrations", "up"]`, "unknown command"},
		{"migrate-job.yaml", "secretName: ordertune-migrate", "secretName: ordertune-migrations", "Secret ordertune-migrations"},
		{"migrate-job.yaml", "restartPolicy: Never", "restartPolicy: Always", "restartPolicy"},
		{"pdb.yaml", "maxUnavailable: 1", "maxUnavailable: 0", "allows 0 of 3"},
		{"pdb.yaml", "app.kubernetes.io/component: server\nspec", "app.kubernetes.io/component: server\nspec:\n  minAvailable: 1\nspecs", "unknown field"},
		{"service.yaml", "targetPort: http", "targetPort: web", "targetPort web"},
		{"service.yaml", "component: server\n  ports", "component: web\n  ports", "does not select"},
	}
	for _, tt := range tests {
		broken := map[string][]byte{}
		for n, b := range files {
			broken[n] = b
		}
		if !strings.Contains(string(files[tt.file]), tt.old) {
			t.Errorf("%s no longer contains %q: update this test", tt.file, tt.old)
			continue
		}
		broken[tt.file] = []byte(strings.Replace(string(files[tt.file]), tt.old, tt.new, 1))
		problems := checkK8s(t, broken, readme)
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
			t.Errorf("%s: %q → %q: problems %q, want one naming %q", tt.file, tt.old, tt.new, problems, tt.want)
		}
	}
	// A secret the README stops creating is caught too.
	undocumented := strings.Replace(readme, "--from-file=audit_signing_key=", "--from-file=audit_key=", 1)
	if problems := checkK8s(t, files, undocumented); !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, "key audit_signing_key") }) {
		t.Errorf("README without the audit_signing_key secret: problems %q", problems)
	}
}
