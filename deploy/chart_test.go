package deploy_test

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"

	"ztproxy/config"
	"ztproxy/internal/testenv"
)

const chartDir = "helm/ztproxy"

// render runs `helm template` on the chart with extra helm arguments
// (--set, -f) and decodes the result strictly.
func render(t *testing.T, helm testenv.HelmRunner, args ...string) manifests {
	t.Helper()
	out, err := helm(append([]string{"template", "prod", chartDir, "--namespace", "apps"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return decodeManifests(t, out)
}

// Issue 19 (Kubernetes): the chart passes helm's own linter, with the
// default values and with every values file under ci/.
func TestHelmLint(t *testing.T) {
	helm := testenv.Helm(t)
	files, _ := filepath.Glob(filepath.Join(chartDir, "ci", "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no values files under ci/")
	}
	for _, args := range append([][]string{nil}, valuesArgs(files)...) {
		out, err := helm(append([]string{"lint", "--strict", chartDir}, args...)...)
		if err != nil {
			t.Errorf("helm lint %v: %v\n%s", args, err, out)
		}
	}
}

func valuesArgs(files []string) [][]string {
	var out [][]string
	for _, f := range files {
		out = append(out, []string{"-f", f})
	}
	return out
}

// Issue 19 (Kubernetes): the default rendering is a hardened two-replica
// Deployment whose probes, ports, mounts and config agree with each other.
func TestHelmTemplateDefaults(t *testing.T) {
	m := render(t, testenv.Helm(t))
	if len(m.deployments) != 1 || len(m.configMaps) != 1 || len(m.services) != 1 || len(m.serviceAccounts) != 1 || len(m.pdbs) != 1 {
		t.Fatalf("objects: %d deployments, %d configmaps, %d services, %d serviceaccounts, %d pdbs",
			len(m.deployments), len(m.configMaps), len(m.services), len(m.serviceAccounts), len(m.pdbs))
	}
	if len(m.serviceMonitors) != 0 {
		t.Error("a ServiceMonitor without serviceMonitor.enabled")
	}
	dep := m.deployments[0]
	if *dep.Spec.Replicas != 2 {
		t.Errorf("replicas %d", *dep.Spec.Replicas)
	}
	checkPod(t, &dep.Spec.Template.Spec, m.configMaps[0])
	if sa := m.serviceAccounts[0]; sa.Annotations["eks.amazonaws.com/role-arn"] != "" || sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("service account: %+v", sa)
	}
	pdb := m.pdbs[0]
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || !selects(pdb.Spec.Selector.MatchLabels, dep.Spec.Template.Labels) {
		t.Errorf("pdb: %+v", pdb.Spec)
	}
	svc := m.services[0]
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != "https" || !selects(svc.Spec.Selector, dep.Spec.Template.Labels) {
		t.Errorf("service exposes %+v", svc.Spec.Ports)
	}
	// Without policies in the values, the one policy file permits nothing.
	if got := policyFiles(m.configMaps[0]); len(got) != 1 || strings.Contains(m.configMaps[0].Data[got[0]], "permit") {
		t.Errorf("default policy files %v", got)
	}
}

// policyFiles lists the ConfigMap's Cedar files.
func policyFiles(cm *corev1.ConfigMap) []string {
	var files []string
	for name := range cm.Data {
		if strings.HasSuffix(name, ".cedar") {
			files = append(files, name)
		}
	}
	slices.Sort(files)
	return files
}

// Issue 19 (Kubernetes): non-default values (ci/production-values.yaml)
// reach the objects: replicas, the IRSA role, client CA and session
// secrets, a pinned digest, the ServiceMonitor on its own metrics Service.
func TestHelmTemplateProduction(t *testing.T) {
	m := render(t, testenv.Helm(t), "-f", filepath.Join(chartDir, "ci", "production-values.yaml"))
	dep := m.deployments[0]
	if *dep.Spec.Replicas != 3 {
		t.Errorf("replicas %d", *dep.Spec.Replicas)
	}
	pod := &dep.Spec.Template.Spec
	f := checkPod(t, pod, m.configMaps[0])
	if got := m.serviceAccounts[0].Annotations["eks.amazonaws.com/role-arn"]; got != "arn:aws:iam::123456789012:role/ztproxy-prod" {
		t.Errorf("IRSA annotation %q", got)
	}
	if pod.ServiceAccountName != m.serviceAccounts[0].Name {
		t.Errorf("pod service account %q, chart's %q", pod.ServiceAccountName, m.serviceAccounts[0].Name)
	}
	if img := pod.Containers[0].Image; !strings.HasSuffix(img, "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef") {
		t.Errorf("image %q", img)
	}
	if f.TLS.ClientCAFile == "" || f.Session.SecretsFile == "" || f.Store.Region != "eu-west-1" || len(f.Routes) != 2 {
		t.Errorf("config: client CA %q, session %q, region %q, %d routes", f.TLS.ClientCAFile, f.Session.SecretsFile, f.Store.Region, len(f.Routes))
	}
	// Issue 19: the chart's defaults must not merge a policy in beside the
	// operator's own (Helm merges maps).
	if got := policyFiles(m.configMaps[0]); !slices.Equal(got, []string{"api.cedar", "wiki.cedar"}) {
		t.Errorf("policy files %v, want exactly the values' own", got)
	}
	if dep.Spec.Template.Annotations["checksum/config"] == "" {
		t.Error("rollOnConfigChange: no checksum annotation")
	}
	if len(pod.TopologySpreadConstraints) != 1 || len(pod.Containers[0].EnvFrom) != 1 {
		t.Errorf("topology spread %v, envFrom %v", pod.TopologySpreadConstraints, pod.Containers[0].EnvFrom)
	}
	checkServiceMonitor(t, m, pod)
}

// Issue 19 (Kubernetes, ACME): with config.tls.acme the chart needs no TLS
// Secret and mounts none; the config keeps the acme block and names no
// certificate files.
func TestHelmTemplateACME(t *testing.T) {
	m := render(t, testenv.Helm(t), "-f", filepath.Join(chartDir, "ci", "acme-values.yaml"))
	pod := &m.deployments[0].Spec.Template.Spec
	f := checkPod(t, pod, m.configMaps[0])
	if f.TLS.ACME == nil || len(f.TLS.ACME.Domains) != 1 || f.TLS.CertFile != "" || f.TLS.KeyFile != "" {
		t.Errorf("tls: %+v", f.TLS)
	}
	for _, v := range pod.Volumes {
		if v.Name == "tls" {
			t.Error("a TLS Secret volume with tls.acme")
		}
	}
}

// checkServiceMonitor: the monitor selects the metrics Service only, whose
// port is the admin container port; the main Service stays without it.
func checkServiceMonitor(t *testing.T, m manifests, pod *corev1.PodSpec) {
	t.Helper()
	if len(m.serviceMonitors) != 1 || len(m.services) != 2 {
		t.Fatalf("%d service monitors, %d services", len(m.serviceMonitors), len(m.services))
	}
	sm := m.serviceMonitors[0]
	if sm.Labels["release"] != "kube-prometheus-stack" || len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("service monitor: %+v", sm)
	}
	var selected []string
	for _, svc := range m.services {
		if !selects(sm.Spec.Selector.MatchLabels, svc.Labels) {
			continue
		}
		selected = append(selected, svc.Name)
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != sm.Spec.Endpoints[0].Port || svc.Spec.Ports[0].TargetPort.String() != "admin" {
			t.Errorf("metrics service ports %+v", svc.Spec.Ports)
		}
		if containerPort(pod, "admin") != svc.Spec.Ports[0].Port {
			t.Errorf("metrics service port %d, admin container port %d", svc.Spec.Ports[0].Port, containerPort(pod, "admin"))
		}
	}
	if len(selected) != 1 || !strings.HasSuffix(selected[0], "-metrics") {
		t.Errorf("the ServiceMonitor selects services %v, want only the metrics one", selected)
	}
}

// Issue 19 (Kubernetes): values that would deploy replicas that do not
// share their state or keys, or a malformed IRSA role, are refused at
// render time.
func TestHelmTemplateRefuses(t *testing.T) {
	helm := testenv.Helm(t)
	for _, tc := range []struct{ name, want string }{
		{"config.store.backend=embedded", "needs config.store.backend: dynamodb"},
		{"signingKey.secretName=", "needs signingKey.secretName"},
		{"serviceAccount.awsRoleArn=ztproxy-role", "is not an IAM role ARN"},
		{"tls.secretName=", "tls.secretName is required"},
	} {
		out, err := helm("template", "prod", chartDir, "--set", tc.name)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--set %s: err %v, want %q\n%s", tc.name, err, tc.want, out)
		}
	}
	// One replica may use the embedded store and a generated key.
	m := render(t, helm, "--set", "replicaCount=1", "--set", "config.store.backend=embedded", "--set", "signingKey.secretName=")
	if len(m.pdbs) != 0 {
		t.Error("a PodDisruptionBudget for one replica blocks node drains")
	}
}

