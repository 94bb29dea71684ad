package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/ordertune/ordertune/internal/config"
)

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
