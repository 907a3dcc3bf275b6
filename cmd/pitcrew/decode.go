package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
	"github.com/pitcrew/pitcrew/internal/pipeline/binlog"
	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

const decodeUsage = "binlog decode [--flavor mysql|mariadb] [--json] FILE...  |  binlog decode --from-server --config FILE [--from SET] [--to SET] [--json]"

// decodedTxn is a transaction as `pitcrew binlog decode` prints it.
type decodedTxn struct {
	GTID   string         `json:"gtid"`
	Time   string         `json:"time"`
	Events []decodedEvent `json:"events"`
}

type decodedEvent struct {
	Table     string       `json:"table,omitempty"`
	Kind      string       `json:"kind,omitempty"`
	Columns   []string     `json:"columns,omitempty"`
	Rows      [][]typedVal `json:"rows,omitempty"`
	Partial   bool         `json:"partial,omitempty"`
	Query     string       `json:"query,omitempty"`
	Schema    string       `json:"schema,omitempty"`
	Statement bool         `json:"statement_format,omitempty"`
}

// typedVal shows a value with the Go type the decoder produced.
type typedVal struct {
	Type  string `json:"type"`
	Value any    `json:"value"`
}

func typed(v any) typedVal {
	switch x := v.(type) {
	case nil:
		return typedVal{"null", nil}
	case []byte:
		return typedVal{"bytes", "0x" + hex.EncodeToString(x)}
	case string:
		if !utf8.ValidString(x) {
			return typedVal{"string", "0x" + hex.EncodeToString([]byte(x))}
		}
		return typedVal{"string", x}
	}
	return typedVal{fmt.Sprintf("%T", v), v}
}

func describe(t *txn.Txn) decodedTxn {
	d := decodedTxn{GTID: t.GTID, Time: time.Unix(int64(t.Timestamp), 0).UTC().Format(time.RFC3339)}
	for _, e := range t.Events {
		if q := e.Query; q != nil {
			d.Events = append(d.Events, decodedEvent{Query: q.Text, Schema: q.Schema, Statement: q.Statement})
			continue
		}
		r := e.Rows
		de := decodedEvent{Table: r.Table.QualifiedName(), Kind: r.Kind.String(), Columns: r.Table.Columns, Partial: r.Partial()}
		for _, row := range r.Rows {
			var vals []typedVal
			for _, v := range row {
				vals = append(vals, typed(v))
			}
			de.Rows = append(de.Rows, vals)
		}
		d.Events = append(d.Events, de)
	}
	return d
}

func printTxn(w io.Writer, t *txn.Txn, asJSON bool) error {
	d := describe(t)
	if asJSON {
		return json.NewEncoder(w).Encode(d)
	}
	g := d.GTID
	if g == "" {
		g = "(anonymous)"
	}
	fmt.Fprintf(w, "GTID %s at %s\n", g, d.Time)
	for _, e := range d.Events {
		if e.Query != "" {
			kind := "DDL"
			if e.Statement {
				kind = "STATEMENT (refused by the applier)"
			}
			fmt.Fprintf(w, "  %s [%s] %s\n", kind, e.Schema, e.Query)
			continue
		}
		partial := ""
		if e.Partial {
			partial = " (partial image)"
		}
		fmt.Fprintf(w, "  %s %s%s columns %v\n", strings.ToUpper(e.Kind), e.Table, partial, e.Columns)
		for i, row := range e.Rows {
			label := "row"
			if e.Kind == "update" {
				label = map[bool]string{true: "before", false: "after"}[i%2 == 0]
			}
			var parts []string
			for _, v := range row {
				parts = append(parts, fmt.Sprintf("%s(%v)", v.Type, v.Value))
			}
			fmt.Fprintf(w, "    %s: %s\n", label, strings.Join(parts, ", "))
		}
	}
	return nil
}

func cmdBinlog(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "decode" {
		fmt.Fprintln(stderr, "Usage: pitcrew "+decodeUsage)
		if len(args) > 0 && isHelp(args[0]) {
			return flag.ErrHelp
		}
		return errUsage
	}
	fs := newFlags("binlog decode", decodeUsage, stderr)
	flavor := fs.String("flavor", gtid.MySQL, "files: mysql or mariadb")
	asJSON := fs.Bool("json", false, "one JSON object per transaction")
	fromServer := fs.Bool("from-server", false, "read from the config's source as a replica instead of files")
	config := fs.String("config", "pitcrew.yaml", "--from-server: config with the source")
	from := fs.String("from", "", "--from-server: start after this GTID set (default: the oldest binlog)")
	to := fs.String("to", "", "--from-server: stop once this GTID set is read (default: the source's position now)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, errUsage) {
			return err
		}
		return errUsage
	}
	if !*fromServer {
		return decodeFiles(fs.Args(), *flavor, *asJSON, stdout)
	}
	fc, err := loadConfig(*config)
	if err != nil {
		return err
	}
	cfg := fc.syncerConfig()
	err = binlog.ReadRange(ctx, binlog.Range{Source: cfg.Source, ServerID: cfg.ServerID + 1000, From: *from, To: *to},
		func(t *txn.Txn) error { return printTxn(stdout, t, *asJSON) })
	if be := (*binlog.BoundError)(nil); errors.As(err, &be) {
		return fmt.Errorf("--%s: %w", be.Bound, be.Err)
	}
	return err
}

// decodeFiles prints the transactions of binlog files (those decoded
// before a file's error too).
func decodeFiles(files []string, flavor string, asJSON bool, w io.Writer) error {
	if len(files) == 0 {
		return errors.New("no binlog file given: pitcrew binlog decode FILE... (or --from-server)")
	}
	for _, f := range files {
		txns, err := binlog.DecodeFile(f, flavor)
		for _, t := range txns {
			if err := printTxn(w, t, asJSON); err != nil {
				return err
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}
