package corpus

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pitcrew/pitcrew/internal/mysql/conn"
)

// Cases is every case of the corpus, by name.
func Cases() []Case {
	return []Case{
		caseTypes(), caseCharsets(), caseAutoIncrement(), caseKeyless(),
		caseFKRestrict(), caseFKCascade(), caseTriggers(), caseEvents(),
		caseGenerated(), caseGeneratedIndexed(), casePartitions(), caseVersioned(),
		caseLongUnique(), caseBinaryZero(), caseMerge(), caseCheck(), caseOddNames(), caseQuestionMark(),
		caseMultiTable(), caseUpsert(), caseCreateSelect(), caseLoadData(), caseSavepoints(),
		caseParserRejects(), caseDDLChurn(), caseSequences(),
	}
}

// sample strings: ASCII, Latin, CJK, halfwidth kana, emoji, quotes and
// backslashes, trailing spaces, empty.
var samples = []string{"plain", "é à ß", "日本語", "ｶﾅ", "😀 x", `it's \ "q"`, "tail  ", "", "Ωμέγα", "русский"}

func (g *Gen) sample() string { return samples[g.N(len(samples))] }

// rowIDs picks n ids at random among those handed out (some long gone).
func (g *Gen) rowIDs(n int) string {
	var ids []string
	for range n {
		ids = append(ids, fmt.Sprint(1+g.N(max(g.next, 1))))
	}
	return strings.Join(ids, ",")
}

// churn is the DML of a keyed table t(id, ...): inserts of fresh ids with
// values from vals, updates and deletes of random ids, in a few
// transactions.
func (g *Gen) churn(t, cols string, vals func() string, set func() string) [][]string {
	var out [][]string
	for range g.Rows(3) {
		var tx []string
		for range 1 + g.N(4) {
			switch g.N(4) {
			case 0, 1:
				tx = append(tx, fmt.Sprintf("INSERT INTO %s (%s) VALUES (%d, %s)", g.T(t), cols, g.ID(), vals()))
			case 2:
				tx = append(tx, fmt.Sprintf("UPDATE %s SET %s WHERE id IN (%s)", g.T(t), set(), g.rowIDs(2)))
			case 3:
				tx = append(tx, fmt.Sprintf("DELETE FROM %s WHERE id IN (%s)", g.T(t), g.rowIDs(1)))
			}
		}
		out = append(out, tx)
	}
	return out
}

func caseTypes() Case {
	return Case{Name: "types",
		Setup: func(g *Gen) []string {
			return []string{"CREATE TABLE " + g.T("t") + ` (id INT PRIMARY KEY, i8 TINYINT, u64 BIGINT UNSIGNED, d DECIMAL(30,10), f FLOAT, db DOUBLE,
  b BIT(13), dt DATETIME(6), ts TIMESTAMP(3) NULL, tm TIME(2), y YEAR, c CHAR(5), v VARCHAR(40), vb VARBINARY(20), bl BLOB, tx TEXT,
  e ENUM('a','b','c'), s SET('x','y','z'), j JSON) ENGINE=InnoDB`}
		},
		Round: func(g *Gen) [][]string {
			vals := func() string {
				return fmt.Sprintf("%d, %d, %d.%d, %d.5, -%d.25e3, b'%b', '2024-0%d-1%d 12:34:56.%06d', NOW(3), '-%d:00:01.5', %d, %s, %s, x'%08x00', REPEAT('b', %d), %s, '%c', 'x,%c', '{\"k\": %d}'",
					g.N(256)-128, uint64(g.R.Uint64()), g.N(1e9), g.N(1e9), g.N(1e6), g.N(1e6), g.N(8192), 1+g.N(9), g.N(10), g.N(1e6), g.N(800),
					1901+g.N(254), "LEFT("+Lit(strings.TrimRight(g.sample(), " "))+", 5)", Lit(g.sample()), g.N(1<<30), g.N(3000), Lit(g.sample()), 'a'+rune(g.N(3)), 'y'+rune(g.N(2)), g.N(100))
			}
			return g.churn("t", "id, i8, u64, d, f, db, b, dt, ts, tm, y, c, v, vb, bl, tx, e, s, j", vals,
				func() string {
					return fmt.Sprintf("v = %s, d = d + 1, j = JSON_SET(COALESCE(j, '{}'), '$.n', %d)", Lit(g.sample()), g.N(9))
				})
		}}
}

