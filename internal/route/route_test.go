package route

import (
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/internal/txn"
)

func rows(schema, table string) txn.Event {
	return txn.Event{Rows: &txn.RowChange{Table: &txn.Table{Schema: schema, Name: table}, Kind: txn.Insert, Rows: [][]any{{1}}}}
}

func query(schema, text string) txn.Event {
	return txn.Event{Query: &txn.Query{Schema: schema, Text: text}}
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
		{"shop", "ALTER TABLE orders FROBNICATE", false, "", "cannot parse"},
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
