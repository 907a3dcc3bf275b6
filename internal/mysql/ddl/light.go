package ddl

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// The light reader names what a table statement the parser rejects
// touches (a character set it does not know, MariaDB syntax it lacks):
// the statement's kind and the tables and databases it names, read from
// its tokens with the session's default database for unqualified names.
// It never rebuilds the statement, and what it read is checked against
// the target's catalogue after the statement ran (Info.Expect).

// token is one lexical unit of a statement.
type token struct {
	text  string // an identifier's name (unquoted), a keyword, or punctuation
	ident bool   // a quoted identifier: never a keyword
}

// word reports whether tok is the keyword w (case-insensitive).
func (t token) word(w string) bool { return !t.ident && strings.EqualFold(t.text, w) }

// lex splits a statement into tokens. Comments are dropped, but the
// contents of executable comments (/*!50100 ... */, /*M!100100 ... */)
// are read: the server runs them. Strings become one token "'".
func lex(s string, ansiQuotes, noBackslash bool) []token {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case strings.HasPrefix(s[i:], "/*!") || strings.HasPrefix(s[i:], "/*M!"):
			i += 3
			if s[i-1] == 'M' {
				i++ // the ! of /*M!
			}
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				i++
			}
		case strings.HasPrefix(s[i:], "*/"):
			i += 2 // the end of an executable comment
		case strings.HasPrefix(s[i:], "/*"):
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return out
			}
			i += end + 4
		case c == '#' || (strings.HasPrefix(s[i:], "--") && (i+2 == len(s) || s[i+2] == ' ' || s[i+2] == '\t' || s[i+2] == '\n')):
			end := strings.IndexByte(s[i:], '\n')
			if end < 0 {
				return out
			}
			i += end
		case c == '`' || (c == '"' && ansiQuotes):
			name, n := quoted(s[i:], c, true)
			out = append(out, token{text: name, ident: true})
			i += n
		case c == '\'' || c == '"':
			_, n := quoted(s[i:], c, noBackslash)
			out = append(out, token{text: "'"})
			i += n
		case isWordByte(s, i):
			j := i
			for j < len(s) && isWordByte(s, j) {
				_, size := utf8.DecodeRuneInString(s[j:])
				j += size
			}
			out = append(out, token{text: s[i:j]})
			i = j
		default:
			_, size := utf8.DecodeRuneInString(s[i:])
			out = append(out, token{text: s[i : i+size]})
			i += size
		}
	}
	return out
}

// quoted reads a quoted run starting at s[0] (the quote), with the quote
// doubled inside (and backslash escapes unless raw); it returns the
// unquoted text and the bytes read.
func quoted(s string, q byte, raw bool) (string, int) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == '\\' && !raw && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case s[i] == q && i+1 < len(s) && s[i+1] == q:
			b.WriteByte(q)
			i++
		case s[i] == q:
			return b.String(), i + 1
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), len(s)
}

