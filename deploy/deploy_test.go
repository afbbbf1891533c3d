// Package deploy_test checks the deployment artifacts under deploy/. No
// container engine or cluster runs here, so they are parsed and checked
// against what the program and the Dockerfile expect.
package deploy_test

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/lanyard-id/lanyard/internal/config"
)

// document is one parsed YAML document.
type document struct {
	file string
	node yaml.Node
	head struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
	}
}

func (d *document) decode(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, d.node.Decode(v), d.file)
}

// Kubernetes objects, as far as the checks need them.
type (
	envVar struct {
		Name      string  `yaml:"name"`
		Value     *string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	}
	probe struct {
		HTTPGet *struct {
			Path string    `yaml:"path"`
			Port yaml.Node `yaml:"port"`
		} `yaml:"httpGet"`
	}
	securityContext struct {
		RunAsNonRoot             *bool                   `yaml:"runAsNonRoot"`
		RunAsUser                *int                    `yaml:"runAsUser"`
		RunAsGroup               *int                    `yaml:"runAsGroup"`
		ReadOnlyRootFilesystem   *bool                   `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool                   `yaml:"allowPrivilegeEscalation"`
		Privileged               *bool                   `yaml:"privileged"`
		Capabilities             struct{ Drop []string } `yaml:"capabilities"`
	}
	containerPort struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	}
	container struct {
		Name           string          `yaml:"name"`
		Image          string          `yaml:"image"`
		Args           []string        `yaml:"args"`
		Ports          []containerPort `yaml:"ports"`
		Env            []envVar        `yaml:"env"`
		ReadinessProbe *probe          `yaml:"readinessProbe"`
		LivenessProbe  *probe          `yaml:"livenessProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext securityContext `yaml:"securityContext"`
	}
	podTemplate struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec struct {
			RestartPolicy                 string          `yaml:"restartPolicy"`
			TerminationGracePeriodSeconds *int            `yaml:"terminationGracePeriodSeconds"`
			SecurityContext               securityContext `yaml:"securityContext"`
			Containers                    []container     `yaml:"containers"`
		} `yaml:"spec"`
	}
	workload struct {
		Spec struct {
			Replicas *int `yaml:"replicas"`
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Template podTemplate `yaml:"template"`
		} `yaml:"spec"`
	}
	service struct {
		Spec struct {
			Selector map[string]string `yaml:"selector"`
			Ports    []struct {
				Port       int       `yaml:"port"`
				TargetPort yaml.Node `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	pdb struct {
		Spec struct {
			MinAvailable   *int `yaml:"minAvailable"`
			MaxUnavailable *int `yaml:"maxUnavailable"`
			Selector       struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
		} `yaml:"spec"`
	}
	secret struct {
		Data       map[string]string `yaml:"data"`
		StringData map[string]string `yaml:"stringData"`
	}
	kustomization struct {
		Resources []string `yaml:"resources"`
	}
)

// documents parses every YAML file under deploy/.
func documents(t *testing.T) []*document {
	t.Helper()
	var docs []*document
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			return err
		}
		if path == composeFile {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		dec := yaml.NewDecoder(f)
		for {
			doc := &document{file: path}
			if err := dec.Decode(&doc.node); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				return err
			}
			if err := doc.node.Decode(&doc.head); err != nil {
				return err
			}
			docs = append(docs, doc)
		}
	})
	require.NoError(t, err)
	return docs
}

// only returns the single document of this kind.
func only(t *testing.T, docs []*document, kind string) *document {
	t.Helper()
	var found []*document
	for _, d := range docs {
		if d.head.Kind == kind {
			found = append(found, d)
		}
	}
	require.Len(t, found, 1, "one %s", kind)
	return found[0]
}

// dockerfileUser is the numeric user:group the image runs as.
func dockerfileUser(t *testing.T) (uid, gid int) {
	t.Helper()
	b, err := os.ReadFile("../Dockerfile")
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^USER (\d+):(\d+)\s*$`).FindStringSubmatch(string(b))
	require.NotNil(t, m, "the Dockerfile runs as a numeric USER uid:gid")
	uid, _ = strconv.Atoi(m[1])
	gid, _ = strconv.Atoi(m[2])
	return uid, gid
}

func env(c container, name string) (envVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return envVar{}, false
}

// portNumber resolves a probe or Service port (a number or a port name of c).
func portNumber(t *testing.T, c container, port yaml.Node) int {
	t.Helper()
	if n, err := strconv.Atoi(port.Value); err == nil {
		return n
	}
	for _, p := range c.Ports {
		if p.Name == port.Value {
			return p.ContainerPort
		}
	}
	t.Fatalf("port %q is not a port of container %s", port.Value, c.Name)
	return 0
}

// TestManifestsParse: every YAML document under deploy/ parses and names its
// apiVersion, kind and metadata.name; the kinds the issue asks for are there.
func TestManifestsParse(t *testing.T) {
	docs := documents(t)
	require.NotEmpty(t, docs)
	var kinds []string
	for _, d := range docs {
		assert.NotEmpty(t, d.head.APIVersion, "%s: apiVersion", d.file)
		assert.NotEmpty(t, d.head.Kind, "%s: kind", d.file)
		assert.NotEmpty(t, d.head.Metadata.Name, "%s: metadata.name", d.file)
		kinds = append(kinds, d.head.Kind)
	}
	for _, kind := range []string{"Deployment", "Service", "PodDisruptionBudget", "Job", "Secret", "Kustomization"} {
		assert.Contains(t, kinds, kind)
	}
}

// TestDeployment: two replicas that do not migrate, serving on the port its
// probes hit (/readyz for readiness, /healthz for liveness), with resource
// requests, the secret settings from a Secret reference and never inline,
// and the image's non-root user on a read-only root filesystem.
func TestDeployment(t *testing.T) {
	docs := documents(t)
	var dep workload
	only(t, docs, "Deployment").decode(t, &dep)
	require.NotNil(t, dep.Spec.Replicas)
	assert.Equal(t, 2, *dep.Spec.Replicas)
	pod := dep.Spec.Template
	for k, v := range dep.Spec.Selector.MatchLabels {
		assert.Equal(t, v, pod.Metadata.Labels[k], "the selector matches the pod labels")
	}
	require.Len(t, pod.Spec.Containers, 1)
	c := pod.Spec.Containers[0]

	addr, ok := env(c, "LANYARD_ADDR")
	require.True(t, ok)
	require.NotNil(t, addr.Value)
	host, port, err := net.SplitHostPort(*addr.Value)
	require.NoError(t, err)
	assert.Equal(t, "0.0.0.0", host, "reachable from the kubelet and the Service")
	listen, _ := strconv.Atoi(port)
	assert.Equal(t, 8080, listen)
	assert.True(t, slices.ContainsFunc(c.Ports, func(p containerPort) bool { return p.ContainerPort == listen }),
		"LANYARD_ADDR's port is a container port")

	require.NotNil(t, c.ReadinessProbe)
	require.NotNil(t, c.ReadinessProbe.HTTPGet)
	assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
	assert.Equal(t, listen, portNumber(t, c, c.ReadinessProbe.HTTPGet.Port))
	require.NotNil(t, c.LivenessProbe)
	require.NotNil(t, c.LivenessProbe.HTTPGet)
	assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
	assert.Equal(t, listen, portNumber(t, c, c.LivenessProbe.HTTPGet.Port))

	migrate, ok := env(c, "LANYARD_MIGRATE")
	require.True(t, ok)
	require.NotNil(t, migrate.Value)
	assert.Equal(t, "false", *migrate.Value, "the migration Job migrates, not the replicas")
	assertSecretRefs(t, c)

	assert.NotEmpty(t, c.Resources.Requests["cpu"])
	assert.NotEmpty(t, c.Resources.Requests["memory"])
	assert.NotEmpty(t, c.Resources.Limits["memory"])
	assertLockedDown(t, pod, c)

	// The drain and the in-flight timeout fit in the grace period.
	require.NotNil(t, pod.Spec.TerminationGracePeriodSeconds)
	grace := time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	drain, shutdown := 5*time.Second, 20*time.Second
	if e, ok := env(c, "LANYARD_SHUTDOWN_DRAIN"); ok && e.Value != nil {
		drain, err = time.ParseDuration(*e.Value)
		require.NoError(t, err)
	}
	if e, ok := env(c, "LANYARD_SHUTDOWN_TIMEOUT"); ok && e.Value != nil {
		shutdown, err = time.ParseDuration(*e.Value)
		require.NoError(t, err)
	}
	assert.Greater(t, grace, drain+shutdown)
}

// assertSecretRefs: LANYARD_SECRET and LANYARD_DATABASE_URL come from the
// Secret the template describes, and no container sets them inline.
func assertSecretRefs(t *testing.T, c container) {
	t.Helper()
	var tmpl secret
	only(t, documents(t), "Secret").decode(t, &tmpl)
	settings := settingNames(t)
	for _, e := range c.Env {
		assert.True(t, settings[e.Name], "%s: %s is not a setting config.Load reads", c.Name, e.Name)
		if e.Name == "LANYARD_ADMIN_TOKEN" {
			assert.Nil(t, e.Value, "%s: the admin token is never inline", c.Name)
			require.NotNil(t, e.ValueFrom)
			require.NotNil(t, e.ValueFrom.SecretKeyRef)
			assert.Contains(t, tmpl.StringData, e.ValueFrom.SecretKeyRef.Key)
		}
	}
	for _, name := range []string{"LANYARD_SECRET", "LANYARD_DATABASE_URL"} {
		e, ok := env(c, name)
		require.True(t, ok, "%s: %s", c.Name, name)
		assert.Nil(t, e.Value, "%s: %s is never inline", c.Name, name)
		require.NotNil(t, e.ValueFrom, name)
		require.NotNil(t, e.ValueFrom.SecretKeyRef, name)
		assert.Equal(t, "lanyard", e.ValueFrom.SecretKeyRef.Name)
		assert.Contains(t, tmpl.StringData, e.ValueFrom.SecretKeyRef.Key, "the Secret template has the key")
	}
}

// assertLockedDown: the Dockerfile's numeric user, non-root, no privilege
// escalation, no capabilities, read-only root filesystem.
func assertLockedDown(t *testing.T, pod podTemplate, c container) {
	t.Helper()
	uid, gid := dockerfileUser(t)
	sc := pod.Spec.SecurityContext
	require.NotNil(t, sc.RunAsNonRoot)
	assert.True(t, *sc.RunAsNonRoot)
	require.NotNil(t, sc.RunAsUser)
	assert.Equal(t, uid, *sc.RunAsUser, "the image's user")
	require.NotNil(t, sc.RunAsGroup)
	assert.Equal(t, gid, *sc.RunAsGroup)
	cs := c.SecurityContext
	require.NotNil(t, cs.ReadOnlyRootFilesystem)
	assert.True(t, *cs.ReadOnlyRootFilesystem)
	require.NotNil(t, cs.AllowPrivilegeEscalation)
	assert.False(t, *cs.AllowPrivilegeEscalation)
	if cs.Privileged != nil {
		assert.False(t, *cs.Privileged)
	}
	assert.Equal(t, []string{"ALL"}, cs.Capabilities.Drop)
}

// TestServiceAndDisruptionBudget: the Service and the PodDisruptionBudget
// select the Deployment's pods; the Service targets the port the server
// listens on; the budget leaves a replica up during a drain.
func TestServiceAndDisruptionBudget(t *testing.T) {
	docs := documents(t)
	var dep workload
	only(t, docs, "Deployment").decode(t, &dep)
	labels := dep.Spec.Template.Metadata.Labels
	c := dep.Spec.Template.Spec.Containers[0]

	var svc service
	only(t, docs, "Service").decode(t, &svc)
	require.NotEmpty(t, svc.Spec.Selector)
	for k, v := range svc.Spec.Selector {
		assert.Equal(t, v, labels[k], "Service selector %s", k)
	}
	require.Len(t, svc.Spec.Ports, 1, "only the public listener; the admin port stays off the Service")
	assert.Equal(t, 8080, portNumber(t, c, svc.Spec.Ports[0].TargetPort))

	var budget pdb
	only(t, docs, "PodDisruptionBudget").decode(t, &budget)
	require.NotEmpty(t, budget.Spec.Selector.MatchLabels)
	for k, v := range budget.Spec.Selector.MatchLabels {
		assert.Equal(t, v, labels[k], "PodDisruptionBudget selector %s", k)
	}
	require.NotNil(t, budget.Spec.MinAvailable)
	assert.GreaterOrEqual(t, *budget.Spec.MinAvailable, 1)
	assert.Less(t, *budget.Spec.MinAvailable, *dep.Spec.Replicas, "a node can still be drained")
}

// TestMigrationJob: the Job runs `lanyard migrate` once (no restart in
// place) with the Deployment's image and the same Secret, locked down the
// same way.
func TestMigrationJob(t *testing.T) {
	docs := documents(t)
	var dep, job workload
	only(t, docs, "Deployment").decode(t, &dep)
	only(t, docs, "Job").decode(t, &job)
	pod := job.Spec.Template
	assert.Equal(t, "Never", pod.Spec.RestartPolicy)
	require.Len(t, pod.Spec.Containers, 1)
	c := pod.Spec.Containers[0]
	assert.Equal(t, []string{"migrate"}, c.Args, "the image's entrypoint is /lanyard")
	assert.Equal(t, dep.Spec.Template.Spec.Containers[0].Image, c.Image, "migrate with the release being rolled out")
	assertSecretRefs(t, c)
	_, ok := env(c, "LANYARD_MIGRATE")
	assert.False(t, ok, "LANYARD_MIGRATE only concerns serve")
	assertLockedDown(t, pod, c)
}

// TestSecretTemplate: placeholders only. No data (base64) section, every
// value carries the CHANGE-ME marker and nothing that looks like a key or a
// token, and the LANYARD_SECRET placeholder is shorter than the 32 bytes
// Lanyard requires, so the template applied unchanged stops start-up.
func TestSecretTemplate(t *testing.T) {
	d := only(t, documents(t), "Secret")
	assert.Contains(t, d.file, "template")
	var s secret
	d.decode(t, &s)
	assert.Empty(t, s.Data, "no base64 data: real values would hide there")
	require.NotEmpty(t, s.StringData)
	tokenLike := regexp.MustCompile(`[A-Za-z0-9+/_=-]{20,}`)
	for k, v := range s.StringData {
		assert.Contains(t, v, "CHANGE-ME", k)
		assert.False(t, tokenLike.MatchString(v), "%s: %q looks like a real secret", k, v)
	}
	assert.Less(t, len(s.StringData["LANYARD_SECRET"]), 32)
	require.Contains(t, s.StringData, "LANYARD_ADMIN_TOKEN")
	assert.Less(t, len(s.StringData["LANYARD_ADMIN_TOKEN"]), 32, "a placeholder admin token is refused at start")
	assert.Regexp(t, `^postgres://[^:]+:CHANGE-ME@`, s.StringData["LANYARD_DATABASE_URL"], "the password is the placeholder")
}

// TestKustomization: kubectl apply -k applies the long-lived objects: every
// resource it lists exists, and neither the Secret template nor the
// migration Job (a release step) is among them.
func TestKustomization(t *testing.T) {
	docs := documents(t)
	d := only(t, docs, "Kustomization")
	var k kustomization
	d.decode(t, &k)
	dir := filepath.Dir(d.file)
	listed := map[string]bool{}
	for _, r := range k.Resources {
		_, err := os.Stat(filepath.Join(dir, r))
		assert.NoError(t, err, "resource %s", r)
		listed[filepath.Join(dir, r)] = true
	}
	for _, doc := range docs {
		switch doc.head.Kind {
		case "Secret", "Job":
			assert.False(t, listed[doc.file], "%s is applied on its own", doc.file)
		case "Deployment", "Service", "PodDisruptionBudget":
			assert.True(t, listed[doc.file], "%s is listed", doc.file)
		}
	}
}

// unit is a parsed systemd unit: section → key → values in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			require.NotContains(t, u, section, "%s:%d: section %s twice", path, n, section)
			u[section] = map[string][]string{}
		default:
			key, value, ok := strings.Cut(line, "=")
			require.True(t, ok, "%s:%d: not key=value: %q", path, n, line)
			require.NotEmpty(t, section, "%s:%d: key outside a section", path, n)
			require.False(t, strings.HasSuffix(line, `\`), "%s:%d: no continuation lines", path, n)
			u[section][key] = append(u[section][key], value)
		}
	}
	require.NoError(t, sc.Err())
	return u
}

// last is the value systemd uses for a single-valued key.
func (u unit) last(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// environment collects the unit's Environment= assignments.
func (u unit) environment() map[string]string {
	out := map[string]string{}
	for _, line := range u["Service"]["Environment"] {
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(strings.Trim(kv, `"`), "=")
			out[k] = v
		}
	}
	return out
}

