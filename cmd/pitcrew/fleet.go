package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/pitcrew/pitcrew/fleet"
)

const fleetUsage = "fleet plan|apply|resume|status|rollback|confirm|manifests --fleet FILE"

const fleetHelp = `Usage: pitcrew fleet SUBCOMMAND --fleet FILE [flags]

An estate of migrations (examples/fleet.yaml documents every key): each
database's runbook ('pitcrew migrate') runs as a process of its own, at most
limits.copies copying at once; applications cut over in waves, each once all
its databases are in sync; an account pair's KMS key and VPC peering are
made once for all its databases.

  plan       the waves, the shared AWS resources and every database's runbook;
             refuses cycles and limits no order can meet; no network
  apply      run it: shared resources, runbooks, waves (--through STEP stops
             every runbook after that step)
  resume     the same as apply, after a crash, a stop or a fixed failure
  status     every database: phase, step, channels (from each runbook's
             console while it runs, else its journal); --json
  rollback   move applications back to their sources (--application NAME:
             one), the last wave first
  confirm    tell a waiting fleet an application without a hook moved
             (--application NAME [--rollback])
  manifests  Kubernetes manifests for the estate into --out DIR
`

func cmdFleet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprint(stdout, fleetHelp)
			return nil
		}
		fmt.Fprint(stderr, fleetHelp)
		return errUsage
	}
	sub, rest := args[0], args[1:]
	fs := newFlags("fleet "+sub, fleetUsage, stderr)
	path := fs.String("fleet", "fleet.yaml", "the fleet inventory (YAML; examples/fleet.yaml documents every key)")
	through := fs.String("through", "", "apply/resume: stop every runbook after this step")
	app := fs.String("application", "", "rollback: only this application; confirm: the application that moved")
	back := fs.Bool("rollback", false, "confirm: the application moved back to its sources")
	out := fs.String("out", "", "manifests: the directory to write them to")
	asJSON := fs.Bool("json", false, "status: print JSON")
	httpAddr := fs.String("http", "", "apply/resume/status: serve the fleet view (a page linking every runbook's console) on this loopback address, e.g. 127.0.0.1:9310; status then serves until interrupted")
	if err := parse(fs, rest); err != nil {
		return err
	}
	f, err := fleet.Load(*path)
	if err != nil {
		return errors.New(strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	rn := &fleet.Runner{Fleet: f, Out: stdout}
	switch sub {
	case "plan":
		return f.Preview(stdout)
	case "apply", "resume":
		if *httpAddr != "" {
			url, err := rn.Serve(ctx, *httpAddr)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "fleet view: %s\n", url)
		}
		_, err := rn.Apply(ctx, *through)
		return err
	case "status":
		return fleetStatus(ctx, rn, *httpAddr, *asJSON, stdout)
	case "rollback":
		return rn.Rollback(ctx, *app)
	case "confirm":
		if *app == "" {
			return errors.New("confirm needs --application NAME: the application whose writers moved")
		}
		if err := rn.Confirm(*app, *back); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "confirmed: the waiting fleet goes on within a second")
		return nil
	case "manifests":
		if *out == "" {
			return errors.New("manifests needs --out DIR: where to write the Kubernetes manifests")
		}
		files, err := fleet.WriteManifests(f, *out)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %d manifests to %s (apply with: kubectl apply -f %s)\n", len(files), *out, *out)
		return nil
	}
	fmt.Fprintf(stderr, "pitcrew: unknown fleet subcommand %q\n%s", sub, fleetHelp)
	return errUsage
}

// fleetStatus prints every database's state, or serves the fleet view on
// httpAddr until ctx ends.
func fleetStatus(ctx context.Context, rn *fleet.Runner, httpAddr string, asJSON bool, stdout io.Writer) error {
	if httpAddr != "" {
		url, err := rn.Serve(ctx, httpAddr)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "fleet view: %s (until interrupted)\n", url)
		<-ctx.Done()
		return nil
	}
	dbs, st, err := rn.Status(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(dbs)
	}
	fleet.PrintStatus(stdout, dbs, st)
	return nil
}
