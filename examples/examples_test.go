// Package examples_test checks that the deployment examples parse and keep
// the structure the docs describe. It cannot run Kubernetes, ECS or Envoy;
// the Envoy configuration is checked against Envoy's own protobuf schema
// and validation rules instead.
package examples_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	yaml "go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"ztproxy/config"
)

// yamlDocs decodes every document of a YAML file.
func yamlDocs(t *testing.T, name string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", name, len(docs)+1, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
	if len(docs) == 0 {
		t.Fatalf("%s: no documents", name)
	}
	return docs
}

// TestExamplesParse parses every YAML and JSON file under examples/.
func TestExamplesParse(t *testing.T) {
	n := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch filepath.Ext(path) {
		case ".yaml", ".yml":
			yamlDocs(t, path)
			n++
		case ".json":
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			var v any
			if err := json.Unmarshal(data, &v); err != nil {
				t.Errorf("%s: %v", path, err)
			}
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Fatalf("found only %d YAML/JSON examples", n)
	}
}

// get walks a decoded YAML/JSON tree by map keys and list indexes.
func get(t *testing.T, v any, path ...any) any {
	t.Helper()
	for i, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not a map at %v", path, path[:i])
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("%v: no item %d at %v", path, k, path[:i])
			}
			v = l[k]
		}
	}
	return v
}

// kind returns the first document of the given Kubernetes kind.
func kind(t *testing.T, docs []map[string]any, k string) map[string]any {
	t.Helper()
	for _, d := range docs {
		if d["kind"] == k {
			return d
		}
	}
	t.Fatalf("no %s document", k)
	return nil
}

func TestKubernetesDeployment(t *testing.T) {
	docs := yamlDocs(t, "kubernetes/deployment.yaml")
	dep := kind(t, docs, "Deployment")
	spec := get(t, dep, "spec", "template", "spec")
	containers := get(t, spec, "containers").([]any)
	if len(containers) != 2 {
		t.Fatalf("want app + ztproxy containers, got %d", len(containers))
	}
	var ztp map[string]any
	for _, c := range containers {
		c := c.(map[string]any)
		sc := get(t, c, "securityContext")
		if get(t, sc, "runAsNonRoot") != true || get(t, sc, "readOnlyRootFilesystem") != true || get(t, sc, "allowPrivilegeEscalation") != false {
			t.Errorf("container %v: securityContext %v", c["name"], sc)
		}
		if c["name"] == "ztproxy" {
			ztp = c
		}
	}
	if ztp == nil {
		t.Fatal("no ztproxy container")
	}
	if get(t, spec, "securityContext", "runAsNonRoot") != true {
		t.Error("pod securityContext lacks runAsNonRoot")
	}

	// The ztproxy config in the ConfigMap decodes strictly into the real
	// schema, and its admin listener is the port the probes use.
	cm := kind(t, docs, "ConfigMap")
	raw := get(t, cm, "data", "config.yaml").(string)
	var f config.File
	dec := yaml.NewDecoder(strings.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("ConfigMap config.yaml: %v", err)
	}
	if f.Mode != config.ModeSidecar || f.Sidecar == nil || f.Sidecar.Upstream != "http://127.0.0.1:8080" {
		t.Errorf("config: mode %q, sidecar %+v", f.Mode, f.Sidecar)
	}
	_, adminPort, err := net.SplitHostPort(f.AdminListen)
	if err != nil {
		t.Fatal(err)
	}
	_, publicPort, _ := net.SplitHostPort(f.Listen)
	ports := map[string]string{}
	for _, p := range get(t, ztp, "ports").([]any) {
		p := p.(map[string]any)
		ports[p["name"].(string)] = jsonNumber(p["containerPort"])
	}
	if ports["admin"] != adminPort || ports["https"] != publicPort {
		t.Errorf("container ports %v, config listen %s admin_listen %s", ports, f.Listen, f.AdminListen)
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"} {
		if get(t, ztp, probe, "httpGet", "port") != "admin" || get(t, ztp, probe, "httpGet", "path") != path {
			t.Errorf("%s: %v", probe, get(t, ztp, probe))
		}
	}

	// Certificates come from mounted secrets, at the paths the config names.
	mounts := map[string]string{}
	for _, m := range get(t, ztp, "volumeMounts").([]any) {
		m := m.(map[string]any)
		mounts[m["name"].(string)] = m["mountPath"].(string)
		// Issue 19: a subPath mount never sees ConfigMap or Secret updates,
		// so ztproxy would not reload them.
		if _, ok := m["subPath"]; ok {
			t.Errorf("mount %v uses subPath", m["name"])
		}
	}
	secrets := map[string]bool{}
	for _, v := range get(t, spec, "volumes").([]any) {
		v := v.(map[string]any)
		if _, ok := v["secret"]; ok {
			secrets[v["name"].(string)] = true
		}
	}
	for _, file := range []string{f.TLS.CertFile, f.TLS.KeyFile, f.TLS.ClientCAFile} {
		found := false
		for vol := range secrets {
			if strings.HasPrefix(file, mounts[vol]+"/") {
				found = true
			}
		}
		if !found {
			t.Errorf("%s is not on a mounted secret (mounts %v, secrets %v)", file, mounts, secrets)
		}
	}
	if svc := kind(t, docs, "Service"); strings.Contains(jsonString(t, svc), "9090") || strings.Contains(jsonString(t, svc), `"admin"`) {
		t.Error("the Service exposes the admin listener")
	}
}

