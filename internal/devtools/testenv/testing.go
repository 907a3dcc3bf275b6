// Package testenv is the tests' side of the throwaway MariaDB servers that
// internal/devtools/mariadb launches: New starts one for a test and removes
// it when the test ends, MustDB/Exec/AssertTablesEqual fail the test on an
// error, NewTestCerts, TLSCases and NewNativeReplica set up what TLS and
// replication tests need, and Proxy cuts connections from outside the
// engine. It imports testing, so nothing the pitcrew binary links may
// import it (cmd/pitcrew's TestBinaryDoesNotLinkTesting checks).
package testenv

import (
	"context"
	"database/sql"
	"os"
	"testing"

	"github.com/pitcrew/pitcrew/internal/devtools/mariadb"
	"github.com/pitcrew/pitcrew/internal/jobs/verify/checksum"
)

// RequireEnv is the environment variable that turns "skip: no MariaDB" into
// a failure, so CI can never pass by skipping.
const RequireEnv = "PITCREW_REQUIRE_DB"

// Require skips the test with a clear message when MariaDB is not
// installed, or fails it when PITCREW_REQUIRE_DB=1.
func Require(t testing.TB) {
	t.Helper()
	if _, _, err := mariadb.Binaries(); err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%v (%s=1 forbids skipping)", err, RequireEnv)
		}
		t.Skipf("skipping: %v", err)
	}
}

// New starts a server for the test in a fresh temp dir and stops and
// removes it when the test ends, whether it passed or not.
func New(t testing.TB, o Options) *Server {
	t.Helper()
	Require(t)
	// Not t.TempDir: unix socket paths must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "pitcrew-db-")
	if err != nil {
		t.Fatal(err)
	}
	o.Dir = dir
	s, err := Start(context.Background(), o)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("starting MariaDB: %v", err)
	}
	t.Cleanup(func() {
		s.Kill() // throwaway: no need for a clean shutdown
		os.RemoveAll(dir)
	})
	return s
}

// MustDB opens a pool to s that the test closes at its end.
func MustDB(t testing.TB, s *Server) *sql.DB {
	t.Helper()
	db, err := s.DB()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Exec runs statements on db and fails the test on the first error.
func Exec(t testing.TB, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// AssertTablesEqual fails the test unless every table of schema has the
// same row count and CHECKSUM TABLE on src and tgt.
func AssertTablesEqual(t testing.TB, src, tgt *sql.DB, schema string) {
	t.Helper()
	tables, err := checksum.BaseTables(context.Background(), src, schema)
	if err != nil || len(tables) == 0 {
		t.Fatalf("listing tables of %s: %v (%d)", schema, err, len(tables))
	}
	res, err := checksum.Tables(context.Background(), src, tgt, schema, tables)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !r.Equal() {
			t.Errorf("%s", r)
		} else {
			t.Logf("%s", r)
		}
	}
}

// NewTestCerts writes throwaway certificates (see NewCerts) into a
// directory removed when the test ends.
func NewTestCerts(t testing.TB, names ...string) *Certs {
	t.Helper()
	c, err := NewCerts(t.TempDir(), names...)
	if err != nil {
		t.Fatalf("generating certificates: %v", err)
	}
	return c
}

// NewNativeReplica starts a server for the test (o) that replicates from
// source with the server's own replication (r), the reference to compare
// pitcrew's target with; WaitReplica waits for a position.
func NewNativeReplica(t testing.TB, source *Server, o Options, r ReplicaOptions) *Server {
	t.Helper()
	s := New(t, o)
	if err := mariadb.StartReplica(context.Background(), MustDB(t, s), source, r); err != nil {
		t.Fatal(err)
	}
	return s
}