// caseCharsets makes a table per character set the source has.
func caseCharsets() Case {
	var sets []string
	fits := map[string][]string{} // per character set, the samples it holds
	return Case{Name: "charsets",
		Setup: func(g *Gen) []string {
			var err error
			sets, err = conn.Strings(context.Background(), g.Env.Src, "SELECT CHARACTER_SET_NAME FROM information_schema.CHARACTER_SETS ORDER BY 1")
			if err != nil || len(sets) == 0 {
				panic(fmt.Sprintf("listing character sets: %v", err))
			}
			var out []string
			for _, cs := range sets {
				out = append(out, fmt.Sprintf("CREATE TABLE %s (id INT PRIMARY KEY, v VARCHAR(30) CHARACTER SET %s, t TEXT CHARACTER SET %s, KEY (v))", g.T("cs_"+cs), cs, cs))
				for _, smp := range samples {
					var ok sql.NullBool
					q := fmt.Sprintf("SELECT CONVERT(CONVERT(_utf8mb4 %s USING %s) USING utf8mb4) = _utf8mb4 %s COLLATE utf8mb4_bin", Lit(smp), cs, Lit(smp))
					if err := g.Env.Src.QueryRow(q).Scan(&ok); err == nil && ok.Bool {
						fits[cs] = append(fits[cs], smp)
					}
				}
			}
			return out
		},
		Round: func(g *Gen) [][]string {
			var out [][]string
			for _, cs := range sets {
				conv := func() string {
					f := fits[cs]
					if len(f) == 0 {
						return "NULL"
					}
					return fmt.Sprintf("CONVERT(_utf8mb4 %s USING %s)", Lit(f[g.N(len(f))]), cs)
				}
				id := g.ID()
				out = append(out, []string{
					fmt.Sprintf("INSERT INTO %s VALUES (%d, %s, %s)", g.T("cs_"+cs), id, conv(), conv()),
					fmt.Sprintf("UPDATE %s SET v = %s WHERE id = %d", g.T("cs_"+cs), conv(), 1+g.N(id)),
				})
			}
			return out
		}}
}

func caseAutoIncrement() Case {
	return Case{Name: "autoinc",
		Setup: func(g *Gen) []string {
			return []string{
				"CREATE TABLE " + g.T("a") + " (id INT AUTO_INCREMENT PRIMARY KEY, v INT)",
				"CREATE TABLE " + g.T("b") + " (id BIGINT UNSIGNED AUTO_INCREMENT, k INT, v INT, PRIMARY KEY (id), UNIQUE KEY (k)) AUTO_INCREMENT=1000",
				"CREATE TABLE " + g.T("my") + " (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=MyISAM",
			}
		},
		Round: func(g *Gen) [][]string {
			var out [][]string
			for range g.Rows(2) {
				out = append(out,
					[]string{"INSERT INTO " + g.T("a") + " (v) VALUES (1), (2), (3)", fmt.Sprintf("DELETE FROM %s ORDER BY id DESC LIMIT %d", g.T("a"), g.N(3))},
					[]string{fmt.Sprintf("INSERT INTO %s (k, v) VALUES (%d, 1) ON DUPLICATE KEY UPDATE v = v + 1", g.T("b"), g.N(20))},
					[]string{fmt.Sprintf("INSERT INTO %s (id, v) VALUES (%d, 5)", g.T("a"), 5000+g.ID())},
					[]string{"INSERT INTO " + g.T("my") + " (v) VALUES (1)", "DELETE FROM " + g.T("my") + " ORDER BY id DESC LIMIT 1"},
				)
			}
			// One inserted and deleted in the same transaction: the counter moved.
			out = append(out, []string{"INSERT INTO " + g.T("a") + " (v) VALUES (9)", "DELETE FROM " + g.T("a") + " WHERE v = 9"})
			return out
		}}
}

func caseKeyless() Case {
	return Case{Name: "keyless",
		Setup: func(g *Gen) []string {
			return []string{
				"CREATE TABLE " + g.T("nokey") + " (a INT, b VARCHAR(10), c DOUBLE)",
				"CREATE TABLE " + g.T("uk") + " (code CHAR(4) NOT NULL, n INT, UNIQUE KEY (code))",
				"CREATE TABLE " + g.T("ukn") + " (code INT NULL, n INT, UNIQUE KEY (code))",
			}
		},
		Round: func(g *Gen) [][]string {
			var out [][]string
			for range g.Rows(2) {
				a := g.N(5)
				out = append(out,
					[]string{fmt.Sprintf("INSERT INTO %s VALUES (%d, %s, %d.5), (%d, %s, NULL)", g.T("nokey"), a, Lit(g.sample()), a, a, Lit("dup"))},
					[]string{fmt.Sprintf("UPDATE %s SET b = 'u' WHERE a = %d LIMIT 1", g.T("nokey"), g.N(5))},
					[]string{fmt.Sprintf("DELETE FROM %s WHERE a = %d LIMIT 1", g.T("nokey"), g.N(5))},
					[]string{fmt.Sprintf("REPLACE INTO %s VALUES ('k%d', %d)", g.T("uk"), g.N(9), g.N(100))},
					[]string{fmt.Sprintf("INSERT INTO %s VALUES (NULL, %d), (%d, 1)", g.T("ukn"), g.N(9), g.ID())},
					[]string{fmt.Sprintf("DELETE FROM %s WHERE code IS NULL LIMIT 1", g.T("ukn"))},
				)
			}
			return out
		}}
}

