package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"ztproxy/internal/stsdouble"
	"ztproxy/internal/testenv"
)

// The monitoring artefacts of issue 19: a Grafana dashboard and Prometheus
// alert rules. Both reference ztproxy's metrics by name; these tests keep
// them parseable by Prometheus's own parsers and in step with what the
// binary exports.
var (
	dashboardFile  = filepath.Join("deploy", "grafana", "ztproxy.json")
	alertRulesFile = filepath.Join("deploy", "prometheus", "alerts.yaml")
)

var promql = parser.NewParser(parser.Options{})

// grafanaVars are the dashboard variables an expression may use, with a
// value that makes it plain PromQL. A variable not listed here fails the
// test, so a new one must be added deliberately.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h",
	"$job", ".*", "$route", ".*",
)

var grafanaVarRef = regexp.MustCompile(`\$\{?[A-Za-z_]+`)

// exprMetrics parses a PromQL expression and returns the metric names it
// selects.
func exprMetrics(expr string) ([]string, error) {
	e, err := promql.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			if vs.Name == "" {
				err = fmt.Errorf("selector %s has no metric name", vs)
			}
			names = append(names, vs.Name)
		}
		return nil
	})
	return names, err
}

// alertRuleMetrics parses the alert rules with Prometheus's rule parser
// (rule names, label and annotation templates, PromQL) and returns the
// metrics they reference, each with the alert that does.
func alertRuleMetrics(t *testing.T) map[string][]string {
	t.Helper()
	path := filepath.Join(testenv.RepoRoot(t), alertRulesFile)
	groups, errs := rulefmt.ParseFile(path, false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("%s: %v", alertRulesFile, err)
	}
	if groups == nil || len(groups.Groups) == 0 {
		t.Fatalf("%s: no rule groups", alertRulesFile)
	}
	used := map[string][]string{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %q: every rule is an alert with a severity and a summary", r.Alert+r.Record)
			}
			names, err := exprMetrics(r.Expr)
			if err != nil {
				t.Errorf("alert %s: %v", r.Alert, err)
			}
			for _, n := range names {
				used[n] = append(used[n], "alert "+r.Alert)
			}
		}
	}
	return used
}

// grafanaDashboard is the part of Grafana's dashboard model the checks read.
type grafanaDashboard struct {
	Title      string `json:"title"`
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *grafanaDS      `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []grafanaTarget `json:"list"`
	} `json:"annotations"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaDS struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaTarget struct {
	Name       string     `json:"name"`
	Expr       string     `json:"expr"`
	RefID      string     `json:"refId"`
	Datasource *grafanaDS `json:"datasource"`
}

type grafanaPanel struct {
	ID         int        `json:"id"`
	Type       string     `json:"type"`
	Title      string     `json:"title"`
	Datasource *grafanaDS `json:"datasource"`
	GridPos    *struct{ W, H int }
	Targets    []grafanaTarget `json:"targets"`
}

// dashboardMetrics checks the dashboard's structure — valid JSON, a
// Prometheus data source variable that every panel, query and variable
// uses, unique panel ids — parses every query with Prometheus's PromQL
// parser, and returns the metrics the queries reference.
func dashboardMetrics(t *testing.T) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: title %q, uid %q, %d panels", dashboardFile, d.Title, d.UID, len(d.Panels))
	}
	used := map[string][]string{}
	addExpr := func(where, expr string) {
		for _, ref := range grafanaVarRef.FindAllString(grafanaVars.Replace(expr), -1) {
			t.Errorf("%s: unknown dashboard variable %s in %q", where, ref, expr)
		}
		names, err := exprMetrics(grafanaVars.Replace(expr))
		if err != nil {
			t.Errorf("%s: %q: %v", where, expr, err)
		}
		for _, n := range names {
			used[n] = append(used[n], where)
		}
	}
	checkDS := func(where string, ds *grafanaDS) {
		if ds == nil || ds.Type != "prometheus" || (ds.UID != "${datasource}" && ds.UID != "$datasource") {
			t.Errorf("%s: data source %+v, want the ${datasource} variable", where, ds)
		}
	}
	hasDSVar := false
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			hasDSVar = v.Name == "datasource" && string(v.Query) == `"prometheus"`
		case "query":
			checkDS("variable "+v.Name, v.Datasource)
			expr := strings.TrimSuffix(strings.TrimPrefix(v.Definition, "label_values("), ")")
			expr = expr[:strings.LastIndex(expr, ",")]
			addExpr("variable "+v.Name, expr)
		}
	}
	if !hasDSVar {
		t.Errorf("%s: no Prometheus data source variable named datasource", dashboardFile)
	}
	for _, a := range d.Annotations.List {
		checkDS("annotation "+a.Name, a.Datasource)
		addExpr("annotation "+a.Name, a.Expr)
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel %q: duplicate id %d", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		where := fmt.Sprintf("panel %q", p.Title)
		checkDS(where, p.Datasource)
		if len(p.Targets) == 0 || p.GridPos == nil || p.GridPos.W == 0 {
			t.Errorf("%s: %d queries, grid %+v", where, len(p.Targets), p.GridPos)
		}
		for _, tg := range p.Targets {
			checkDS(where+" query "+tg.RefID, tg.Datasource)
			addExpr(where, tg.Expr)
		}
	}
	return used
}

