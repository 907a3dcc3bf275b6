package ddl

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/pingcap/tidb/pkg/parser/ast"
)

var big = strings.Repeat("1234567890", 25) + "12345678" // 258 digits, as in the MariaDB test corpus

// Statements the parser panicked on or rejects are placed all the same:
// a 258-digit literal (the parser's test driver panicked on it, and every
// restart panicked again), character sets it does not know, MariaDB's
// expression defaults in CREATE OR REPLACE, system versioning.
func TestAnalyzeWhatTheParserRejects(t *testing.T) {
	cases := []struct {
		sql       string
		tables    []Ref
		dbs       []string
		approx    bool
		versioned bool
		expect    []Expect
	}{
		{"CREATE TABLE bigdef (id INT PRIMARY KEY, d DECIMAL(65,0) DEFAULT " + big + ")", []Ref{{"app", "bigdef"}}, nil, false, false, nil},
		{"ALTER TABLE t ALTER COLUMN d SET DEFAULT -" + big + ".5e1", []Ref{{"app", "t"}}, nil, false, false, nil},
		{"CREATE TABLE cp (id INT PRIMARY KEY, s VARCHAR(10)) CHARACTER SET cp932", []Ref{{"app", "cp"}}, nil, true, false,
			[]Expect{{Ref{"app", "cp"}, true}}},
		{"CREATE OR REPLACE TABLE dx (id INT PRIMARY KEY, d DATETIME DEFAULT (NOW() + INTERVAL 1 DAY), j INT DEFAULT (1+1))", []Ref{{"app", "dx"}}, nil, true, false,
			[]Expect{{Ref{"app", "dx"}, true}}},
		{"CREATE TABLE sv (id INT PRIMARY KEY, a INT) WITH SYSTEM VERSIONING", []Ref{{"app", "sv"}}, nil, true, true,
			[]Expect{{Ref{"app", "sv"}, true}}},
		{"ALTER TABLE other.t ADD SYSTEM VERSIONING", []Ref{{"other", "t"}}, nil, true, true, []Expect{{Ref{"other", "t"}, true}}},
		{"ALTER TABLE sv DROP SYSTEM VERSIONING", []Ref{{"app", "sv"}}, nil, true, false, []Expect{{Ref{"app", "sv"}, true}}},
		{"ALTER TABLE `a b`.`c``d` CONVERT TO CHARACTER SET cp932, RENAME TO `x`", []Ref{{"a b", "c`d"}, {"app", "x"}}, nil, true, false,
			[]Expect{{Ref{"a b", "c`d"}, false}, {Ref{"app", "x"}, true}}},
		{"RENAME TABLE a TO tmp, b TO a, tmp TO b /* swap */", nil, nil, false, false, nil},
		{"CREATE TABLE k (id INT, p INT, FOREIGN KEY (p) REFERENCES shop.parent (id)) DEFAULT CHARSET=cp932", []Ref{{"app", "k"}, {"shop", "parent"}}, nil, true, false,
			[]Expect{{Ref{"app", "k"}, true}}},
		{"CREATE TABLE m (id INT) ENGINE=MERGE UNION=(m1, `o`.m2) INSERT_METHOD=LAST CHARSET cp932", []Ref{{"app", "m"}, {"app", "m1"}, {"o", "m2"}}, nil, true, false,
			[]Expect{{Ref{"app", "m"}, true}}},
		{"DROP TABLE IF EXISTS x, y.z /*!50000 c */", []Ref{{"app", "x"}, {"y", "z"}}, nil, true, false,
			[]Expect{{Ref{"app", "x"}, false}, {Ref{"y", "z"}, false}}},
		{"CREATE DATABASE `db2` CHARACTER SET cp932", nil, []string{"db2"}, true, false, []Expect{{Ref{"db2", ""}, true}}},
		{"CREATE INDEX i ON t (s) COMMENT 'ä' /*M!100500 IGNORED */", []Ref{{"app", "t"}}, nil, false, false, nil},
		{"TRUNCATE cp", []Ref{{"app", "cp"}}, nil, false, false, nil},
	}
	for _, c := range cases {
		info, err := Analyze("app", c.sql, 0)
		if err != nil {
			t.Errorf("%s: %v", c.sql, err)
			continue
		}
		if c.tables != nil && !reflect.DeepEqual(info.Tables, c.tables) || c.dbs != nil && !reflect.DeepEqual(info.Databases, c.dbs) ||
			info.Approx != c.approx || info.Versioned != c.versioned || !reflect.DeepEqual(info.Expect, c.expect) {
			t.Errorf("%s:\n got tables %v dbs %v approx %v versioned %v expect %v", c.sql, info.Tables, info.Databases, info.Approx, info.Versioned, info.Expect)
		}
	}
}