// fkChain is a parent, a child and a grandchild with the given actions.
func fkChain(g *Gen, action string) []string {
	return []string{
		"CREATE TABLE " + g.T("p") + " (id INT PRIMARY KEY, v INT)",
		"CREATE TABLE " + g.T("c") + " (id INT PRIMARY KEY, pid INT NULL, v INT, KEY (pid), FOREIGN KEY (pid) REFERENCES " + g.T("p") + " (id) ON DELETE " + action + " ON UPDATE " + action + ")",
		"CREATE TABLE " + g.T("gc") + " (id INT PRIMARY KEY, cid INT NULL, KEY (cid), FOREIGN KEY (cid) REFERENCES " + g.T("c") + " (id) ON DELETE " + action + " ON UPDATE " + action + ")",
	}
}

func fkRound(g *Gen) [][]string {
	var out [][]string
	for range g.Rows(2) {
		p, c := g.ID(), g.ID()
		out = append(out,
			[]string{fmt.Sprintf("INSERT INTO %s VALUES (%d, 1)", g.T("p"), p), fmt.Sprintf("INSERT INTO %s VALUES (%d, %d, 1)", g.T("c"), c, p),
				fmt.Sprintf("INSERT INTO %s VALUES (%d, %d)", g.T("gc"), g.ID(), c)},
			[]string{fmt.Sprintf("UPDATE %s SET id = id + 100000 WHERE id = %s", g.T("p"), g.rowIDs(1))},
			[]string{fmt.Sprintf("DELETE FROM %s WHERE id IN (%s)", g.T("p"), g.rowIDs(2))},
			[]string{fmt.Sprintf("DELETE FROM %s WHERE id IN (%s)", g.T("c"), g.rowIDs(1))},
		)
	}
	return out
}

func caseFKRestrict() Case {
	return Case{Name: "fk_restrict", Setup: func(g *Gen) []string {
		return append(fkChain(g, "RESTRICT"),
			"CREATE TABLE "+g.T("na")+" (id INT PRIMARY KEY, pid INT NULL, KEY (pid), FOREIGN KEY (pid) REFERENCES "+g.T("p")+" (id) ON DELETE NO ACTION ON UPDATE NO ACTION)")
	}, Round: func(g *Gen) [][]string {
		return append(fkRound(g), []string{fmt.Sprintf("INSERT INTO %s VALUES (%d, %s)", g.T("na"), g.ID(), g.rowIDs(1))})
	}}
}

func caseFKCascade() Case {
	return Case{Name: "fk_cascade", Setup: func(g *Gen) []string {
		out := fkChain(g, "CASCADE")
		return append(out,
			"CREATE TABLE "+g.T("sn")+" (id INT PRIMARY KEY, pid INT NULL, KEY (pid), FOREIGN KEY (pid) REFERENCES "+g.T("p")+" (id) ON DELETE SET NULL ON UPDATE SET NULL)",
			"CREATE TABLE "+g.T("mix")+" (id INT PRIMARY KEY, pid INT NULL, KEY (pid), FOREIGN KEY (pid) REFERENCES "+g.T("p")+" (id) ON DELETE SET NULL ON UPDATE CASCADE)")
	}, Round: func(g *Gen) [][]string {
		out := fkRound(g)
		out = append(out, []string{fmt.Sprintf("INSERT INTO %s VALUES (%d, %s), (%d, %s)", g.T("sn"), g.ID(), g.rowIDs(1), g.ID(), g.rowIDs(1))},
			[]string{fmt.Sprintf("INSERT INTO %s VALUES (%d, %s)", g.T("mix"), g.ID(), g.rowIDs(1))})
		if !g.Long || g.N(4) == 0 {
			// A session with foreign_key_checks=0 cascades nothing on the
			// source (its rows events say so): its children stay.
			out = append(out, []string{"SET SESSION foreign_key_checks = 0",
				fmt.Sprintf("DELETE FROM %s WHERE id IN (%s)", g.T("p"), g.rowIDs(2)), "SET SESSION foreign_key_checks = 1"})
		}
		return out
	}}
}

func caseTriggers() Case {
	return Case{Name: "triggers",
		Setup: func(g *Gen) []string {
			return []string{
				"CREATE TABLE " + g.T("t") + " (id INT PRIMARY KEY, v INT)",
				"CREATE TABLE " + g.T("log") + " (n INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(10), id INT)",
				"CREATE TABLE " + g.T("nolog") + " (what VARCHAR(10), id INT)",
				"CREATE TRIGGER " + g.DB + ".ti AFTER INSERT ON " + g.T("t") + " FOR EACH ROW INSERT INTO " + g.T("log") + " (what, id) VALUES ('ins', NEW.id)",
				"CREATE TRIGGER " + g.DB + ".tu BEFORE UPDATE ON " + g.T("t") + " FOR EACH ROW BEGIN SET NEW.v = NEW.v * 2; INSERT INTO " + g.T("nolog") + " VALUES ('upd', NEW.id); END",
				"CREATE TRIGGER " + g.DB + ".td AFTER DELETE ON " + g.T("t") + " FOR EACH ROW INSERT INTO " + g.T("log") + " (what, id) VALUES ('del', OLD.id)",
			}
		},
		Round: func(g *Gen) [][]string {
			return g.churn("t", "id, v", func() string { return fmt.Sprint(g.N(100)) }, func() string { return "v = v + 1" })
		}}
}

