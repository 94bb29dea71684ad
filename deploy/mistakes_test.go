package deploy

import (
	"slices"
	"strings"
	"testing"
)

// Each check must be able to fail: these tests break the deployment files
// one way at a time, as an edit could, and expect the checks to name each
// mistake.

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
		{"deployment.yaml", "path: /healthz\n              port: http\n            periodSeconds: 10", "path: /readyz\n              port: http\n            periodSeconds: 10", "liveness probe"},
		{"deployment.yaml", "port: http\n            periodSeconds: 10", "port: 9090\n            periodSeconds: 10", "liveness probe's port"},
		{"deployment.yaml", "path: /healthz\n              port: http\n            periodSeconds: 2", "path: /readyz\n              port: http\n            periodSeconds: 2", "startup probe"},
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
		{"deployment.yaml", "name: ORDERTUNE_ORDER_LOCK_CONNS\n              value: \"8\"", "name: ORDERTUNE_ORDER_LOCK_CONNS\n              value: \"32\"", "4 pods during a rolling update"},
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

// TestComposeChecksCatchMistakes breaks the trial's files one way at a time
// and expects the checks to name each mistake.
func TestComposeChecksCatchMistakes(t *testing.T) {
	orig := readTrial(t)
	tests := []struct {
		file     string // compose, nginx or script
		old, new string
		want     string
	}{
		{"compose", "    command: [\"serve\"]", "    container_name: ordertune\n    command: [\"serve\"]", "container_name"},
		{"compose", "    command: [\"serve\"]", "    ports: [\"127.0.0.1:8080:8080\"]\n    command: [\"serve\"]", "host port"},
		{"compose", "stop_grace_period: 30s", "stop_grace_period: 10s", "stop_grace_period"},
		{"compose", "      ORDERTUNE_ADDR: 0.0.0.0:8080", "      ORDERTUNE_ADDR: 0.0.0.0:8080\n      ORDERTUNE_INTERNAL_URL: http://ordertune:8080", "ORDERTUNE_INTERNAL_URL is the same"},
		{"compose", "ORDERTUNE_ADDR: 0.0.0.0:8080", "ORDERTUNE_ADDR: 127.0.0.1:8080", "listen on 0.0.0.0"},
		{"compose", "ORDERTUNE_SHUTDOWN_TIMEOUT: 15s", "ORDERTUNE_SHUTDOWN_TIMEOUT: 15", "ORDERTUNE_SHUTDOWN_TIMEOUT"},
		{"compose", "ORDERTUNE_MASTER_KEYS_FILE:", "ORDERTUNE_MASTERKEYS_FILE:", "ORDERTUNE_MASTERKEYS_FILE is not read"},
		{"compose", `"--addr", "0.0.0.0:5005"`, `"--addr", "127.0.0.1:5005"`, "listen on 0.0.0.0"},
		{"compose", `ports: ["127.0.0.1:5005:5005"]`, `ports: ["127.0.0.1:5006:5005"]`, "sim register --sim http://127.0.0.1:5006"},
		{"compose", `user: "0:0"`, `user: "65532"`, "root"},
		{"compose", `"--password-file", "/run`, `"--password-fil", "/run`, "flag provided but not defined"},
		{"compose", `command: ["migrate", "up"]`, `command: ["migrate", "upp"]`, "must run `ordertune migrate up`"},
		{"compose", `command: ["serve"]`, `command: ["server"]`, "unknown command"},
		{"compose", "    command: [\"serve\"]", "    user: \"0\"\n    command: [\"serve\"]", "the image's nonroot user"},
		{"compose", "      migrate: { condition: service_completed_successfully }\n      sim:", "      migrate: { condition: service_started }\n      sim:", "wait for migrate"},
		{"compose", "    depends_on:\n      secrets: { condition: service_completed_successfully }\n      postgres:", "    depends_on:\n      postgres:", "migrate: reads trial-secrets"},
		{"compose", "image: nginx:1.28", "image: nginx:1.25", "1.27.3"},
		{"compose", `ports: ["127.0.0.1:8080:80"]`, `ports: ["127.0.0.1:8081:80"]`, "ORDERTUNE_PUBLIC_URL's port"},
		{"compose", "POSTGRES_DB: ordertune", "POSTGRES_DB: trial", "postgres/trial"},
		{"compose", "      - trial-secrets:/out", "      - trial-secrets:/output", "at /out"},
		{"nginx", "server ordertune:8080 resolve", "server ordertune:8080", "resolve"},
		{"nginx", "server ordertune:8080 resolve", "server ordertune:8081 resolve", "resolve"},
		{"nginx", "resolver 127.0.0.11", "resolver 8.8.8.8", "127.0.0.11"},
		{"script", `chown "$owner:$owner" "$dir/$f.tmp"`, `: no chown`, "readable by the service's user"},
		{"script", "chmod 0400", "chmod 0444", "mode 400"},
		{"script", "head -c 32", "head -c 16", "does not open"},
	}
	for _, tt := range tests {
		f := orig
		target := map[string]*[]byte{"compose": &f.compose, "nginx": &f.nginx, "script": &f.script}[tt.file]
		if !strings.Contains(string(*target), tt.old) {
			t.Errorf("%s no longer contains %q: update this test", tt.file, tt.old)
			continue
		}
		*target = []byte(strings.Replace(string(*target), tt.old, tt.new, 1))
		problems := checkCompose(t, f)
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
			t.Errorf("%s: %q → %q: problems %q, want one naming %q", tt.file, tt.old, tt.new, problems, tt.want)
		}
	}
}
