package examples_test

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	"ztproxy/internal/testenv"
)

const cognitoTemplate = "cognito/cloudformation.yaml"

// cfnIntrinsics are the short-form intrinsic function tags the template may
// use; any other tag would be a typo CloudFormation rejects.
var cfnIntrinsics = []string{"!Ref", "!Sub", "!GetAtt", "!Join", "!Select", "!Split", "!If", "!Equals", "!Not", "!FindInMap", "!ImportValue", "!GetAZs", "!Base64", "!Condition", "!And", "!Or"}

// cfnTemplate is the template read twice: as nodes, to see intrinsic tags,
// and as plain values.
type cfnTemplate struct {
	root      *yaml.Node
	resources map[string]cfnResource
	params    map[string]any
	outputs   map[string]any
}

type cfnResource struct {
	Type       string         `yaml:"Type"`
	DependsOn  any            `yaml:"DependsOn"`
	Properties map[string]any `yaml:"Properties"`
}

func loadCFN(t *testing.T) cfnTemplate {
	t.Helper()
	data, err := os.ReadFile(cognitoTemplate)
	if err != nil {
		t.Fatal(err)
	}
	var tpl cfnTemplate
	tpl.root = new(yaml.Node)
	if err := yaml.Unmarshal(data, tpl.root); err != nil {
		t.Fatalf("%s: %v", cognitoTemplate, err)
	}
	var doc struct {
		Version    string                 `yaml:"AWSTemplateFormatVersion"`
		Parameters map[string]any         `yaml:"Parameters"`
		Resources  map[string]cfnResource `yaml:"Resources"`
		Outputs    map[string]any         `yaml:"Outputs"`
	}
	if err := tpl.root.Decode(&doc); err != nil {
		t.Fatalf("%s: %v", cognitoTemplate, err)
	}
	if doc.Version != "2010-09-09" {
		t.Errorf("AWSTemplateFormatVersion %q", doc.Version)
	}
	tpl.resources, tpl.params, tpl.outputs = doc.Resources, doc.Parameters, doc.Outputs
	return tpl
}

