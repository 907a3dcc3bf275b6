package main

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
)

// typeColumns is the type matrix: every column type, written at its
// extremes, must arrive bit-exact.
var typeColumns = []struct{ name, def string }{
	{"ti", "TINYINT"}, {"tiu", "TINYINT UNSIGNED"}, {"si", "SMALLINT"}, {"siu", "SMALLINT UNSIGNED"},
	{"mi", "MEDIUMINT"}, {"miu", "MEDIUMINT UNSIGNED"}, {"i", "INT"}, {"iu", "INT UNSIGNED"},
	{"bi", "BIGINT"}, {"biu", "BIGINT UNSIGNED"},
	{"d65", "DECIMAL(65,30)"}, {"d10", "DECIMAL(10,0)"}, {"d5", "DECIMAL(5,5)"},
	{"f", "FLOAT"}, {"dbl", "DOUBLE"},
	{"b1", "BIT(1)"}, {"b13", "BIT(13)"}, {"b64", "BIT(64)"},
	{"dt", "DATE"}, {"tm", "TIME(6)"}, {"tm0", "TIME"}, {"dtm", "DATETIME(6)"}, {"dtm0", "DATETIME"},
	{"ts", "TIMESTAMP(6) NULL"}, {"ts0", "TIMESTAMP NULL"}, {"y", "YEAR"},
	{"c", "CHAR(10) CHARACTER SET utf8mb4"}, {"vc", "VARCHAR(50) CHARACTER SET utf8mb4"}, {"tx", "TEXT CHARACTER SET utf8mb4"},
	{"cl", "VARCHAR(20) CHARACTER SET latin1"}, {"cb", "VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"},
	{"bn", "BINARY(8)"}, {"vb", "VARBINARY(40)"}, {"bl", "BLOB"},
	{"e", "ENUM('a','b','c')"}, {"st", "SET('x','y','z')"}, {"j", "JSON"},
	{"gv", "INT AS (i + 1) VIRTUAL"}, {"gs", "BIGINT AS (bi DIV 2) PERSISTENT"}, {"inv", "INT INVISIBLE"},
}

// typeRows are full rows (generated columns excluded) as SQL literals.
var typeRows = [][]string{
	// maxima
	{"127", "255", "32767", "65535", "8388607", "16777215", "2147483647", "4294967295", "9223372036854775807", "18446744073709551615",
		"99999999999999999999999999999999999.999999999999999999999999999999", "9999999999", "0.99999",
		"3.4028234e38", "1.7976931348623157e308", "1", "8191", "18446744073709551615",
		"'9999-12-31'", "'838:59:59.000000'", "'838:59:59'", "'9999-12-31 23:59:59.999999'", "'9999-12-31 23:59:59'",
		"'2038-01-19 03:14:07.999999'", "'2038-01-19 03:14:07'", "2155",
		"'🚀 émoji  '", "'trailing   '", "REPEAT('ü', 300)", "x'E9E8'", "'Case  '",
		"x'00FF00FF00FF0000'", "x'000102FF00'", "x'00000000'", "'c'", "'x,y,z'", `'{"k": [1, 2.5, "x"], "u": "\u00e9"}'`, "7"},
	// minima, negative, zero
	{"-128", "0", "-32768", "0", "-8388608", "0", "-2147483648", "0", "-9223372036854775808", "0",
		"-99999999999999999999999999999999999.999999999999999999999999999999", "-9999999999", "-0.99999",
		"-3.4028234e38", "-1.7976931348623157e308", "0", "0", "0",
		"'0000-00-00'", "'-838:59:59.000000'", "'-838:59:59'", "'0000-00-00 00:00:00.000000'", "'0000-00-00 00:00:00'",
		"'1970-01-01 00:00:01.000000'", "'0000-00-00 00:00:00'", "0",
		"''", "' '", "''", "''", "''",
		"x'0000000000000000'", "x''", "x''", "''", "''", "'[]'", "-1"},
	// awkward values
	{"0", "1", "-1", "1", "-1", "1", "-1", "1", "-1", "1",
		"0.000000000000000000000000000001", "1", "0.00001",
		"-0", "-0", "1", "4096", "9223372036854775808",
		"'2024-02-29'", "'-00:00:00.000001'", "'100:00:00'", "'2024-02-29 12:34:56.000001'", "'1000-01-01 00:00:00'",
		"'2024-03-31 02:30:00.5'", "'2024-10-27 02:30:00'", "1901",
		"'  lead'", "'tab\\tnew\\nline'", "'NUL\\0inside'", "x'FF'", "'a'",
		"x'2020202020202020'", "x'0000'", "x'00'", "'a'", "'z'", "'null'", "0"},
	// tiny floats and NULL-able mixes
	{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10",
		"1.5", "0", "0.5",
		"1.17549435e-38", "4.9406564584124654e-324", "0", "1", "1",
		"'1000-01-01'", "'00:00:00'", "'00:00:00'", "'1000-01-01 00:00:00.000000'", "'1000-01-01 00:00:00'",
		"NULL", "NULL", "NULL",
		"NULL", "NULL", "NULL", "NULL", "NULL",
		"NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL"},
}

