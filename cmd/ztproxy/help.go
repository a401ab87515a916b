package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// commandHelp is what `ztproxy COMMAND --help` prints about one command.
type commandHelp struct {
	Usage   string // the synopsis after "ztproxy "
	Summary string
	Example string
	Doc     string // the page under docs/ (or README.md) that explains it
}

// commandHelps is the help of every command and sub-command, by the words
// that name it. TestEveryCommandHasHelp keeps it complete (issue 15.7).
var commandHelps = map[string]commandHelp{
	"demo": {
		Usage: "demo [--listen ADDR] [--admin ADDR] [--idp-listen ADDR] [--dir DIR]",
		Summary: "Run the proxy on embedded defaults: development certificates, a demo app, an embedded development\n" +
			"OpenID provider with two users (alice, allowed; bob, denied) and demo policies. NOT for production.\n" +
			"Sub-commands: demo app, demo idp (the pieces alone), demo keys and demo risk (operator commands\n" +
			"against a running demo).",
		Example: "ztproxy demo",
		Doc:     "README.md",
	},
	"demo app": {
		Usage:   "demo app [--listen ADDR]",
		Summary: "Run the demo app alone: an upstream that shows what the proxy told it (identity headers, the\nassertion's claims). Use it as the example upstream of config.example.yaml.",
		Example: "ztproxy demo app --listen 127.0.0.1:8080",
		Doc:     "README.md (Try it with your own config)",
	},
	"demo idp": {
		Usage: "demo idp [--listen ADDR] [--audience AUD] [--tokens DIR] [--token-ttl D]",
		Summary: "Run the demo's development OpenID provider alone, with the users alice (group eng) and bob (group\n" +
			"contractors), and keep a bearer token of each user in DIR/<user>.token (renewed before it expires).\n" +
			"Loopback only, NOT for production.",
		Example: "ztproxy demo idp --listen 127.0.0.1:8444 --audience https://api.example.com --tokens dev-idp",
		Doc:     "README.md (Try it with your own config)",
	},
	"demo keys list": {
		Usage:   "demo keys list USER [--dir DIR]",
		Summary: "List a demo user's security keys in the running demo (USER: alice, bob, or a full user id).",
		Example: "ztproxy demo keys list alice",
		Doc:     "docs/step-up.md",
	},
	"demo keys remove": {
		Usage:   "demo keys remove USER (--id ID | --all) [--dir DIR]",
		Summary: "Remove a demo user's security keys in the running demo.",
		Example: "ztproxy demo keys remove alice --all",
		Doc:     "docs/step-up.md",
	},
	"demo risk flag": {
		Usage:   "demo risk flag USER --level compromised|watch --reason TEXT [--ttl D] [--dir DIR]",
		Summary: "Flag a demo user in the running demo; the demo applies it at once.",
		Example: "ztproxy demo risk flag alice --level compromised --reason \"trying it out\"",
		Doc:     "docs/risk.md",
	},
	"demo risk clear": {
		Usage:   "demo risk clear USER [--dir DIR]",
		Summary: "Clear a demo user's flag in the running demo.",
		Example: "ztproxy demo risk clear alice",
		Doc:     "docs/risk.md",
	},
	"demo risk show": {
		Usage:   "demo risk show USER [--dir DIR]",
		Summary: "Show a demo user's flag and behavioural profile in the running demo (JSON).",
		Example: "ztproxy demo risk show alice",
		Doc:     "docs/risk.md",
	},
	"serve": {
		Usage: "serve --config FILE",
		Summary: "Run the proxy. SIGHUP or a change of the config, policy or secret files reloads; SIGTERM drains\n" +
			"in-flight requests (server.shutdown_grace) and exits.",
		Example: "ztproxy serve --config config.example.yaml",
		Doc:     "docs/configuration.md",
	},
	"sidecar": {
		Usage:   "sidecar --config FILE [--upstream URL]",
		Summary: "Run the proxy in sidecar mode in front of one local service (mTLS services, bearer JWTs,\nassertions of a front proxy).",
		Example: "ztproxy sidecar --upstream http://127.0.0.1:8080 --config sidecar.yaml",
		Doc:     "docs/sidecar.md",
	},
	"check-config": {
		Usage: "check-config --config FILE",
		Summary: "Build everything serve builds without taking anything over, and list every problem with its YAML\n" +
			"path. Exit 0 when serve would start, 1 otherwise.",
		Example: "ztproxy check-config --config config.example.yaml",
		Doc:     "docs/configuration.md",
	},
	"healthcheck": {
		Usage: "healthcheck [--config FILE | --admin ADDR] [--timeout D] [--quiet]",
		Summary: "Probe /readyz on the admin listener (from --admin, the config's admin_listen, or 127.0.0.1:9090)\n" +
			"and exit 0 when it answers 200, 1 otherwise: an exec health check for the distroless image, which\n" +
			"has no shell or wget.",
		Example: "ztproxy healthcheck --config /etc/ztproxy/config.yaml",
		Doc:     "docs/operations.md",
	},
	"certs dev": {
		Usage:   "certs dev --out DIR [--hosts h1,h2] [--device-spiffe-id ID] [--force]",
		Summary: "Write a development CA (name-constrained to the hosts), a server certificate and a device (client)\ncertificate. NOT for production: the CA key lies next to the certificates.",
		Example: "ztproxy certs dev --out dev-certs",
		Doc:     "docs/mtls.md",
	},
	"certs trust": {
		Usage:   "certs trust --ca FILE [--os linux|darwin|windows]",
		Summary: "Print the commands that make this system's browsers and tools trust a development CA, and how to\nundo it. It changes nothing itself.",
		Example: "ztproxy certs trust --ca dev-certs/ca.pem",
		Doc:     "docs/mtls.md",
	},
	"certs device-ca": {
		Usage:   "certs device-ca --out DIR [--org NAME] [--validity DURATION] [--force]",
		Summary: "Write the device CA that signs enrolled devices' certificates (devices.ca_cert_file, ca_key_file).\nKeep its key where only the proxy reads it.",
		Example: "ztproxy certs device-ca --out /etc/ztproxy",
		Doc:     "docs/devices.md",
	},
	"device enroll": {
		Usage: "device enroll --proxy URL [--name NAME] [--cacert FILE] [--dir DIR] [--no-browser] [--force] [--timeout D]",
		Summary: "Enrol this machine: generate its key here, sign in through the browser with a fresh second factor,\n" +
			"send a certificate request and first posture facts, and keep the device certificate in DIR.",
		Example: "ztproxy device enroll --proxy https://access.example.com",
		Doc:     "docs/devices.md",
	},
	"device report": {
		Usage:   "device report [--dir DIR] [--fact NAME=VALUE]... [--vendor-assertion FILE]... [--dry-run]",
		Summary: "Collect this machine's posture facts (disk encryption, firewall, OS version, screen lock) and report\nthem to the proxy over mTLS with the device certificate.",
		Example: "ztproxy device report",
		Doc:     "docs/devices.md",
	},
	"device renew": {
		Usage:   "device renew [--dir DIR] [--within DURATION] [--force]",
		Summary: "Renew the device certificate over mTLS before it expires (with a new key).",
		Example: "ztproxy device renew --within 48h",
		Doc:     "docs/devices.md",
	},
	"device export": {
		Usage:   "device export --p12 FILE [--password PW] [--dir DIR]",
		Summary: "Export the device certificate and key as PKCS#12 for a browser or the system keychain.",
		Example: "ztproxy device export --p12 device.p12",
		Doc:     "docs/devices.md",
	},
	"device status": {
		Usage:   "device status [--dir DIR]",
		Summary: "Show this machine's enrolment: device id, proxy, certificate expiry.",
		Example: "ztproxy device status",
		Doc:     "docs/devices.md",
	},
	"devices list": {
		Usage:   "devices list [--owner USER] --config FILE",
		Summary: "List the device inventory (or one user's devices) as JSON. Works while serve runs (the embedded\nstore is reached through its operator socket).",
		Example: "ztproxy devices list --config ztproxy.yaml",
		Doc:     "docs/devices.md",
	},
	"devices show": {
		Usage:   "devices show ID --config FILE",
		Summary: "Show one device: owner, status, certificates, posture facts with their source and age.",
		Example: "ztproxy devices show k3vq2m7x5ea4nqzr6w3yd2ub4e --config ztproxy.yaml",
		Doc:     "docs/devices.md",
	},
	"devices revoke": {
		Usage:   "devices revoke ID --reason TEXT [--lost] --config FILE",
		Summary: "Revoke a device (or mark it lost): every replica refuses it within a second (the change\nfeed; devices.cache_ttl if the feed is down).",
		Example: "ztproxy devices revoke k3vq2m7x5ea4nqzr6w3yd2ub4e --reason \"laptop stolen\" --lost --config ztproxy.yaml",
		Doc:     "docs/devices.md",
	},
	"devices set-managed": {
		Usage:   "devices set-managed ID true|false --config FILE",
		Summary: "Mark a device as managed by the company (context.device.managed) or not; every replica sees it\nwithin a second (the change feed).",
		Example: "ztproxy devices set-managed k3vq2m7x5ea4nqzr6w3yd2ub4e true --config ztproxy.yaml",
		Doc:     "docs/devices.md",
	},
	"devices import": {
		Usage:   "devices import --format jamf|intune|generic --file EXPORT.json --config FILE",
		Summary: "Import an MDM inventory export: matching devices get its posture facts (source mdm) and managed.",
		Example: "ztproxy devices import --format jamf --file jamf-export.json --config ztproxy.yaml",
		Doc:     "docs/devices.md",
	},
	"policy test": {
		Usage: "policy test --config FILE --input REQUEST.json [--expect allow|deny|step_up]",
		Summary: "Evaluate one synthetic request against the config's policies and print the decision. The input is a\n" +
			"JSON object (\"-\" reads standard input); unknown fields are errors:\n" +
			"  {\"principal\": \"alice\", \"issuer\": \"https://idp.example.com\", \"groups\": [\"eng\"],\n" +
			"   \"route\": \"api\", \"method\": \"GET\", \"path\": \"/api/items\", \"ip\": \"10.0.0.7\",\n" +
			"   \"auth_kind\": \"bearer\", \"amr\": [\"pwd\"], \"auth_age_seconds\": 60,\n" +
			"   \"risk\": {\"score\": 0, \"level\": \"low\"}}\n" +
			"Every field is described in docs/policy.md; examples/policy-request.json is a complete example.\n" +
			"With --expect, another decision exits 1.",
		Example: "ztproxy policy test --config config.example.yaml --input examples/policy-request.json --expect allow",
		Doc:     "docs/policy.md (ztproxy policy test)",
	},
	"store init": {
		Usage:   "store init --config FILE",
		Summary: "Create the DynamoDB tables (and print the least-privilege IAM policy), or the embedded store file.",
		Example: "ztproxy store init --config ztproxy.yaml",
		Doc:     "docs/dynamodb.md",
	},
	"risk flag": {
		Usage: "risk flag USER --level compromised|watch --reason TEXT [--ttl D] --config FILE",
		Summary: "Flag a user: compromised is a hard deny, watch adds risk points. USER is the user id of the audit log\n" +
			"and whoami (<issuer>#<sub>) or an email address the proxy has seen. Works while serve runs (the\n" +
			"embedded store is reached through its operator socket).",
		Example: "ztproxy risk flag 'https://idp.example.com#alice' --level compromised --reason \"GuardDuty finding\" --config ztproxy.yaml",
		Doc:     "docs/risk.md",
	},
	"sessions revoke": {
		Usage: "sessions revoke USER --config FILE",
		Summary: "End every browser session of a user (or service) on every replica within a second: the kill switch.\n" +
			"USER is <issuer>#<sub> or an email address the proxy has seen. Bearer tokens cannot be revoked here;\n" +
			"flag the principal compromised (ztproxy risk flag --level compromised) to refuse those too.",
		Example: "ztproxy sessions revoke 'https://idp.example.com#alice' --config ztproxy.yaml",
		Doc:     "docs/continuous-evaluation.md",
	},
	"risk clear": {
		Usage:   "risk clear USER --config FILE",
		Summary: "Clear a user's operator flag.",
		Example: "ztproxy risk clear 'https://idp.example.com#alice' --config ztproxy.yaml",
		Doc:     "docs/risk.md",
	},
	"risk show": {
		Usage:   "risk show USER --config FILE",
		Summary: "Show a user's operator flag and behavioural profile summary as JSON.",
		Example: "ztproxy risk show alice@example.com --config ztproxy.yaml",
		Doc:     "docs/risk.md",
	},
	"keys list": {
		Usage:   "keys list USER --config FILE",
		Summary: "List a user's security keys (WebAuthn step-up) as JSON.",
		Example: "ztproxy keys list 'https://idp.example.com#alice' --config ztproxy.yaml",
		Doc:     "docs/step-up.md",
	},
	"keys remove": {
		Usage:   "keys remove USER (--id ID | --all) --config FILE",
		Summary: "Remove a user's security keys, for example when they lost every key; they enroll a new one after a\nfresh sign-in.",
		Example: "ztproxy keys remove 'https://idp.example.com#alice' --all --config ztproxy.yaml",
		Doc:     "docs/step-up.md",
	},
	"aws credential-process": {
		Usage: "aws credential-process --proxy URL --role NAME [--no-browser] [--cache-dir DIR] [--timeout D]",
		Summary: "Print AWS credentials for credential_process in ~/.aws/config: sign in through the browser, receive\n" +
			"the role's short-lived credentials, cache them until five minutes before they expire.",
		Example: "ztproxy aws credential-process --proxy https://access.example.com --role analyst",
		Doc:     "docs/aws-credentials.md",
	},
	"version": {
		Usage:   "version",
		Summary: "Print the version.",
		Example: "ztproxy version",
		Doc:     "README.md",
	},
}

