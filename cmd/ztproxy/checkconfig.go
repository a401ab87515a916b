package main

import (
	"fmt"
	"io"

	"ztproxy/config"
)

func cmdCheckConfig(args []string, stdout, stderr io.Writer) error {
	path, err := configFlagOnly("check-config", args, stderr)
	if err != nil {
		return err
	}
	f, err := config.Load(path, config.DefaultOptions())
	if err == nil {
		var rt *config.Runtime
		rt, err = config.Build(f)
		if err == nil {
			fmt.Fprintf(stdout, "%s: OK (%d routes, %d policy files)\n", path, len(rt.Proxy.Routes), len(f.PolicyFiles))
			return nil
		}
	}
	printProblems(stdout, path, err)
	return exitCodeError(1)
}
