package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"ztproxy/config"
	"ztproxy/identity"
)

// policyInput is one synthetic request for `ztproxy policy test`.
type policyInput struct {
	// Principal is "User::<id>", "Service::<spiffe id>", or a bare id
	// (a user).
	Principal      string            `json:"principal"`
	Issuer         string            `json:"issuer"`
	Email          string            `json:"email"`
	Username       string            `json:"username"`
	Scopes         []string          `json:"scopes"`
	EmailVerified  bool              `json:"email_verified"`
	Groups         []string          `json:"groups"`
	Claims         map[string]string `json:"claims"`
	AuthKind       string            `json:"auth_kind"`
	AMR            []string          `json:"amr"`
	ACR            string            `json:"acr"`
	AuthAgeSeconds *int64            `json:"auth_age_seconds"`
	Route          string            `json:"route"`
	Method         string            `json:"method"`
	Path           string            `json:"path"`
	Host           string            `json:"host"`
	IP             string            `json:"ip"`
	UserAgent      string            `json:"user_agent"`
	Time           string            `json:"time"`
	Device         *policyDevice     `json:"device"`
	Risk           *identity.Risk    `json:"risk"`
}

func cmdPolicy(args []string, stdout, stderr io.Writer) error {
	_, args, err := verbOf("policy", args, stdout, "test")
	if err != nil {
		return err
	}
	fs := newFlags("policy test", stdout, stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	input := fs.String("input", "", "request JSON file (see examples/policy-request.json), or - for standard input")
	expect := fs.String("expect", "", "exit 1 unless the decision is this (allow, deny, step_up)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *path == "" || *input == "" {
		return usageError("--config and --input are required")
	}
	rt, err := config.LoadRuntime(*path)
	if err != nil {
		printProblems(stderr, *path, err)
		return exitCodeError(1)
	}
	var data []byte
	if *input == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(*input)
	}
	if err != nil {
		return err
	}
	var in policyInput
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return fmt.Errorf("%s: %w", *input, err)
	}
	rc, err := in.requestContext(rt)
	if err != nil {
		return fmt.Errorf("%s: %w", *input, err)
	}
	d, err := rt.Proxy.Authorizer.Decide(rc)
	if err != nil {
		fmt.Fprintf(stdout, "decision: deny (could not decide: %v)\n", err)
		d = identity.Decision{Effect: identity.Deny}
	} else {
		printDecision(stdout, d)
	}
	if *expect != "" && *expect != d.Effect.String() {
		fmt.Fprintf(stderr, "expected %s, got %s\n", *expect, d.Effect)
		return exitCodeError(1)
	}
	return nil
}

func printDecision(w io.Writer, d identity.Decision) {
	fmt.Fprintf(w, "decision: %s\n", d.Effect)
	if len(d.PolicyIDs) > 0 {
		fmt.Fprintf(w, "policies: %s\n", strings.Join(d.PolicyIDs, ", "))
	} else {
		fmt.Fprintf(w, "policies: (none: no policy permits this request)\n")
	}
	if len(d.StepUp) > 0 {
		fmt.Fprintf(w, "step-up:  %s\n", strings.Join(d.StepUp, ", "))
	}
	for _, r := range d.Reasons {
		fmt.Fprintf(w, "reason:   %s\n", r)
	}
	for _, h := range d.Hints {
		fmt.Fprintf(w, "hint:     %s\n", h)
	}
}

// requestContext turns the synthetic request into the context the proxy
// would build, with the same defaults.
func (in *policyInput) requestContext(rt *config.Runtime) (*identity.RequestContext, error) {
	now := time.Now()
	if in.Time != "" {
		t, err := time.Parse(time.RFC3339, in.Time)
		if err != nil {
			return nil, fmt.Errorf("time: %w", err)
		}
		now = t
	}
	rc := &identity.RequestContext{
		RequestID: "policy-test", Route: in.Route, Method: strings.ToUpper(in.Method), Path: in.Path,
		Host: in.Host, UserAgent: in.UserAgent, Time: now, Risk: identity.NeutralRisk,
	}
	if rc.Method == "" {
		rc.Method = "GET"
	}
	if rc.Path == "" {
		rc.Path = "/"
	}
	var routeKnown bool
	for _, r := range rt.Proxy.Routes {
		if r.Name == in.Route {
			routeKnown = true
			if rc.Host == "" {
				rc.Host = r.Host
			}
		}
	}
	if !routeKnown {
		return nil, fmt.Errorf("route %q is not in the config", in.Route)
	}
	if in.IP != "" {
		ip, err := netip.ParseAddr(in.IP)
		if err != nil {
			return nil, fmt.Errorf("ip: %w", err)
		}
		rc.ClientIP = ip
	}
	if in.Risk != nil {
		rc.Risk = *in.Risk
	}
	p := identity.Anonymous
	switch {
	case strings.HasPrefix(in.Principal, "Service::"):
		id := strings.TrimPrefix(in.Principal, "Service::")
		p = identity.Principal{Kind: identity.KindService, ID: id, Subject: id, AuthKind: identity.AuthMTLS}
	case in.Principal != "":
		id := strings.TrimPrefix(in.Principal, "User::")
		p = identity.Principal{Kind: identity.KindUser, ID: id, Subject: id, Issuer: in.Issuer, AuthKind: identity.AuthBearer}
		if in.Issuer != "" && !strings.Contains(id, "#") {
			p.ID = identity.UserID(in.Issuer, id)
		}
	}
	p.Email, p.EmailVerified, p.Groups, p.Claims, p.AMR, p.ACR = in.Email, in.EmailVerified, in.Groups, in.Claims, in.AMR, in.ACR
	p.Username, p.Scopes = in.Username, in.Scopes
	if in.AuthKind != "" {
		p.AuthKind = identity.AuthKind(in.AuthKind)
	}
	if in.AuthAgeSeconds != nil {
		p.AuthTime = now.Add(-time.Duration(*in.AuthAgeSeconds) * time.Second)
	}
	rc.Principal = p
	if d := in.Device; d != nil {
		dev, err := d.device(now)
		if err != nil {
			return nil, err
		}
		rc.Device = dev
	}
	return rc, nil
}