// TestSystemdUnit: the unit serves as an unprivileged user confined to its
// state directory, which is the embedded data directory; the hardening keys
// are set; the stop timeout covers the drain and the in-flight timeout; no
// secret is written into the (world-readable) unit.
func TestSystemdUnit(t *testing.T) {
	u := parseUnit(t, "systemd/lanyard.service")
	for _, section := range []string{"Unit", "Service", "Install"} {
		require.Contains(t, u, section)
	}
	assert.Contains(t, u.last("Unit", "After"), "network-online.target")
	assert.Equal(t, "multi-user.target", u.last("Install", "WantedBy"))

	exec := strings.Fields(u.last("Service", "ExecStart"))
	require.Len(t, exec, 2)
	assert.True(t, filepath.IsAbs(exec[0]))
	assert.Equal(t, "lanyard", filepath.Base(exec[0]))
	assert.Equal(t, "serve", exec[1])

	user := u.last("Service", "User")
	assert.True(t, u.last("Service", "DynamicUser") == "yes" || (user != "" && user != "root" && user != "0"),
		"a dynamic or dedicated user, never root")
	assert.NotEqual(t, "root", user)
	state := u.last("Service", "StateDirectory")
	require.NotEmpty(t, state)
	envs := u.environment()
	assert.Equal(t, "/var/lib/"+state, envs["LANYARD_DATA_DIR"], "the embedded data directory is the state directory")
	assert.Equal(t, "0700", u.last("Service", "StateDirectoryMode"))
	assert.Equal(t, "0077", u.last("Service", "UMask"))
	assert.NotEmpty(t, envs["LANYARD_ADDR"])
	for k := range envs {
		assert.NotContains(t, []string{"LANYARD_SECRET", "LANYARD_SECRET_PREVIOUS", "LANYARD_DATABASE_URL"}, k,
			"secrets go in the EnvironmentFile, not the unit")
	}
	envFile := strings.TrimPrefix(u.last("Service", "EnvironmentFile"), "-")
	assert.True(t, filepath.IsAbs(envFile), "an EnvironmentFile for the secret settings")

	for key, want := range map[string]string{
		"Type":                    "exec",
		"Restart":                 "on-failure",
		"KillSignal":              "SIGTERM",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"ProtectKernelTunables":   "yes",
		"ProtectKernelModules":    "yes",
		"ProtectControlGroups":    "yes",
		"RestrictSUIDSGID":        "yes",
		"RestrictNamespaces":      "yes",
		"LockPersonality":         "yes",
		"MemoryDenyWriteExecute":  "yes",
		"SystemCallArchitectures": "native",
		"CapabilityBoundingSet":   "",
	} {
		values, ok := u["Service"][key]
		if assert.True(t, ok, "[Service] %s", key) {
			assert.Equal(t, want, values[len(values)-1], "[Service] %s", key)
		}
	}
	assert.Equal(t, "AF_INET AF_INET6 AF_UNIX", u.last("Service", "RestrictAddressFamilies"))
	assert.Contains(t, u["Service"]["SystemCallFilter"], "@system-service")

	stop, err := time.ParseDuration(u.last("Service", "TimeoutStopSec"))
	require.NoError(t, err)
	assert.Greater(t, stop, 5*time.Second+20*time.Second, "LANYARD_SHUTDOWN_DRAIN + LANYARD_SHUTDOWN_TIMEOUT defaults")
}