func TestECSTaskDefinition(t *testing.T) {
	data, err := os.ReadFile("kubernetes/ecs-task-definition.json")
	if err != nil {
		t.Fatal(err)
	}
	var td struct {
		ContainerDefinitions []struct {
			Name         string `json:"name"`
			Essential    bool   `json:"essential"`
			PortMappings []struct {
				ContainerPort int `json:"containerPort"`
			} `json:"portMappings"`
			HealthCheck *struct {
				Command []string `json:"command"`
			} `json:"healthCheck"`
			ReadonlyRootFilesystem bool `json:"readonlyRootFilesystem"`
		} `json:"containerDefinitions"`
	}
	if err := json.Unmarshal(data, &td); err != nil {
		t.Fatal(err)
	}
	if len(td.ContainerDefinitions) != 2 {
		t.Fatalf("want app + ztproxy, got %d containers", len(td.ContainerDefinitions))
	}
	for _, c := range td.ContainerDefinitions {
		if !c.ReadonlyRootFilesystem || !c.Essential {
			t.Errorf("%s: readonlyRootFilesystem %v essential %v", c.Name, c.ReadonlyRootFilesystem, c.Essential)
		}
		if c.Name != "ztproxy" {
			continue
		}
		ports := map[int]bool{}
		for _, p := range c.PortMappings {
			ports[p.ContainerPort] = true
		}
		if !ports[8443] || !ports[9090] {
			t.Errorf("ztproxy port mappings: %v", ports)
		}
		// Issue 19: the distroless image has no shell or wget; the binary
		// probes /readyz itself, in exec form.
		if c.HealthCheck == nil || strings.Join(c.HealthCheck.Command, " ") != "CMD /usr/local/bin/ztproxy healthcheck --admin 127.0.0.1:9090" {
			t.Errorf("ztproxy health check: %+v", c.HealthCheck)
		}
	}
}

// TestEnvoyConfig decodes envoy.yaml into Envoy's Bootstrap message (unknown
// fields and types are errors), runs Envoy's validation rules, and checks
// the ext_authz wiring.
func TestEnvoyConfig(t *testing.T) {
	docs := yamlDocs(t, "envoy/envoy.yaml")
	js, err := json.Marshal(docs[0])
	if err != nil {
		t.Fatal(err)
	}
	var bs bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &bs); err != nil {
		t.Fatalf("envoy.yaml is not a valid Bootstrap: %v", err)
	}
	if err := bs.ValidateAll(); err != nil {
		t.Fatalf("envoy.yaml fails Envoy's validation: %v", err)
	}
	clusters := map[string]bool{}
	for _, c := range bs.GetStaticResources().GetClusters() {
		clusters[c.GetName()] = true
		if c.GetName() == "ztproxy_ext_authz" {
			var opts upstreamhttpv3.HttpProtocolOptions
			anyOpts := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
			if anyOpts == nil || anyOpts.UnmarshalTo(&opts) != nil || opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
				t.Error("the ext_authz cluster does not speak HTTP/2 (gRPC)")
			}
		}
	}
	if !clusters["app"] || !clusters["ztproxy_ext_authz"] {
		t.Fatalf("clusters: %v", clusters)
	}
	listeners := bs.GetStaticResources().GetListeners()
	if len(listeners) != 1 {
		t.Fatalf("want one listener, got %d", len(listeners))
	}
	var hcm hcmv3.HttpConnectionManager
	if err := listeners[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		t.Fatal(err)
	}
	filters := hcm.GetHttpFilters()
	if len(filters) < 2 || filters[0].GetName() != "envoy.filters.http.ext_authz" || filters[len(filters)-1].GetName() != "envoy.filters.http.router" {
		t.Fatalf("http filters: ext_authz must come first and router last: %v", filters)
	}
	var ea extauthzv3.ExtAuthz
	if err := filters[0].GetTypedConfig().UnmarshalTo(&ea); err != nil {
		t.Fatal(err)
	}
	if ea.GetTransportApiVersion().String() != "V3" || ea.GetFailureModeAllow() || ea.GetWithRequestBody() != nil {
		t.Errorf("ext_authz: api %v, failure_mode_allow %v, with_request_body %v", ea.GetTransportApiVersion(), ea.GetFailureModeAllow(), ea.GetWithRequestBody())
	}
	if ea.GetGrpcService().GetEnvoyGrpc().GetClusterName() != "ztproxy_ext_authz" {
		t.Errorf("ext_authz grpc_service: %v", ea.GetGrpcService())
	}
	// Every route to the app is checked; /.ztp/verify is never reachable.
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			_, exempt := r.GetTypedPerFilterConfig()["envoy.filters.http.ext_authz"]
			if r.GetRoute().GetCluster() == "app" && exempt {
				t.Errorf("route %v to the app skips ext_authz", r.GetMatch())
			}
			if r.GetMatch().GetPath() == "/.ztp/verify" && r.GetDirectResponse().GetStatus() != 404 {
				t.Errorf("/.ztp/verify is reachable through Envoy")
			}
		}
	}
}

func jsonNumber(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
