package fleet

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pitcrew/pitcrew/console"
	"github.com/pitcrew/pitcrew/infra"
	"gopkg.in/yaml.v3"
)

// runbook is one database's runbook being run: as a process of its own
// (what a pod is to pitcrew), or in this process (tests with the AWS model).
type runbook interface {
	// view is the runbook's state now; ok is false while it cannot be read
	// (the process is still starting).
	view(ctx context.Context) (v console.RunbookView, ok bool)
	done() <-chan struct{}
	err() error // after done
	stop()      // graceful: SIGTERM, then wait
	pid() int   // 0 in this process
	console() string
}

// launcher starts a database's runbook: verb is apply or rollback.
type launcher func(ctx context.Context, d *Database, verb, through string) (runbook, error)

// procRunbook is 'pitcrew migrate VERB --plan FILE' as a child process.
type procRunbook struct {
	cmd    *exec.Cmd
	doneCh chan struct{}
	exitE  error
	mu     sync.Mutex
	url    string
	client *http.Client
}

// processLauncher runs each runbook with the pitcrew binary exe. The plan
// is written without its passwords (they travel in the environment); the
// runbook's output goes to runbook.log in its data dir.
func (r *Runner) processLauncher(ctx context.Context, d *Database, verb, through string) (runbook, error) {
	p := d.plan
	path, err := writePlan(r.Fleet, d)
	if err != nil {
		return nil, err
	}
	args := []string{"migrate", verb, "--plan", path}
	if through != "" && verb == "apply" {
		args = append(args, "--through", through)
	}
	if err := os.MkdirAll(p.DataDir, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(p.DataDir, "runbook.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(r.Exe, args...)
	cmd.Env = append(os.Environ(), "PITCREW_SOURCE_PASSWORD="+p.Source.Database.Password, "PITCREW_TARGET_PASSWORD="+p.Target.Database.Password)
	cmd.SysProcAttr = childAttr()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	fmt.Fprintf(logf, "--- %s pitcrew %s\n", time.Now().UTC().Format(time.RFC3339), strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting the runbook of %s (%s): %w", d.Name, r.Exe, err)
	}
	rb := &procRunbook{cmd: cmd, doneCh: make(chan struct{}), client: &http.Client{Timeout: 2 * time.Second}}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if u, ok := strings.CutPrefix(line, "console: "); ok {
				rb.mu.Lock()
				rb.url = strings.TrimSpace(u)
				rb.mu.Unlock()
			}
		}
		io.Copy(io.Discard, pr)
	}()
	go func() {
		err := cmd.Wait()
		pw.Close()
		<-scanned
		logf.Close()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, lastError(filepath.Join(p.DataDir, "runbook.log")))
		}
		rb.exitE = err
		close(rb.doneCh)
	}()
	return rb, nil
}

// lastError is the runbook's last "pitcrew: ..." line (its error).
func lastError(log string) string {
	b, err := os.ReadFile(log)
	if err != nil {
		return "see " + log
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0 && i >= len(lines)-50; i-- {
		if strings.HasPrefix(lines[i], "pitcrew: ") {
			return strings.TrimPrefix(lines[i], "pitcrew: ") + " (log: " + log + ")"
		}
	}
	return "see " + log
}

func (p *procRunbook) console() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.url
}

func (p *procRunbook) view(ctx context.Context) (console.RunbookView, bool) {
	u := p.console()
	if u == "" {
		return console.RunbookView{}, false
	}
	var st struct {
		Runbook *console.RunbookView `json:"runbook"`
	}
	if err := getJSON(ctx, p.client, u+"api/state", &st); err != nil || st.Runbook == nil {
		return console.RunbookView{}, false
	}
	return *st.Runbook, true
}

func getJSON(ctx context.Context, c *http.Client, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if t := os.Getenv("PITCREW_CONSOLE_TOKEN"); t != "" {
		req.Header.Set("Authorization", "Bearer "+t)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (p *procRunbook) done() <-chan struct{} { return p.doneCh }
func (p *procRunbook) err() error            { return p.exitE }
func (p *procRunbook) pid() int              { return p.cmd.Process.Pid }

func (p *procRunbook) stop() {
	select {
	case <-p.doneCh:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.doneCh:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.doneCh
	}
}

// writePlan writes the database's plan as its runbook reads it, without
// passwords, to FLEET_DATA/plans/NAME.yaml.
func writePlan(f *Fleet, d *Database) (string, error) {
	c := *d.plan
	c.Source.Database.Password, c.Target.Database.Password = "", ""
	b, err := yaml.Marshal(&c)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(f.DataDir, "plans")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, d.Name+".yaml")
	head := "# written by 'pitcrew fleet' from fleet.yaml (database " + d.Name + "); passwords come from the environment\n"
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append([]byte(head), b...), 0o600); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}

// inProcess runs a runbook in this process (tests: the AWS model answers
// only clients made here).
type inProcess struct {
	rn     *infra.Runner
	cancel context.CancelFunc
	doneCh chan struct{}
	exitE  error
}

func (r *Runner) inProcessLauncher(ctx context.Context, d *Database, verb, through string) (runbook, error) {
	rn := &infra.Runner{Plan: d.plan, Out: prefixed(r.Out, d.Name), AWS: r.awsFor(d.plan), Retryer: r.Retryer}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ip := &inProcess{rn: rn, cancel: cancel, doneCh: make(chan struct{})}
	go func() {
		defer close(ip.doneCh)
		if verb == "rollback" {
			ip.exitE = rn.Rollback(cctx)
		} else {
			ip.exitE = rn.Apply(cctx, through, false)
		}
	}()
	return ip, nil
}

func (p *inProcess) view(ctx context.Context) (console.RunbookView, bool) {
	v, err := p.rn.View(ctx)
	return v, err == nil
}
func (p *inProcess) done() <-chan struct{} { return p.doneCh }
func (p *inProcess) err() error            { return p.exitE }
func (p *inProcess) stop()                 { p.cancel(); <-p.doneCh }
func (p *inProcess) pid() int              { return 0 }
func (p *inProcess) console() string       { return "" }

// prefixed writes each line with "  NAME | " in front.
func prefixed(w io.Writer, name string) io.Writer {
	if w == nil {
		return io.Discard
	}
	return &prefixWriter{w: w, prefix: "  " + name + " | "}
}

type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := strings.IndexByte(string(p.buf), '\n')
		if i < 0 {
			break
		}
		if _, err := fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i]); err != nil {
			return 0, err
		}
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

var errStopped = errors.New("stopped")
