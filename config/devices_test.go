package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Issue 16: the devices block is checked with every problem at its path.
func TestDevicesProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"off by default", head + publicRoute, nil},
		{"on a plaintext listener without files or sign-in", head + publicRoute + "devices: {enabled: true}\n", []string{
			"devices.enabled: devices present certificates: set tls.client_auth to request (or require) on a TLS listener",
			"devices.enabled: enrolment signs users in with the browser: configure session.secrets and an idp with client_id",
			"devices.ca_cert_file: required (create one with `ztproxy certs device-ca`)",
			"devices.ca_key_file: required (create one with `ztproxy certs device-ca`)",
		}},
		{"bad values", head + publicRoute + `devices:
  enabled: true
  ca_cert_file: certs/client-ca.crt
  ca_key_file: certs/server.key
  trust_domain: "Corp Example"
  cert_lifetime: 10m
  cache_ttl: 2h
  max_per_user: 0
  enrollment: {require: sms, max_age: 5s}
  vendors:
    - {name: "two words", issuer: "https://edr", jwks_url: "https://edr/jwks", jwks_file: x.json, fact_claims: {colour: a.b}}
    - {name: edr, issuer: "https://edr"}
`, []string{
			"devices.enabled: devices present certificates: set tls.client_auth to request (or require) on a TLS listener",
			"devices.enabled: enrolment signs users in with the browser: configure session.secrets and an idp with client_id",
			`devices.trust_domain: "Corp Example" must hold only a-z, 0-9, '.', '-' and '_'`,
			"devices.cert_lifetime: must be between 1h0m0s and 2160h0m0s",
			"devices.cache_ttl: must be between 1s and 1h0m0s",
			"devices.max_per_user: must be between 1 and 1000",
			"devices.enrollment.max_age: must be between 1m0s and 1h0m0s",
			`devices.enrollment.require: must be mfa or webauthn, not "sms"`,
			"devices.vendors[0].name: must be a unique word",
			"devices.vendors[0]: set exactly one of jwks_url and jwks_file",
			`devices.vendors[0].fact_claims: "colour" is not a posture fact (os, os_version, kernel, disk_encrypted, firewall, screen_lock)`,
			"devices.vendors[1].issuer: must be set and unique",
			"devices.vendors[1]: set exactly one of jwks_url and jwks_file",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "testdata", Options{LookupEnv: noEnv})
			if diff := cmp.Diff(tt.want, problemsOf(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
