package route

import (
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

func rows(schema, table string) txn.Event {
	return txn.Event{Rows: &txn.RowChange{Table: &txn.Table{Schema: schema, Name: table}, Kind: txn.Insert, Rows: [][]any{{1}}}}
}

func query(schema, text string) txn.Event {
	return txn.Event{Query: &txn.Query{Schema: schema, Text: text}}
}

// Without rules, a statement only the light reader names is applied as
// written, with what the target must show afterwards; system versioning
// is refused with the reason.
func TestRouteApproximate(t *testing.T) {
	r := New(Rules{})
	q := query("app", "CREATE OR REPLACE TABLE dx (id INT, d DATETIME DEFAULT (NOW() + INTERVAL 1 DAY)) CHARSET cp932")
	tx := &txn.Txn{GTID: "0-1-3", Events: []txn.Event{q}}
	if err := r.Route(tx); err != nil || len(tx.Events) != 1 {
		t.Fatalf("%v %v", err, tx.Events)
	}
	if got := q.Query.Expect; len(got) != 1 || got[0] != (txn.Expect{Schema: "app", Table: "dx", Exists: true}) || q.Query.Text != "CREATE OR REPLACE TABLE dx (id INT, d DATETIME DEFAULT (NOW() + INTERVAL 1 DAY)) CHARSET cp932" {
		t.Errorf("expect %v, text %q", got, q.Query.Text)
	}
	tx = &txn.Txn{GTID: "0-1-4", Events: []txn.Event{query("app", "CREATE TABLE sv (id INT) WITH SYSTEM VERSIONING")}}
	if err := r.Route(tx); err == nil || !strings.Contains(err.Error(), "system-versioned") || !strings.Contains(err.Error(), "exclude") {
		t.Errorf("system versioning: %v", err)
	}
	// A statement the parser reads has nothing to check afterwards.
	q = query("app", "CREATE TABLE t (a INT)")
	if err := r.Route(&txn.Txn{GTID: "0-1-5", Events: []txn.Event{q}}); err != nil || q.Query.Expect != nil {
		t.Errorf("%v %v", err, q.Query.Expect)
	}
}

func TestRoute(t *testing.T) {
	r := New(Rules{
		Include:         []string{"shop", "crm.customers"},
		Exclude:         []string{"shop.audit_*"},
		RenameDatabases: map[string]string{"shop": "shop_v2"},
		RenameTables:    map[string]string{"crm.customers": "crm.clients"},
	})
	tx := &txn.Txn{GTID: "0-1-1", Events: []txn.Event{
		rows("shop", "orders"), rows("shop", "audit_log"), rows("crm", "customers"), rows("crm", "notes"), rows("other", "x"),
	}}
	if err := r.Route(tx); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range tx.Events {
		got = append(got, e.Rows.Table.QualifiedName())
	}
	if strings.Join(got, " ") != "shop_v2.orders crm.clients" {
		t.Errorf("rows routed to %v", got)
	}
	cases := []struct {
		schema, text string
		keep         bool
		want         string // substring of the routed text
		err          string
	}{
		{"shop", "ALTER TABLE orders ADD COLUMN n INT", true, "ALTER TABLE `shop_v2`.`orders` ADD COLUMN", ""},
		{"", "CREATE DATABASE shop", true, "CREATE DATABASE `shop_v2`", ""},
		{"crm", "CREATE TABLE customers (id INT PRIMARY KEY)", true, "`crm`.`clients`", ""},
		{"crm", "DROP TABLE notes", false, "", ""},
		{"shop", "TRUNCATE TABLE audit_log", false, "", ""},
		{"crm", "RENAME TABLE customers TO notes", false, "", "replicated and filtered"},
		// gh-ost: shadow tables follow their table, renames included.
		{"crm", "RENAME TABLE customers TO _customers_del, _customers_gho TO customers", true, "`crm`.`_clients_del`", ""},
		{"shop", "CREATE TRIGGER tr AFTER INSERT ON orders FOR EACH ROW SET @x = 1", true, "CREATE TRIGGER", ""},
		{"shop", "FROBNICATE TABLE orders", false, "", "cannot parse"},
		// Routines, events, triggers and grants follow their database (and
		// table): filtered with it; refused where a rename is in their text.
		{"shop", "CREATE TRIGGER tr AFTER INSERT ON audit_log FOR EACH ROW SET @x = 1", false, "", ""},
		{"shop", "CREATE PROCEDURE other.p() SELECT 1", false, "", ""},
		{"other", "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO SELECT 1", false, "", ""},
		{"shop", "GRANT SELECT ON other.* TO app", false, "", ""},
		{"shop", "GRANT SELECT ON shop.audit_log TO app", false, "", ""},
		{"shop", "GRANT EXECUTE ON PROCEDURE other.p TO app", false, "", ""},
		{"crm", "CREATE PROCEDURE p() SELECT 1", true, "CREATE PROCEDURE p()", ""},
		{"other", "CREATE USER 'app'@'%' IDENTIFIED BY 'x'", true, "CREATE USER", ""},
		{"other", "GRANT SELECT ON *.* TO app", true, "GRANT SELECT", ""},
		{"x", "GRANT SELECT ON shop.* TO app", false, "", "routing renames"},
		{"x", "CREATE PROCEDURE shop.p() SELECT 1", false, "", "routing renames"},
		{"crm", "CREATE TRIGGER tr AFTER INSERT ON customers FOR EACH ROW SET @x = 1", false, "", "routing renames"},
		// What only the light reader names: filtered, refused when it would
		// need rewriting, applied as written otherwise.
		{"crm", "CREATE TABLE notes (id INT) CHARSET cp932", false, "", ""},
		{"shop", "CREATE TABLE orders2 (id INT) CHARSET cp932", false, "", "cannot be rewritten"},
		{"crm", "CREATE TABLE customers (id INT) CHARSET cp932", false, "", "cannot be rewritten"},
		{"crm", "ALTER TABLE shop.audit_x CONVERT TO CHARACTER SET cp932", false, "", ""},
		// System versioning is refused for a replicated table, with why.
		{"crm", "CREATE TABLE notes (id INT) WITH SYSTEM VERSIONING", false, "", ""},
		{"other", "CREATE TABLE x (id INT) WITH SYSTEM VERSIONING", false, "", ""},
	}
	for _, c := range cases {
		tx := &txn.Txn{GTID: "0-1-2", Events: []txn.Event{query(c.schema, c.text)}}
		err := r.Route(tx)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "pitcrew skip --gtid 0-1-2") {
				t.Errorf("%s: error %v, want %q with the skip hint", c.text, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.text, err)
			continue
		}
		if kept := len(tx.Events) == 1; kept != c.keep {
			t.Errorf("%s: kept %v", c.text, kept)
			continue
		}
		if c.keep && !strings.Contains(tx.Events[0].Query.Text, c.want) {
			t.Errorf("%s: routed to %q", c.text, tx.Events[0].Query.Text)
		}
	}
}