func caseEvents() Case {
	return Case{Name: "events",
		Setup: func(g *Gen) []string {
			return []string{
				"CREATE TABLE " + g.T("t") + " (id INT PRIMARY KEY)",
				"CREATE EVENT " + g.DB + ".ev ON SCHEDULE EVERY 1 HOUR DO INSERT INTO " + g.T("t") + " VALUES (UNIX_TIMESTAMP())",
				"CREATE EVENT " + g.DB + ".off ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM " + g.T("t"),
			}
		},
		Round: func(g *Gen) [][]string {
			if g.N(3) == 0 {
				return [][]string{{"ALTER EVENT " + g.DB + ".ev ON SCHEDULE EVERY " + fmt.Sprint(1+g.N(5)) + " HOUR"}}
			}
			return [][]string{{fmt.Sprintf("INSERT INTO %s VALUES (%d)", g.T("t"), g.ID())}}
		}}
}

func caseGenerated() Case {
	return Case{Name: "generated",
		Setup: func(g *Gen) []string {
			return []string{"CREATE TABLE " + g.T("g") + " (id INT PRIMARY KEY, a INT, s VARCHAR(20), v INT AS (a * 2) VIRTUAL, p VARCHAR(25) AS (CONCAT(s, '!')) PERSISTENT, st INT AS (a + 1) STORED, KEY (p))"}
		},
		Round: func(g *Gen) [][]string {
			return g.churn("g", "id, a, s", func() string { return fmt.Sprintf("%d, %s", g.N(100), Lit(g.sample())) },
				func() string { return fmt.Sprintf("a = %d, s = %s", g.N(100), Lit(g.sample())) })
		}}
}

// caseGeneratedIndexed: indexed virtual columns under purge-heavy churn.
func caseGeneratedIndexed() Case {
	return Case{Name: "generated_indexed",
		Setup: func(g *Gen) []string {
			return []string{"CREATE TABLE " + g.T("g") + " (id INT PRIMARY KEY, a INT, s VARCHAR(20), v INT AS (a * 2) VIRTUAL, w VARCHAR(30) AS (CONCAT(s, a)) VIRTUAL, UNIQUE KEY (v, id), KEY (w))"}
		},
		Round: func(g *Gen) [][]string {
			out := g.churn("g", "id, a, s", func() string { return fmt.Sprintf("%d, %s", g.N(100), Lit(g.sample())) },
				func() string { return fmt.Sprintf("a = %d, s = %s", g.N(100), Lit(g.sample())) })
			return append(out, []string{"DELETE FROM " + g.T("g") + " WHERE a < " + fmt.Sprint(g.N(30))}, []string{"UPDATE " + g.T("g") + " SET a = a + 1 WHERE v > " + fmt.Sprint(g.N(200))})
		}}
}

func casePartitions() Case {
	return Case{Name: "partitions",
		Setup: func(g *Gen) []string {
			return []string{
				"CREATE TABLE " + g.T("r") + " (id INT, y INT, v VARCHAR(10), PRIMARY KEY (id, y)) PARTITION BY RANGE (y) (PARTITION p0 VALUES LESS THAN (10), PARTITION p1 VALUES LESS THAN (20), PARTITION pm VALUES LESS THAN MAXVALUE)",
				"CREATE TABLE " + g.T("l") + " (id INT PRIMARY KEY, k INT) PARTITION BY LIST (id MOD 3) (PARTITION a VALUES IN (0), PARTITION b VALUES IN (1, 2))",
				"CREATE TABLE " + g.T("h") + " (id INT PRIMARY KEY, v INT) PARTITION BY HASH (id) PARTITIONS 4",
				"CREATE TABLE " + g.T("k") + " (id VARCHAR(10) PRIMARY KEY, v INT) PARTITION BY KEY (id) PARTITIONS 3",
				"CREATE TABLE " + g.T("x") + " (id INT, y INT, v VARCHAR(10), PRIMARY KEY (id, y))",
			}
		},
		Round: func(g *Gen) [][]string {
			var out [][]string
			for range g.Rows(3) {
				id := g.ID()
				out = append(out,
					[]string{fmt.Sprintf("INSERT INTO %s VALUES (%d, %d, 'v')", g.T("r"), id, g.N(30)), fmt.Sprintf("UPDATE %s SET y = y + 10 WHERE id = %s", g.T("r"), g.rowIDs(1))},
					[]string{fmt.Sprintf("INSERT INTO %s VALUES (%d, %d)", g.T("l"), id, g.N(9)), fmt.Sprintf("UPDATE %s SET id = id + 1000 WHERE id = %s", g.T("l"), g.rowIDs(1))},
					[]string{fmt.Sprintf("INSERT INTO %s VALUES (%d, 1)", g.T("h"), id), fmt.Sprintf("DELETE FROM %s WHERE id = %s", g.T("h"), g.rowIDs(1))},
					[]string{fmt.Sprintf("INSERT INTO %s VALUES ('k%d', 1)", g.T("k"), id)},
				)
			}
			switch g.N(4) {
			case 0:
				out = append(out, []string{"ALTER TABLE " + g.T("r") + " TRUNCATE PARTITION p0"})
			case 1:
				out = append(out, []string{"ALTER TABLE " + g.T("r") + " EXCHANGE PARTITION p1 WITH TABLE " + g.T("x")})
			case 2:
				out = append(out, []string{"ALTER TABLE " + g.T("h") + " COALESCE PARTITION 1"}, []string{"ALTER TABLE " + g.T("h") + " ADD PARTITION PARTITIONS 1"})
			case 3:
				out = append(out, []string{"ALTER TABLE " + g.T("l") + " REORGANIZE PARTITION b INTO (PARTITION b VALUES IN (1, 2))"})
			}
			return out
		}}
}