// checkPod checks the ztproxy container of a rendered pod: hardened
// security contexts, probes on the admin port, the config from the
// ConfigMap decoding strictly into ztproxy's schema with its listeners on
// the container ports and its files on mounted volumes. It returns the
// decoded config.
func checkPod(t *testing.T, pod *corev1.PodSpec, cm *corev1.ConfigMap) *config.File {
	t.Helper()
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := &pod.Containers[0]
	psc, sc := pod.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("pod security context %+v", psc)
	}
	if sc == nil || !*sc.RunAsNonRoot || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container security context %+v", sc)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod mounts a Kubernetes API token")
	}
	for name, probe := range map[string]struct {
		p    *corev1.Probe
		path string
	}{"startup": {c.StartupProbe, "/healthz"}, "liveness": {c.LivenessProbe, "/healthz"}, "readiness": {c.ReadinessProbe, "/readyz"}} {
		if probe.p == nil || probe.p.HTTPGet == nil || probe.p.HTTPGet.Path != probe.path || probe.p.HTTPGet.Port.String() != "admin" {
			t.Errorf("%s probe: %+v", name, probe.p)
		}
	}
	f := decodeConfig(t, cm.Data["config.yaml"])
	if p := listenPort(t, f.AdminListen); p != containerPort(pod, "admin") {
		t.Errorf("admin_listen %s, admin container port %d", f.AdminListen, containerPort(pod, "admin"))
	}
	if p := listenPort(t, f.Listen); p != containerPort(pod, "https") {
		t.Errorf("listen %s, https container port %d", f.Listen, containerPort(pod, "https"))
	}
	files := []string{f.TLS.CertFile, f.TLS.KeyFile, f.TLS.ClientCAFile, f.Assertion.SigningKeyFile, f.Session.SecretsFile, f.Store.Path}
	files = append(files, f.Policies...)
	for _, file := range files {
		if file != "" && mountOf(pod, c, file) == nil {
			t.Errorf("%s is on no mounted volume", file)
		}
	}
	for _, vm := range c.VolumeMounts {
		if vm.SubPath != "" {
			t.Errorf("mount %s uses subPath: updates would not reach the pod", vm.Name)
		}
	}
	if terminationGrace := pod.TerminationGracePeriodSeconds; terminationGrace == nil || f.Server.ShutdownGrace.Seconds() >= float64(*terminationGrace) {
		t.Errorf("terminationGracePeriodSeconds %v, shutdown_grace %v", terminationGrace, f.Server.ShutdownGrace)
	}
	return f
}