// Issue 19 (dashboards and alerts): the alert rules pass Prometheus's rule
// parser and the dashboard is a valid Grafana dashboard with a data
// source variable and queries Prometheus parses. (The metrics they name
// are checked against the real binary by TestMonitoringMetricsExported.)
func TestMonitoringArtefactsParse(t *testing.T) {
	if used := alertRuleMetrics(t); len(used) < 10 {
		t.Errorf("alert rules reference only %d metrics", len(used))
	}
	if used := dashboardMetrics(t); len(used) < 15 {
		t.Errorf("dashboard references only %d metrics", len(used))
	}
}

// Issue 19 (dashboards and alerts): every metric the dashboard and the
// alert rules reference is exported by the real binary. It runs ztproxy
// against the real OpenID provider (npm oidc-provider) and the STS double,
// drives allowed, denied, unauthenticated and forged-key requests and an
// AWS credential mint, then scrapes /metrics on the admin listener.
func TestMonitoringMetricsExported(t *testing.T) {
	want := alertRuleMetrics(t)
	for name, where := range dashboardMetrics(t) {
		want[name] = append(want[name], where...)
	}
	p := startMonitoredProxy(t)
	families := scrapeFamilies(t, p)
	var missing []string
	for name, where := range want {
		if !exported(families, name) {
			missing = append(missing, fmt.Sprintf("%s (used by %s)", name, strings.Join(where, ", ")))
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("not exported by ztproxy after the test traffic: %s", m)
	}
	// Refusals are counted by reason: bob's denial (no permit applied) and
	// the request without a token.
	for _, want := range []map[string]string{
		{"route": "api", "decision": "deny", "reason": "forbidden", "policy": ""},
		{"route": "api", "decision": "unauthenticated", "reason": "invalid_token", "policy": ""},
	} {
		if !hasSeries(families["ztproxy_requests_denied_total"], want) {
			t.Errorf("no ztproxy_requests_denied_total series %v", want)
		}
	}
}

// hasSeries reports whether f has a series with exactly these labels.
func hasSeries(f *dto.MetricFamily, labels map[string]string) bool {
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		if maps.Equal(got, labels) {
			return true
		}
	}
	return false
}

// exported reports whether a scraped family (with at least one sample)
// answers to name, the suffixes of histograms included.
func exported(families map[string]*dto.MetricFamily, name string) bool {
	if f, ok := families[name]; ok {
		return len(f.GetMetric()) > 0
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if f := families[base]; ok && f != nil && f.GetType() == dto.MetricType_HISTOGRAM {
			return len(f.GetMetric()) > 0
		}
	}
	return false
}

func scrapeFamilies(t *testing.T, p *proc) map[string]*dto.MetricFamily {
	t.Helper()
	tp := expfmt.NewTextParser(model.UTF8Validation)
	families, err := tp.TextToMetricFamilies(strings.NewReader(p.metrics(t)))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return families
}

