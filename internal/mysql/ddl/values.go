package ddl

import (
	"fmt"
	"io"
	"strconv"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	"github.com/pingcap/tidb/pkg/parser/mysql"
)

// The parser leaves literals to a "driver" that it reaches through
// package variables of ast. Its test_driver evaluates them, and panics on
// what its decimal type cannot hold (a 258-digit integer, which the
// server accepts: it clips the value to the column); TiDB's own driver
// needs the whole of TiDB. pitcrew only names tables and rebuilds
// statements, so this driver keeps every literal as written: any literal
// the lexer accepts is a value, and it is restored exactly.
func init() {
	ast.NewValueExpr = newValue
	ast.NewParamMarkerExpr = func(offset int) ast.ParamMarkerExpr { return &paramMarker{offset: offset} }
	ast.NewDecimal = func(s string) (any, error) { return decimalLit(s), nil }
	ast.NewHexLiteral = func(s string) (any, error) { return hexLit(s), nil }
	ast.NewBitLiteral = func(s string) (any, error) { return hexLit(s), nil }
}

// decimalLit is an exact-value number as written (too long for uint64,
// or with a decimal point).
type decimalLit string

// hexLit is a hexadecimal or bit literal as written (X'0a', 0x0a, b'1',
// 0b1).
type hexLit string

// value is a literal of a statement.
type value struct {
	ast.TexprNode
	v      any // nil, bool, int64, uint64, float64, string, decimalLit, hexLit
	offset int // projection offset, for the parser's string concatenation
}

func newValue(v any, charset, collate string) ast.ValueExpr {
	if ve, ok := v.(*value); ok {
		return ve
	}
	ve := &value{offset: -1}
	ve.SetValue(v)
	if _, ok := ve.v.(string); ok {
		ve.Type.SetCharset(charset)
		ve.Type.SetCollate(collate)
	}
	return ve
}

func (n *value) SetValue(v any) {
	switch x := v.(type) {
	case int:
		n.v = int64(x)
	case []byte:
		n.v = string(x)
	default:
		n.v = v
	}
}

func (n *value) GetValue() any            { return n.v }
func (n *value) GetDatumString() string   { return n.GetString() }
func (n *value) GetProjectionOffset() int { return n.offset }
func (n *value) SetProjectionOffset(o int) {
	n.offset = o
}

// GetString is the literal's text (a string's own value).
func (n *value) GetString() string {
	switch x := n.v.(type) {
	case nil:
		return ""
	case string:
		return x
	case decimalLit:
		return string(x)
	case hexLit:
		return string(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return fmt.Sprint(n.v)
}

// introducer is the character set written before the literal (_latin1'x'),
// when the statement had one.
func (n *value) introducer() string {
	if n.Type.GetFlag()&mysql.UnderScoreCharsetFlag != 0 {
		return "_" + n.Type.GetCharset() + " "
	}
	return ""
}

// Restore writes the literal as it was written (numbers by value: the
// lexer keeps no text for them, and their shortest form reads back the
// same).
func (n *value) Restore(ctx *format.RestoreCtx) error {
	switch x := n.v.(type) {
	case nil:
		ctx.WriteKeyWord("NULL")
	case bool:
		if x {
			ctx.WriteKeyWord("TRUE")
		} else {
			ctx.WriteKeyWord("FALSE")
		}
	case int64:
		ctx.WritePlain(strconv.FormatInt(x, 10))
	case uint64:
		ctx.WritePlain(strconv.FormatUint(x, 10))
	case float64:
		ctx.WritePlain(strconv.FormatFloat(x, 'e', -1, 64))
	case decimalLit:
		ctx.WritePlain(string(x))
	case hexLit:
		ctx.WritePlain(n.introducer() + string(x))
	case string:
		ctx.WritePlain(n.introducer())
		ctx.WriteString(x)
	default:
		return fmt.Errorf("a literal of type %T cannot be written back", n.v)
	}
	return nil
}

func (n *value) Format(w io.Writer) {
	var b []byte
	if s, ok := n.v.(string); ok {
		b = strconv.AppendQuote(b, s)
	} else {
		b = append(b, n.GetString()...)
	}
	_, _ = w.Write(b)
}

// Accept visits the literal (it has no children).
func (n *value) Accept(v ast.Visitor) (ast.Node, bool) {
	node, _ := v.Enter(n)
	return v.Leave(node)
}

// paramMarker is a `?` (prepared statements; DDL in a binlog has none
// outside quotes, but the parser must not fail on one).
type paramMarker struct {
	value
	offset, order int
}

func (n *paramMarker) Restore(ctx *format.RestoreCtx) error {
	ctx.WritePlain("?")
	return nil
}

func (n *paramMarker) Format(w io.Writer) { _, _ = io.WriteString(w, "?") }

func (n *paramMarker) SetOrder(o int) { n.order = o }

func (n *paramMarker) Accept(v ast.Visitor) (ast.Node, bool) {
	node, _ := v.Enter(n)
	return v.Leave(node)
}