// isWordByte: a byte of an unquoted identifier, keyword or number
// (letters of any script, digits, _ and $).
func isWordByte(s string, i int) bool {
	c := s[i]
	if c < utf8.RuneSelf {
		return c == '_' || c == '$' || (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'z')
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return unicode.IsLetter(r) || unicode.IsDigit(r) || r >= 0x80
}

// reader walks the tokens.
type reader struct {
	toks   []token
	i      int
	schema string
}

func (r *reader) peek(w string) bool { return r.i < len(r.toks) && r.toks[r.i].word(w) }

// accept consumes the keywords ws in a row when they are next.
func (r *reader) accept(ws ...string) bool {
	if r.i+len(ws) > len(r.toks) {
		return false
	}
	for k, w := range ws {
		if !r.toks[r.i+k].word(w) {
			return false
		}
	}
	r.i += len(ws)
	return true
}

// name reads [schema.]name; ok is false when no identifier is next.
func (r *reader) name() (Ref, bool) {
	if r.i >= len(r.toks) || !isName(r.toks[r.i]) {
		return Ref{}, false
	}
	first := r.toks[r.i].text
	r.i++
	if r.i+1 < len(r.toks) && r.toks[r.i].text == "." && !r.toks[r.i].ident && isName(r.toks[r.i+1]) {
		second := r.toks[r.i+1].text
		r.i += 2
		return Ref{Schema: first, Table: second}, true
	}
	return Ref{Schema: r.schema, Table: first}, true
}

func isName(t token) bool {
	if t.ident {
		return true
	}
	if t.text == "" || !isWordByte(t.text, 0) {
		return false
	}
	return true
}

// light reads a table or database statement the parser rejected. ok is
// false for a statement it does not know.
func light(defaultSchema, text string, sqlMode uint64) (Info, bool) {
	r := &reader{toks: lex(text, sqlMode&modeANSIQuotes != 0, sqlMode&modeNoBackslashEscapes != 0), schema: defaultSchema}
	info := Info{schema: defaultSchema, TableDDL: true, Approx: true}
	add := func(ref Ref, exists bool) {
		info.Tables = append(info.Tables, ref)
		info.Expect = append(info.Expect, Expect{Ref: ref, Exists: exists})
	}
	switch {
	case r.accept("CREATE"):
		r.accept("OR", "REPLACE")
		switch {
		case r.accept("DATABASE") || r.accept("SCHEMA"):
			return info.database(r, true)
		case r.accept("TEMPORARY", "TABLE"):
			r.accept("IF", "NOT", "EXISTS")
			ref, ok := r.name()
			if !ok {
				return Info{}, false
			}
			info.Tables = append(info.Tables, ref) // a session's table: not in the catalogue
		case r.accept("TABLE"):
			r.accept("IF", "NOT", "EXISTS")
			ref, ok := r.name()
			if !ok {
				return Info{}, false
			}
			add(ref, true)
		default:
			// CREATE [UNIQUE|FULLTEXT|SPATIAL] INDEX [IF NOT EXISTS] i ON t
			for _, w := range []string{"ONLINE", "OFFLINE", "UNIQUE", "FULLTEXT", "SPATIAL"} {
				r.accept(w)
			}
			if !r.accept("INDEX") {
				return Info{}, false
			}
			return info.onTable(r)
		}
	case r.accept("ALTER"):
		r.accept("ONLINE")
		r.accept("IGNORE")
		switch {
		case r.accept("DATABASE") || r.accept("SCHEMA"):
			info.TableDDL = false
			return info.database(r, true)
		case r.accept("TABLE"):
			r.accept("IF", "EXISTS")
			ref, ok := r.name()
			if !ok {
				return Info{}, false
			}
			info.Tables = append(info.Tables, ref)
			final := ref
			for r.i < len(r.toks) {
				if r.accept("RENAME") && !r.peek("COLUMN") && !r.peek("INDEX") && !r.peek("KEY") {
					if !r.accept("TO") {
						r.accept("AS")
					}
					to, ok := r.name()
					if !ok {
						return Info{}, false
					}
					info.Tables = append(info.Tables, to)
					final = to
					continue
				}
				r.i++
			}
			if final != ref {
				info.Expect = append(info.Expect, Expect{Ref: ref})
			}
			info.Expect = append(info.Expect, Expect{Ref: final, Exists: true})
			r.i = 0 // other names (REFERENCES, EXCHANGE ... WITH TABLE): below
		default:
			return Info{}, false
		}
	case r.accept("DROP"):
		switch {
		case r.accept("DATABASE") || r.accept("SCHEMA"):
			return info.database(r, false)
		case r.accept("TEMPORARY", "TABLE"):
			r.accept("IF", "EXISTS")
			for {
				ref, ok := r.name()
				if !ok {
					return Info{}, false
				}
				info.Tables = append(info.Tables, ref)
				if !r.accept(",") {
					break
				}
			}
			return info, true
		case r.accept("TABLE"):
			r.accept("IF", "EXISTS")
			for {
				ref, ok := r.name()
				if !ok {
					return Info{}, false
				}
				add(ref, false)
				if !r.accept(",") {
					break
				}
			}
			return info, true
		default:
			r.accept("ONLINE")
			if !r.accept("INDEX") {
				return Info{}, false
			}
			return info.onTable(r)
		}
	case r.accept("RENAME"):
		if !r.accept("TABLE") && !r.accept("TABLES") {
			return Info{}, false
		}
		state := map[Ref]bool{}
		var order []Ref
		set := func(ref Ref, exists bool) {
			if _, seen := state[ref]; !seen {
				order = append(order, ref)
			}
			state[ref] = exists
		}
		for {
			from, ok := r.name()
			if !ok || !r.accept("TO") {
				return Info{}, false
			}
			to, ok := r.name()
			if !ok {
				return Info{}, false
			}
			info.Tables = append(info.Tables, from, to)
			set(from, false)
			set(to, true)
			if !r.accept(",") {
				break
			}
		}
		for _, ref := range order {
			info.Expect = append(info.Expect, Expect{Ref: ref, Exists: state[ref]})
		}
		return info, true
	case r.accept("TRUNCATE"):
		r.accept("TABLE")
		ref, ok := r.name()
		if !ok {
			return Info{}, false
		}
		add(ref, true)
		return info, true
	default:
		return Info{}, false
	}
	// The other tables a CREATE or ALTER TABLE names: foreign keys' parents,
	// LIKE, a MERGE table's UNION, EXCHANGE PARTITION ... WITH TABLE. A
	// SELECT may read any table: Complete stays false for it.
	info.Complete = true
	for r.i < len(r.toks) {
		switch {
		case r.accept("REFERENCES"), r.accept("LIKE"), r.accept("WITH", "TABLE"):
			if ref, ok := r.name(); ok {
				info.Tables = append(info.Tables, ref)
			}
		case r.accept("UNION"):
			r.accept("=")
			if !r.accept("(") {
				continue
			}
			for {
				ref, ok := r.name()
				if !ok {
					break
				}
				info.Tables = append(info.Tables, ref)
				if !r.accept(",") {
					break
				}
			}
		case r.accept("SELECT"):
			info.Complete = false
		default:
			r.i++
		}
	}
	info.Tables = dedupe(info.Tables)
	return info, true
}

// database reads the name of a CREATE/ALTER/DROP DATABASE.
func (i Info) database(r *reader, exists bool) (Info, bool) {
	i.Tables = nil
	r.accept("IF", "NOT", "EXISTS")
	r.accept("IF", "EXISTS")
	if r.i >= len(r.toks) || !isName(r.toks[r.i]) {
		if exists && !i.TableDDL && r.schema != "" {
			// ALTER DATABASE without a name: the default database.
			i.Databases = []string{r.schema}
			i.Complete = true
			return i, true
		}
		return Info{}, false
	}
	db := r.toks[r.i].text
	i.Databases = []string{db}
	i.Expect = []Expect{{Ref: Ref{Schema: db}, Exists: exists}}
	i.TableDDL = !exists // a database drop drops its tables
	i.Complete = true
	return i, true
}

// onTable reads `name [IF ...] ON table` of CREATE/DROP INDEX.
func (i Info) onTable(r *reader) (Info, bool) {
	r.accept("IF", "NOT", "EXISTS")
	r.accept("IF", "EXISTS")
	if _, ok := r.name(); !ok {
		return Info{}, false
	}
	if !r.accept("ON") {
		return Info{}, false
	}
	ref, ok := r.name()
	if !ok {
		return Info{}, false
	}
	i.Tables = []Ref{ref}
	i.Expect = []Expect{{Ref: ref, Exists: true}}
	i.Complete = true
	return i, true
}

func dedupe(refs []Ref) []Ref {
	var out []Ref
	seen := map[Ref]bool{}
	for _, r := range refs {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}
