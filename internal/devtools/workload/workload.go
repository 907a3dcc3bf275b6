// Package workload writes randomised, reproducible transactions to a
// server: the acceptance tests' and the demo's source traffic. It counts the
// row changes it makes so tests can compare them with what a target saw.
package workload

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
)

// Schema creates the workload's tables in db (a database name). The column
// types are varied on purpose: every value must survive the trip exactly.
func Schema(db string) []string {
	q := "`" + db + "`"
	return []string{
		"CREATE DATABASE IF NOT EXISTS " + q,
		"CREATE TABLE IF NOT EXISTS " + q + `.accounts (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(64) CHARACTER SET utf8mb4 NOT NULL,
  balance DECIMAL(20,4) NOT NULL,
  rate DOUBLE NULL,
  flags BIT(8) NOT NULL DEFAULT b'0',
  state ENUM('new','active','closed') NOT NULL DEFAULT 'new',
  updated DATETIME(6) NOT NULL,
  seen TIMESTAMP(3) NULL,
  note TEXT NULL,
  version INT NOT NULL DEFAULT 0
) ENGINE=InnoDB`,
		"CREATE TABLE IF NOT EXISTS " + q + `.events (
  account_id BIGINT UNSIGNED NOT NULL,
  seq INT NOT NULL,
  kind CHAR(8) CHARACTER SET latin1 NOT NULL,
  payload VARBINARY(255) NULL,
  amount FLOAT NULL,
  day DATE NULL,
  version INT NOT NULL DEFAULT 0,
  PRIMARY KEY (account_id, seq)
) ENGINE=InnoDB`,
		"CREATE TABLE IF NOT EXISTS " + q + `.counters (
  name VARCHAR(32) NOT NULL PRIMARY KEY,
  value BIGINT NOT NULL,
  tiny TINYINT NOT NULL DEFAULT 0,
  version INT NOT NULL DEFAULT 0
) ENGINE=InnoDB`,
	}
}

// Tables lists the workload's tables.
var Tables = []string{"accounts", "events", "counters"}

// Generator writes transactions; not safe for concurrent use.
type Generator struct {
	DB      *sql.DB
	Schema  string
	rnd     *rand.Rand
	nextSeq map[uint64]int
	ids     []uint64 // live account ids
	// Changes counts row changes made, by table and kind, e.g. "accounts insert".
	Changes map[string]int
}

// New returns a generator with a fixed seed (reproducible runs).
func New(db *sql.DB, schema string, seed uint64) *Generator {
	return &Generator{DB: db, Schema: schema, rnd: rand.New(rand.NewPCG(seed, 7)),
		nextSeq: map[uint64]int{}, Changes: map[string]int{}}
}

// TotalChanges is the number of row changes made so far.
func (g *Generator) TotalChanges() int {
	n := 0
	for _, c := range g.Changes {
		n += c
	}
	return n
}

