package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"ztproxy/store"
)

// cmdKeys handles `ztproxy keys list|remove`: the operator's way to see a
// user's security keys and to reset them when the user lost every key
// (users change their own keys on /.ztp/whoami, which needs a key).
func cmdKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = "usage: ztproxy keys list USER --config FILE\n" +
		"       ztproxy keys remove USER (--id ID | --all) --config FILE"
	if len(args) < 2 || (args[0] != "list" && args[0] != "remove") {
		return usageError(usage)
	}
	verb, userID := args[0], args[1]
	fs := newFlags("keys "+verb, stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	id := fs.String("id", "", "the key id to remove (as `keys list` prints it)")
	all := fs.Bool("all", false, "remove every key of the user")
	if err := fs.Parse(args[2:]); err != nil {
		return usageError(err.Error())
	}
	if verb == "remove" && (*id == "") == !*all {
		return usageError("remove needs exactly one of --id and --all")
	}
	_, st, err := openOperatorStore(ctx, *path, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	keys, err := st.ListCredentials(ctx, userID)
	if err != nil {
		return err
	}
	if verb == "list" {
		out := make([]map[string]any, 0, len(keys))
		for _, k := range keys {
			entry := map[string]any{"id": base64.RawURLEncoding.EncodeToString(k.ID), "name": k.Name, "created": k.CreatedAt, "sign_count": k.SignCount}
			if !k.LastUsed.IsZero() {
				entry["last_used"] = k.LastUsed
			}
			out = append(out, entry)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"user": userID, "security_keys": out})
	}
	removed := 0
	for _, k := range keys {
		if !*all && base64.RawURLEncoding.EncodeToString(k.ID) != *id {
			continue
		}
		if err := st.DeleteCredential(ctx, userID, k.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		removed++
	}
	if !*all && removed == 0 {
		return fmt.Errorf("user %s has no key with id %s", userID, *id)
	}
	fmt.Fprintf(stdout, "removed %d security key(s) of %s; they can enroll a new one after a fresh sign-in\n", removed, userID)
	return nil
}
