package syncer_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/syncer"
)

// The source connection is cut again and again while large transactions
// stream (each spans many rows events and network packets), so most cuts
// land inside a transaction. A partly received transaction must never be
// applied: the target ends with every transaction whole, none twice.
func TestNetworkCutsNeverApplyPartialTransactions(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	srcDB := testenv.MustDB(t, src)
	proxy, err := testenv.NewProxy(src.Endpoint().Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	testenv.Exec(t, srcDB, "CREATE DATABASE big",
		"CREATE TABLE big.t (txn INT NOT NULL, n INT NOT NULL, pad VARBINARY(2000) NOT NULL, PRIMARY KEY (txn, n))")

	// A backlog of large transactions first, so the reader is always in the
	// middle of one when the cutter strikes.
	const txns, rowsPerTxn = 150, 400
	pad := strings.Repeat("p", 1500)
	for i := 0; i < txns; i++ {
		tx, err := srcDB.Begin()
		if err != nil {
			t.Fatal(err)
		}
		// Several statements: several rows events per transaction.
		for chunk := 0; chunk < rowsPerTxn; chunk += 100 {
			var b strings.Builder
			b.WriteString("INSERT INTO big.t VALUES ")
			for n := chunk; n < chunk+100; n++ {
				if n > chunk {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "(%d, %d, '%s')", i, n, pad)
			}
			if _, err := tx.Exec(b.String()); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := tx.Exec("UPDATE big.t SET pad = 'u' WHERE txn = ? AND n = 0", i); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}

	// In pieces, each transaction (600 KB) is spooled, or without the
	// relay applied, in about ten pieces, so cuts land between them too.
	for _, v := range []struct {
		name      string
		partBytes int
		noRelay   bool
	}{{"whole", 0, false}, {"in pieces", 64 << 10, false}, {"no relay, in pieces", 64 << 10, true}} {
		t.Run(v.name, func(t *testing.T) {
			cutAndCheck(t, src, testenv.New(t, testenv.Options{ServerID: 2}), proxy, v.partBytes, v.noRelay, txns, rowsPerTxn)
		})
	}
}

func cutAndCheck(t *testing.T, src, tgt *testenv.Server, proxy *testenv.Proxy, partBytes int, noRelay bool, txns, rowsPerTxn int) {
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	dropped := &sync.Map{}
	s := newSyncer(t, src, tgt, func(c *syncer.Config) {
		c.Source = conn.Endpoint{Host: "127.0.0.1", Port: proxy.Port(), User: "root"}
		c.StartFrom = syncer.StartBeginning
		c.RestartBackoffMax = 100 * time.Millisecond
		c.BatchTxns = 2 // small batches: progress between cuts
		c.PartBytes, c.NoRelay = partBytes, noRelay
		if partBytes > 0 {
			// A small spool keeps the reader in step with the applier,
			// mid-transaction when the cutter strikes.
			c.RelayQuota = 2 << 20
		}
		c.Logger = slog.New(&msgCounter{Handler: c.Logger.Handler(), counts: dropped})
	})
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx, syncer.RunOptions{}) }()

	// Cut while the stream is busy, at varying moments, until the engine
	// has reconnected 8 times.
	cuts := 0
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; s.Status().Reconnects < 8 && time.Now().Before(deadline); i++ {
		applied := s.Status().TxnsApplied
		for time.Now().Before(deadline) && (s.Status().State != syncer.StateStreaming || s.Status().TxnsApplied == applied) {
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(time.Duration(3+i%4*7) * time.Millisecond)
		cuts += proxy.Cut()
	}
	waitApplied(t, s, srcDB, 90*time.Second)
	cancel()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	st := s.Status()
	t.Logf("%d connections cut, %d reconnects, %d transactions applied", cuts, st.Reconnects, st.TxnsApplied)
	if st.Reconnects < 8 {
		t.Errorf("only %d reconnects: the cuts did not exercise the reconnect path", st.Reconnects)
	}
	switch {
	case partBytes > 0 && !noRelay:
		n, _ := dropped.Load(pendingDropped)
		t.Logf("%v cuts landed between the pieces of a transaction", n)
		if n == nil {
			t.Error("no cut landed between the pieces of a transaction: the pieces' restart path went untested")
		}
	case partBytes > 0:
		// A cut while a transaction is applied as it arrives rolls it
		// back; it is applied again from its first piece.
		n, _ := dropped.Load(appliedAsArrives)
		t.Logf("%v starts of applying a transaction as it arrives, for %d transactions", n, txns)
		if n == nil || n.(int) <= txns {
			t.Error("no cut landed while a transaction was applied as it arrived: the rollback path went untested")
		}
	}
	// Every transaction is whole on the target: rowsPerTxn rows, its update applied.
	var bad int
	if err := tgtDB.QueryRow(`SELECT COUNT(*) FROM (SELECT txn FROM big.t GROUP BY txn
HAVING COUNT(*) <> ? OR SUM(pad = 'u') <> 1) x`, rowsPerTxn).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		t.Errorf("%d transactions are partial on the target", bad)
	}
	testenv.AssertTablesEqual(t, srcDB, tgtDB, "big")
}

const (
	pendingDropped   = "dropped the spooled pieces of a transaction the stream broke in; it is read again whole"
	appliedAsArrives = "applying a large transaction as it arrives"
)

// msgCounter counts the log records by message.
type msgCounter struct {
	slog.Handler
	counts *sync.Map
}

func (h *msgCounter) Enabled(context.Context, slog.Level) bool { return true }

func (h *msgCounter) Handle(ctx context.Context, r slog.Record) error {
	for {
		n, _ := h.counts.LoadOrStore(r.Message, 0)
		if h.counts.CompareAndSwap(r.Message, n, n.(int)+1) {
			break
		}
	}
	if h.Handler.Enabled(ctx, r.Level) {
		return h.Handler.Handle(ctx, r)
	}
	return nil
}

func (h *msgCounter) WithAttrs(as []slog.Attr) slog.Handler {
	return &msgCounter{h.Handler.WithAttrs(as), h.counts}
}

func (h *msgCounter) WithGroup(g string) slog.Handler {
	return &msgCounter{h.Handler.WithGroup(g), h.counts}
}
