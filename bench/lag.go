package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/pitcrew/pitcrew/internal/devtools/cpuprof"
	"github.com/pitcrew/pitcrew/syncer"
)

// LagConfig sizes the steady-lag comparison.
type LagConfig struct {
	Rates    []int         // source transactions per second (oltp_write_only shape); default 500, 2000
	Duration time.Duration // measured window per run; default 8s
	Rounds   int           // interleaved rounds; default 3
	Tables   int           // default 4
	Rows     int           // rows per table; default 10,000
	Durable  bool
	// Lanes adds pitcrew with that many apply lanes, per entry.
	Lanes []int
	// CPUProfile, when set, writes a CPU profile of pitcrew's (last)
	// measured window; the harness's writers are in it too.
	CPUProfile string
	Dir        string
	Log        io.Writer
}

// LagResult is one contender's run at one rate.
type LagResult struct {
	Contender string  `json:"contender"`
	Rate      int     `json:"rate"`
	Round     int     `json:"round"`
	Achieved  float64 `json:"achieved_rate"`
	Samples   int     `json:"heartbeats_seen"`
	P50       float64 `json:"p50_ms"`
	P95       float64 `json:"p95_ms"`
	P99       float64 `json:"p99_ms"`
	Max       float64 `json:"max_ms"`
	// CPU is this process's CPU per second of the window; for pitcrew,
	// PitcrewCores subtracts the harness's own share (writers, poller),
	// measured in the native run of the same round and rate.
	CPU          float64   `json:"process_cores"`
	PitcrewCores float64   `json:"pitcrew_cores,omitempty"`
	LagsMS       []float64 `json:"lags_ms,omitempty"`
	Note         string    `json:"note,omitempty"`
}

