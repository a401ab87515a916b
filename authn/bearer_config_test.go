package authn

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestIdPConfigDefaults(t *testing.T) {
	c := IdPConfig{Name: "cognito", Issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc", Audiences: []string{"client"}}
	if err := c.CheckAndSetDefaults(); err != nil {
		t.Fatalf("CheckAndSetDefaults: %v", err)
	}
	if c.GroupsClaim != "groups" {
		t.Errorf("GroupsClaim = %q, want groups", c.GroupsClaim)
	}
	if diff := cmp.Diff(DefaultAllowedAlgs, c.AllowedAlgs); diff != "" {
		t.Errorf("AllowedAlgs (-want +got):\n%s", diff)
	}
	c.AllowedAlgs[0] = "changed"
	if DefaultAllowedAlgs[0] != "RS256" {
		t.Error("defaulted AllowedAlgs aliases DefaultAllowedAlgs")
	}
}

func TestIdPConfigReportsEveryProblem(t *testing.T) {
	c := IdPConfig{
		Issuer:         "http://idp.example.com",
		JWKSURL:        "ftp://idp.example.com/jwks",
		Audiences:      []string{""},
		TokenUse:       "refresh",
		AllowedAlgs:    []string{"none", "HS256", "RS256", "XY999"},
		ClaimsToExpose: []string{""},
	}
	err := c.CheckAndSetDefaults()
	if err == nil {
		t.Fatal("CheckAndSetDefaults accepted a bad config")
	}
	for _, want := range []string{
		"name: must be set",
		"issuer: \"http://idp.example.com\": http is allowed only for loopback",
		"jwks_url:",
		"audiences[0]: must not be empty",
		"token_use:",
		`allowed_algs[0]: "none" is never accepted`,
		"allowed_algs[1]: \"HS256\": HMAC",
		"allowed_algs[3]: \"XY999\" is not supported",
		"claims_to_expose[0]",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "allowed_algs[2]") {
		t.Errorf("RS256 reported as a problem:\n%v", err)
	}
	empty := IdPConfig{Name: "x", Issuer: "https://idp.example.com"}
	if err := empty.CheckAndSetDefaults(); err == nil || !strings.Contains(err.Error(), "audiences: at least one") {
		t.Errorf("missing audiences: error = %v", err)
	}
	local := IdPConfig{Name: "x", Issuer: "http://127.0.0.1:8080", Audiences: []string{"a"}}
	if err := local.CheckAndSetDefaults(); err != nil {
		t.Errorf("loopback http issuer rejected: %v", err)
	}
}

func TestBearerConfigChecks(t *testing.T) {
	idp := IdPConfig{Name: "a", Issuer: "https://idp.example.com", Audiences: []string{"c"}}
	callerIdPs := []IdPConfig{idp, idp}
	c := BearerConfig{IdPs: callerIdPs, CacheSize: -1}
	err := c.CheckAndSetDefaults()
	for _, want := range []string{"idps[1].name", "idps[1].issuer", "cache_size"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if callerIdPs[0].GroupsClaim != "" {
		t.Error("CheckAndSetDefaults modified the caller's IdPs slice")
	}
	if _, err := NewBearerVerifier(BearerConfig{}); err == nil {
		t.Error("NewBearerVerifier accepted a config without IdPs")
	}

	noTimeout := &http.Client{}
	c = BearerConfig{IdPs: []IdPConfig{idp}, HTTPClient: noTimeout}
	if err := c.CheckAndSetDefaults(); err != nil {
		t.Fatal(err)
	}
	if c.HTTPClient.Timeout != 10*time.Second || noTimeout.Timeout != 0 {
		t.Errorf("timeouts: config %v, caller's client %v; want 10s and untouched", c.HTTPClient.Timeout, noTimeout.Timeout)
	}
	if c.CacheSize != DefaultTokenCacheSize || c.Now == nil || c.Logger == nil {
		t.Error("defaults not set")
	}
}
