package ddl

// Placed is where a statement that defines no table (Info.Other) puts what
// it defines or grants, so routing can filter it as it filters tables: a
// routine, event or trigger of a database that is not replicated, or a
// grant on one, is not applied either.
type Placed struct {
	// Database is the database of the object or grant ("" for accounts,
	// roles and global grants: they belong to no database).
	Database string
	// Table is a trigger's table, or the table of a table-level grant.
	Table string
	// Routine: a grant on a procedure or function (Table is its name).
	Routine bool
	// Qualified: the statement names the database itself (so a renamed
	// database would have to be rewritten in its text).
	Qualified bool
}

// Place reads where an account, routine, event, trigger or grant
// statement puts its object; ok is false for one it does not know.
func Place(defaultSchema, text string, sqlMode uint64) (p Placed, ok bool) {
	defer func() {
		if recover() != nil {
			p, ok = Placed{}, false
		}
	}()
	r := &reader{toks: lex(text, sqlMode&modeANSIQuotes != 0, sqlMode&modeNoBackslashEscapes != 0), schema: defaultSchema}
	switch {
	case r.accept("GRANT"), r.accept("REVOKE"):
		return r.grantLevel()
	case r.accept("CREATE"), r.accept("ALTER"), r.accept("DROP"):
	default:
		return Placed{}, false
	}
	for ; r.i < len(r.toks); r.i++ {
		t := r.toks[r.i]
		switch {
		case t.word("USER"), t.word("ROLE"), t.word("SERVER"):
			return Placed{}, true
		case t.word("PROCEDURE"), t.word("FUNCTION"), t.word("EVENT"), t.word("TRIGGER"), t.word("PACKAGE"):
			trigger := t.word("TRIGGER")
			r.i++
			r.accept("IF", "NOT", "EXISTS")
			r.accept("IF", "EXISTS")
			start := r.i
			name, ok := r.name()
			if !ok {
				return Placed{}, false
			}
			p := Placed{Database: name.Schema, Qualified: r.i-start > 1}
			for j := r.i; j < len(r.toks); j++ {
				if r.toks[j].word("SONAME") {
					return Placed{}, true // a UDF: global, in no database
				}
			}
			if trigger {
				for ; r.i < len(r.toks) && !r.toks[r.i].word("ON"); r.i++ {
				}
				if r.i >= len(r.toks) { // DROP TRIGGER: no table named
					return p, true
				}
				r.i++
				start := r.i
				tbl, ok := r.name()
				if !ok {
					return Placed{}, false
				}
				p.Table = tbl.Table
				p.Qualified = p.Qualified || r.i-start > 1
				if tbl.Schema != p.Database && r.i-start > 1 {
					return Placed{}, false // a trigger names its own table's database
				}
			}
			return p, true
		case t.word("DATABASE"), t.word("SCHEMA"), t.word("TABLE"), t.word("VIEW"), t.word("INDEX"), t.word("SEQUENCE"):
			return Placed{}, false
		}
	}
	return Placed{}, false
}

// grantLevel reads GRANT/REVOKE ... ON [TABLE|PROCEDURE|FUNCTION] level.
func (r *reader) grantLevel() (Placed, bool) {
	for ; r.i < len(r.toks); r.i++ {
		if r.toks[r.i].word("ON") {
			break
		}
		if r.toks[r.i].word("TO") || r.toks[r.i].word("FROM") {
			return Placed{}, true // a role granted or revoked: accounts only
		}
	}
	if r.i >= len(r.toks) {
		return Placed{}, true
	}
	r.i++
	if r.accept("PROXY") || r.i < len(r.toks) && (r.toks[r.i].text == "'") {
		return Placed{}, true
	}
	routine := false
	for _, w := range []string{"TABLE", "PROCEDURE", "FUNCTION", "PACKAGE"} {
		if r.accept(w) {
			routine = w != "TABLE"
			break
		}
	}
	at := func(k int) string {
		if r.i+k < len(r.toks) && !r.toks[r.i+k].ident {
			return r.toks[r.i+k].text
		}
		if r.i+k < len(r.toks) {
			return "\x00" + r.toks[r.i+k].text
		}
		return ""
	}
	switch {
	case at(0) == "*" && at(1) == "." && at(2) == "*":
		return Placed{}, true
	case at(0) == "*":
		return Placed{Database: r.schema}, true
	}
	if r.i >= len(r.toks) || !isName(r.toks[r.i]) {
		return Placed{}, false
	}
	first := r.toks[r.i].text
	if at(1) == "." {
		if at(2) == "*" {
			return Placed{Database: first, Qualified: true}, true
		}
		if r.i+2 < len(r.toks) && isName(r.toks[r.i+2]) {
			return Placed{Database: first, Table: r.toks[r.i+2].text, Routine: routine, Qualified: true}, true
		}
		return Placed{}, false
	}
	return Placed{Database: r.schema, Table: first, Routine: routine}, true
}
