package txn

import "testing"

func TestParseStatusVars(t *testing.T) {
	b := []byte{0, 0, 0, 0, 0, // flags2
		1, 0x04, 0, 0, 0, 0, 0, 0, 0, // sql_mode ANSI_QUOTES
		6, 3, 's', 't', 'd', // catalog
		4, 8, 0, 8, 0, 45, 0, // charset latin1, latin1_swedish_ci, utf8mb4_general_ci
		5, 6, '+', '0', '5', ':', '3', '0', // time zone
		200, 1, 2} // unknown: stop
	s := parseStatusVars(b)
	if !s.HasSQLMode || s.SQLMode != 4 || !s.HasCharset || s.Charset != [3]uint16{8, 8, 45} || s.TimeZone != "+05:30" {
		t.Fatalf("%+v", s)
	}
	if s := parseStatusVars([]byte{1, 2}); s.HasSQLMode {
		t.Fatal("a cut-off value must not be read")
	}
}
