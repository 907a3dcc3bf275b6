package binlog

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/pitcrew/pitcrew/internal/devtools/mysqltest"
	"github.com/pitcrew/pitcrew/internal/mysql/conn"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// The fixture files the live MySQL 8 tests serve, and their GTIDs.
const (
	enumFile = "mysql-enum-string-set.000001" // 8.0.28
	enumUUID = "93e95066-a2f4-11ec-9b69-9657f0ae95e2"
	bitFile  = "mysql_type_bit.000001" // 8.0.26
	bitUUID  = "fbda2ad0-7c46-11ec-ae30-4ef7efc81a2a"
)

func fixtureFiles(t *testing.T, names ...string) []mysqltest.File {
	dir := fixtureDir(t)
	var out []mysqltest.File
	for _, n := range names {
		out = append(out, mysqltest.File{Path: filepath.Join(dir, n)})
	}
	return out
}

// streamed runs Stream against the primary until want transactions
// arrived (then it cancels) or the stream ends; it returns what arrived
// and the stream's error (nil after the cancel).
func streamed(t *testing.T, p *mysqltest.Primary, e conn.Endpoint, from string, want int, hb time.Duration) ([]*txn.Txn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := gtid.MustParse(gtid.MySQL, from)
	defer func() {
		if start.String() != gtid.MustParse(gtid.MySQL, from).String() {
			t.Errorf("the stream changed the position it was given: %s, was %s", start, from)
		}
	}()
	out := make(chan *txn.Txn, 64)
	done := make(chan error, 1)
	go func() {
		done <- Stream(ctx, Config{Source: e, Flavor: gtid.MySQL, ServerID: 4207, Heartbeat: hb}, start, out, nil)
	}()
	var got []*txn.Txn
	for {
		select {
		case tx := <-out:
			if !tx.Part {
				got = append(got, tx)
			}
			if len(got) == want {
				cancel()
				<-done
				return got, nil
			}
		case err := <-done:
			for len(out) > 0 {
				if tx := <-out; !tx.Part {
					got = append(got, tx)
				}
			}
			return got, err
		}
	}
}

func gtidsOf(txns []*txn.Txn) string {
	var s []string
	for _, tx := range txns {
		s = append(s, tx.GTID)
	}
	return strings.Join(s, " ")
}

// pitcrew logs in to MySQL 8.0 and 8.4 with both plugins, over TLS and
// without: caching_sha2_password's full authentication (the first login,
// or after the server forgot the password) sends the password in the clear
// over TLS and, without TLS, encrypted with the server's RSA public key,
// which both drivers ask the server for (go-mysql's replica and
// go-sql-driver do so by themselves: no option is needed, the equivalent of
// GET_SOURCE_PUBLIC_KEY=1); the next login takes the fast path (the
// server's cache). Both the binlog stream and the SQL pool get in.
func TestMySQL8Handshake(t *testing.T) {
	for _, prof := range []mysqltest.Profile{mysqltest.MySQL80, mysqltest.MySQL84} {
		for _, plugin := range []string{mysql.AUTH_CACHING_SHA2_PASSWORD, mysql.AUTH_NATIVE_PASSWORD} {
			for _, tls := range []bool{false, true} {
				name := prof.Name + "/" + plugin + map[bool]string{true: "/tls", false: "/plaintext"}[tls]
				t.Run(name, func(t *testing.T) {
					p := mysqltest.Start(t, mysqltest.Options{Profile: prof, Auth: plugin, TLS: tls, Files: fixtureFiles(t, enumFile)})
					e := p.Endpoint()
					got, err := streamed(t, p, e, "", 5, 0)
					if err != nil {
						t.Fatalf("stream: %v", err)
					}
					if want := enumUUID + ":1 " + enumUUID + ":2 " + enumUUID + ":3 " + enumUUID + ":4 " + enumUUID + ":5"; gtidsOf(got) != want {
						t.Fatalf("streamed %s, want %s", gtidsOf(got), want)
					}
					first := p.Auths()[0]
					if first.Plugin != plugin || first.TLS != tls {
						t.Errorf("first login %+v, want plugin %s, TLS %v", first, plugin, tls)
					}
					if plugin == mysql.AUTH_CACHING_SHA2_PASSWORD && !first.FullAuth {
						t.Errorf("first login took the fast path: %+v", first)
					}
					// The SQL pool (go-sql-driver) logs in on the cache.
					n := len(p.Auths())
					db, err := conn.Open(e)
					if err != nil {
						t.Fatal(err)
					}
					defer db.Close()
					info, err := Inspect(context.Background(), db)
					if err != nil {
						t.Fatalf("inspect: %v", err)
					}
					if info.Flavor != gtid.MySQL || info.Version != prof.Version {
						t.Errorf("inspect: %+v", info)
					}
					if a := p.Auths()[n]; plugin == mysql.AUTH_CACHING_SHA2_PASSWORD && a.FullAuth {
						t.Errorf("second login took the full path: %+v", a)
					}
					// Full authentication again, now for the SQL driver.
					p.ForgetPasswords()
					db.SetMaxIdleConns(0)
					n = len(p.Auths())
					var v string
					if err := db.QueryRow("SELECT @@GLOBAL.gtid_executed").Scan(&v); err != nil {
						t.Fatalf("after the cache was emptied: %v", err)
					}
					if a := p.Auths()[n]; plugin == mysql.AUTH_CACHING_SHA2_PASSWORD && !a.FullAuth {
						t.Errorf("login after the cache was emptied took the fast path: %+v", a)
					}
					if v != enumUUID+":1-5" {
						t.Errorf("gtid_executed %q", v)
					}
					// A wrong password is MySQL's 1045, explained.
					bad := e
					bad.Password = "wrong"
					bdb, _ := conn.Open(bad)
					defer bdb.Close()
					if err := conn.Ping(context.Background(), bdb, "source", bad); conn.Code(err) != 1045 || !strings.Contains(err.Error(), "access denied") {
						t.Errorf("wrong password: %v", err)
					}
				})
			}
		}
	}
}