// The light reader, on its own: names, quoting, executable comments, and
// the catalogue state a statement leaves.
func TestLightReader(t *testing.T) {
	cases := []struct {
		sql      string
		mode     uint64
		tables   []Ref
		expect   []Expect
		complete bool
	}{
		{"RENAME TABLE a TO tmp, b TO a, tmp TO b", 0, []Ref{{"app", "a"}, {"app", "tmp"}, {"app", "b"}, {"app", "a"}, {"app", "tmp"}, {"app", "b"}},
			[]Expect{{Ref{"app", "a"}, true}, {Ref{"app", "tmp"}, false}, {Ref{"app", "b"}, true}}, false},
		{`CREATE TABLE "q" ("a" INT) CHARSET cp932`, modeANSIQuotes, []Ref{{"app", "q"}}, []Expect{{Ref{"app", "q"}, true}}, true},
		{"CREATE TABLE /*!32312 IF NOT EXISTS*/ `x` (s VARCHAR(3) DEFAULT 'it''s \\' a')", 0, []Ref{{"app", "x"}}, []Expect{{Ref{"app", "x"}, true}}, true},
		{"CREATE TABLE c2 CHARSET cp932 SELECT * FROM src", 0, []Ref{{"app", "c2"}}, []Expect{{Ref{"app", "c2"}, true}}, false},
		{"DROP TABLE a, `b`.c", 0, []Ref{{"app", "a"}, {"b", "c"}}, []Expect{{Ref{"app", "a"}, false}, {Ref{"b", "c"}, false}}, false},
		{"ALTER TABLE p EXCHANGE PARTITION p0 WITH TABLE q", 0, []Ref{{"app", "p"}, {"app", "q"}}, []Expect{{Ref{"app", "p"}, true}}, true},
		{"CREATE TEMPORARY TABLE tt (a INT) CHARSET cp932", 0, []Ref{{"app", "tt"}}, nil, true},
		{"DROP DATABASE IF EXISTS d", 0, nil, []Expect{{Ref{"d", ""}, false}}, true},
	}
	for _, c := range cases {
		info, ok := light("app", c.sql, c.mode)
		if !ok {
			t.Errorf("%s: not read", c.sql)
			continue
		}
		if !reflect.DeepEqual(info.Tables, c.tables) || !reflect.DeepEqual(info.Expect, c.expect) || (c.complete && !info.Complete) {
			t.Errorf("%s:\n got %v %v complete %v", c.sql, info.Tables, info.Expect, info.Complete)
		}
	}
	for _, bad := range []string{"", "CREATE", "CREATE TABLE", "ALTER FROBNICATE", "RENAME TABLE a b", "SELECT 1", "CREATE INDEX i t (a)"} {
		if _, ok := light("app", bad, 0); ok {
			t.Errorf("%q read as a table statement", bad)
		}
	}
}