// errHelpShown ends a command whose help was asked for and printed: exit 0.
var errHelpShown = errors.New("help shown")

// cmdFlags is a command's flag set, with the writers its help and its
// mistakes go to.
type cmdFlags struct {
	*flag.FlagSet
	name           string
	stdout, stderr io.Writer
}

// newFlags returns the flag set of the command named name (the words after
// "ztproxy"); it does not exit and prints nothing by itself.
func newFlags(name string, stdout, stderr io.Writer) *cmdFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &cmdFlags{FlagSet: fs, name: name, stdout: stdout, stderr: stderr}
}

// parse parses args: flags anywhere, and exactly len(positional)
// positional arguments, in order. -h, -help or --help anywhere prints the
// command's help to stdout and returns errHelpShown.
func (f *cmdFlags) parse(args []string, positional ...*string) error {
	if helpRequested(args) {
		printHelp(f.stdout, f.name, f.FlagSet)
		return errHelpShown
	}
	var got []string
	rest := args
	for {
		if err := f.Parse(rest); err != nil {
			return usageError(err.Error())
		}
		if f.NArg() == 0 {
			break
		}
		got = append(got, f.Arg(0))
		rest = f.Args()[1:]
	}
	if len(got) > len(positional) {
		return usageError(fmt.Sprintf("unexpected argument %q", got[len(positional)]))
	}
	if len(got) < len(positional) {
		return usageError("missing " + strings.Fields(commandHelps[f.name].Usage)[len(strings.Fields(f.name))+len(got)])
	}
	for i, p := range positional {
		*p = got[i]
	}
	return nil
}

