package mysqltest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

// recorder keeps the failures a Primary reports instead of failing the
// test, to check that the profile catches what it must.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// The forms 8.4 removed are MySQL's parse error there and fail the test
// that sent them; so do a form 8.0 lacks, a query outside the profile and
// a variable the server would not know; what the profile has is answered.
func TestProfileRefusesWhatTheVersionLacks(t *testing.T) {
	for _, c := range []struct {
		prof    Profile
		query   string
		code    uint16
		outside bool
	}{
		{MySQL84, "SHOW MASTER STATUS", 1064, true},
		{MySQL84, "SHOW SLAVE HOSTS", 1064, true},
		{MySQL84, "SHOW REPLICAS", 0, false},
		{MySQL80, "SHOW BINARY LOG STATUS", 1064, true},
		{MySQL80, "SHOW REPLICAS", 0, false},
		{MySQL80, "SELECT @@GLOBAL.gtid_strict_mode", 1193, true},
		{MySQL84, "SELECT @@GLOBAL.expire_logs_days", 1193, true},
		{MySQL80, "SELECT @@GLOBAL.expire_logs_days", 0, false},
		{MySQL80, "SELECT * FROM t", 1105, true},
	} {
		t.Run(c.prof.Name+" "+c.query, func(t *testing.T) {
			rec := &recorder{TB: t}
			p := Start(rec, Options{Profile: c.prof})
			db, err := conn.Open(p.Endpoint())
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			rows, err := db.QueryContext(context.Background(), c.query)
			if err == nil {
				rows.Close()
			}
			if conn.Code(err) != c.code {
				t.Errorf("error %v, want code %d", err, c.code)
			}
			p.Close()
			if got := len(rec.errs) == 1 && strings.Contains(rec.errs[0], c.query); got != c.outside {
				t.Errorf("reported %q, want outside=%v", rec.errs, c.outside)
			}
		})
	}
}