// caseVersioned: pitcrew refuses system-versioned tables (their history
// cannot be written through SQL as logged); excluded, the rest of the
// database still replicates.
func caseVersioned() Case {
	return Case{Name: "versioned", Exclude: []string{"%s.sv*"},
		Setup: func(g *Gen) []string {
			return []string{
				"CREATE TABLE " + g.T("sv") + " (id INT PRIMARY KEY, a INT) WITH SYSTEM VERSIONING",
				"CREATE TABLE " + g.T("sv2") + " (id INT PRIMARY KEY, a INT, s TIMESTAMP(6) GENERATED ALWAYS AS ROW START, e TIMESTAMP(6) GENERATED ALWAYS AS ROW END, PERIOD FOR SYSTEM_TIME (s, e)) WITH SYSTEM VERSIONING",
				"CREATE TABLE " + g.T("plain") + " (id INT PRIMARY KEY, a INT)",
			}
		},
		Round: func(g *Gen) [][]string {
			var out [][]string
			for _, t := range []string{"sv", "sv2", "plain"} {
				out = append(out, g.churn(t, "id, a", func() string { return fmt.Sprint(g.N(9)) }, func() string { return "a = a + 1" })...)
			}
			return out
		}}
}

func caseLongUnique() Case {
	return Case{Name: "long_unique",
		Setup: func(g *Gen) []string {
			return []string{
				"CREATE TABLE " + g.T("lu") + " (id INT PRIMARY KEY, b BLOB, t TEXT, UNIQUE KEY (b), UNIQUE KEY (t(2000)))",
				"CREATE TABLE " + g.T("lk") + " (b BLOB, n INT, UNIQUE KEY (b))",
			}
		},
		Round: func(g *Gen) [][]string {
			out := g.churn("lu", "id, b, t", func() string {
				return fmt.Sprintf("REPEAT('%c', %d), %s", 'a'+rune(g.N(26)), 1+g.N(5000), Lit(g.sample()+fmt.Sprint(g.ID())))
			},
				func() string { return fmt.Sprintf("b = REPEAT('z', %d)", g.ID()) })
			return append(out, []string{fmt.Sprintf("INSERT INTO %s VALUES (REPEAT('q', %d), 1)", g.T("lk"), g.ID())},
				[]string{fmt.Sprintf("UPDATE %s SET n = n + 1 WHERE LENGTH(b) = %d", g.T("lk"), 1+g.N(g.next))})
		}}
}

func caseBinaryZero() Case {
	return Case{Name: "binary_zero",
		Setup: func(g *Gen) []string {
			return []string{
				"CREATE TABLE " + g.T("u") + " (id BINARY(16) PRIMARY KEY, n INT)",
				"CREATE TABLE " + g.T("nk") + " (b BINARY(4), n INT)",
			}
		},
		Round: func(g *Gen) [][]string {
			var out [][]string
			for range g.Rows(3) {
				id := fmt.Sprintf("x'%030x00'", g.ID()) // every key ends in a zero byte
				out = append(out,
					[]string{fmt.Sprintf("INSERT INTO %s VALUES (%s, 1)", g.T("u"), id), fmt.Sprintf("UPDATE %s SET n = n + 1 WHERE id = %s", g.T("u"), id)},
					[]string{fmt.Sprintf("INSERT INTO %s VALUES (x'%02x00', 1)", g.T("nk"), g.N(9)), fmt.Sprintf("UPDATE %s SET n = n + 1 WHERE b = x'%02x00' LIMIT 1", g.T("nk"), g.N(9))},
				)
				if g.N(3) == 0 {
					out = append(out, []string{fmt.Sprintf("DELETE FROM %s WHERE id = %s", g.T("u"), id)})
				}
			}
			return out
		}}
}

