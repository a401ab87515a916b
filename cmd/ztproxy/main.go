// Command ztproxy is the identity-aware access proxy: serve, check-config,
// certs, policy test and demo.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"syscall"
)

const usage = `ztproxy — identity-aware access proxy

Usage:
  ztproxy demo                         run the proxy on embedded defaults (dev certs, demo app and issuer)
  ztproxy demo app | demo idp          the demo's upstream app, or its development OpenID provider, alone
  ztproxy demo keys|risk ... USER      operator commands against the running demo
  ztproxy serve --config FILE          run the proxy (SIGHUP or a file change reloads, SIGTERM drains)
  ztproxy sidecar --upstream URL --config FILE
                                       guard one local service (mTLS services, bearer JWTs, front-proxy assertions)
  ztproxy check-config --config FILE [--online]
                                       validate a configuration and list every problem; --online also
                                       fetches each IdP's discovery document and JWKS
  ztproxy healthcheck [--config FILE | --admin ADDR]
                                       probe /readyz on the admin listener: exit 0 ready, 1 not
                                       (exec health checks in images without a shell)
  ztproxy certs dev --out DIR          write a development CA, server and device certificates
  ztproxy certs trust --ca FILE        print how to make this system trust a development CA
  ztproxy policy test --config FILE --input REQUEST.json
                                       evaluate one synthetic request against the policies
  ztproxy store init --config FILE     create the DynamoDB tables (or the embedded file); prints the IAM policy
  ztproxy risk flag USER --level compromised|watch --reason TEXT --config FILE
  ztproxy risk clear USER --config FILE / ztproxy risk show USER --config FILE
  ztproxy sessions revoke USER --config FILE
                                       end every browser session of a user on every replica
  ztproxy keys list USER --config FILE / ztproxy keys remove USER (--id ID | --all) --config FILE
                                       see or reset a user's security keys (WebAuthn step-up)
  ztproxy aws credential-process --proxy URL --role NAME
                                       AWS credentials via browser sign-in (for ~/.aws/config credential_process)
  ztproxy certs device-ca --out DIR    write the CA that signs enrolled devices' certificates
  ztproxy device enroll --proxy URL    enrol this machine (browser sign-in with a fresh second factor)
  ztproxy device report|renew|export|status
                                       send posture, renew the certificate over mTLS, export it as PKCS#12
  ztproxy devices list|show|revoke|set-managed|import --config FILE
                                       the operator's device inventory (revoke, MDM import)
  ztproxy version                      print the version

"ztproxy COMMAND --help" (or "ztproxy help COMMAND") describes a command, with an example.
`

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if os.Getenv("GOGC") == "" {
		// The proxy's live heap is small, so the default GOGC=100 collects
		// very often under load; trade a little memory for fewer cycles.
		debug.SetGCPercent(200)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a command line and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if args[0] == "help" && len(args) > 1 {
		// "ztproxy help risk flag" is "ztproxy risk flag --help".
		args = append(slices.Clip(args[1:]), "--help")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], stdout, stderr)
	case "sidecar":
		err = cmdSidecar(ctx, args[1:], stdout, stderr)
	case "check-config":
		err = cmdCheckConfig(ctx, args[1:], stdout, stderr)
	case "healthcheck":
		err = cmdHealthcheck(ctx, args[1:], stdout, stderr)
	case "demo":
		err = cmdDemo(ctx, args[1:], stdout, stderr)
	case "aws":
		err = cmdAWS(ctx, args[1:], stdout, stderr)
	case "store":
		err = cmdStore(ctx, args[1:], stdout, stderr)
	case "risk":
		err = cmdRisk(ctx, args[1:], stdout, stderr)
	case "keys":
		err = cmdKeys(ctx, args[1:], stdout, stderr)
	case "sessions":
		err = cmdSessions(ctx, args[1:], stdout, stderr)
	case "certs":
		err = cmdCerts(args[1:], stdout, stderr)
	case "device":
		err = cmdDevice(ctx, args[1:], stdout, stderr)
	case "devices":
		err = cmdDevices(ctx, args[1:], stdout, stderr)
	case "policy":
		err = cmdPolicy(args[1:], stdout, stderr)
	case "version", "--version":
		if helpRequested(args[1:]) {
			printHelp(stdout, "version", nil)
			return 0
		}
		fmt.Fprintln(stdout, "ztproxy", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "ztproxy: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, errHelpShown) {
		return 0
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			name := args[0]
			if len(args) > 1 {
				if _, ok := commandHelps[name+" "+args[1]]; ok {
					name += " " + args[1]
				}
			}
			fmt.Fprintf(stderr, "ztproxy %s: %v\nRun \"ztproxy %s --help\" for usage.\n", args[0], err, name)
			return 2
		}
		var ce exitCodeError
		if errors.As(err, &ce) {
			return int(ce)
		}
		fmt.Fprintf(stderr, "ztproxy %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// configFlagOnly parses a command line whose only flag is the required
// --config and returns its value.
func configFlagOnly(name string, args []string, stdout, stderr io.Writer) (string, error) {
	fs := newFlags(name, stdout, stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	if err := fs.parse(args); err != nil {
		return "", err
	}
	if *path == "" {
		return "", usageError("--config is required")
	}
	return *path, nil
}

// usageError marks a command-line mistake (exit 2).
type usageError string

func (e usageError) Error() string { return string(e) }

// exitCodeError ends the process with a code after the command already
// printed what the user needs.
type exitCodeError int

func (e exitCodeError) Error() string { return fmt.Sprintf("exit %d", int(e)) }
