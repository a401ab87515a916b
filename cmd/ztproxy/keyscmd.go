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
	verb, args, err := verbOf("keys", args, stdout, "list", "remove")
	if err != nil {
		return err
	}
	fs := newFlags("keys "+verb, stdout, stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	var id *string
	var all *bool
	if verb == "remove" {
		id = fs.String("id", "", "the key id to remove (as `keys list` prints it)")
		all = fs.Bool("all", false, "remove every key of the user")
	}
	var who string
	if err := fs.parse(args, &who); err != nil {
		return err
	}
	if verb == "remove" && (*id == "") == !*all {
		return usageError("remove needs exactly one of --id and --all")
	}
	_, st, userID, err := operatorTarget(ctx, *path, who, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	keys, err := st.ListCredentials(ctx, userID)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		if err := warnUnseen(ctx, st, userID, stderr); err != nil {
			return err
		}
	}
	if verb == "list" {
		return listKeys(stdout, userID, keys)
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

// keyShow is one key as `keys list` prints it; times not set are left out.
type keyShow struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Created   string `json:"created,omitempty"`
	LastUsed  string `json:"last_used,omitempty"`
	SignCount uint32 `json:"sign_count"`
}

func listKeys(w io.Writer, userID string, keys []store.Credential) error {
	out := make([]keyShow, 0, len(keys))
	for _, k := range keys {
		out = append(out, keyShow{ID: base64.RawURLEncoding.EncodeToString(k.ID), Name: k.Name,
			Created: showTime(k.CreatedAt), LastUsed: showTime(k.LastUsed), SignCount: k.SignCount})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		User string    `json:"user"`
		Keys []keyShow `json:"security_keys"`
	}{userID, out})
}
