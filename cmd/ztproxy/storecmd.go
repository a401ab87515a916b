package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"sort"
	"time"

	"ztproxy/config"
	"ztproxy/store"
)

// cmdStore handles `ztproxy store init`.
func cmdStore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "init" {
		return usageError("usage: ztproxy store init --config FILE")
	}
	path, err := configFlagOnly("store init", args[1:], stderr)
	if err != nil {
		return err
	}
	f, err := config.Load(path, config.DefaultOptions())
	if err != nil {
		printProblems(stderr, path, err)
		return exitCodeError(1)
	}
	switch f.Store.Backend {
	case "dynamodb":
		st, err := config.OpenStore(ctx, f, nil)
		if err != nil {
			return err
		}
		defer st.Close()
		d := st.(*store.Dynamo)
		if err := d.CreateTables(ctx); err != nil {
			return err
		}
		for _, def := range store.TableDefinitions(f.Store.TablePrefix) {
			fmt.Fprintf(stdout, "table %s ready\n", def.Name)
		}
		region := f.Store.Region
		if region == "" {
			region = "REGION"
		}
		fmt.Fprintf(stdout, "\nLeast-privilege IAM policy for the proxy (store init needs the second statement only):\n%s\n",
			store.IAMPolicy(f.Store.TablePrefix, region, "ACCOUNT_ID"))
	default:
		st, err := config.OpenStore(ctx, f, nil)
		if err != nil {
			return err
		}
		st.Close()
		fmt.Fprintf(stdout, "embedded store ready: %s\n", f.Store.Path)
	}
	return nil
}

// cmdRisk handles `ztproxy risk flag|clear|show`: the operator hook for
// SOC automation (GuardDuty findings, a SOAR playbook).
func cmdRisk(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = "usage: ztproxy risk flag USER --level compromised|watch --reason TEXT [--ttl 24h] --config FILE\n" +
		"       ztproxy risk clear USER --config FILE\n       ztproxy risk show USER --config FILE"
	if len(args) < 2 {
		return usageError(usage)
	}
	verb, userID := args[0], args[1]
	fs := newFlags("risk "+verb, stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	level := fs.String("level", "", "compromised or watch")
	reason := fs.String("reason", "", "why (shown in the audit log and whoami)")
	ttl := fs.Duration("ttl", 0, "clear the flag automatically after this long (0: until cleared)")
	if err := fs.Parse(args[2:]); err != nil {
		return usageError(err.Error())
	}
	f, st, err := openOperatorStore(ctx, *path, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	switch verb {
	case "flag":
		if *level != store.FlagCompromised && *level != store.FlagWatch {
			return usageError("--level must be compromised or watch")
		}
		if *reason == "" {
			return usageError("--reason is required")
		}
		now := time.Now()
		fl := store.Flag{UserID: userID, Level: *level, Reason: *reason, SetBy: operator(), SetAt: now}
		if *ttl > 0 {
			fl.ExpiresAt = now.Add(*ttl)
		}
		if err := st.SetFlag(ctx, fl); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "flagged %s as %s; replicas apply it within risk.flag_ttl (%s)\n", userID, *level, f.Risk.FlagTTL)
	case "clear":
		if err := st.ClearFlag(ctx, userID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		fmt.Fprintf(stdout, "cleared the flag of %s\n", userID)
	case "show":
		return showRisk(ctx, st, userID, stdout)
	default:
		return usageError(usage)
	}
	return nil
}

// openOperatorStore loads the configuration and opens its store for an
// operator command.
func openOperatorStore(ctx context.Context, path string, stderr io.Writer) (*config.File, store.Store, error) {
	if path == "" {
		return nil, nil, usageError("--config is required")
	}
	f, err := config.Load(path, config.DefaultOptions())
	if err != nil {
		printProblems(stderr, path, err)
		return nil, nil, exitCodeError(1)
	}
	st, err := config.OpenStore(ctx, f, nil)
	if err != nil {
		if f.Store.Backend == "embedded" {
			return nil, nil, fmt.Errorf("%w (the embedded store is locked while `ztproxy serve` runs; use the dynamodb backend to manage it live)", err)
		}
		return nil, nil, err
	}
	return f, st, nil
}

func showRisk(ctx context.Context, st store.Store, userID string, w io.Writer) error {
	out := map[string]any{"user": userID}
	if fl, err := st.GetFlag(ctx, userID); err == nil {
		out["flag"] = fl
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	p, err := st.GetProfile(ctx, userID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		out["profile"] = nil
	case err != nil:
		return err
	default:
		out["profile"] = map[string]any{
			"requests": p.RequestCount, "failed_auth": p.FailedAuth, "last_seen": p.LastSeen,
			"networks": sortedKeys(p.Networks), "user_agents": sortedKeys(p.UserAgents), "devices": sortedKeys(p.Devices),
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// operator names who set a flag, for the record.
func operator() string {
	if u, err := user.Current(); err == nil {
		host, _ := os.Hostname()
		return u.Username + "@" + host
	}
	return "unknown"
}
