package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/console"
	"github.com/pitcrew/pitcrew/syncer"
)

// DBStatus is one database in 'fleet status': the fleet's view of it and
// its runbook's (from its console while it runs, else its journal), with
// every channel's /status.
type DBStatus struct {
	DBState
	Applications []string        `json:"applications"`
	Step         string          `json:"step"`  // first step not done ("" when complete)
	State        string          `json:"state"` // that step's state
	StepError    string          `json:"step_error,omitempty"`
	Waiting      string          `json:"waiting,omitempty"`
	Channels     []syncer.Status `json:"channels,omitempty"`
	Steps        []console.Step  `json:"steps,omitempty"`
	From         string          `json:"from"` // console or journal
}

// Status gathers every database's state.
func (r *Runner) Status(ctx context.Context) ([]DBStatus, *State, error) {
	if err := r.defaults(); err != nil {
		return nil, nil, err
	}
	var st *State
	if b, err := os.ReadFile(r.statePath()); err == nil {
		var s State
		if json.Unmarshal(b, &s) == nil {
			st = &s
		}
	}
	waves, err := r.Fleet.Waves()
	if err != nil {
		return nil, nil, err
	}
	client := &http.Client{Timeout: 2 * time.Second}
	var out []DBStatus
	for _, d := range r.Fleet.Databases {
		s := DBStatus{DBState: DBState{Name: d.Name, Wave: waveOf(waves, d.Name), Phase: "pending"}, Applications: r.Fleet.appsOf(d.Name)}
		if st != nil {
			for _, x := range st.Databases {
				if x.Name == d.Name {
					s.DBState = x
				}
			}
		}
		var steps []console.Step
		if s.Console != "" {
			var state struct {
				Runbook *console.RunbookView `json:"runbook"`
			}
			if getJSON(ctx, client, s.Console+"api/state", &state) == nil && state.Runbook != nil {
				steps, s.Waiting, s.From = state.Runbook.Steps, state.Runbook.Waiting, "console"
				_ = getJSON(ctx, client, s.Console+"status", &s.Channels)
			}
		}
		if s.From == "" {
			m, err := journalSteps(d.plan)
			if err != nil {
				s.From = "journal unreadable: " + err.Error()
			} else {
				s.From = "journal"
				for _, id := range stepOrder() {
					steps = append(steps, m[id])
				}
			}
			s.PID, s.Console = 0, ""
			if s.Phase != "failed" && s.Phase != "finished" && s.Phase != "pending" {
				s.Phase = "stopped"
			}
		}
		s.Steps = steps
		for _, x := range steps {
			if x.State != checkpoint.StepDone && x.State != checkpoint.StepSkipped {
				s.Step, s.State, s.StepError = x.ID, x.State, x.Error
				break
			}
		}
		out = append(out, s)
	}
	return out, st, nil
}

// PrintStatus writes Status as a table.
func PrintStatus(w io.Writer, dbs []DBStatus, st *State) {
	if st != nil {
		alive := "not running"
		if st.PID != 0 && processAlive(st.PID) {
			alive = fmt.Sprintf("running (pid %d)", st.PID)
		}
		fmt.Fprintf(w, "fleet %s: %s, last update %s\n", st.Fleet, alive, st.Updated.Format(time.RFC3339))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DATABASE\tWAVE\tAPPLICATION\tPHASE\tSTEP\tSTATE\tCHANNELS\tDETAIL")
	for _, s := range dbs {
		step, state := s.Step, s.State
		if step == "" {
			step, state = "-", "complete"
		}
		var chans []string
		for _, c := range s.Channels {
			chans = append(chans, fmt.Sprintf("%s %s %.1fs behind", c.Channel, c.State, c.SecondsBehind))
		}
		if len(chans) == 0 {
			chans = []string{"-"}
		}
		detail := s.Error
		if detail == "" {
			detail = s.StepError
		}
		if detail == "" {
			detail = s.Waiting
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Wave, strings.Join(s.Applications, ","), s.Phase, step, state, strings.Join(chans, "; "), oneLine(detail))
	}
	tw.Flush()
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", "; ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	return err == nil && p.Signal(syscallZero) == nil
}
