// Package deploy_test checks the deployment artefacts under deploy/ and
// examples/kubernetes: the Helm chart is linted and rendered by the real
// helm (a Go module program, cached by .ci/run), and every rendered
// manifest is decoded strictly into the Kubernetes API types (unknown or
// duplicate fields, wrong types and unknown kinds are errors) and its
// object metadata checked with apimachinery's own validation. The Grafana
// dashboard and the Prometheus rules are checked in dashboards_test.go.
package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// (monitoring.coreos.com/v1) the chart renders. The CRD's Go types live
// in a module of their own that would bring a second Kubernetes client
// along, so this mirror of its field names stands in for them: decoding
// is strict, so a misspelt or misplaced field still fails.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Scheme        string `json:"scheme"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// manifests are the decoded objects of one rendering, by kind.
type manifests struct {
	deployments     []*appsv1.Deployment
	services        []*corev1.Service
	configMaps      []*corev1.ConfigMap
	serviceAccounts []*corev1.ServiceAccount
	pdbs            []*policyv1.PodDisruptionBudget
	serviceMonitors []*serviceMonitor
}

var decoder = func() runtime.Decoder {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
}()

// decodeManifests splits a multi-document YAML stream and decodes every
// document strictly into its API type.
func decodeManifests(t *testing.T, stream string) manifests {
	t.Helper()
	var m manifests
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(stream)))
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		if err := m.add(doc); err != nil {
			t.Fatalf("document %d: %v\n%s", i, err, doc)
		}
	}
	return m
}

func (m *manifests) add(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	if tm.Kind == "ServiceMonitor" {
		if tm.APIVersion != "monitoring.coreos.com/v1" {
			return fmt.Errorf("ServiceMonitor apiVersion %q", tm.APIVersion)
		}
		var sm serviceMonitor
		if err := yaml.UnmarshalStrict(doc, &sm); err != nil {
			return err
		}
		m.serviceMonitors = append(m.serviceMonitors, &sm)
		return validateMeta(&sm.ObjectMeta)
	}
	obj, _, err := decoder.Decode(doc, nil, nil)
	if err != nil {
		return err
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		m.deployments = append(m.deployments, o)
	case *corev1.Service:
		m.services = append(m.services, o)
	case *corev1.ConfigMap:
		m.configMaps = append(m.configMaps, o)
	case *corev1.ServiceAccount:
		m.serviceAccounts = append(m.serviceAccounts, o)
	case *policyv1.PodDisruptionBudget:
		m.pdbs = append(m.pdbs, o)
	default:
		return fmt.Errorf("unexpected kind %T", obj)
	}
	acc, ok := obj.(metav1.ObjectMetaAccessor)
	if !ok {
		return fmt.Errorf("%T has no object metadata", obj)
	}
	return validateMeta(acc.GetObjectMeta().(*metav1.ObjectMeta))
}

// validateMeta runs apimachinery's object metadata validation: a DNS
// subdomain name, valid label keys and values, valid annotations.
func validateMeta(meta *metav1.ObjectMeta) error {
	errs := apivalidation.ValidateObjectMeta(meta, false, apivalidation.NameIsDNSSubdomain, nil)
	return errs.ToAggregate()
}

// stripComments drops comment-only lines, so a document that holds only
// comments (a disabled template) counts as empty.
func stripComments(doc []byte) []byte {
	var out bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if trimmed := bytes.TrimSpace(line); len(trimmed) > 0 && trimmed[0] != '#' {
			out.Write(line)
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}
