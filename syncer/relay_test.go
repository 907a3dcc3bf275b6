package syncer_test

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/devtools/workload"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/syncer"
)

// The target is stalled (a table lock); the relay reads the source's binlog
// ahead of it; the source then purges every binlog the target still needs
// and pitcrew is restarted. Apply resumes from the relay, reading resumes
// at the relay's end, and the target ends equal to the source.
func TestRelayOutlivesPurge(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	testenv.Exec(t, srcDB, workload.Schema("shop")...)
	gen := workload.New(srcDB, "shop", 12)
	if err := gen.Run(context.Background(), 100); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	start := func() (*syncer.Syncer, context.CancelFunc, chan error) {
		s := newSyncer(t, src, tgt, func(c *syncer.Config) { c.StartFrom = syncer.StartBeginning; c.DataDir = dataDir })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx, syncer.RunOptions{}) }()
		return s, cancel, done
	}
	s, stop, done := start()
	waitApplied(t, s, srcDB, 30*time.Second)

	// Stall the target: the applier waits on the table lock.
	lock, err := tgtDB.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(context.Background(), "LOCK TABLES shop.accounts WRITE, shop.events WRITE, shop.counters WRITE"); err != nil {
		t.Fatal(err)
	}
	if err := gen.Run(context.Background(), 500); err != nil {
		t.Fatal(err)
	}
	var want string
	if err := srcDB.QueryRow("SELECT @@gtid_binlog_pos").Scan(&want); err != nil {
		t.Fatal(err)
	}
	goal := gtid.MustParse(gtid.MariaDB, want)
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := s.Status()
		if read, err := gtid.Parse(gtid.MariaDB, st.ReadGTIDSet); err == nil && read.Contains(goal) {
			if gtid.MustParse(gtid.MariaDB, st.AppliedGTIDSet).Contains(goal) || st.RelayBytes == 0 {
				t.Fatalf("the target was not behind while stalled: %+v", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the relay did not read ahead: %+v", s.Status())
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	purgeAll(t, srcDB)

	// Restarted with the source's binlogs gone: everything comes from the relay.
	s, stop, done = start()
	if _, err := lock.ExecContext(context.Background(), "UNLOCK TABLES"); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, s, srcDB, 60*time.Second)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	testenv.AssertTablesEqual(t, srcDB, tgtDB, "shop")
}

// A relay entry, or a piece of one spooled in pieces, rots on disk between
// runs: it is detected by its checksum, dropped with everything after it,
// and read from the source again.
func TestRelayCorruptEntryIsFetchedAgain(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	srcDB := testenv.MustDB(t, src)
	testenv.Exec(t, srcDB, workload.Schema("shop")...)
	if err := workload.New(srcDB, "shop", 13).Run(context.Background(), 400); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		kind      byte
		partBytes int
		tail      bool // in the segment appended to, cut when the relay opens
	}{{"entry", 'E', 0, false}, {"piece", 'P', 200, false}, {"entry in the last segment", 'E', 0, true}} {
		t.Run(c.name, func(t *testing.T) {
			tgt := testenv.New(t, testenv.Options{ServerID: 2})
			tgtDB := testenv.MustDB(t, tgt)
			dataDir := filepath.Join(t.TempDir(), "data")
			run := func(until string) *syncer.Syncer {
				s := newSyncer(t, src, tgt, func(cfg *syncer.Config) {
					cfg.StartFrom = syncer.StartBeginning
					cfg.DataDir = dataDir
					cfg.BatchTxns = 1 // apply slowly, so the relay reads ahead
					cfg.PartBytes = c.partBytes
					if !c.tail {
						cfg.RelayQuota = 512 << 10 // segments of 64 KiB
					}
				})
				if err := s.Run(context.Background(), syncer.RunOptions{CatchUp: true, Until: until}); err != nil {
					t.Fatal(err)
				}
				return s
			}
			run("1-1-20")
			if !corruptRelayRecord(t, filepath.Join(dataDir, "relay", "main"), c.kind, 40, c.tail) {
				t.Fatalf("the relay holds no %s beyond the goal: it did not read ahead", c.name)
			}
			s := run("")
			if st := s.Status(); st.Reconnects < 1 && !c.tail {
				t.Errorf("the corrupt %s did not make the channel read again: %+v", c.name, st)
			}
			testenv.AssertTablesEqual(t, srcDB, tgtDB, "shop")
		})
	}
}

// corruptRelayRecord flips a byte inside the first record of kind (E: an
// entry, P: a piece) in the relay's segment files (the last one when tail
// is set, else the others) whose transaction's GTID sequence number is
// beyond after, and reports whether it found one.
// The format: length (4 bytes), CRC32C (4), kind (1), payload; entry and
// piece payloads start with two varints (number or index, format id) and
// the GTID.
func corruptRelayRecord(t *testing.T, dir string, kind byte, after uint64, tail bool) bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil || len(files) == 0 || !tail && len(files) < 2 {
		t.Fatalf("relay segments in %s: %v %v", dir, files, err)
	}
	if tail {
		files = files[len(files)-1:]
	} else {
		files = files[:len(files)-1]
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+9 <= len(b); {
			n := int(binary.LittleEndian.Uint32(b[off:]))
			rec := b[off+9 : off+8+n]
			if b[off+8] == kind {
				_, k1 := binary.Uvarint(rec)
				_, k2 := binary.Uvarint(rec[k1:])
				glen, k3 := binary.Uvarint(rec[k1+k2:])
				g := string(rec[k1+k2+k3 : k1+k2+k3+int(glen)])
				if seq, err := strconv.ParseUint(g[strings.LastIndex(g, "-")+1:], 10, 64); err == nil && seq > after {
					b[off+9+len(rec)/2] ^= 0x55
					if err := os.WriteFile(f, b, 0o640); err != nil {
						t.Fatal(err)
					}
					return true
				}
			}
			off += 8 + n
		}
	}
	return false
}