// ofType returns the logical ids of the resources of type typ, sorted.
func (tpl cfnTemplate) ofType(typ string) []string {
	var ids []string
	for id, r := range tpl.resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// flat is the text of a property value, intrinsic arguments included, for
// substring checks.
func flat(v any) string {
	out, _ := yaml.Marshal(v)
	return string(out)
}

// TestCognitoTemplateStructure (issue 21.5): the quick-start template of
// docs/cognito.md creates what the guide says, with its references intact.
func TestCognitoTemplateStructure(t *testing.T) {
	tpl := loadCFN(t)
	for typ, min := range map[string]int{
		"AWS::Cognito::UserPool": 1, "AWS::Cognito::UserPoolDomain": 1, "AWS::Cognito::UserPoolGroup": 2,
		"AWS::Cognito::UserPoolResourceServer": 1, "AWS::Cognito::UserPoolClient": 3,
		"AWS::IAM::OIDCProvider": 1, "AWS::IAM::Role": 1,
	} {
		if n := len(tpl.ofType(typ)); n < min {
			t.Errorf("%d resources of type %s, want at least %d", n, typ, min)
		}
	}
	var groups []string
	for _, id := range tpl.ofType("AWS::Cognito::UserPoolGroup") {
		groups = append(groups, flat(tpl.resources[id].Properties["GroupName"]))
	}
	if g := strings.Join(groups, ""); !strings.Contains(g, "eng") || !strings.Contains(g, "admins") {
		t.Errorf("groups %q, want eng and admins", groups)
	}
	var signIn, service bool
	for _, id := range tpl.ofType("AWS::Cognito::UserPoolClient") {
		p := tpl.resources[id].Properties
		flows := flat(p["AllowedOAuthFlows"])
		switch {
		case strings.Contains(flows, "code") && p["GenerateSecret"] == true:
			signIn = true
			for prop, suffix := range map[string]string{"CallbackURLs": "/.ztp/callback", "LogoutURLs": "/.ztp/signed-out"} {
				if !strings.Contains(flat(p[prop]), "${ExternalURL}"+suffix) {
					t.Errorf("%s.%s = %s, want ${ExternalURL}%s", id, prop, flat(p[prop]), suffix)
				}
			}
			if !strings.Contains(flat(p["AllowedOAuthScopes"]), "openid") {
				t.Errorf("%s: sign-in client without the openid scope", id)
			}
		case strings.Contains(flows, "client_credentials"):
			service = true
			if !strings.Contains(flat(p["AllowedOAuthScopes"]), "${ApiIdentifier}/read") || flat(tpl.resources[id].DependsOn) != "ApiResourceServer\n" {
				t.Errorf("%s: a service client needs a resource server scope (and DependsOn the server): %s", id, flat(p))
			}
		}
	}
	if !signIn || !service {
		t.Errorf("sign-in client %v, client-credentials client %v: want both", signIn, service)
	}
	role := flat(tpl.resources[tpl.ofType("AWS::IAM::Role")[0]].Properties["AssumeRolePolicyDocument"])
	for _, want := range []string{"sts:AssumeRoleWithWebIdentity", "CognitoOIDCProvider.Arn", ":aud", "${ZtproxyClient}"} {
		if !strings.Contains(role, want) {
			t.Errorf("the web identity role's trust policy lacks %q:\n%s", want, role)
		}
	}
	for _, out := range []string{"Issuer", "ZtproxyClientId", "ApiAudiences", "LogoutURL", "WebIdentityRoleArn"} {
		if tpl.outputs[out] == nil {
			t.Errorf("no output %s", out)
		}
	}
	checkCFNReferences(t, tpl)
}

var subVar = regexp.MustCompile(`\$\{([A-Za-z0-9:]+)(?:\.[A-Za-z]+)?\}`)

// checkCFNReferences: every intrinsic tag is a known function, and every
// name a !Ref, !GetAtt or ${} in !Sub names is a parameter, a resource, a
// pseudo parameter or a variable of the same !Sub.
func checkCFNReferences(t *testing.T, tpl cfnTemplate) {
	t.Helper()
	known := func(name string, local map[string]bool) bool {
		_, param := tpl.params[name]
		_, res := tpl.resources[name]
		return param || res || local[name] || strings.HasPrefix(name, "AWS::")
	}
	tags := 0
	var walk func(n *yaml.Node, local map[string]bool)
	walk = func(n *yaml.Node, local map[string]bool) {
		if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
			tags++
			if !slices.Contains(cfnIntrinsics, n.Tag) {
				t.Errorf("line %d: unknown intrinsic tag %s", n.Line, n.Tag)
			}
			switch n.Tag {
			case "!Ref":
				if !known(n.Value, local) {
					t.Errorf("line %d: !Ref %s names nothing", n.Line, n.Value)
				}
			case "!GetAtt":
				if name, _, _ := strings.Cut(n.Value, "."); !known(name, nil) {
					t.Errorf("line %d: !GetAtt %s names no resource", n.Line, n.Value)
				}
			case "!Sub":
				text, vars := n, map[string]bool{}
				if n.Kind == yaml.SequenceNode {
					text = n.Content[0]
					for i := 0; i+1 < len(n.Content[1].Content); i += 2 {
						vars[n.Content[1].Content[i].Value] = true
					}
				}
				for _, m := range subVar.FindAllStringSubmatch(text.Value, -1) {
					if !known(m[1], vars) {
						t.Errorf("line %d: !Sub ${%s} names nothing", n.Line, m[1])
					}
				}
			}
		}
		for _, c := range n.Content {
			walk(c, local)
		}
	}
	walk(tpl.root, nil)
	if tags == 0 {
		t.Error("no intrinsic function tags were seen: the YAML reader lost them")
	}
}

// TestCognitoTemplateLint runs cfn-lint (AWS's CloudFormation linter, which
// checks every resource against the CloudFormation resource schemas). It is
// not a Debian package; the CI machine image ships it.
func TestCognitoTemplateLint(t *testing.T) {
	lint, err := exec.LookPath("cfn-lint")
	testenv.RequireComponent(t, "cfn-lint", err)
	out, err := exec.Command(lint, "--format", "parseable", cognitoTemplate).CombinedOutput()
	if err != nil {
		t.Errorf("cfn-lint %s: %v\n%s", cognitoTemplate, err, out)
	}
}
