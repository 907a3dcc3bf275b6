package conn

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// The identifiers of the issue that found the driver counting the ? of
// `c?` as placeholders, and every other kind the server accepts.
var oddNames = []string{
	"c?", "t?2", "?", "??", "`?`", "quo`te", "``", "`", "'", "''?", `"`, `back\slash`, `\`, `\?`,
	"a b", " ", "ünï 日本", "😀?", strings.Repeat("n", 64), strings.Repeat("?", 64),
	"select", "from", "1x", "$d", "#", "-- ?", "--", "/*", "*/", "/*?*/", ";", "\n?",
}

// FuzzInterpolate: whatever the database, table and column names and the
// values, the placeholders are exactly the ? outside quotes, and the text
// reads back (by a lexer of the test's own) as the names and values put in.
func FuzzInterpolate(f *testing.F) {
	for i, n := range oddNames {
		f.Add(n, oddNames[(i+1)%len(oddNames)], oddNames[(i+2)%len(oddNames)], []byte(n+"'\\\x00\n\r\x1a\"?"), int64(i-5))
	}
	f.Add("d", "t", "c", []byte(nil), int64(-1<<63))
	f.Fuzz(func(t *testing.T, db, table, col string, val []byte, n int64) {
		q := "UPDATE " + QuoteName(db) + "." + QuoteName(table) + " SET " + QuoteName(col) + " = ?, `x` = ? " +
			"WHERE " + QuoteName(col) + " <=> ? /* ? */ AND '?' = \"?\" -- ?\n AND `y` = ? # ?"
		var bval any = val
		if val == nil {
			bval = nil
		}
		out, err := Interpolate(nil, q, []any{string(val), bval, n, float32(0.5)})
		if err != nil {
			t.Fatal(err)
		}
		idents, lits := lex(t, string(out))
		wantIdents := []string{db, table, col, "x", col, "y"}
		if !equal(idents, wantIdents) {
			t.Fatalf("identifiers %q, want %q in %q", idents, wantIdents, out)
		}
		wantLits := []string{"'" + string(val), "'?", "'?"}
		if val == nil {
			wantLits = append(wantLits[:1], "NULL", "'?", "'?")
		} else {
			wantLits = append(wantLits[:1], "b"+string(val), "'?", "'?")
		}
		wantLits = append(wantLits[:2], strconv.FormatInt(n, 10), wantLits[2], wantLits[3], "0.5")
		if !equal(lits, wantLits) {
			t.Fatalf("literals %q, want %q in %q", lits, wantLits, out)
		}
	})
}

// lex splits MySQL text into quoted identifiers and literals: strings
// ('...' and "...", with backslash escapes decoded) as "'"+value, _binary
// strings as "b"+value, NULL, numbers; comments dropped. A ? left outside
// quotes fails the test.
func lex(t *testing.T, s string) (idents, lits []string) {
	t.Helper()
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '`':
			var id []byte
			for i++; ; i++ {
				if i >= len(s) {
					t.Fatalf("unterminated identifier in %q", s)
				}
				if s[i] == '`' {
					if i+1 < len(s) && s[i+1] == '`' {
						id = append(id, '`')
						i++
						continue
					}
					i++
					break
				}
				id = append(id, s[i])
			}
			idents = append(idents, string(id))
		case strings.HasPrefix(s[i:], "_binary'"):
			v, n := unescape(t, s[i+7:])
			lits, i = append(lits, "b"+v), i+7+n
		case c == '\'' || c == '"':
			v, n := unescape(t, s[i:])
			lits, i = append(lits, "'"+v), i+n
		case strings.HasPrefix(s[i:], "/*"):
			i += 2 + strings.Index(s[i+2:], "*/") + 2
		case c == '#' || strings.HasPrefix(s[i:], "-- "):
			k := strings.IndexByte(s[i:], '\n')
			if k < 0 {
				k = len(s) - i
			}
			i += k
		case strings.HasPrefix(s[i:], "NULL"):
			lits, i = append(lits, "NULL"), i+4
		case c == '-' || c >= '0' && c <= '9':
			k := i + 1
			for k < len(s) && strings.IndexByte("0123456789.e+-", s[k]) >= 0 {
				k++
			}
			lits, i = append(lits, s[i:k]), k
		case c == '?':
			t.Fatalf("a placeholder left at %d in %q", i, s)
		default:
			i++
		}
	}
	return idents, lits
}