// The dump skips what the replica's GTID set holds (here the first three
// transactions, as a replica that has them asks), across a file boundary.
func TestMySQL8DumpSkipsWhatTheReplicaHas(t *testing.T) {
	p := mysqltest.Start(t, mysqltest.Options{Files: fixtureFiles(t, enumFile, bitFile)})
	got, err := streamed(t, p, p.Endpoint(), enumUUID+":1-3", 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := enumUUID + ":4 " + enumUUID + ":5 " + bitUUID + ":1 " + bitUUID + ":2 " + bitUUID + ":3"; gtidsOf(got) != want {
		t.Fatalf("streamed %s, want %s", gtidsOf(got), want)
	}
	if d := p.Dumps(); len(d) != 1 || d[0].Set != enumUUID+":1-3" || d[0].ServerID != 4207 {
		t.Errorf("dumps %+v", d)
	}
}

// A replica that needs purged transactions is refused with MySQL's own
// 1236, which names the missing set; the stream's error keeps that text
// and adds the fix; it is not retryable.
func TestMySQL8PurgedRange(t *testing.T) {
	p := mysqltest.Start(t, mysqltest.Options{Files: fixtureFiles(t, enumFile, bitFile)})
	p.Purge(1)
	_, err := streamed(t, p, p.Endpoint(), enumUUID+":1-2", 1, 0)
	if conn.Code(err) != 1236 {
		t.Fatalf("want 1236, got %v", err)
	}
	for _, want := range []string{
		"Cannot replicate because the source purged required binary logs",
		"The GTID set sent by the replica is '" + enumUUID + ":1-2', and the missing transactions are '" + enumUUID + ":3-5'",
		"re-seed the target",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if conn.Retryable(err) {
		t.Errorf("1236 is retryable: %v", err)
	}
}

// Idle at the end of the log, the primary sends heartbeats at the period
// the replica asked for, and the stream's watchdog (three missed
// heartbeats) keeps the connection; a cut in the middle of a transaction
// ends the stream with a retryable error and delivers nothing of that
// transaction (nor anything after it).
func TestMySQL8HeartbeatsAndCut(t *testing.T) {
	p := mysqltest.Start(t, mysqltest.Options{Files: fixtureFiles(t, enumFile)})
	ctx, cancel := context.WithTimeout(context.Background(), 900*time.Millisecond)
	defer cancel()
	out := make(chan *txn.Txn, 64)
	err := Stream(ctx, Config{Source: p.Endpoint(), Flavor: gtid.MySQL, ServerID: 4207, Heartbeat: 100 * time.Millisecond}, gtid.Empty(gtid.MySQL), out, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("idle stream ended with %v, want it alive until the deadline", err)
	}
	if n := p.Heartbeats(); n < 5 {
		t.Errorf("%d heartbeats in 900 ms at 100 ms", n)
	}
	if len(out) != 5 {
		t.Errorf("%d transactions", len(out))
	}

	p.CutInside(enumUUID + ":3")
	got, err := streamed(t, p, p.Endpoint(), "", 5, 0)
	if err == nil || !conn.Retryable(err) {
		t.Fatalf("cut stream ended with %v, want a retryable error", err)
	}
	// go-mysql may drop parsed events when the error overtakes them:
	// what arrives is a prefix of what was whole before the cut.
	if s := gtidsOf(got); !strings.HasPrefix(enumUUID+":1 "+enumUUID+":2", s) {
		t.Errorf("before the cut: %s, want a prefix of :1 :2", s)
	}
	if d := p.Dumps(); len(d) != 2 {
		t.Errorf("dumps %+v", d)
	}
}

// A replica with more of the source's own GTIDs than the source has is
// refused with MySQL's 1236 for it (the start checks refuse such a start
// before streaming; this is the server's own answer under them).
func TestMySQL8ReplicaAhead(t *testing.T) {
	p := mysqltest.Start(t, mysqltest.Options{Files: fixtureFiles(t, enumFile)})
	_, err := streamed(t, p, p.Endpoint(), enumUUID+":1-9", 1, 0)
	if conn.Code(err) != 1236 || !strings.Contains(err.Error(), "Replica has more GTIDs than the source has, using the source's SERVER_UUID") {
		t.Fatalf("want MySQL's 1236 for a replica ahead, got %v", err)
	}
}