// decodeConfig decodes a rendered config strictly into ztproxy's schema.
func decodeConfig(t *testing.T, raw string) *config.File {
	t.Helper()
	var f config.File
	dec := yaml.NewDecoder(strings.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("config.yaml: %v\n%s", err, raw)
	}
	return &f
}

// mountOf returns the volume holding file, or nil.
func mountOf(pod *corev1.PodSpec, c *corev1.Container, file string) *corev1.Volume {
	for _, vm := range c.VolumeMounts {
		if !strings.HasPrefix(file, vm.MountPath+"/") {
			continue
		}
		for i := range pod.Volumes {
			if pod.Volumes[i].Name == vm.Name {
				return &pod.Volumes[i]
			}
		}
	}
	return nil
}

func containerPort(pod *corev1.PodSpec, name string) int32 {
	for _, p := range pod.Containers[0].Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return -1
}

func listenPort(t *testing.T, addr string) int32 {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return int32(n)
}

// selects reports whether selector's labels are all in labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// Issue 19 (Kubernetes): the sidecar example is decoded with the same
// strict Kubernetes types as the chart.
func TestSidecarExampleSchema(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "examples", "kubernetes", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := decodeManifests(t, string(data))
	if len(m.deployments) != 1 || len(m.services) != 1 || len(m.configMaps) != 1 {
		t.Fatalf("objects: %+v", m)
	}
}
