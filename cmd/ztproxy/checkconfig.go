package main

import (
	"flag"
	"fmt"
	"io"

	"ztproxy/config"
)

func cmdCheckConfig(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	if *path == "" {
		return usageError("--config is required")
	}
	f, err := config.Load(*path, config.DefaultOptions())
	if err == nil {
		var rt *config.Runtime
		rt, err = config.Build(f)
		if err == nil {
			fmt.Fprintf(stdout, "%s: OK (%d routes, %d policy files)\n", *path, len(rt.Proxy.Routes), len(f.PolicyFiles))
			return nil
		}
	}
	printProblems(stdout, *path, err)
	return exitCodeError(1)
}
