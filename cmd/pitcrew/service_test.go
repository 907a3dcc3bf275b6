package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/devtools/workload"
	"github.com/pitcrew/pitcrew/syncer"
)

// `pitcrew sync` serves /healthz, /metrics and /status, `pitcrew status`
// reads them, and SIGTERM stops the service cleanly with exit 0.
func TestSyncServiceHTTPAndCleanStop(t *testing.T) {
	testenv.Require(t)
	bin := buildBinary(t)
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB := testenv.MustDB(t, src)
	testenv.Exec(t, srcDB, workload.Schema("shop")...)
	if err := workload.New(srcDB, "shop", 5).Run(t.Context(), 200); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := writeConfig(t, src.Endpoint(), tgt.Endpoint())
	var logs strings.Builder
	cmd := exec.Command(bin, "sync", "--config", cfg, "--start-from", "beginning", "--http", addr)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() //nolint:errcheck

	var st syncer.Status
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/status")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		if err == nil && st.TransactionsBehind == 0 && st.TxnsApplied >= 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("service did not catch up: %+v %v\n%s", st, err, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st.Channel != "test" || st.State != syncer.StateStreaming || st.AppliedGTIDSet == "" {
		t.Errorf("status: %+v", st)
	}
	body := get(t, "http://"+addr+"/metrics")
	for _, m := range []string{"pitcrew_transactions_applied_total", "pitcrew_rows_applied_total", "pitcrew_binlog_events_total",
		"pitcrew_binlog_read_bytes_total", "pitcrew_seconds_behind_source", "pitcrew_reconnects_total", "pitcrew_errors_total"} {
		if !strings.Contains(body, m+"{channel=\"test\"}") {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	if h := get(t, "http://"+addr+"/healthz"); !strings.HasPrefix(h, "ok") {
		t.Errorf("/healthz: %q", h)
	}
	code, out, errOut := runCLI("status", "--url", "http://"+addr)
	if code != 0 || !strings.Contains(out, "state:                streaming") {
		t.Errorf("pitcrew status: exit %d\n%s%s", code, out, errOut)
	}
	// The config says http_addr: off and the service got --http: status
	// --config finds it through the URL it recorded in the data dir.
	code, out, errOut = runCLI("status", "--config", cfg)
	if code != 0 || !strings.Contains(out, "state:                streaming") {
		t.Errorf("pitcrew status --config of a service on another address: exit %d\n%s%s", code, out, errOut)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("sync did not stop within 20s of SIGTERM\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "stopped cleanly") {
		t.Errorf("no clean-stop log line:\n%s", logs.String())
	}
	// Not running: status falls back to the data dir, and asks the source
	// how far behind that is.
	if err := workload.New(srcDB, "shop", 6).Run(t.Context(), 7); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI("status", "--config", cfg)
	if code != 0 || !strings.Contains(out, "not-running") || !strings.Contains(out, st.AppliedGTIDSet) ||
		!strings.Contains(out, "transactions behind:  7") {
		t.Errorf("pitcrew status from the data dir: exit %d\n%s%s", code, out, errOut)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
