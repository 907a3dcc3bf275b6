package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/pitcrew/pitcrew/console"
)

const conflictsUsage = "conflicts list|show ID|resolve ID --config FILE [--node NAME] [--outcome O] [--take source|target] [--json]"

func cmdConflicts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "Usage: pitcrew "+conflictsUsage)
		return errUsage
	}
	sub, rest := subcommand(args)
	id, rest, err := conflictID(sub, rest, stderr)
	if err != nil {
		return err
	}
	fs := newFlags("conflicts "+sub, conflictsUsage, stderr)
	config := fs.String("config", "pitcrew.yaml", "config file with nodes:")
	node := fs.String("node", "", "the node whose ledger to read (list: all nodes)")
	outcome := fs.String("outcome", "", "list: only this outcome (applied, kept-target, parked, resolved-source, resolved-target)")
	take := fs.String("take", "", "resolve: source (write the source's row) or target (keep the target's)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, rest); err != nil {
		return err
	}
	b, err := loadBidi(*config)
	if err != nil {
		return err
	}
	if *node != "" {
		if _, ok := b.nodes[*node]; !ok {
			return fmt.Errorf("--node %q is not in the config's nodes", *node)
		}
	} else if sub != "list" {
		return fmt.Errorf("--node is required for %s: the ledger is per node", sub)
	}
	dbs, err := b.open(ctx)
	if err != nil {
		return err
	}
	defer closeAll(dbs)
	ledgers := b.ledgers(dbs)
	switch sub {
	case "list":
		all, err := ledgers.List(ctx, *node, *outcome)
		if err != nil {
			return err
		}
		return printConflicts(stdout, all, *asJSON)
	case "show":
		c, err := ledgers.Get(ctx, *node, id)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(c.Entry)
	case "resolve":
		if err := ledgers.Resolve(ctx, *node, id, *take); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "conflict %d on node %s resolved: %s\n", id, *node, *take)
		return nil
	}
	fmt.Fprintf(stderr, "pitcrew conflicts: unknown subcommand %q\nUsage: pitcrew %s\n", sub, conflictsUsage)
	return errUsage
}

// conflictID takes the conflict's ID off the arguments of show and resolve.
func conflictID(sub string, rest []string, stderr io.Writer) (int64, []string, error) {
	if sub != "show" && sub != "resolve" {
		return 0, rest, nil
	}
	if len(rest) == 0 {
		fmt.Fprintf(stderr, "pitcrew conflicts %s: the conflict's ID is missing\nUsage: pitcrew %s\n", sub, conflictsUsage)
		return 0, nil, errUsage
	}
	id, err := strconv.ParseInt(rest[0], 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("conflict ID %q is not a number: take it from 'pitcrew conflicts list'", rest[0])
	}
	return id, rest[1:], nil
}

// printConflicts prints `conflicts list`: a table, or JSON.
func printConflicts(w io.Writer, all []console.Conflict, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(all)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tID\tCHANNEL\tGTID\tTABLE\tOP\tPOLICY\tOUTCOME\tKEY")
	for _, r := range all {
		key, _ := json.Marshal(r.Key)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Node, r.ID, r.Channel, r.GTID, r.Table, r.Op, r.Policy, r.Outcome, key)
	}
	return tw.Flush()
}
