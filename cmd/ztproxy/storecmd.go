package main

import (
	"context"
	"fmt"
	"io"

	"ztproxy/config"
	"ztproxy/store"
)

// cmdStore handles `ztproxy store init`.
func cmdStore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	_, args, err := verbOf("store", args, stdout, "init")
	if err != nil {
		return err
	}
	path, err := configFlagOnly("store init", args, stdout, stderr)
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
		fmt.Fprintf(stdout, "\nLeast-privilege IAM policy: the first statement for the proxy, the second for operators (store init, and\nrisk/keys commands that name a user by email address):\n%s\n",
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
