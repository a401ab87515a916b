package main

import (
	"context"
	"fmt"
	"io"

	"ztproxy/config"
)

// cmdCheckConfig runs serve's start-up (assemble) without taking anything
// exclusive, and says OK exactly when serve would start, apart from what
// the notes it prints say it cannot prove.
func cmdCheckConfig(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	path, err := configFlagOnly("check-config", args, stdout, stderr)
	if err != nil {
		return err
	}
	in, rep, err := assemble(ctx, path, config.DefaultOptions(), assembleCheck, stdout, stderr)
	if err != nil {
		printProblems(stdout, path, err)
		if rep != nil {
			printNotes(stdout, rep.Warnings(), nil)
		}
		return exitCodeError(1)
	}
	in.close()
	fmt.Fprintf(stdout, "%s: OK (%d routes, %d policy files)\n", path, len(in.rt.Proxy.Routes), len(in.rt.File.PolicyFiles))
	printNotes(stdout, rep.Warnings(), rep.Notes())
	return nil
}
