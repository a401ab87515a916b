package config

// SecurityEvents configures the Shared Signals receiver at
// /.ztp/security-events (issue 17): Security Event Tokens pushed by the
// transmitters listed here. Without transmitters the endpoint answers 404.
type SecurityEvents struct {
	Transmitters []SETTransmitter `yaml:"transmitters"`
}

// SETTransmitter is one transmitter of security events.
type SETTransmitter struct {
	// Name labels the transmitter in logs and in the flags it sets.
	Name string `yaml:"name"`
	// Issuer is the iss of its SETs, compared exactly.
	Issuer string `yaml:"issuer"`
	// JWKSURL is where its signing keys are published (https; http only
	// for loopback).
	JWKSURL string `yaml:"jwks_url"`
	// Audience is the aud its SETs must carry; default external_url.
	Audience string `yaml:"audience"`
	// IdP names the entry of idps whose session ids (sid) the
	// transmitter's session subjects refer to; optional.
	IdP string `yaml:"idp"`
}

// AdminAPI configures the operator API under /.ztp/admin/v1/ on the TLS
// listener (issue 17). It is off until an operator identity is listed;
// it is never anonymous and never served over plain HTTP.
type AdminAPI struct {
	// ClientSPIFFEIDs are the SPIFFE ids of client certificates (verified
	// by tls.client_ca_file) that may call it.
	ClientSPIFFEIDs []string `yaml:"client_spiffe_ids"`
	// BearerIdP names the entry of idps whose bearer tokens may call it,
	// when the token's groups include one of AdminGroups.
	BearerIdP   string   `yaml:"bearer_idp"`
	AdminGroups []string `yaml:"admin_groups"`
}

// Enabled reports whether any operator identity is configured.
func (a AdminAPI) Enabled() bool {
	return len(a.ClientSPIFFEIDs) > 0 || a.BearerIdP != "" || len(a.AdminGroups) > 0
}