// startMonitoredProxy runs ztproxy with a bearer route and an AWS role,
// and sends it the traffic that makes every labelled series appear.
func startMonitoredProxy(t *testing.T) *proc {
	t.Helper()
	dir := t.TempDir()
	certDir := filepath.Join(dir, "certs")
	if code, out := runZtproxy(t, "certs", "dev", "--out", certDir); code != 0 {
		t.Fatal(out)
	}
	op := startAWSTestOP(t, "monitoring-secret")
	sts := stsdouble.Start(t, stsdouble.Config{
		AccountID: "123456789012",
		Roles:     []stsdouble.Role{{ARN: "arn:aws:iam::123456789012:role/analyst"}},
		OIDC:      &stsdouble.OIDC{Issuer: op.Issuer, Audience: "ztproxy", JWKSURL: op.JWKSURI},
	})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	t.Cleanup(upstream.Close)
	writeFile(t, filepath.Join(dir, "p.cedar"), awsPolicies)
	public := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	writeFile(t, filepath.Join(dir, "z.yaml"), fmt.Sprintf(`
listen: %q
admin_listen: %q
external_url: "https://%s"
tls: {cert_file: certs/server.pem, key_file: certs/server-key.pem, client_ca_file: certs/ca.pem, client_auth: request}
policies: [p.cedar]
idps:
  - {name: corp, issuer: %q, audiences: [ztproxy]}
store: {path: state.db}
audit: {output: %q}
aws:
  region: us-east-1
  sts_endpoint: %q
  roles:
    - {name: analyst, role_arn: "arn:aws:iam::123456789012:role/analyst", mode: web_identity}
routes:
  - {name: api, host: 127.0.0.1, path_prefix: /api, upstream: %q, auth: bearer}
`, public, admin, public, op.Issuer, filepath.Join(dir, "audit.log"), sts.URL, upstream.URL))
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	p := startServe(t, filepath.Join(dir, "z.yaml"), admin, public)

	base := "https://" + public
	client := tlsClient(t, certDir, false)
	oc := op.Client(t, "ztproxy")
	alice := op.CodeFlowTokens(t, oc, op.User(t, "alice"), "", false).IDToken
	bob := op.CodeFlowTokens(t, oc, op.User(t, "bob"), "", false).IDToken
	expect := func(path, token string, status int) {
		t.Helper()
		hdr := map[string]string{}
		if token != "" {
			hdr["Authorization"] = "Bearer " + token
		}
		if resp, body := get(t, client, base+path, hdr); resp.StatusCode != status {
			t.Fatalf("%s: %d %s, want %d", path, resp.StatusCode, body, status)
		}
	}
	for range 3 {
		expect("/api/items", alice, 200)
	}
	expect("/api/items", bob, 403)
	expect("/api/items", "", 401)
	// Tokens naming a key the IdP never published: the first may fetch the
	// key set, the next ones within jwks_min_refetch_interval are refused
	// without a fetch.
	for range 3 {
		expect("/api/items", unknownKidToken(op.Issuer), 401)
	}
	// A mint, then a cache hit.
	for range 2 {
		expect("/.ztp/aws/credentials?role=analyst", alice, 200)
	}
	if n := sts.Calls("AssumeRoleWithWebIdentity"); n != 1 {
		t.Fatalf("STS calls %d, want 1 (then cached)", n)
	}
	return p
}

// startAWSTestOP is the OpenID provider of the AWS tests: alice (eng) and
// bob (sales), and tokens that live an hour, as Cognito's do by default
// (credentials never outlive the caller's token, and STS's minimum is 15
// minutes).
func startAWSTestOP(t *testing.T, clientSecret string) *testenv.OIDCProvider {
	t.Helper()
	return testenv.StartOIDC(t, testenv.OIDCOptions{
		IDTokenTTL: time.Hour, AccessTokenTTL: time.Hour,
		Clients: []testenv.OIDCClient{{ID: "ztproxy", Secret: clientSecret, RedirectURIs: []string{"http://127.0.0.1/cb"}}},
		Users: []testenv.OIDCUser{
			{Sub: "alice", Email: "alice@ztp.test", Password: "alice-pw", Groups: []string{"eng"}},
			{Sub: "bob", Email: "bob@ztp.test", Password: "bob-pw", Groups: []string{"sales"}},
		},
	})
}

// unknownKidToken is a JWT whose header names a key no one published; its
// signature is never checked, as no key is found for it.
func unknownKidToken(issuer string) string {
	enc := base64.RawURLEncoding.EncodeToString
	header := enc([]byte(`{"alg":"RS256","typ":"JWT","kid":"made-up-kid"}`))
	claims := enc(fmt.Appendf(nil, `{"iss":%q,"aud":"ztproxy","sub":"mallory","exp":%d}`, issuer, time.Now().Add(time.Hour).Unix()))
	return header + "." + claims + "." + enc([]byte("not-a-signature"))
}
