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
