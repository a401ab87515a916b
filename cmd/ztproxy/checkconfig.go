package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"ztproxy/authn"
	"ztproxy/config"
)

// cmdCheckConfig runs serve's start-up (assemble) without taking anything
// exclusive, and says OK exactly when serve would start, apart from what
// the notes it prints say it cannot prove. With --online it then fetches
// every IdP's discovery document and JWKS, as serve does on first use;
// without it, it makes no network call to an IdP.
func cmdCheckConfig(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check-config", stdout, stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	online := fs.Bool("online", false, "also fetch each identity provider's discovery document and JWKS and report what is missing")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *path == "" {
		return usageError("--config is required")
	}
	in, rep, err := assemble(ctx, *path, config.DefaultOptions(), assembleCheck, stdout, stderr)
	if err != nil {
		printProblems(stdout, *path, err)
		if rep != nil {
			printNotes(stdout, rep.Warnings(), nil)
		}
		return exitCodeError(1)
	}
	in.close()
	fmt.Fprintf(stdout, "%s: OK (%d routes, %d policy files)\n", *path, len(in.rt.Proxy.Routes), len(in.rt.File.PolicyFiles))
	printNotes(stdout, rep.Warnings(), rep.Notes())
	if *online && !probeIdPs(ctx, in.rt.File.IdPs, stdout) {
		return exitCodeError(1)
	}
	return nil
}

// probeIdPs checks every IdP online (issue 21.4) and prints one line per
// IdP, with its problems below it. It reports whether all are usable.
func probeIdPs(ctx context.Context, idps []config.IdP, stdout io.Writer) bool {
	ok := true
	for i, idp := range idps {
		p := authn.IdPProbe{
			Name: idp.Name, Issuer: idp.Issuer, JWKSURL: idp.JWKSURL,
			SignIn: idp.ClientID != "", Userinfo: idp.Userinfo != nil && len(idp.Audiences) > 0,
		}
		if p.Userinfo {
			p.UserinfoURL = idp.Userinfo.URL
		}
		res := authn.ProbeIdP(ctx, nil, p)
		fmt.Fprintf(stdout, "online: idps[%d] %s (%s): %s\n", i, idp.Name, idp.Issuer, probeSummary(p, res))
		for _, problem := range res.Problems {
			fmt.Fprintf(stdout, "  problem: %s\n", problem)
		}
		ok = ok && len(res.Problems) == 0
	}
	return ok
}

// probeSummary says in one line what ProbeIdP found.
func probeSummary(p authn.IdPProbe, res authn.IdPProbeResult) string {
	if len(res.Problems) > 0 {
		return fmt.Sprintf("%d problem(s)", len(res.Problems))
	}
	var parts []string
	if res.Discovery {
		parts = append(parts, "discovery OK")
	}
	parts = append(parts, fmt.Sprintf("%d signing key(s) at %s", res.Keys, res.JWKSURL))
	if p.SignIn {
		parts = append(parts, "sign-in via "+res.AuthorizationEndpoint)
	}
	if p.Userinfo {
		parts = append(parts, "userinfo at "+res.UserinfoEndpoint)
	}
	return "OK: " + strings.Join(parts, ", ")
}