// helpRequested reports whether args ask for help before a "--".
func helpRequested(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// printHelp writes the help of the command name: usage, summary, flags,
// an example and the documentation page.
func printHelp(w io.Writer, name string, fs *flag.FlagSet) {
	h, ok := commandHelps[name]
	if !ok {
		fmt.Fprintf(w, "Usage: ztproxy %s\n", name)
		return
	}
	fmt.Fprintf(w, "Usage: ztproxy %s\n\n%s\n", h.Usage, h.Summary)
	if fs != nil {
		var flags strings.Builder
		fs.SetOutput(&flags)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		if flags.Len() > 0 {
			fmt.Fprintf(w, "\nFlags:\n%s", flags.String())
		}
	}
	fmt.Fprintf(w, "\nExample:\n  %s\n\nDocumentation: %s\n", h.Example, h.Doc)
}

// printGroupHelp lists the sub-commands of a command with verbs, such as
// "risk".
func printGroupHelp(w io.Writer, group string) {
	var names []string
	for name := range commandHelps {
		if strings.HasPrefix(name, group+" ") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	fmt.Fprintf(w, "Usage:\n")
	for _, n := range names {
		fmt.Fprintf(w, "  ztproxy %s\n", commandHelps[n].Usage)
	}
	fmt.Fprintf(w, "\nRun \"ztproxy %s <sub-command> --help\" for details.\n", group)
}

// verbOf splits a command with sub-commands into its verb and the rest.
// Without a known verb it prints the group's help: to stdout with exit 0
// when help was asked for, else as a usage error.
func verbOf(group string, args []string, stdout io.Writer, verbs ...string) (string, []string, error) {
	if len(args) > 0 && slices.Contains(verbs, args[0]) {
		return args[0], args[1:], nil
	}
	if len(args) == 0 || !helpRequested(args[:1]) {
		var b strings.Builder
		printGroupHelp(&b, group)
		if len(args) > 0 {
			return "", nil, usageError(fmt.Sprintf("unknown sub-command %q\n%s", args[0], b.String()))
		}
		return "", nil, usageError("a sub-command is required\n" + b.String())
	}
	printGroupHelp(stdout, group)
	return "", nil, errHelpShown
}
