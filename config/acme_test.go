package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Issue 19 (ACME): check-config validates tls.acme and reports every
// problem with its path.
func TestACMEProblems(t *testing.T) {
	top := strings.Replace(head, "insecure_plaintext: true\n", "", 1)
	for _, tt := range []struct {
		name, acme string
		want       []string
	}{
		{"valid", `{domains: [ztp.example.com, app.example.com], email: ops@example.com, accept_tos: true, http_listen: ":8080", renew_before: 240h}`, nil},
		{"directory of a private CA", `{domains: [ztp.example.com], accept_tos: true, directory_url: "https://acme.internal.example/dir"}`, nil},
		{"terms not accepted, no domains", `{domains: []}`, []string{
			"tls.acme.domains: list 1 to 100 host names, not 0",
			"tls.acme.accept_tos: must be true: ztproxy accepts the ACME CA's terms of service on your behalf",
		}},
		{"bad names", `{domains: ["*.example.com", "Upper.example.com", "10.0.0.1", localhost, ztp.example.com, ztp.example.com], accept_tos: true}`, []string{
			`tls.acme.domains[0]: "*.example.com": wildcards need DNS-01, which ztproxy does not do`,
			`tls.acme.domains[1]: "Upper.example.com" is not a lower-case host name`,
			`tls.acme.domains[2]: "10.0.0.1" is not a lower-case host name`,
			`tls.acme.domains[3]: "localhost" is not a lower-case host name`,
			`tls.acme.domains[5]: "ztp.example.com" is listed twice`,
		}},
		{"bad fields", `{domains: [ztp.example.com], accept_tos: true, email: "a@b, c@d", directory_url: "http://acme.example.com/dir", http_listen: ":8443", renew_before: 30m}`, []string{
			`tls.acme.email: "a@b, c@d" is not an email address`,
			"tls.acme.directory_url: must use https (http is allowed only for loopback hosts)",
			`tls.acme.http_listen: must be an address of its own (port 80, or what the load balancer maps to it), not ":8443"`,
			"tls.acme.renew_before: must be between 1h and 2160h, not 30m0s",
		}},
		{"with certificate files", `{domains: [ztp.example.com], accept_tos: true}
  cert_file: certs/server.crt`, []string{
			"tls.acme: set tls.acme or tls.cert_file and tls.key_file, not both",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			yaml := top + "tls:\n  acme: " + tt.acme + "\n" + publicRoute
			_, err := Parse([]byte(yaml), "testdata", Options{LookupEnv: noEnv})
			got := problemsOf(t, err)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
