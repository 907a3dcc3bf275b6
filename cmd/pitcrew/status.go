package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pitcrew/pitcrew/syncer"
)

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", "status [--config FILE | --url URL | --data-dir DIR --channel NAME] [--json]", stderr)
	config := fs.String("config", "", "config file: its http_addr, data_dir and channel (default pitcrew.yaml when present)")
	url := fs.String("url", "", "base URL of a running 'pitcrew sync', e.g. http://127.0.0.1:9307")
	dataDir := fs.String("data-dir", "", "data dir to read when no service answers")
	channel := fs.String("channel", "main", "channel name (with --data-dir)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *config == "" && *url == "" && *dataDir == "" {
		if _, err := os.Stat("pitcrew.yaml"); err == nil {
			*config = "pitcrew.yaml"
		} else {
			return errors.New("nothing to ask: pass --config FILE, --url URL or --data-dir DIR")
		}
	}
	var fc *fileConfig
	if *config != "" {
		c, err := loadConfig(*config)
		if err != nil {
			return err
		}
		fc = &c
		cfg := c.syncerConfig()
		if *dataDir == "" {
			*dataDir = cfg.DataDir
		}
		*channel = cfg.Channel
	}
	st, err := serviceStatus(ctx, *url, fc, *dataDir, *channel)
	if err != nil {
		if *dataDir == "" {
			return fmt.Errorf("%v, and no data dir was given", err)
		}
		if st, err = syncer.StoredStatus(*dataDir, *channel); err != nil {
			return err
		}
		if fc != nil {
			// No service: how far behind the source the checkpoint is.
			st.SourceBehind(ctx, fc.syncerConfig().Source)
		}
	}
	return printStatus(stdout, st, *asJSON)
}

// printStatus prints a channel's status: lines for a person, or JSON.
func printStatus(w io.Writer, st syncer.Status, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(w, "channel:              %s\n", st.Channel)
	fmt.Fprintf(w, "state:                %s\n", st.State)
	fmt.Fprintf(w, "applied GTID set:     %s\n", st.AppliedGTIDSet)
	if st.SourceGTIDSet != "" {
		fmt.Fprintf(w, "source GTID set:      %s\n", st.SourceGTIDSet)
		fmt.Fprintf(w, "transactions behind:  %d\n", st.TransactionsBehind)
	}
	if st.State != syncer.StateNotRunning {
		fmt.Fprintf(w, "seconds behind:       %.1f\n", st.SecondsBehind)
		fmt.Fprintf(w, "applied:              %d transactions, %d rows (%d events read)\n", st.TxnsApplied, st.RowsApplied, st.EventsRead)
	}
	if st.LastError != "" {
		fmt.Fprintf(w, "last error:           %s\n", st.LastError)
	}
	fmt.Fprintf(w, "updated:              %s\n", st.UpdatedAt.Format(time.RFC3339))
	return nil
}

// serviceStatus asks the running service of a channel: at --url if given,
// else at the URL the service recorded in its data dir, else at the
// config's http_addr. A service that answers for another channel is not
// this channel's.
func serviceStatus(ctx context.Context, url string, fc *fileConfig, dataDir, channel string) (syncer.Status, error) {
	var urls []string
	switch {
	case url != "":
		urls = []string{url}
	case fc != nil:
		if b, err := os.ReadFile(filepath.Join(dataDir, serviceURLFile)); err == nil {
			urls = append(urls, strings.TrimSuffix(strings.TrimSpace(string(b)), "/"))
		}
		if a := fc.httpAddr(); a != "" {
			urls = append(urls, "http://"+a)
		}
	}
	if len(urls) == 0 {
		return syncer.Status{}, errors.New("no service to ask (http_addr is off and none recorded its URL in the data dir)")
	}
	var errs []string
	for _, u := range urls {
		st, err := statusFromURL(ctx, u)
		switch {
		case err != nil:
			errs = append(errs, fmt.Sprintf("%s: %v", u, err))
		case fc != nil && st.Channel != channel:
			errs = append(errs, fmt.Sprintf("the service at %s runs channel %q, not %q", u, st.Channel, channel))
		default:
			return st, nil
		}
	}
	return syncer.Status{}, fmt.Errorf("no service of channel %q answers (%s)", channel, strings.Join(errs, "; "))
}

// statusFromURL asks the service at url (PITCREW_CONSOLE_TOKEN as the
// bearer of a guarded /status).
func statusFromURL(ctx context.Context, url string) (syncer.Status, error) {
	return syncer.FetchStatus(ctx, url, os.Getenv(envConsoleToken))
}

// serviceApplied asks the config's running service for its applied set
// ("" when none answers).
func serviceApplied(fc fileConfig) func(context.Context) string {
	return func(ctx context.Context) string {
		if st, err := statusFromURL(ctx, "http://"+fc.httpAddr()); err == nil {
			return st.AppliedGTIDSet
		}
		return ""
	}
}