// The type matrix end to end, with source, target and engine in three
// different time zones: write on the source, catch up, compare every column
// of every row (and CHECKSUM TABLE, which compares the stored bytes).
func TestTypeMatrixAcrossTimeZones(t *testing.T) {
	testenv.Require(t)
	bin := buildBinary(t)
	src := testenv.New(t, testenv.Options{ServerID: 1, Extra: []string{"--default-time-zone=+05:30"}})
	tgt := testenv.New(t, testenv.Options{ServerID: 2, Extra: []string{"--default-time-zone=-03:00"}})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	var cols, names []string
	for _, c := range typeColumns {
		cols = append(cols, c.name+" "+c.def)
		if !strings.Contains(c.def, " AS (") {
			names = append(names, c.name)
		}
	}
	testenv.Exec(t, srcDB, "SET SESSION sql_mode = ''", "CREATE DATABASE types",
		"CREATE TABLE types.m (id INT PRIMARY KEY, "+strings.Join(cols, ", ")+")")
	for i, row := range typeRows {
		q := fmt.Sprintf("INSERT INTO types.m (id, %s) VALUES (%d, %s)", strings.Join(names, ", "), i+1, strings.Join(row, ", "))
		execSession(t, srcDB, q)
	}
	execSession(t, srcDB, "INSERT INTO types.m (id) VALUES (100)") // NULL (or default) everywhere
	// Updates and a delete carry the same types in before and after images.
	execSession(t, srcDB, "UPDATE types.m SET f = -f, dbl = dbl / 3, tm = '-12:00:00.5', ts = '2001-02-03 04:05:06.789', vb = x'00', st = '', e = 'a' WHERE id = 3")
	execSession(t, srcDB, "DELETE FROM types.m WHERE id = 4")

	cfg := writeConfig(t, src.Endpoint(), tgt.Endpoint())
	cmd := exec.Command(bin, "catchup", "--config", cfg, "--start-from", "beginning", "--timeout", "2m")
	cmd.Env = append(os.Environ(), "TZ=Pacific/Chatham") // the engine's host: +12:45/+13:45
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("catchup: %v\n%s", err, out)
	}
	testenv.AssertTablesEqual(t, srcDB, tgtDB, "types")
	// Column by column, in a form that shows every bit: HEX of the stored
	// value, and floats through DOUBLE with all their digits.
	for _, c := range append(typeColumns, struct{ name, def string }{"id", ""}) {
		expr := "HEX(" + c.name + ")"
		switch {
		case c.name == "f" || c.name == "dbl":
			expr = "CONCAT(" + c.name + " * 1e0, '/', IF(" + c.name + " = 0 AND 1/" + c.name + " IS NULL, 'z', ''))"
		case strings.HasPrefix(c.def, "TIMESTAMP"):
			expr = "UNIX_TIMESTAMP(" + c.name + ")" // a moment, whatever the session zone
		}
		q := "SELECT id, " + expr + " FROM types.m ORDER BY id"
		a, b := dump(t, srcDB, q), dump(t, tgtDB, q)
		if a != b {
			t.Errorf("column %s (%s) differs:\nsource %s\ntarget %s", c.name, c.def, a, b)
		}
	}
	var inv string
	if err := tgtDB.QueryRow("SELECT GROUP_CONCAT(COALESCE(inv, 'NULL') ORDER BY id) FROM types.m").Scan(&inv); err != nil || inv != "7,-1,0,NULL" {
		t.Errorf("invisible column on the target: %q %v", inv, err)
	}
}

func execSession(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	c, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Zero dates and out-of-range-looking literals are what the source's
	// permissive sql_mode allowed.
	if _, err := c.ExecContext(t.Context(), "SET SESSION sql_mode = ''"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecContext(t.Context(), q); err != nil {
		t.Fatalf("%.200s: %v", q, err)
	}
}

func dump(t *testing.T, db *sql.DB, q string) string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id int
		var v sql.NullString
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%d=%s;", id, map[bool]string{true: v.String, false: "NULL"}[v.Valid])
	}
	return b.String()
}
