package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
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
	if *config != "" {
		fc, err := loadConfig(*config)
		if err != nil {
			return err
		}
		cfg := fc.syncerConfig()
		if *url == "" && fc.httpAddr() != "" {
			*url = "http://" + fc.httpAddr()
		}
		if *dataDir == "" {
			*dataDir = cfg.DataDir
		}
		*channel = cfg.Channel
	}
	st, err := statusFromURL(ctx, *url)
	if err != nil {
		if *dataDir == "" {
			return fmt.Errorf("no service answers at %s (%v) and no data dir was given", *url, err)
		}
		if st, err = statusFromDir(*dataDir, *channel); err != nil {
			return err
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(stdout, "channel:              %s\n", st.Channel)
	fmt.Fprintf(stdout, "state:                %s\n", st.State)
	fmt.Fprintf(stdout, "applied GTID set:     %s\n", st.AppliedGTIDSet)
	if st.State != syncer.StateNotRunning {
		fmt.Fprintf(stdout, "source GTID set:      %s\n", st.SourceGTIDSet)
		fmt.Fprintf(stdout, "transactions behind:  %d\n", st.TransactionsBehind)
		fmt.Fprintf(stdout, "seconds behind:       %.1f\n", st.SecondsBehind)
		fmt.Fprintf(stdout, "applied:              %d transactions, %d rows (%d events read)\n", st.TxnsApplied, st.RowsApplied, st.EventsRead)
	}
	if st.LastError != "" {
		fmt.Fprintf(stdout, "last error:           %s\n", st.LastError)
	}
	fmt.Fprintf(stdout, "updated:              %s\n", st.UpdatedAt.Format(time.RFC3339))
	return nil
}

func statusFromURL(ctx context.Context, url string) (syncer.Status, error) {
	var st syncer.Status
	if url == "" {
		return st, errors.New("no URL")
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/status", nil)
	if err == nil {
		bearerFromEnv(req)
	}
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("%s/status: %s", url, resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// statusFromDir reads the local checkpoint of a channel that is not running.
func statusFromDir(dir, channel string) (syncer.Status, error) {
	if _, err := os.Stat(dir); err != nil {
		return syncer.Status{}, fmt.Errorf("data dir %s: %w", dir, err)
	}
	store, err := checkpoint.Open(dir)
	if err != nil {
		return syncer.Status{}, fmt.Errorf("%w; if pitcrew sync is running, ask it with --url", err)
	}
	defer store.Close()
	p, ok, err := store.Position(channel)
	if err != nil {
		return syncer.Status{}, err
	}
	if !ok {
		return syncer.Status{}, fmt.Errorf("channel %q has no checkpoint in %s yet", channel, dir)
	}
	return syncer.Status{Channel: channel, State: syncer.StateNotRunning, Flavor: p.Flavor, AppliedGTIDSet: p.GTIDSet, UpdatedAt: p.Updated}, nil
}
