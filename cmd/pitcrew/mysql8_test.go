package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/internal/devtools/mysqltest"
	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
	"github.com/pitcrew/pitcrew/internal/jobs/preflight"
)

const (
	enumUUID = "93e95066-a2f4-11ec-9b69-9657f0ae95e2"
	zstdUUID = "5bbd3c8a-0f4e-11ee-8a01-0242ac110002"
)

func mysql8Profiles() []mysqltest.Profile {
	rds := mysqltest.MySQL80
	rds.Name, rds.RDS = "8.0", true
	return []mysqltest.Profile{mysqltest.MySQL80, mysqltest.MySQL84, rds}
}

// preflight against a MySQL 8.0, an 8.4 and an RDS (8.0) source over TLS:
// every check that reads the source passes from what the server answers
// (GTID mode, row format and metadata, the replication privileges, the
// session's TLS version and cipher), RDS's NULL 'binlog retention hours'
// is the FAIL with the exact call, and no query falls outside the profile.
func TestPreflightMySQL8(t *testing.T) {
	for _, prof := range mysql8Profiles() {
		name := prof.Name + map[bool]string{true: "-rds"}[prof.RDS]
		t.Run(name, func(t *testing.T) {
			p := mysqltest.Start(t, mysqltest.Options{Profile: prof, TLS: true, Files: []mysqltest.File{{Path: filepath.Join(fixtures, "mysql-enum-string-set.000001")}}})
			tgt := testenv.New(t, testenv.Options{ServerID: 2})
			cfg := writeConfig(t, p.Endpoint(), tgt.Endpoint())
			code, out, errOut := runCLI("preflight", "--config", cfg, "--json")
			var rs []preflight.Result
			if err := json.Unmarshal([]byte(out), &rs); err != nil {
				t.Fatalf("exit %d: %v\n%s%s", code, err, out, errOut)
			}
			got := map[string]preflight.Result{}
			for _, r := range rs {
				if r.Side != "target" {
					got[r.Side+" "+r.Check] = r
				}
			}
			want := map[string]string{
				"source connect":             "PASS",
				"source tls":                 "PASS",
				"source log_bin":             "PASS",
				"source binlog_format":       "PASS",
				"source binlog_row_image":    "PASS",
				"source binlog_row_metadata": "PASS",
				"source gtid_mode":           "PASS",
				"source server_id":           "PASS",
				"source privileges":          "PASS",
				"source binlog retention":    "PASS",
			}
			if prof.RDS {
				want["source binlog retention"] = "FAIL"
			}
			for k, level := range want {
				if got[k].Level != level {
					t.Errorf("%s: %+v, want %s", k, got[k], level)
				}
			}
			for k, r := range got {
				if r.Level == "FAIL" && want[k] != "FAIL" {
					t.Errorf("unexpected FAIL: %+v", r)
				}
			}
			if d := got["source connect"].Detail; !strings.Contains(d, prof.Version) {
				t.Errorf("connect line does not name the version: %q", d)
			}
			if d := got["source tls"].Detail; !strings.Contains(d, "TLSv1.3") || !strings.Contains(d, "TLS_") {
				t.Errorf("tls line: %q", d)
			}
			if prof.RDS && !strings.Contains(got["source binlog retention"].Fix, "mysql.rds_set_configuration('binlog retention hours', 168)") {
				t.Errorf("RDS retention fix: %+v", got["source binlog retention"])
			}
			if code != map[bool]int{true: exitError, false: 0}[prof.RDS] {
				t.Errorf("exit %d\n%s", code, out)
			}
			var coll preflight.Result
			for _, r := range rs {
				if r.Side == "both" && r.Check == "collation_server" {
					coll = r
				}
			}
			if !strings.Contains(coll.Fix, "MariaDB has no utf8mb4_0900_ai_ci: SET GLOBAL collation_server = 'utf8mb4_uca1400_ai_ci'") {
				t.Errorf("collation_server: %+v", coll)
			}
			// What the operator reads.
			_, text, _ := runCLI("preflight", "--config", cfg)
			t.Logf("pitcrew preflight against MySQL %s:\n%s", name, text)
		})
	}
}

// catchup --start-from now against MySQL 8.0 and 8.4: the channel starts at
// the source's gtid_executed, applies nothing of the history, and applies
// what the source logs after (a file appended to the log, streamed
// to by the next catch-up).
func TestStartFromNowMySQL8(t *testing.T) {
	for _, prof := range []mysqltest.Profile{mysqltest.MySQL80, mysqltest.MySQL84} {
		t.Run(prof.Name, func(t *testing.T) {
			p := mysqltest.Start(t, mysqltest.Options{Profile: prof, Files: []mysqltest.File{{Path: filepath.Join(fixtures, "mysql-enum-string-set.000001")}}})
			tgt := testenv.New(t, testenv.Options{ServerID: 2})
			db := testenv.MustDB(t, tgt)
			testenv.Exec(t, db, "CREATE DATABASE test", "CREATE TABLE test.tb1 (a INT)")
			cfg := writeConfig(t, p.Endpoint(), tgt.Endpoint(), "http_addr: \"off\"")
			code, out, errOut := runCLI("catchup", "--config", cfg, "--start-from", "now")
			if code != 0 {
				t.Fatalf("catchup --start-from now: exit %d\n%s%s", code, out, errOut)
			}
			d := p.Dumps()
			if len(d) != 0 {
				// Already at the source's position: nothing to stream.
				if d[0].Set != enumUUID+":1-5" {
					t.Errorf("dump from %q, want the source's executed set", d[0].Set)
				}
			}
			var n int
			if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 't'").Scan(&n); err != nil || n != 0 {
				t.Errorf("history applied: mysql.t on the target (%d, %v)", n, err)
			}
			// The source moves on; the checkpoint continues from it.
			p.Append(mysqltest.File{Path: filepath.Join(fixtures, "transaction_compression.000001"), AssignUUID: zstdUUID})
			deadline := time.Now().Add(30 * time.Second)
			code, out, errOut = runCLI("catchup", "--config", cfg)
			if code != 0 {
				t.Fatalf("catchup after the source moved on: exit %d\n%s%s", code, out, errOut)
			}
			var a int
			if err := db.QueryRow("SELECT a FROM test.tb1").Scan(&a); err != nil || a != 1 {
				t.Errorf("test.tb1: %d, %v", a, err)
			}
			if time.Now().After(deadline) {
				t.Errorf("slow")
			}
			last := p.Dumps()[len(p.Dumps())-1]
			if last.Set != enumUUID+":1-5" {
				t.Errorf("resumed from %q, want %s:1-5", last.Set, enumUUID)
			}
		})
	}
}

// binlog decode --from-server reads a MySQL 8 source as a replica and
// prints its transactions, up to the source's position at start.
func TestDecodeFromServerMySQL8(t *testing.T) {
	p := mysqltest.Start(t, mysqltest.Options{Profile: mysqltest.MySQL84, Files: []mysqltest.File{{Path: filepath.Join(fixtures, "mysql-enum-string-set.000001")}}})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	cfg := writeConfig(t, p.Endpoint(), tgt.Endpoint())
	code, out, errOut := runCLI("binlog", "decode", "--from-server", "--config", cfg, "--from", enumUUID+":1")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"GTID " + enumUUID + ":2 ", "GTID " + enumUUID + ":5 ", "DELETE mysql.t columns [f1 f2 f3 f4 f5]"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "GTID "+enumUUID+":1 ") {
		t.Errorf("decoded what --from excludes:\n%s", out)
	}
}