// Run writes n transactions of 1-6 statements each.
func (g *Generator) Run(ctx context.Context, n int) error {
	for i := 0; i < n; i++ {
		if err := g.Txn(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Txn writes one multi-statement transaction and commits it.
func (g *Generator) Txn(ctx context.Context) error {
	tx, err := g.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck
	pending := map[string]int{}
	var added []uint64
	removed := map[uint64]bool{}
	for k := 1 + g.rnd.IntN(6); k > 0; k-- {
		if err := g.statement(ctx, tx, pending, &added, removed); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	for k, v := range pending {
		g.Changes[k] += v
	}
	g.ids = append(g.ids, added...)
	if len(removed) > 0 {
		kept := g.ids[:0]
		for _, id := range g.ids {
			if !removed[id] {
				kept = append(kept, id)
			}
		}
		g.ids = kept
	}
	return nil
}

func (g *Generator) exec(ctx context.Context, tx *sql.Tx, pending map[string]int, key, q string, args ...any) (sql.Result, error) {
	res, err := tx.ExecContext(ctx, strings.ReplaceAll(q, "$db", "`"+g.Schema+"`"), args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	n, _ := res.RowsAffected()
	pending[key] += int(n)
	return res, nil
}

func (g *Generator) live(removed map[uint64]bool) (uint64, bool) {
	for tries := 0; tries < 5 && len(g.ids) > 0; tries++ {
		id := g.ids[g.rnd.IntN(len(g.ids))]
		if !removed[id] {
			return id, true
		}
	}
	return 0, false
}

var names = []string{"ada", "Grace", "linus", "Zoë", "名前", "🚀 rocket", "O'Brien", `back\slash`, "trailing  "}

func (g *Generator) statement(ctx context.Context, tx *sql.Tx, pending map[string]int, added *[]uint64, removed map[uint64]bool) error {
	r := g.rnd
	switch op := r.IntN(10); {
	case op < 3 || len(g.ids) < 5: // new account
		res, err := g.exec(ctx, tx, pending, "accounts insert",
			"INSERT INTO $db.accounts (name, balance, rate, flags, state, updated, seen, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			names[r.IntN(len(names))], fmt.Sprintf("%d.%04d", r.IntN(2_000_000)-1_000_000, r.IntN(10000)),
			nullable(r, r.NormFloat64()*1e6), r.IntN(256), []string{"new", "active", "closed"}[r.IntN(3)],
			fmt.Sprintf("20%02d-%02d-%02d %02d:%02d:%02d.%06d", r.IntN(30), 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1000000)),
			nullable(r, fmt.Sprintf("2021-%02d-%02d 10:00:00.%03d", 1+r.IntN(12), 1+r.IntN(28), r.IntN(1000))),
			nullable(r, strings.Repeat("x", r.IntN(300))))
		if err != nil {
			return err
		}
		id, _ := res.LastInsertId()
		*added = append(*added, uint64(id))
	case op < 5: // event rows for an account
		id, ok := g.live(removed)
		if !ok {
			return nil
		}
		for k := 1 + r.IntN(3); k > 0; k-- {
			g.nextSeq[id]++
			payload := make([]byte, r.IntN(40))
			for i := range payload {
				payload[i] = byte(r.IntN(256))
			}
			if _, err := g.exec(ctx, tx, pending, "events insert",
				"INSERT INTO $db.events (account_id, seq, kind, payload, amount, day) VALUES (?, ?, ?, ?, ?, ?)",
				id, g.nextSeq[id], []string{"débit", "credit", "fee "}[r.IntN(3)], payload,
				nullable(r, float32(r.NormFloat64()*100)), nullable(r, fmt.Sprintf("2024-%02d-%02d", 1+r.IntN(12), 1+r.IntN(28)))); err != nil {
				return err
			}
		}
	case op < 8: // update an account (version+1 always changes the row)
		id, ok := g.live(removed)
		if !ok {
			return nil
		}
		_, err := g.exec(ctx, tx, pending, "accounts update",
			"UPDATE $db.accounts SET balance = balance + ?, state = ?, version = version + 1, note = ? WHERE id = ?",
			fmt.Sprintf("%d.%04d", r.IntN(1000), r.IntN(10000)), []string{"new", "active", "closed"}[r.IntN(3)],
			nullable(r, names[r.IntN(len(names))]), id)
		return err
	case op < 9: // counters: insert or bump
		name := fmt.Sprintf("c%02d", r.IntN(40))
		if _, err := g.exec(ctx, tx, pending, "counters upsert",
			"INSERT INTO $db.counters (name, value, tiny) VALUES (?, 1, ?) ON DUPLICATE KEY UPDATE value = value + 1, version = version + 1",
			name, r.IntN(256)-128); err != nil {
			return err
		}
	default: // delete an account and its events
		id, ok := g.live(removed)
		if !ok {
			return nil
		}
		if _, err := g.exec(ctx, tx, pending, "events delete", "DELETE FROM $db.events WHERE account_id = ?", id); err != nil {
			return err
		}
		if _, err := g.exec(ctx, tx, pending, "accounts delete", "DELETE FROM $db.accounts WHERE id = ?", id); err != nil {
			return err
		}
		removed[id] = true
	}
	return nil
}

func nullable(r *rand.Rand, v any) any {
	if r.IntN(8) == 0 {
		return nil
	}
	return v
}