// unescape reads the quoted string at the start of s, returning its value
// and its length in s.
func unescape(t *testing.T, s string) (string, int) {
	q := s[0]
	var v bytes.Buffer
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
			if i == len(s) {
				t.Fatalf("escape at the end of %q", s)
			}
			v.WriteByte(map[byte]byte{'0': 0, 'n': '\n', 'r': '\r', 'Z': 0x1a, 't': '\t', 'b': '\b'}[s[i]] | plain(s[i]))
		case q:
			if i+1 < len(s) && s[i+1] == q {
				v.WriteByte(q)
				i++
				continue
			}
			return v.String(), i + 1
		default:
			v.WriteByte(s[i])
		}
	}
	t.Fatalf("unterminated string %q", s)
	return "", 0
}

// plain is the character an escape stands for when it is not special.
func plain(c byte) byte {
	if strings.IndexByte("0nrZtb", c) >= 0 {
		return 0
	}
	return c
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestInterpolateRefusesMismatches(t *testing.T) {
	for _, tc := range []struct {
		q    string
		args []any
		want string
	}{
		{"SELECT ?, ?", []any{1}, "more placeholders"},
		{"SELECT `?`", []any{1}, "0 placeholders for 1"},
		{"SELECT `a", nil, "unterminated quoted identifier"},
		{"SELECT 'a\\'", nil, "unterminated string"},
		{"SELECT /* ?", nil, "unterminated comment"},
		{"SELECT ?", []any{struct{}{}}, "type struct {} has no SQL literal"},
	} {
		_, err := Interpolate(nil, tc.q, tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.q, err, tc.want)
		}
	}
}

func TestAppendLiteral(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{nil, "NULL"}, {[]byte(nil), "NULL"}, {[]byte{}, "_binary''"}, {"", "''"},
		{int8(-128), "-128"}, {uint64(1<<64 - 1), "18446744073709551615"}, {uint8(255), "255"},
		{float64(1.5e300), "1.5e+300"}, {float32(0.1), "0.10000000149011612"}, {true, "1"},
		{"a'b\\c\x00\n\r\x1a\"", `'a\'b\\c\0\n\r\Z\"'`},
	} {
		got, err := AppendLiteral(nil, tc.v)
		if err != nil || string(got) != tc.want {
			t.Errorf("%#v: %s %v, want %s", tc.v, got, err, tc.want)
		}
		if !utf8.Valid(got) && utf8.ValidString(tc.want) {
			t.Errorf("%#v: invalid UTF-8 %q", tc.v, got)
		}
	}
}

// Every byte escapes as the driver escapes it (escapeBytesBackslash),
// alone and among others.
func TestAppendEscapedEveryByte(t *testing.T) {
	escaped := map[byte]string{0: `\0`, '\n': `\n`, '\r': `\r`, 0x1a: `\Z`, '\'': `\'`, '"': `\"`, '\\': `\\`}
	var all, want []byte
	for c := range 256 {
		w, ok := escaped[byte(c)]
		if !ok {
			w = string([]byte{byte(c)})
		}
		if got := appendEscaped(nil, []byte{byte(c)}); string(got) != w {
			t.Errorf("byte %#x: %q, want %q", c, got, w)
		}
		all = append(all, 'a', byte(c), byte(c))
		want = append(append(append(want, 'a'), w...), w...)
	}
	if got := appendEscaped([]byte("x"), string(all)); string(got) != "x"+string(want) {
		t.Errorf("all bytes: %q\nwant %q", got, want)
	}
}