// Lag measures replication lag under a fixed write rate: the source writes
// oltp_write_only transactions at the rate plus a heartbeat row
// (UPDATE hb SET ts = NOW(6)) every 100 ms; the target is polled every
// 2 ms and each new heartbeat's age (NOW(6) - ts) is recorded the first
// time it shows there. Contenders: the native replica (single-threaded)
// and pitcrew, each on a target restored from the same dump, interleaved.
func Lag(ctx context.Context, cfg LagConfig) ([]LagResult, error) {
	if len(cfg.Rates) == 0 {
		cfg.Rates = []int{500, 2000}
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 8 * time.Second
	}
	setDefault(&cfg.Rounds, 3)
	setDefault(&cfg.Tables, 4)
	setDefault(&cfg.Rows, 10000)
	cfg.Log = logTo(cfg.Log)
	env, err := newBackdrop(ctx, cfg.Dir, cfg.Tables, cfg.Rows, cfg.Durable, cfg.Log)
	if err != nil {
		return nil, err
	}
	defer env.close()
	if _, err := env.srcDB.ExecContext(ctx, "CREATE TABLE "+schema+".hb (id INT PRIMARY KEY, ts DATETIME(6) NOT NULL)"); err != nil {
		return nil, err
	}
	if _, err := env.srcDB.ExecContext(ctx, "INSERT INTO "+schema+".hb VALUES (1, NOW(6))"); err != nil {
		return nil, err
	}
	if err := env.dump(ctx); err != nil {
		return nil, err
	}
	var out []LagResult
	for round := 1; round <= cfg.Rounds; round++ {
		for _, rate := range cfg.Rates {
			var harness float64
			names := []string{"native single-threaded", defaultsName}
			for _, n := range cfg.Lanes {
				names = append(names, fmt.Sprintf("pitcrew (%d lanes)", n))
			}
			for _, name := range names {
				r, err := lagRun(ctx, env, cfg, name, rate)
				r.Round = round
				if err != nil {
					r.Note = err.Error()
				}
				if name == "native single-threaded" {
					harness = r.CPU
				} else {
					r.PitcrewCores = max(0, r.CPU-harness)
				}
				fmt.Fprintf(cfg.Log, "round %d: %-24s %5d tx/s (%.0f done): lag p50 %.1f ms p99 %.1f ms max %.1f ms (%d heartbeats) %s\n",
					round, name, rate, r.Achieved, r.P50, r.P99, r.Max, r.Samples, r.Note)
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// lagRun starts a target from the dump, lets the contender catch up, then
// measures the window.
func lagRun(ctx context.Context, env *backdrop, cfg LagConfig, name string, rate int) (LagResult, error) {
	r := LagResult{Contender: name, Rate: rate}
	tgt, db, err := env.target(ctx, "lag")
	if err != nil {
		return r, err
	}
	defer tgt.Kill()
	defer db.Close()
	runCtx, stop := context.WithCancel(ctx)
	var runErr error
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	if name != "native single-threaded" {
		var v variant
		fmt.Sscanf(name, "pitcrew (%d lanes)", &v.lanes)
		s, done, err := env.pitcrew(tgt, v)
		if err != nil {
			return r, err
		}
		wg.Add(1)
		go func() { defer wg.Done(); defer done(); runErr = s.Run(runCtx, syncer.RunOptions{}) }()
	} else if err := startNative(ctx, db, env.src, env.before, 0); err != nil {
		return r, err
	}
	// Caught up first: the window measures steady state, not a backlog.
	if err := waitHeartbeat(ctx, env.srcDB, db, 60*time.Second); err != nil {
		return r, fmt.Errorf("catching up before the window: %w (%v)", err, runErr)
	}
	if name != "native single-threaded" {
		stop, err := cpuprof.Start(cfg.CPUProfile)
		if err != nil {
			return r, err
		}
		defer stop()
	}
	cpu0 := selfCPU()
	lags, done, failed, err := window(ctx, env.srcDB, db, cfg, rate)
	secs := cfg.Duration.Seconds()
	r.CPU = (selfCPU() - cpu0).Seconds() / secs
	r.Achieved = float64(done) / secs
	if failed > 0 {
		// A write that failed is the harness's problem (the machine is
		// shared), not the replica's: the heartbeats still tell the lag.
		r.Note = fmt.Sprintf("%d source writes failed (first: %v)", failed, err)
	}
	if runErr != nil {
		return r, runErr
	}
	r.Samples, r.LagsMS = len(lags), lags
	r.P50, r.P95, r.P99, r.Max = quantile(lags, 0.5), quantile(lags, 0.95), quantile(lags, 0.99), quantile(lags, 1)
	return r, nil
}

// window runs the writers and the heartbeat for the duration and samples
// the heartbeat's age on the target.
func window(ctx context.Context, srcDB, tgtDB *sql.DB, cfg LagConfig, rate int) ([]float64, int, int, error) {
	wctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	tokens := make(chan struct{}, rate)
	var mu sync.Mutex
	done, failed := 0, 0
	var firstErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // pacer: rate tokens per second in 10 ms slices
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		start, sent := time.Now(), 0
		for {
			select {
			case <-wctx.Done():
				close(tokens)
				return
			case <-tick.C:
				due := int(time.Since(start).Seconds() * float64(rate))
				for ; sent < due; sent++ {
					select {
					case tokens <- struct{}{}:
					default: // writers are behind: the rate is not reached
					}
				}
			}
		}
	}()
	wcfg := CatchupConfig{Workload: WriteOnly, Tables: cfg.Tables, Rows: cfg.Rows}
	// Four writers, one transaction at a time each: more did not reach a
	// higher rate here (the source server is then what is short of CPU)
	// and slowed everything else down; the report flags a rate not
	// reached.
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(9, uint64(w)))
			for range tokens {
				err := writeTxn(wctx, srcDB, r, wcfg)
				mu.Lock()
				switch {
				case err == nil:
					done++
				case wctx.Err() == nil:
					failed++
					if firstErr == nil {
						firstErr = err
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Add(1)
	go func() { // heartbeat
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-tick.C:
				_, _ = srcDB.ExecContext(wctx, "UPDATE "+schema+".hb SET ts = NOW(6) WHERE id = 1")
			}
		}
	}()
	var lags []float64
	var last string
	for wctx.Err() == nil {
		var ts string
		var age int64
		err := tgtDB.QueryRowContext(wctx, "SELECT ts, TIMESTAMPDIFF(MICROSECOND, ts, NOW(6)) FROM "+schema+".hb WHERE id = 1").Scan(&ts, &age)
		if err == nil && ts != last {
			if last != "" {
				lags = append(lags, float64(age)/1000)
			}
			last = ts
		}
		time.Sleep(2 * time.Millisecond)
	}
	wg.Wait()
	return lags, done, failed, firstErr
}

// waitHeartbeat writes a heartbeat and waits until the target has it.
func waitHeartbeat(ctx context.Context, srcDB, tgtDB *sql.DB, limit time.Duration) error {
	var want string
	if _, err := srcDB.ExecContext(ctx, "UPDATE "+schema+".hb SET ts = NOW(6) WHERE id = 1"); err != nil {
		return err
	}
	if err := srcDB.QueryRowContext(ctx, "SELECT ts FROM "+schema+".hb WHERE id = 1").Scan(&want); err != nil {
		return err
	}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		var got string
		if err := tgtDB.QueryRowContext(ctx, "SELECT ts FROM "+schema+".hb WHERE id = 1").Scan(&got); err == nil && got == want {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("the target did not show the heartbeat within %s", limit)
}

func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(q * float64(len(s)-1))
	return s[i]
}
