package apply

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

// stmtError is a row statement the target refused, said as the cause and
// the fix: which source transaction and target table, and what to change
// on the target (a grant, max_allowed_packet, the diverged row).
type stmtError struct {
	ref    stmtRef
	err    error  // the server's; nil for a statement refused before it was sent (size)
	placed bool   // ref names the one statement that failed (else see applyEvents)
	user   string // the target's CURRENT_USER() as 'user'@'host', for a grant ("" unknown)
	// size and packet: a statement larger than the target's
	// max_allowed_packet, and that setting, in bytes.
	size, packet int
}

func (e *stmtError) Unwrap() error { return e.err }

// maxPacket is the largest max_allowed_packet a server accepts (1 GiB).
const maxPacket = 1 << 30

func (e *stmtError) Error() string {
	if e.ref == (stmtRef{}) {
		// The caller names the statement (textTx).
		return strings.TrimPrefix(e.explain(), ": ")
	}
	return e.explain()
}

func (e *stmtError) explain() string {
	switch {
	case e.err == nil:
		if e.size+2 > maxPacket {
			return fmt.Sprintf("%s: the statement that writes this row is %d bytes, more than any max_allowed_packet lets through (1 GiB at most), so it cannot be written as SQL: exclude the table (route: exclude) and copy it another way; the transaction was rolled back", e.ref, e.size)
		}
		need := min(maxPacket, (e.size+2+1<<20-1)/(1<<20)*(1<<20))
		return fmt.Sprintf("%s: the statement that writes this row is %d bytes, more than the target's max_allowed_packet (%d bytes) lets through: raise it on the target to at least %d (SET GLOBAL max_allowed_packet = %d, and max_allowed_packet in its configuration file), then start pitcrew again; the transaction was rolled back", e.ref, e.size, e.packet, need, need)
	case conn.Code(e.err) == 1062:
		return fmt.Sprintf("%s: the target already holds a row with this key (%v): it diverged from the source: delete that row on the target or repair the table from the source (pitcrew verify --repair)%s", e.ref, e.err, e.skip())
	case errors.Is(e.err, ErrDiverged):
		return fmt.Sprintf("%s: %v: repair the table from the source (pitcrew verify --repair)%s", e.ref, e.err, e.skip())
	case conn.Privilege(e.err):
		user := e.user
		if user == "" {
			user = "the target user"
		}
		grant := fmt.Sprintf("GRANT SELECT, INSERT, UPDATE, DELETE ON %s.* TO %s", e.ref.db, user)
		if e.ref.db == "" {
			grant = fmt.Sprintf("GRANT SELECT, INSERT, UPDATE, DELETE ON each replicated database's tables TO %s", user)
		}
		return fmt.Sprintf("%s: %s lacks a privilege the applier needs (%v): %s (what pitcrew writes there), then start pitcrew again", e.ref, user, e.err, grant)
	}
	return fmt.Sprintf("%s: %v", e.ref, e.err)
}

func (e *stmtError) skip() string {
	if e.ref.gtid == "" {
		return ""
	}
	return fmt.Sprintf(", or go past the transaction (pitcrew skip --gtid %s) and repair the rows by hand", e.ref.gtid)
}

// currentUser is the account the target authenticated the connection as,
// quoted for GRANT ('user'@'host'), or "" when it cannot be read.
func currentUser(ctx context.Context, c *sql.Conn) string {
	var u string
	if c.QueryRowContext(ctx, "SELECT CURRENT_USER()").Scan(&u) != nil {
		return ""
	}
	at := strings.LastIndexByte(u, '@')
	if at < 0 {
		return ""
	}
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	return quote(u[:at]) + "@" + quote(u[at+1:])
}
