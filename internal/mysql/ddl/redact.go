package ddl

import "regexp"

// secretRe finds the passwords and hashes an account statement carries:
// IDENTIFIED BY 'pw', IDENTIFIED BY PASSWORD 'hash', IDENTIFIED WITH p
// AS/BY 'x', IDENTIFIED VIA p USING 'x', PASSWORD('pw'), SET PASSWORD = 'x'.
// MariaDB logs CREATE USER ... IDENTIFIED BY 'pw' with the password as
// typed, so every text of a logged statement that may reach a log line, an
// error or /status goes through Redact.
var secretRe = regexp.MustCompile(`(?is)(\bIDENTIFIED\b(?:[^'";]|"[^"]*")*?\b(?:BY|AS|USING)\s+(?:PASSWORD\s+)?|\b(?:OLD_)?PASSWORD\s*\(\s*|\bSET\s+PASSWORD\b[^=';]*=\s*)'(?:[^'\\]|\\.|'')*'`)

// Redact returns text with every password and hash it carries replaced
// by '***'.
func Redact(text string) string {
	return secretRe.ReplaceAllString(text, "${1}'***'")
}
