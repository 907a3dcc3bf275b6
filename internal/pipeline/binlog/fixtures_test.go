package binlog

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// fixtureDir is ../shared/fixtures/mysql-binlogs seen from the repository
// root; tests run in the package directory, three levels down.
func fixtureDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "..", "shared", "fixtures", "mysql-binlogs")
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("PITCREW_REQUIRE_DB") == "1" {
			t.Fatalf("MySQL binlog fixtures missing at %s (PITCREW_REQUIRE_DB=1): %v", dir, err)
		}
		t.Skipf("MySQL binlog fixtures not found at %s: run from a checkout next to shared/", dir)
	}
	return dir
}

// summary is what a fixture decodes to, in a comparable form.
type summary struct {
	txns       int
	gtids      string // the executed set the file's GTID transactions form
	anonymous  int    // transactions without a GTID (gtid_mode=OFF)
	rows       int    // row images
	ddl        int    // standalone statements
	statements int    // statement-format DML (refused by the applier)
	partial    int    // row changes without full images
	named      bool   // some table map carried column names
}

func summarize(t *testing.T, flavor string, txns []*txn.Txn) summary {
	t.Helper()
	s := summary{txns: len(txns)}
	set := gtid.Empty(flavor)
	for _, tx := range txns {
		if tx.GTID == "" {
			s.anonymous++
		} else {
			var err error
			if set, err = set.Add(tx.GTID); err != nil {
				t.Fatalf("GTID %q does not parse: %v", tx.GTID, err)
			}
		}
		s.rows += tx.RowCount()
		if tx.IsDDL() {
			s.ddl++
		}
		for _, e := range tx.Events {
			if e.Query != nil && e.Query.Statement {
				s.statements++
			}
			if e.Rows != nil && e.Rows.Partial() {
				s.partial++
			}
			if e.Rows != nil && e.Rows.Table.Columns != nil {
				s.named = true
			}
		}
	}
	s.gtids = set.String()
	return s
}

func TestDecodeFixtures(t *testing.T) {
	dir := fixtureDir(t)
	cases := []struct {
		file   string
		flavor string
		want   summary
	}{
		// TRANSACTION_PAYLOAD (zstd) holding a whole transaction.
		{"transaction_compression.000001", gtid.MySQL, summary{txns: 1, anonymous: 1, rows: 1}},
		// Compressed payload with an update inside.
		{"mysql-bin.compressed", gtid.MySQL, summary{txns: 1, anonymous: 1, rows: 1}},
		// Tagged GTID uuid:tag:n.
		{"binlog_transaction_with_GTID_TAG.000001", gtid.MySQL, summary{txns: 1, gtids: "55778904-0299-11f1-b1b8-4ef0c4956feb:mytag:3", rows: 1}},
		{"binlog_transaction_previous_GTID_no_tag.000001", gtid.MySQL, summary{}},
		{"json.binlog.000001", gtid.MySQL, summary{txns: 8, anonymous: 8, rows: 18, ddl: 2, partial: 1}},
		{"mysql-enum-string-set.000001", gtid.MySQL, summary{txns: 5, gtids: "93e95066-a2f4-11ec-9b69-9657f0ae95e2:1-5", rows: 3, ddl: 2, named: true}},
		{"binlog-invisible-columns.000001", gtid.MySQL, summary{txns: 5, gtids: "97c7af02-4c50-11ec-acd8-681842034964:1-5", rows: 3, ddl: 2, named: true}},
		{"mysql_type_bit.000001", gtid.MySQL, summary{txns: 3, gtids: "fbda2ad0-7c46-11ec-ae30-4ef7efc81a2a:1-3", rows: 1, ddl: 2, named: true}},
		{"minimal_row_metadata.000001", gtid.MySQL, summary{txns: 1, anonymous: 1, rows: 1, partial: 1}},
		{"time_issue.000001", gtid.MySQL, summary{txns: 1, anonymous: 1, rows: 1}},
		{"binlog_transaction_with_GTID.000001", gtid.MySQL, summary{txns: 3, gtids: "006c2cf2-b1ea-11e4-9057-8c705a3d3e78:1-3", ddl: 2, statements: 1}},
		{"json-opaque.binlog", gtid.MySQL, summary{txns: 3, anonymous: 3, rows: 8, ddl: 2, named: true}},
		{"vector.binlog", gtid.MySQL, summary{txns: 10, anonymous: 10, rows: 10, ddl: 7, named: true}},
		{"rpl_unfiltered_hidden_gcol.000001", gtid.MySQL, summary{txns: 3, anonymous: 3, rows: 1, ddl: 2, partial: 1}},
		{"write-partial-row.binlog", gtid.MySQL, summary{txns: 1, anonymous: 1, rows: 7, partial: 2}},
		{"update-partial-row.binlog", gtid.MySQL, summary{txns: 1, anonymous: 1, rows: 7, partial: 2}},
		{"rpl_cross_version_default_utf8mb4_collation.000001", gtid.MySQL, summary{txns: 5, anonymous: 5, ddl: 3, statements: 2}},
		{"mariadb-bin.000001", gtid.MariaDB, summary{txns: 2, gtids: "0-1-2", rows: 2, named: true}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			txns, err := DecodeFile(filepath.Join(dir, c.file), c.flavor)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got := summarize(t, c.flavor, txns); got != c.want {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestDecodeTruncatedFixture(t *testing.T) {
	dir := fixtureDir(t)
	_, err := DecodeFile(filepath.Join(dir, "binlog_truncated_event.000001"), gtid.MySQL)
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("want ErrTruncated, got %v", err)
	}
	if !strings.Contains(err.Error(), "binlog_truncated_event.000001") {
		t.Errorf("error does not name the file: %v", err)
	}
}