// composeFile is the Docker Compose deployment; not a Kubernetes manifest,
// so documents() leaves it to TestCompose.
const composeFile = "compose.yaml"

// Docker Compose, as far as TestCompose needs it.
type (
	composeService struct {
		Image string `yaml:"image"`
		Build *struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		Command     []string          `yaml:"command"`
		Restart     string            `yaml:"restart"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		Healthcheck *struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		DependsOn map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		StopGracePeriod string `yaml:"stop_grace_period"`
		ReadOnly        bool   `yaml:"read_only"`
	}
	composeProject struct {
		Services map[string]composeService `yaml:"services"`
	}
)

// interpolation is compose's ${NAME}, ${NAME:?message}, ${NAME:-default}.
var interpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[?-])([^}]*))?\}`)

// interpolate replaces every ${...} as compose would with the variables in
// vars set; a variable missing from vars takes its ${NAME:-default}, and
// fails the test when it has none.
func interpolate(t *testing.T, s string, vars map[string]string) string {
	t.Helper()
	return interpolation.ReplaceAllStringFunc(s, func(m string) string {
		sub := interpolation.FindStringSubmatch(m)
		name, op, fallback := sub[1], sub[2], sub[3]
		v, ok := vars[name]
		if !ok && (op == "-" || op == ":-") {
			return fallback
		}
		require.True(t, ok, "compose.yaml interpolates ${%s}", name)
		return v
	})
}

// settingNames is every LANYARD_* variable config.Load reads.
func settingNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	// Load stops reading at the first error; the empty environment has
	// none, so every name was asked for.
	_, err := config.Load(func(name string) string {
		names[name] = true
		return ""
	})
	require.NoError(t, err)
	require.Contains(t, names, "LANYARD_DATABASE_URL")
	require.Contains(t, names, "LANYARD_MIGRATE")
	return names
}