func caseMerge() Case {
	return Case{Name: "merge",
		Setup: func(g *Gen) []string {
			return []string{
				"CREATE TABLE " + g.T("m1") + " (id INT NOT NULL, v INT, KEY (id)) ENGINE=MyISAM",
				"CREATE TABLE " + g.T("m2") + " (id INT NOT NULL, v INT, KEY (id)) ENGINE=MyISAM",
				"CREATE TABLE " + g.T("mm") + " (id INT NOT NULL, v INT, KEY (id)) ENGINE=MERGE UNION=(" + g.T("m1") + ", " + g.T("m2") + ") INSERT_METHOD=LAST",
			}
		},
		Round: func(g *Gen) [][]string {
			return [][]string{
				{fmt.Sprintf("INSERT INTO %s VALUES (%d, 1)", g.T("m1"), g.ID())},
				{fmt.Sprintf("INSERT INTO %s VALUES (%d, 2)", g.T("mm"), g.ID())},
				{fmt.Sprintf("UPDATE %s SET v = v + 1 WHERE id IN (%s)", g.T("mm"), g.rowIDs(2))},
				{fmt.Sprintf("DELETE FROM %s WHERE id = %s", g.T("mm"), g.rowIDs(1))},
			}
		}}
}

func caseCheck() Case {
	return Case{Name: "check",
		Setup: func(g *Gen) []string {
			return []string{"CREATE TABLE " + g.T("c") + " (id INT PRIMARY KEY, a INT CHECK (a >= 0), b INT, CONSTRAINT lim CHECK (b < 50 OR b IS NULL))"}
		},
		Round: func(g *Gen) [][]string {
			// Some violate a constraint: the source refuses them.
			return g.churn("c", "id, a, b", func() string { return fmt.Sprintf("%d, %d", g.N(20)-2, g.N(60)) },
				func() string { return fmt.Sprintf("b = %d", g.N(60)) })
		}}
}

// oddNames: identifiers the server accepts (quotes, backslashes, spaces,
// unicode, 64 characters, reserved words), without a question mark.
var oddNames = []string{"select", "a b", "quo`te", `back\slash`, "dq\"x", "ünï 日本", strings.Repeat("n", 64), "1x", "$d"}

func caseOddNames() Case { return namesCase("odd_names", oddNames) }

func caseQuestionMark() Case { return namesCase("question_mark", []string{"c?", "t?2", "?"}) }

