package conn

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Interpolate appends q to buf with each placeholder replaced by the SQL
// literal of the next argument, as the driver's InterpolateParams does, but
// a ? is a placeholder only outside quoted identifiers, string literals and
// comments: in "UPDATE `t?2` SET `c?` = ?" there is one. (The driver counts
// every ? in the text and refuses with driver.ErrSkip when the count and the
// arguments differ, which a multi-statement query cannot fall back from.)
//
// Literals are escaped for a session whose sql_mode has no
// NO_BACKSLASH_ESCAPES (apply.Session sets it so); strings and bytes are
// written as they are, with no character set conversion (SET NAMES binary).
func Interpolate(buf []byte, q string, args []any) ([]byte, error) {
	next := 0
	for i := 0; i < len(q); {
		j := i + strings.IndexAny(q[i:], "?`'\"#-/")
		if j < i {
			buf = append(buf, q[i:]...)
			break
		}
		buf = append(buf, q[i:j]...)
		end, err := skipQuoted(q, j)
		if err != nil {
			return buf, err
		}
		if end > j {
			buf = append(buf, q[j:end]...)
			i = end
			continue
		}
		if q[j] != '?' {
			buf = append(buf, q[j])
			i = j + 1
			continue
		}
		if next == len(args) {
			return buf, fmt.Errorf("statement has more placeholders than its %d arguments: %.200q", len(args), q)
		}
		if buf, err = AppendLiteral(buf, args[next]); err != nil {
			return buf, fmt.Errorf("argument %d: %w", next+1, err)
		}
		next++
		i = j + 1
	}
	if next != len(args) {
		return buf, fmt.Errorf("statement has %d placeholders for %d arguments: %.200q", next, len(args), q)
	}
	return buf, nil
}

// skipQuoted returns the end of the quoted identifier, string literal or
// comment that starts at q[i], or i when none starts there.
func skipQuoted(q string, i int) (int, error) {
	switch c := q[i]; c {
	case '`':
		// A doubled backtick inside ends one quoted run and opens the next.
		if k := strings.IndexByte(q[i+1:], '`'); k >= 0 {
			return i + 1 + k + 1, nil
		}
		return i, fmt.Errorf("unterminated quoted identifier in %.200q", q)
	case '\'', '"':
		for k := i + 1; k < len(q); k++ {
			switch q[k] {
			case '\\':
				k++
			case c:
				return k + 1, nil
			}
		}
		return i, fmt.Errorf("unterminated string literal in %.200q", q)
	case '#':
		return lineEnd(q, i), nil
	case '-':
		// "-- " starts a comment only with a space or control character after it.
		if i+2 < len(q) && q[i+1] == '-' && q[i+2] <= ' ' {
			return lineEnd(q, i), nil
		}
	case '/':
		if i+1 < len(q) && q[i+1] == '*' {
			if k := strings.Index(q[i+2:], "*/"); k >= 0 {
				return i + 2 + k + 2, nil
			}
			return i, fmt.Errorf("unterminated comment in %.200q", q)
		}
	}
	return i, nil
}

func lineEnd(q string, i int) int {
	if k := strings.IndexByte(q[i:], '\n'); k >= 0 {
		return i + k + 1
	}
	return len(q)
}

// AppendLiteral appends the SQL literal of v: the types row images and
// bookkeeping carry, and driver.Valuer.
func AppendLiteral(buf []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(buf, "NULL"...), nil
	case string:
		buf = append(buf, '\'')
		buf = appendEscaped(buf, x)
		return append(buf, '\''), nil
	case []byte:
		if x == nil {
			return append(buf, "NULL"...), nil
		}
		buf = append(buf, "_binary'"...)
		buf = appendEscaped(buf, x)
		return append(buf, '\''), nil
	case json.RawMessage:
		buf = append(buf, '\'')
		buf = appendEscaped(buf, []byte(x))
		return append(buf, '\''), nil
	case int64:
		return strconv.AppendInt(buf, x, 10), nil
	case int:
		return strconv.AppendInt(buf, int64(x), 10), nil
	case int32:
		return strconv.AppendInt(buf, int64(x), 10), nil
	case int16:
		return strconv.AppendInt(buf, int64(x), 10), nil
	case int8:
		return strconv.AppendInt(buf, int64(x), 10), nil
	case uint64:
		return strconv.AppendUint(buf, x, 10), nil
	case uint:
		return strconv.AppendUint(buf, uint64(x), 10), nil
	case uint32:
		return strconv.AppendUint(buf, uint64(x), 10), nil
	case uint16:
		return strconv.AppendUint(buf, uint64(x), 10), nil
	case uint8:
		return strconv.AppendUint(buf, uint64(x), 10), nil
	case float64:
		return strconv.AppendFloat(buf, x, 'g', -1, 64), nil
	case float32:
		// As the driver converts it: the float64 of the float32, whose
		// digits compare equal with a FLOAT column's value.
		return strconv.AppendFloat(buf, float64(x), 'g', -1, 64), nil
	case bool:
		if x {
			return append(buf, '1'), nil
		}
		return append(buf, '0'), nil
	case time.Time:
		if x.IsZero() {
			return append(buf, "'0000-00-00'"...), nil
		}
		buf = append(buf, '\'')
		buf = x.UTC().AppendFormat(buf, "2006-01-02 15:04:05.999999")
		return append(buf, '\''), nil
	case driver.Valuer:
		dv, err := x.Value()
		if err != nil {
			return buf, err
		}
		if _, again := dv.(driver.Valuer); again {
			return buf, fmt.Errorf("value of type %T has no SQL literal", v)
		}
		return AppendLiteral(buf, dv)
	}
	return buf, fmt.Errorf("value of type %T has no SQL literal", v)
}

// appendEscaped escapes what a backslash-escaping session reads specially
// inside '...': the driver's escapeBytesBackslash. Runs of bytes that need
// nothing are copied whole.
func appendEscaped[S string | []byte](buf []byte, s S) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		e := escapes[s[i]]
		if e == 0 {
			continue
		}
		buf = append(buf, s[start:i]...)
		buf = append(buf, '\\', e)
		start = i + 1
	}
	return append(buf, s[start:]...)
}

// escapes is, per byte, the character after the backslash that escapes
// it; 0: the byte goes in as it is.
var escapes = [256]byte{0: '0', '\n': 'n', '\r': 'r', 0x1a: 'Z', '\'': '\'', '"': '"', '\\': '\\'}