// TestCompose: compose.yaml runs PostgreSQL and PgBouncer (transaction
// mode) with health checks, `lanyard migrate` once straight to PostgreSQL,
// then two replicas that do not migrate and reach the database through the
// pooler in an exec mode that needs no prepared statements; every LANYARD_*
// variable is a setting Lanyard reads and accepts; the dependencies use
// real conditions on real services; and no secret is written in the file.
func TestCompose(t *testing.T) {
	raw, err := os.ReadFile(composeFile)
	require.NoError(t, err)
	var p composeProject
	require.NoError(t, yaml.Unmarshal(raw, &p), composeFile)
	vars := map[string]string{
		"LANYARD_SECRET":    strings.Repeat("s", 48),
		"POSTGRES_PASSWORD": "pw",
	}
	dbURL := func(name string, svc composeService, key string) *url.URL {
		t.Helper()
		v, ok := svc.Environment[key]
		require.True(t, ok, "%s: %s", name, key)
		u, err := url.Parse(interpolate(t, v, vars))
		require.NoError(t, err, "%s: %s", name, key)
		return u
	}

	for _, name := range []string{"postgres", "pgbouncer", "migrate", "lanyard-1", "lanyard-2"} {
		require.Contains(t, p.Services, name)
	}
	for name, svc := range p.Services {
		for dep, d := range svc.DependsOn {
			require.Contains(t, p.Services, dep, "%s depends on a service of this file", name)
			assert.Contains(t, []string{"service_started", "service_healthy", "service_completed_successfully"}, d.Condition,
				"%s depends_on %s", name, dep)
			if d.Condition == "service_healthy" {
				assert.NotNil(t, p.Services[dep].Healthcheck, "%s waits for %s to be healthy: it needs a healthcheck", name, dep)
			}
			if d.Condition == "service_completed_successfully" {
				assert.Equal(t, "no", p.Services[dep].Restart, "%s waits for %s to complete: it must not restart", name, dep)
			}
		}
	}

	// PostgreSQL and the pooler, with health checks; the pooler in
	// transaction mode in front of the postgres service.
	for _, name := range []string{"postgres", "pgbouncer"} {
		svc := p.Services[name]
		require.NotNil(t, svc.Healthcheck, name)
		assert.NotEmpty(t, svc.Healthcheck.Test, name)
		assert.NotEmpty(t, svc.Image, name)
		assert.NotContains(t, svc.Image, ":latest", "%s: a pinned image", name)
	}
	bouncer := p.Services["pgbouncer"]
	assert.Equal(t, "transaction", bouncer.Environment["POOL_MODE"])
	assert.Equal(t, "postgres", dbURL("pgbouncer", bouncer, "DATABASE_URL").Hostname())
	assert.Equal(t, "service_healthy", bouncer.DependsOn["postgres"].Condition)

	// The image every Lanyard service runs.
	dockerfileUser(t) // ../Dockerfile exists and is the image's
	lanyards := map[string]composeService{}
	for name, svc := range p.Services {
		if svc.Build == nil {
			continue
		}
		assert.Equal(t, "..", svc.Build.Context, name)
		assert.Equal(t, "Dockerfile", svc.Build.Dockerfile, name)
		assert.True(t, svc.ReadOnly, "%s: read-only root filesystem", name)
		lanyards[name] = svc
	}
	require.Contains(t, lanyards, "migrate")

	// Migrations: once, straight to PostgreSQL, after it is healthy.
	migrate := p.Services["migrate"]
	assert.Equal(t, []string{"migrate"}, migrate.Command)
	assert.Equal(t, "postgres", dbURL("migrate", migrate, "LANYARD_DATABASE_URL").Hostname(), "migrate bypasses the pooler")
	assert.Equal(t, "service_healthy", migrate.DependsOn["postgres"].Condition)
	_, ok := migrate.Environment["LANYARD_MIGRATE"]
	assert.False(t, ok, "LANYARD_MIGRATE only concerns serve")

	// Two serving replicas, through the pooler.
	var replicas []string
	for name, svc := range lanyards {
		if name == "migrate" {
			continue
		}
		replicas = append(replicas, name)
		assert.Equal(t, []string{"serve"}, svc.Command, name)
		assert.Equal(t, "false", svc.Environment["LANYARD_MIGRATE"], "%s: the migrate service migrates", name)
		u := dbURL(name, svc, "LANYARD_DATABASE_URL")
		assert.Equal(t, "pgbouncer", u.Hostname(), "%s: through the pooler", name)
		assert.Contains(t, []string{"exec", "simple_protocol"}, u.Query().Get("default_query_exec_mode"),
			"%s: no prepared statement may outlive a pooled transaction", name)
		assert.Equal(t, "service_completed_successfully", svc.DependsOn["migrate"].Condition, name)
		assert.Equal(t, "service_healthy", svc.DependsOn["pgbouncer"].Condition, name)
		require.NotNil(t, svc.Healthcheck, name)
		assert.Equal(t, []string{"CMD", "/lanyard", "healthcheck"}, svc.Healthcheck.Test, name)
		assert.NotEmpty(t, svc.Environment["LANYARD_ADMIN_ADDR"], name)

		_, port, err := net.SplitHostPort(svc.Environment["LANYARD_ADDR"])
		require.NoError(t, err, "%s: LANYARD_ADDR", name)
		require.NotEmpty(t, svc.Ports, "%s publishes its port", name)
		for _, published := range svc.Ports {
			assert.True(t, strings.HasSuffix(published, ":"+port), "%s publishes LANYARD_ADDR's port: %s", name, published)
			assert.True(t, strings.HasPrefix(published, "127.0.0.1:"), "%s publishes on loopback only: %s", name, published)
		}
		grace, err := time.ParseDuration(svc.StopGracePeriod)
		require.NoError(t, err, "%s: stop_grace_period", name)
		drain, err := time.ParseDuration(svc.Environment["LANYARD_SHUTDOWN_DRAIN"])
		require.NoError(t, err)
		shutdown, err := time.ParseDuration(svc.Environment["LANYARD_SHUTDOWN_TIMEOUT"])
		require.NoError(t, err)
		assert.Greater(t, grace, drain+shutdown, "%s: the drain and the in-flight timeout fit in the grace period", name)
	}
	slices.Sort(replicas)
	assert.Equal(t, []string{"lanyard-1", "lanyard-2"}, replicas)

	// Every LANYARD_* variable is a setting, and Lanyard accepts the values.
	settings := settingNames(t)
	for name, svc := range lanyards {
		env := map[string]string{}
		for k, v := range svc.Environment {
			assert.True(t, strings.HasPrefix(k, "LANYARD_"), "%s: %s is not a Lanyard setting", name, k)
			assert.True(t, settings[k], "%s: %s is not a setting config.Load reads", name, k)
			env[k] = interpolate(t, v, vars)
		}
		_, err := config.Load(func(k string) string { return env[k] })
		assert.NoError(t, err, "%s: the configuration is valid", name)
	}

	// No secret literal: secrets and passwords are required interpolations.
	required := regexp.MustCompile(`^\$\{[A-Z_][A-Z0-9_]*:\?[^}]*\}$`)
	tokenLike := regexp.MustCompile(`[A-Za-z0-9+/_=-]{20,}`)
	for name, svc := range p.Services {
		for k, v := range svc.Environment {
			if strings.Contains(k, "SECRET") || strings.Contains(k, "PASSWORD") {
				assert.Regexp(t, required, v, "%s: %s comes from the environment, never the file", name, k)
			}
			if strings.Contains(v, "://") {
				u, err := url.Parse(interpolate(t, v, map[string]string{"LANYARD_SECRET": "", "POSTGRES_PASSWORD": "PLACEHOLDER"}))
				require.NoError(t, err, "%s: %s", name, k)
				if pw, ok := u.User.Password(); ok {
					assert.Equal(t, "PLACEHOLDER", pw, "%s: %s: the password is ${POSTGRES_PASSWORD}", name, k)
				}
				continue
			}
			literal := interpolation.ReplaceAllString(v, "")
			assert.False(t, tokenLike.MatchString(literal), "%s: %s=%q looks like a secret", name, k, v)
		}
	}
}