func namesCase(name string, names []string) Case {
	return Case{Name: name,
		Setup: func(g *Gen) []string {
			var out []string
			for _, n := range names {
				q := conn.QuoteName(n)
				out = append(out, fmt.Sprintf("CREATE TABLE %s (id INT PRIMARY KEY, %s INT, v VARCHAR(10), KEY %s (%s))", g.T(n), q, q, q))
			}
			return out
		},
		Round: func(g *Gen) [][]string {
			var out [][]string
			for _, n := range names {
				q := conn.QuoteName(n)
				out = append(out, g.churn(n, "id, "+q+", v", func() string { return fmt.Sprintf("%d, '?'", g.N(9)) },
					func() string { return fmt.Sprintf("%s = %s + 1, v = 'x?'", q, q) })...)
			}
			if g.N(4) == 0 {
				n := names[g.N(len(names))]
				out = append(out, []string{fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s INT", g.T(n), conn.QuoteName(fmt.Sprintf("%s_%d", n[:min(len(n), 50)], g.ID())))})
			}
			return out
		}}
}

func caseMultiTable() Case {
	return Case{Name: "multi_table",
		Setup: func(g *Gen) []string {
			return []string{
				"CREATE TABLE " + g.T("a") + " (id INT PRIMARY KEY, v INT, tag VARCHAR(5))",
				"CREATE TABLE " + g.T("b") + " (id INT PRIMARY KEY, aid INT, w INT, KEY (aid))",
			}
		},
		Round: func(g *Gen) [][]string {
			var out [][]string
			for range g.Rows(2) {
				a := g.ID()
				out = append(out, []string{
					fmt.Sprintf("INSERT INTO %s VALUES (%d, %d, 't%d')", g.T("a"), a, g.N(9), g.N(3)),
					fmt.Sprintf("INSERT INTO %s VALUES (%d, %d, %d), (%d, %d, 0)", g.T("b"), g.ID(), a, g.N(9), g.ID(), a),
				})
			}
			return append(out,
				[]string{fmt.Sprintf("UPDATE %s a JOIN %s b ON b.aid = a.id SET a.v = a.v + b.w, b.w = b.w + 1 WHERE a.tag = 't%d'", g.T("a"), g.T("b"), g.N(3))},
				[]string{fmt.Sprintf("DELETE %s, %s FROM %s JOIN %s ON %s.aid = %s.id WHERE %s.v > %d", g.T("a"), g.T("b"), g.T("a"), g.T("b"), g.T("b"), g.T("a"), g.T("a"), 5+g.N(20))},
				[]string{fmt.Sprintf("DELETE %s FROM %s LEFT JOIN %s ON %s.id = %s.aid WHERE %s.id IS NULL", g.T("b"), g.T("b"), g.T("a"), g.T("a"), g.T("b"), g.T("a"))},
				[]string{fmt.Sprintf("INSERT INTO %s SELECT id + 1000000, v, 'sel' FROM %s WHERE id = %s", g.T("a"), g.T("a"), g.rowIDs(1))},
			)
		}}
}

func caseUpsert() Case {
	return Case{Name: "upsert",
		Setup: func(g *Gen) []string {
			return []string{"CREATE TABLE " + g.T("u") + " (id INT PRIMARY KEY, k VARCHAR(10) NOT NULL, n INT, UNIQUE KEY (k))"}
		},
		Round: func(g *Gen) [][]string {
			var out [][]string
			for range g.Rows(3) {
				k := fmt.Sprintf("k%d", g.N(15))
				out = append(out,
					[]string{fmt.Sprintf("INSERT INTO %s VALUES (%d, '%s', 1) ON DUPLICATE KEY UPDATE n = n + VALUES(n), id = id", g.T("u"), g.ID(), k)},
					[]string{fmt.Sprintf("REPLACE INTO %s VALUES (%d, '%s', 7)", g.T("u"), g.ID(), k)},
					[]string{fmt.Sprintf("INSERT IGNORE INTO %s VALUES (%s, 'k%d', 3)", g.T("u"), g.rowIDs(1), g.N(30))},
				)
			}
			return out
		}}
}

func caseCreateSelect() Case {
	return Case{Name: "ctas",
		Setup: func(g *Gen) []string {
			return []string{"CREATE TABLE " + g.T("src") + " (id INT PRIMARY KEY, v VARCHAR(10), n INT)"}
		},
		Round: func(g *Gen) [][]string {
			out := g.churn("src", "id, v, n", func() string { return fmt.Sprintf("%s, %d", Lit(g.sample()), g.N(9)) }, func() string { return "n = n + 1" })
			t := fmt.Sprintf("copy%d", g.ID())
			return append(out,
				[]string{fmt.Sprintf("CREATE TABLE %s AS SELECT * FROM %s WHERE n > %d", g.T(t), g.T("src"), g.N(5))},
				[]string{fmt.Sprintf("CREATE OR REPLACE TABLE %s (id INT PRIMARY KEY, extra INT DEFAULT 1) SELECT id, n FROM %s", g.T("latest"), g.T("src"))},
				[]string{fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s SELECT id FROM %s", g.T("once"), g.T("src"))},
				[]string{fmt.Sprintf("INSERT INTO %s SELECT id + 100000, v, n FROM %s LIMIT 2", g.T(t), g.T("src"))},
			)
		}}
}

// caseLoadData loads a file the source server reads (LOAD DATA INFILE: in
// row format its rows are logged).
func caseLoadData() Case {
	return Case{Name: "load_data",
		Setup: func(g *Gen) []string {
			return []string{"CREATE TABLE " + g.T("l") + " (id INT PRIMARY KEY, v VARCHAR(20), d DATE NULL)"}
		},
		Round: func(g *Gen) [][]string {
			var b strings.Builder
			for range g.Rows(20) {
				fmt.Fprintf(&b, "%d\t%s\t2024-01-%02d\n", g.ID(), strings.NewReplacer("\t", " ", "\n", " ", `\`, `\\`).Replace(g.sample()), 1+g.N(28))
			}
			fmt.Fprintf(&b, "%d\tnull date\t\\N\n", g.ID())
			file := filepath.Join(g.Env.Source.Dir, "tmp", fmt.Sprintf("load-%d.tsv", g.ID()))
			if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
				panic(err)
			}
			return [][]string{
				{fmt.Sprintf("LOAD DATA INFILE %s INTO TABLE %s CHARACTER SET utf8mb4", Lit(file), g.T("l"))},
				{fmt.Sprintf("LOAD DATA INFILE %s REPLACE INTO TABLE %s CHARACTER SET utf8mb4 (id, @v, d) SET v = UPPER(@v)", Lit(file), g.T("l"))},
				{fmt.Sprintf("DELETE FROM %s WHERE id IN (%s)", g.T("l"), g.rowIDs(5))},
			}
		}}
}

func caseSavepoints() Case {
	return Case{Name: "savepoints",
		Setup: func(g *Gen) []string {
			return []string{
				"CREATE TABLE " + g.T("t") + " (id INT PRIMARY KEY, v INT)",
				"CREATE TABLE " + g.T("my") + " (id INT PRIMARY KEY, v INT) ENGINE=MyISAM",
			}
		},
		Round: func(g *Gen) [][]string {
			ins := func(t string) string { return fmt.Sprintf("INSERT INTO %s VALUES (%d, %d)", g.T(t), g.ID(), g.N(9)) }
			return [][]string{
				{ins("t"), "SAVEPOINT a", ins("t"), ins("t"), "ROLLBACK TO SAVEPOINT a", ins("t"), "SAVEPOINT `b b`", "UPDATE " + g.T("t") + " SET v = v + 1", "RELEASE SAVEPOINT `b b`"},
				{ins("t"), "SAVEPOINT s", ins("t"), ins("my"), "ROLLBACK TO s", ins("t")}, // a MyISAM change inside: the rollback is logged
				{"SAVEPOINT x", ins("t"), "SAVEPOINT y", "DELETE FROM " + g.T("t") + " WHERE id IN (" + g.rowIDs(3) + ")", "ROLLBACK TO y", "SAVEPOINT x", ins("t")},
			}
		}}
}

// caseParserRejects: DDL the TiDB parser rejects or died on, which the
// server runs.
func caseParserRejects() Case {
	big := strings.Repeat("1234567890", 25) + "12345678"
	return Case{Name: "parser_rejects",
		Setup: func(g *Gen) []string {
			return []string{
				"CREATE TABLE " + g.T("cp") + " (id INT PRIMARY KEY, s VARCHAR(20)) CHARACTER SET cp932",
				"CREATE OR REPLACE TABLE " + g.T("dx") + " (id INT PRIMARY KEY, d DATETIME DEFAULT (TIMESTAMP'2020-01-01 00:00:00' + INTERVAL 1 DAY), j INT DEFAULT (1 + 1))",
				"CREATE TABLE " + g.T("big") + " (id INT PRIMARY KEY, d DECIMAL(65,0) DEFAULT " + big + ")",
			}
		},
		Round: func(g *Gen) [][]string {
			out := [][]string{
				{fmt.Sprintf("INSERT INTO %s (id, s) VALUES (%d, CONVERT(_utf8mb4 %s USING cp932))", g.T("cp"), g.ID(), Lit(g.sample()))},
				{fmt.Sprintf("INSERT INTO %s (id) VALUES (%d)", g.T("dx"), g.ID())},
				{fmt.Sprintf("INSERT INTO %s (id) VALUES (%d)", g.T("big"), g.ID())},
			}
			switch g.N(3) {
			case 0:
				out = append(out, []string{fmt.Sprintf("ALTER TABLE %s ADD COLUMN c%d VARCHAR(5) CHARACTER SET cp932 DEFAULT 'x'", g.T("cp"), g.ID())})
			case 1:
				out = append(out, []string{fmt.Sprintf("ALTER TABLE %s ALTER COLUMN d SET DEFAULT -%s", g.T("big"), big)})
			case 2:
				out = append(out, []string{fmt.Sprintf("CREATE OR REPLACE TABLE %s (id INT PRIMARY KEY, t TIMESTAMP DEFAULT (CURRENT_TIMESTAMP - INTERVAL %d MINUTE)) CHARSET cp932", g.T("r"), g.N(60))})
			}
			return out
		}}
}

func caseDDLChurn() Case {
	return Case{Name: "ddl_churn",
		Setup: func(g *Gen) []string {
			return []string{"CREATE TABLE " + g.T("t") + " (id INT PRIMARY KEY, a VARCHAR(10))"}
		},
		Round: func(g *Gen) [][]string {
			out := g.churn("t", "id, a", func() string { return Lit(g.sample()) }, func() string { return "a = 'u'" })
			n := g.ID()
			switch g.N(5) {
			case 0:
				out = append(out, []string{fmt.Sprintf("ALTER TABLE %s ADD COLUMN c%d INT DEFAULT %d, ADD INDEX i%d (a)", g.T("t"), n, n, n)})
			case 1:
				out = append(out, []string{fmt.Sprintf("ALTER TABLE %s MODIFY a VARCHAR(%d) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", g.T("t"), 20+g.N(20))})
			case 2:
				out = append(out, []string{fmt.Sprintf("RENAME TABLE %s TO %s, %s TO %s", g.T("t"), g.T("tmp"), g.T("tmp"), g.T("t"))})
			case 3:
				out = append(out, []string{fmt.Sprintf("CREATE TABLE %s LIKE %s", g.T(fmt.Sprintf("like%d", n)), g.T("t"))},
					[]string{fmt.Sprintf("INSERT INTO %s (id, a) SELECT id, a FROM %s", g.T(fmt.Sprintf("like%d", n)), g.T("t"))})
			case 4:
				out = append(out, []string{fmt.Sprintf("CREATE TABLE %s (id INT PRIMARY KEY)", g.T("gone"))}, []string{fmt.Sprintf("INSERT INTO %s VALUES (1)", g.T("gone"))},
					[]string{fmt.Sprintf("TRUNCATE %s", g.T("gone"))}, []string{fmt.Sprintf("DROP TABLE %s", g.T("gone"))})
			}
			return out
		}}
}

func caseSequences() Case {
	return Case{Name: "sequences",
		Setup: func(g *Gen) []string {
			return []string{
				"CREATE SEQUENCE " + g.T("seq") + " START WITH 100 INCREMENT BY 5",
				"CREATE TABLE " + g.T("t") + " (id INT PRIMARY KEY, v INT)",
			}
		},
		Round: func(g *Gen) [][]string {
			return [][]string{
				{fmt.Sprintf("INSERT INTO %s VALUES (NEXTVAL(%s), 1)", g.T("t"), g.T("seq"))},
				{fmt.Sprintf("SELECT SETVAL(%s, %d)", g.T("seq"), 1000+g.ID()*10)},
			}
		}}
}
