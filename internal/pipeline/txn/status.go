package txn

import "encoding/binary"

// Session is the source session context a query event carries in its
// status variables: what the statement must run under to mean the same.
type Session struct {
	SQLMode    uint64
	HasSQLMode bool
	// Character set of the client, connection collation and server
	// collation (ids), as mysqlbinlog replays them.
	Charset    [3]uint16
	HasCharset bool
	TimeZone   string
	// Timestamp is when the statement ran on the source (unix seconds; 0
	// unknown): what NOW() and CREATE EVENT's default STARTS read there.
	Timestamp uint32
}

// parseStatusVars reads the status variables of a query event, stopping at
// the first code it does not know (what it read until then is kept).
func parseStatusVars(b []byte) Session {
	var s Session
	for len(b) > 0 {
		code := b[0]
		b = b[1:]
		need := func(n int) bool { return len(b) >= n }
		switch code {
		case 0: // Q_FLAGS2_CODE
			if !need(4) {
				return s
			}
			b = b[4:]
		case 1: // Q_SQL_MODE_CODE
			if !need(8) {
				return s
			}
			s.SQLMode, s.HasSQLMode = binary.LittleEndian.Uint64(b), true
			b = b[8:]
		case 2: // Q_CATALOG_CODE: length, string, NUL
			if !need(1) || !need(2+int(b[0])) {
				return s
			}
			b = b[2+int(b[0]):]
		case 3: // Q_AUTO_INCREMENT
			if !need(4) {
				return s
			}
			b = b[4:]
		case 4: // Q_CHARSET_CODE
			if !need(6) {
				return s
			}
			s.Charset = [3]uint16{binary.LittleEndian.Uint16(b), binary.LittleEndian.Uint16(b[2:]), binary.LittleEndian.Uint16(b[4:])}
			s.HasCharset = true
			b = b[6:]
		case 5: // Q_TIME_ZONE_CODE
			if !need(1) || !need(1+int(b[0])) {
				return s
			}
			s.TimeZone = string(b[1 : 1+int(b[0])])
			b = b[1+int(b[0]):]
		case 6: // Q_CATALOG_NZ_CODE
			if !need(1) || !need(1+int(b[0])) {
				return s
			}
			b = b[1+int(b[0]):]
		case 7, 8: // Q_LC_TIME_NAMES_CODE, Q_CHARSET_DATABASE_CODE
			if !need(2) {
				return s
			}
			b = b[2:]
		case 9: // Q_TABLE_MAP_FOR_UPDATE_CODE
			if !need(8) {
				return s
			}
			b = b[8:]
		default:
			return s
		}
	}
	return s
}
