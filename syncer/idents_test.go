package syncer_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/internal/conn"
	"github.com/pitcrew/pitcrew/internal/testenv"
	"github.com/pitcrew/pitcrew/syncer"
)

// Names the server accepts and SQL text trips over: a ? read as a
// placeholder (the driver refused `c?` with "skip fast-path"), quotes,
// backslashes, comment openers, spaces, unicode, 64 characters, reserved
// words. (Database and table names may not end in a space, and their
// file names must fit the file system: a ? takes 5 bytes, @003f.)
var oddIdents = []string{"c?", "t?2", "?", "quo`te", "``?", "q'x", `dq"x`, `back\slash`, `\?`,
	"a b", "ünï 日本", strings.Repeat("n", 64), strings.Repeat("?", 48), "select", "1x", "$d", "-- x", "/*x*/", "#x", ";"}

// Databases, tables and columns with such names, written by every kind of
// row change (keyed and keyless tables, folded and row by row, serial and
// in lanes) and by DDL, end on the target as on the source.
func TestCatchUpOddIdentifiers(t *testing.T) {
	src := testenv.New(t, testenv.Options{ServerID: 1})
	tgt := testenv.New(t, testenv.Options{ServerID: 2})
	srcDB, tgtDB := testenv.MustDB(t, src), testenv.MustDB(t, tgt)
	ctx := context.Background()
	dbs := []string{"d?b", "quo`te ?", strings.Repeat("d", 64), "select"}
	q := conn.QuoteName
	write := func(round int) {
		for _, d := range dbs {
			for i, n := range oddIdents {
				c := oddIdents[(i+1)%len(oddIdents)]
				tbl, kl := q(d)+"."+q(n), q(d)+"."+q(n[:min(len(n), 60)]+"_k")
				if round == 0 {
					testenv.Exec(t, srcDB,
						fmt.Sprintf("CREATE TABLE %s (id INT PRIMARY KEY, %s INT, `v?` VARCHAR(20), KEY %s (%s))", tbl, q(c), q(c), q(c)),
						fmt.Sprintf("CREATE TABLE %s (%s VARCHAR(20), n INT)", kl, q(c)))
				}
				base := round * 10
				testenv.Exec(t, srcDB,
					fmt.Sprintf("INSERT INTO %s VALUES (%d, 1, '?'), (%d, 2, 'x?y'), (%d, NULL, '`?`')", tbl, base+1, base+2, base+3),
					fmt.Sprintf("UPDATE %s SET %s = %s + 1, `v?` = '\\\\?''' WHERE id = %d", tbl, q(c), q(c), base+1),
					fmt.Sprintf("UPDATE %s SET id = id + 100 WHERE id = %d", tbl, base+2),
					fmt.Sprintf("DELETE FROM %s WHERE id = %d", tbl, base+3),
					fmt.Sprintf("INSERT INTO %s VALUES ('?', 1), ('?', 1), (NULL, 2)", kl),
					fmt.Sprintf("UPDATE %s SET n = n + 1 WHERE %s <=> '?' LIMIT 1", kl, q(c)),
					fmt.Sprintf("DELETE FROM %s WHERE %s IS NULL LIMIT 1", kl, q(c)))
			}
			if round == 1 {
				testenv.Exec(t, srcDB,
					fmt.Sprintf("ALTER TABLE %s.%s ADD COLUMN %s INT DEFAULT 5", q(d), q("c?"), q("new ?")),
					fmt.Sprintf("RENAME TABLE %s.%s TO %s.%s", q(d), q("t?2"), q(d), q("t?3")),
					fmt.Sprintf("INSERT INTO %s.%s (id, %s) VALUES (99, 9)", q(d), q("t?3"), q("?")))
			}
		}
	}
	for _, d := range dbs {
		testenv.Exec(t, srcDB, "CREATE DATABASE "+q(d))
	}
	write(0)
	s := newSyncer(t, src, tgt, func(c *syncer.Config) { c.StartFrom = syncer.StartBeginning; c.Lanes = 1 })
	if err := s.Run(ctx, syncer.RunOptions{CatchUp: true}); err != nil {
		t.Fatalf("serial catch-up: %v", err)
	}
	write(1)
	s = newSyncer(t, src, tgt, func(c *syncer.Config) { c.Lanes = 2 })
	if err := s.Run(ctx, syncer.RunOptions{CatchUp: true}); err != nil {
		t.Fatalf("catch-up in lanes: %v", err)
	}
	for _, d := range dbs {
		testenv.AssertTablesEqual(t, srcDB, tgtDB, d)
	}
}
