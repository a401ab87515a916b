package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"ztproxy/store"
)

// cmdSessions handles `ztproxy sessions revoke USER`: the kill switch for
// a user's browser sessions on every replica (issue 17).
func cmdSessions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, args, err := verbOf("sessions", args, stdout, "revoke")
	if err != nil {
		return err
	}
	fs := newFlags("sessions "+verb, stdout, stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	var who string
	if err := fs.parse(args, &who); err != nil {
		return err
	}
	_, st, userID, err := operatorTarget(ctx, *path, who, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	ids, err := st.RevokeUserSessions(ctx, userID, time.Now())
	if err != nil {
		return fmt.Errorf("revoking the sessions of %s: %w", userID, err)
	}
	if err := store.PublishSessions(ctx, st, userID, ids); err != nil {
		fmt.Fprintf(stdout, "revoked %d session(s) of %s; telling the replicas failed (%v): they refuse them within store.revocation_cache_ttl\n", len(ids), userID, err)
		return nil
	}
	fmt.Fprintf(stdout, "revoked %d session(s) of %s; every replica refuses them within a second\n", len(ids), userID)
	return nil
}

// publishFlag tells every replica that userID's flag changed, so that a
// compromised flag becomes a hard deny within a second (issue 17). A
// failure only delays it to the next full read of the flags.
func publishFlag(ctx context.Context, st store.Operator, userID string, stderr io.Writer) {
	if err := st.PublishChange(ctx, store.Change{Kind: store.ChangeFlag, UserID: userID}); err != nil {
		fmt.Fprintf(stderr, "warning: the flag is stored, but telling the replicas failed (%v); they apply it within 5 minutes\n", err)
	}
}
