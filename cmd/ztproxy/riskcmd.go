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
	"strings"
	"time"

	"ztproxy/config"
	"ztproxy/store"
)

// cmdRisk handles `ztproxy risk flag|clear|show`: the operator hook for
// SOC automation (GuardDuty findings, a SOAR playbook).
func cmdRisk(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, args, err := verbOf("risk", args, stdout, "flag", "clear", "show")
	if err != nil {
		return err
	}
	fs := newFlags("risk "+verb, stdout, stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	var level, reason *string
	var ttl *time.Duration
	if verb == "flag" {
		level = fs.String("level", "", "compromised (a hard deny) or watch (adds risk points)")
		reason = fs.String("reason", "", "why (shown in the audit log and whoami)")
		ttl = fs.Duration("ttl", 0, "clear the flag automatically after this long (0: until cleared)")
	}
	var who string
	if err := fs.parse(args, &who); err != nil {
		return err
	}
	if verb == "flag" {
		if *level != store.FlagCompromised && *level != store.FlagWatch {
			return usageError("--level must be compromised or watch")
		}
		if *reason == "" {
			return usageError("--reason is required")
		}
	}
	f, st, userID, err := operatorTarget(ctx, *path, who, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := warnUnseen(ctx, st, userID, stderr); err != nil {
		return err
	}
	switch verb {
	case "flag":
		now := time.Now()
		fl := store.Flag{UserID: userID, Level: *level, Reason: *reason, SetBy: operator(), SetAt: now}
		if *ttl > 0 {
			fl.ExpiresAt = now.Add(*ttl)
		}
		if err := st.SetFlag(ctx, fl); err != nil {
			return err
		}
		publishFlag(ctx, st, userID, stderr)
		fmt.Fprintf(stdout, "flagged %s as %s; %s\n", userID, *level, appliedWhen(st, f))
	case "clear":
		if err := st.ClearFlag(ctx, userID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		publishFlag(ctx, st, userID, stderr)
		fmt.Fprintf(stdout, "cleared the flag of %s; %s\n", userID, appliedWhen(st, f))
	case "show":
		return showRisk(ctx, st, userID, stdout)
	}
	return nil
}

// appliedWhen says when the proxy acts on a changed flag.
func appliedWhen(st store.Operator, f *config.File) string {
	if _, live := st.(*store.OperatorClient); live && f.Store.Backend == "embedded" {
		return "the running ztproxy applies it now"
	}
	return "every running replica applies it within a second"
}

// openOperatorStore loads the configuration and opens its store for an
// operator command. With the embedded store, whose file a running ztproxy
// holds locked, it goes through that ztproxy's operator socket.
func openOperatorStore(ctx context.Context, path string, stderr io.Writer) (*config.File, store.Operator, error) {
	if path == "" {
		return nil, nil, usageError("--config is required")
	}
	f, err := config.Load(path, config.DefaultOptions())
	if err != nil {
		printProblems(stderr, path, err)
		return nil, nil, exitCodeError(1)
	}
	sock := store.OperatorSocketPath(f.Store.Path)
	if f.Store.Backend == "embedded" {
		if _, statErr := os.Lstat(sock); statErr == nil {
			c, err := store.DialOperator(ctx, sock)
			if err == nil {
				return f, c, nil
			}
			if !errors.Is(err, store.ErrNoOperatorSocket) {
				return nil, nil, err
			}
		}
	}
	st, err := config.OpenStore(ctx, f, nil)
	if err != nil {
		if f.Store.Backend == "embedded" {
			return nil, nil, fmt.Errorf("%w\nA running ztproxy holds the embedded store; it shares it on %s, which did not answer. Check that it runs as this user, or stop it and try again", err, sock)
		}
		return nil, nil, err
	}
	op, ok := st.(store.Operator)
	if !ok {
		st.Close()
		return nil, nil, fmt.Errorf("store %T cannot serve operator commands", st)
	}
	return f, op, nil
}

// operatorTarget opens the store of the config at path for an operator
// command and resolves who to a user id. The caller closes the store.
func operatorTarget(ctx context.Context, path, who string, stderr io.Writer) (*config.File, store.Operator, string, error) {
	f, st, err := openOperatorStore(ctx, path, stderr)
	if err != nil {
		return nil, nil, "", err
	}
	userID, err := resolveUser(ctx, st, who, stderr)
	if err != nil {
		st.Close()
		return nil, nil, "", err
	}
	return f, st, userID, nil
}

// resolveUser turns what the operator typed into a user id: an id as the
// audit log and whoami show it (<issuer>#<sub>), or an email address the
// proxy has seen verified. A bare name is refused, because no user could
// ever match it (issue 15.14).
func resolveUser(ctx context.Context, st store.Operator, who string, stderr io.Writer) (string, error) {
	switch {
	case strings.Contains(who, "#"), strings.HasPrefix(who, "spiffe://"):
		// A user, a client-credentials service (<issuer>#<client_id>)
		// or a workload's SPIFFE id.
		return who, nil
	case strings.Contains(who, "@"):
		ids, err := st.FindUsersByEmail(ctx, who)
		if err != nil {
			return "", fmt.Errorf("looking up %s: %w", who, err)
		}
		switch len(ids) {
		case 0:
			return "", fmt.Errorf("this proxy has not seen a user with the verified email address %s; use the user id (<issuer>#<sub>) from the audit log or /.ztp/whoami", who)
		case 1:
			fmt.Fprintf(stderr, "%s is the user %s\n", who, ids[0])
			return ids[0], nil
		}
		sort.Strings(ids)
		return "", fmt.Errorf("several users have the email address %s; name one by its id:\n  %s", who, strings.Join(ids, "\n  "))
	}
	return "", usageError(fmt.Sprintf("%q is not a user id: user ids are <issuer>#<sub>, as the audit log and /.ztp/whoami show them (for example https://idp.example.com#alice), or give the user's email address", who))
}

// warnUnseen warns when the store has no profile of userID: the id may be
// mistyped. It is only a warning, because a flag can be set ahead of a
// first sign-in, and profiles are written behind.
func warnUnseen(ctx context.Context, st store.Operator, userID string, stderr io.Writer) error {
	_, err := st.GetProfile(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		fmt.Fprintf(stderr, "warning: the store has no profile of %s: the proxy has not seen this user, or not written what it saw yet (within risk.flush_interval); check the id against the audit log or /.ztp/whoami\n", userID)
		return nil
	}
	return err
}

// riskShow is the JSON `risk show` prints: one snake_case schema, and
// times that are not set are left out (issue 15.14).
type riskShow struct {
	User    string       `json:"user"`
	Flag    *flagShow    `json:"flag"`
	Profile *profileShow `json:"profile"`
}

type flagShow struct {
	Level     string `json:"level"`
	Reason    string `json:"reason"`
	SetBy     string `json:"set_by,omitempty"`
	SetAt     string `json:"set_at,omitempty"`
	ExpiresAt string `json:"expires_at,omitempty"`
}

type profileShow struct {
	Email      string   `json:"email,omitempty"`
	Requests   int64    `json:"requests"`
	FailedAuth int64    `json:"failed_auth"`
	LastSeen   string   `json:"last_seen,omitempty"`
	Networks   []string `json:"networks"`
	UserAgents []string `json:"user_agents"`
	Devices    []string `json:"devices"`
}

// showTime is an RFC 3339 time in UTC, or "" for the zero time.
func showTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func showRisk(ctx context.Context, st store.Operator, userID string, w io.Writer) error {
	out := riskShow{User: userID}
	if fl, err := st.GetFlag(ctx, userID); err == nil {
		out.Flag = &flagShow{Level: fl.Level, Reason: fl.Reason, SetBy: fl.SetBy, SetAt: showTime(fl.SetAt), ExpiresAt: showTime(fl.ExpiresAt)}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	p, err := st.GetProfile(ctx, userID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return err
	default:
		out.Profile = &profileShow{
			Email: p.Email, Requests: p.RequestCount, FailedAuth: p.FailedAuth, LastSeen: showTime(p.LastSeen),
			Networks: sortedKeys(p.Networks), UserAgents: sortedKeys(p.UserAgents), Devices: sortedKeys(p.Devices),
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