// Rebuilt statements keep every literal as written: huge numbers,
// backslashes and quotes, introducers, hex and bit values.
func TestRenameKeepsLiterals(t *testing.T) {
	sql := "ALTER TABLE t ADD COLUMN a DECIMAL(65,0) DEFAULT " + big + ", ADD COLUMN b VARCHAR(9) DEFAULT 'a\\\\b''c', ADD COLUMN c VARBINARY(4) DEFAULT _binary 0x00ff, ADD COLUMN d BIT(3) DEFAULT b'101', ADD COLUMN e DOUBLE DEFAULT 1.5e300, ADD COLUMN f CHAR(1) CHARACTER SET latin1 DEFAULT _latin1 X'E9'"
	info, err := Analyze("shop", sql, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := info.Rename(func(r Ref) Ref { r.Schema = "shop2"; return r }, func(s string) string { return s })
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"`shop2`.`t`", "DEFAULT " + big, `'a\\b''c'`, "_binary 0x00ff", "b'101'", "1.5e+300", "_latin1 X'E9'"} {
		if !strings.Contains(got, want) {
			t.Errorf("%s lost %s", got, want)
		}
	}
	// Without backslash escapes a backslash is a character of its own.
	info, _ = Analyze("shop", `ALTER TABLE t ADD COLUMN b VARCHAR(9) DEFAULT 'a\b'`, modeNoBackslashEscapes)
	if got, err := info.Rename(func(r Ref) Ref { return r }, func(s string) string { return s }); err != nil || !strings.Contains(got, `'a\b'`) {
		t.Errorf("NO_BACKSLASH_ESCAPES: %s %v", got, err)
	}
}

// Should the parser panic all the same, the panic is an ErrUnparsed like
// any statement it cannot read: the channel stops with the GTID, the
// statement and the skip, instead of the process dying on every restart.
func TestAnalyzeRecoversFromParserPanic(t *testing.T) {
	saved := ast.NewDecimal
	ast.NewDecimal = func(string) (any, error) { panic("This branch is not implemented") }
	defer func() { ast.NewDecimal = saved }()
	_, err := Analyze("app", "CREATE TABLE t (d DECIMAL(65,0) DEFAULT 1.5)", 0)
	if !errors.Is(err, ErrUnparsed) || !strings.Contains(err.Error(), "not implemented") {
		t.Fatalf("a parser panic: %v", err)
	}
}

// FuzzAnalyze: no statement makes the analysis or the rebuild panic (a
// panic there stopped the process on every restart at the same GTID).
func FuzzAnalyze(f *testing.F) {
	for _, s := range []string{
		"CREATE TABLE t (a INT)", "CREATE TABLE b (d DECIMAL(65,0) DEFAULT " + big + ")", "SELECT " + big + big + ".0e",
		"CREATE TABLE x (a INT DEFAULT 0x) CHARSET cp932", "ALTER TABLE `a``b` RENAME TO c", "RENAME TABLE a TO b, c TO d",
		"CREATE TABLE sv (a INT) WITH SYSTEM VERSIONING", "/*!50100 ALTER TABLE t PARTITION BY HASH (a) */", "DROP TABLE `", "CREATE TABLE 'x",
		"CREATE TABLE t (a ENUM('x','y') DEFAULT 'x', b SET('a') DEFAULT '', c TIME DEFAULT '10:00', d JSON DEFAULT '{}')",
		"CREATE TABLE t (a INT DEFAULT ?)", "ALTER TABLE t ADD c INT DEFAULT -9223372036854775809", "CREATE TABLE t (a BIT DEFAULT b'')",
	} {
		f.Add(s, uint64(0))
		f.Add(s, uint64(modeANSIQuotes|modeNoBackslashEscapes))
	}
	f.Fuzz(func(t *testing.T, sql string, mode uint64) {
		info, err := Analyze("app", sql, mode)
		if err != nil {
			if !errors.Is(err, ErrUnparsed) {
				t.Fatalf("%q: an error other than ErrUnparsed: %v", sql, err)
			}
			return
		}
		_, _ = info.Rename(func(r Ref) Ref { r.Schema += "2"; return r }, func(s string) string { return s + "2" })
	})
}
