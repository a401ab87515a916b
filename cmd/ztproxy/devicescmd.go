package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"

	"ztproxy/devices"
	"ztproxy/identity"
	"ztproxy/metrics"
)

// cmdDevices is the operator's view of the device inventory: list and
// inspect devices, revoke them, mark them managed (every replica sees
// both within the change feed's poll interval, issue 17), import an MDM
// inventory.
func cmdDevices(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	a, err := parseDevicesArgs(args, stdout, stderr)
	if err != nil {
		return err
	}
	f, st, err := openOperatorStore(ctx, a.config, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	inv, err := newDeviceInventory(f, st, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), metrics.New())
	if err != nil {
		return err
	}
	if inv == nil {
		return fmt.Errorf("devices.enabled is off in %s", a.config)
	}
	op := devicesOp{inv: inv, out: stdout}
	switch a.verb {
	case "list":
		return op.list(ctx, a.owner)
	case "show":
		return op.show(ctx, a.id)
	case "revoke":
		status := identity.DeviceRevoked
		if a.lost {
			status = identity.DeviceLost
		}
		rec, err := inv.Revoke(ctx, a.id, status, "operator:"+operator(), a.reason)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "device %s is %s; %s\n", a.id, rec.Status, seenWithin)
		return nil
	case "set-managed":
		if _, err := inv.SetManaged(ctx, a.id, a.managed, devices.SourceOperator); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "device %s managed=%t; %s\n", a.id, a.managed, seenWithin)
		return nil
	}
	return op.importFile(ctx, a.format, a.file)
}

// seenWithin is what the operator should expect of revoke and
// set-managed: the inventory announces them on the change feed (issue 17),
// and warns on stderr when it could not.
const seenWithin = "every replica sees it within a second (within devices.cache_ttl if a warning above says the replicas could not be told)"

// devicesArgs is a parsed `ztproxy devices` command line.
type devicesArgs struct {
	verb, id, config, owner, reason, format, file string
	lost, managed                                 bool
}

// parseDevicesArgs reads `devices VERB [ID] [true|false] [flags]`.
func parseDevicesArgs(args []string, stdout, stderr io.Writer) (devicesArgs, error) {
	var a devicesArgs
	verb, args, err := verbOf("devices", args, stdout, "list", "show", "revoke", "set-managed", "import")
	if err != nil {
		return a, err
	}
	a.verb = verb
	fs := newFlags("devices "+a.verb, stdout, stderr)
	fs.StringVar(&a.config, "config", "", "configuration file (YAML)")
	switch verb {
	case "list":
		fs.StringVar(&a.owner, "owner", "", "list only this user's devices (<issuer>#<sub>)")
	case "revoke":
		fs.BoolVar(&a.lost, "lost", false, "mark the device lost rather than revoked")
		fs.StringVar(&a.reason, "reason", "", "why the device is revoked (kept in the inventory)")
	case "import":
		fs.StringVar(&a.format, "format", "", "MDM export format: jamf, intune or generic")
		fs.StringVar(&a.file, "file", "", "MDM export file")
	}
	var positional []*string
	var managed string
	switch verb {
	case "show", "revoke":
		positional = []*string{&a.id}
	case "set-managed":
		positional = []*string{&a.id, &managed}
	}
	if err := fs.parse(args, positional...); err != nil {
		return a, err
	}
	if verb == "set-managed" {
		m, err := strconv.ParseBool(managed)
		if err != nil {
			return a, usageError("set-managed takes true or false")
		}
		a.managed = m
	}
	switch {
	case a.verb == "revoke" && a.reason == "":
		return a, usageError("revoke needs --reason")
	case a.verb == "import" && (a.format == "" || a.file == ""):
		return a, usageError("import needs --format and --file")
	}
	return a, nil
}

// devicesOp prints inventory answers as JSON.
type devicesOp struct {
	inv *devices.Inventory
	out io.Writer
}

func (o devicesOp) json(v any) error {
	enc := json.NewEncoder(o.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (o devicesOp) list(ctx context.Context, owner string) error {
	recs, err := o.inv.List(ctx, owner)
	if err != nil {
		return err
	}
	type row struct {
		ID, Name, Owner, Status string
		Managed                 bool   `json:"managed"`
		LastSeen                string `json:"last_seen"`
	}
	rows := make([]row, 0, len(recs))
	for _, r := range recs {
		rows = append(rows, row{ID: r.ID, Name: r.Name, Owner: r.Owner, Status: r.Status, Managed: r.Managed, LastSeen: r.LastSeen.UTC().Format("2006-01-02T15:04:05Z")})
	}
	return o.json(map[string]any{"devices": rows})
}

func (o devicesOp) show(ctx context.Context, id string) error {
	rec, err := o.inv.Get(ctx, id)
	if err != nil {
		return err
	}
	return o.json(map[string]any{"device": rec, "spiffe_id": devices.SPIFFEID(o.inv.TrustDomain(), rec.ID), "posture": o.inv.Posture(&rec)})
}

func (o devicesOp) importFile(ctx context.Context, format, file string) error {
	data, err := readBounded(file, devices.MaxImportBytes)
	if err != nil {
		return err
	}
	res, err := o.inv.Import(ctx, format, data)
	if err != nil {
		return err
	}
	return o.json(res)
}

// readBounded reads a file of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return data, nil
}
