package conflict

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pitcrew/pitcrew/internal/pipeline/txn"
)

// Policy resolves a conflict.
type Policy string

// Policies.
const (
	SourceWins Policy = "source-wins" // make the target row what the source says
	TargetWins Policy = "target-wins" // keep the target row
	LatestWins Policy = "latest-wins" // compare a timestamp/version column; both nodes converge
	Park       Policy = "park"        // keep the target row and leave the conflict for a person
)

// Rule is the policy for one table.
type Rule struct {
	Policy Policy `yaml:"policy"`
	// Column is the timestamp or version column latest-wins compares; also
	// the only column compared to detect a conflict when set.
	Column string `yaml:"column"`
}

// Rules map tables (schema.table) to rules, with a default.
type Rules struct {
	Default Policy          `yaml:"default"` // default source-wins
	Tables  map[string]Rule `yaml:"tables"`
}

// Validate checks the policies' names and latest-wins' columns.
func (r Rules) Validate() error {
	check := func(where string, p Policy, col string) error {
		switch p {
		case SourceWins, TargetWins, Park, "":
		case LatestWins:
			if col == "" && where != "default" {
				return fmt.Errorf("conflicts: %s: latest-wins needs column: the timestamp or version column to compare", where)
			}
		default:
			return fmt.Errorf("conflicts: %s: unknown policy %q: use source-wins, target-wins, latest-wins or park", where, p)
		}
		return nil
	}
	if r.Default == LatestWins {
		return fmt.Errorf("conflicts: default: latest-wins needs a column per table: set it under tables")
	}
	if err := check("default", r.Default, ""); err != nil {
		return err
	}
	for t, rule := range r.Tables {
		if !strings.Contains(t, ".") {
			return fmt.Errorf("conflicts: table %q: write it as schema.table", t)
		}
		if err := check(t, rule.Policy, rule.Column); err != nil {
			return err
		}
	}
	return nil
}

// For returns the rule for schema.table.
func (r Rules) For(schema, table string) Rule {
	if rule, ok := r.Tables[schema+"."+table]; ok {
		if rule.Policy == "" {
			rule.Policy = r.Default
		}
		return rule
	}
	p := r.Default
	if p == "" {
		p = SourceWins
	}
	return Rule{Policy: p}
}

// Decision is what to do with the incoming change.
type Decision int

// Decisions.
const (
	ApplyIncoming Decision = iota + 1 // make the target row equal to the incoming image (or delete it)
	KeepTarget                        // leave the target row as it is
	Parked                            // leave it, and mark the conflict for a person
)

func (d Decision) String() string {
	switch d {
	case ApplyIncoming:
		return "applied"
	case KeepTarget:
		return "kept-target"
	case Parked:
		return "parked"
	}
	return "?"
}

// Case is one conflict as the policy sees it. Images are keyed by column
// name; Current is nil when the target has no row with the key.
type Case struct {
	Kind                   txn.Kind
	Before, After, Current map[string]any
}

// Decide applies the rule to a conflict. latest-wins is symmetric, so two
// nodes deciding the same pair of changes reach the same row:
//   - a delete beats an update (the row ends deleted on both nodes);
//   - otherwise the greater Column value wins; on a tie the greater row
//     image (compared column by column) wins, which both nodes see alike.
func Decide(rule Rule, c Case) Decision {
	switch rule.Policy {
	case TargetWins:
		return KeepTarget
	case Park:
		return Parked
	case LatestWins:
		return latest(rule.Column, c)
	}
	return ApplyIncoming
}

func latest(col string, c Case) Decision {
	switch {
	case c.Kind == txn.Delete:
		if c.Current == nil {
			return KeepTarget // already gone
		}
		return ApplyIncoming // delete beats update
	case c.Current == nil:
		if c.Kind == txn.Update {
			return KeepTarget // the row was deleted here: delete beats update
		}
		return ApplyIncoming
	}
	if d := compare(c.After[col], c.Current[col]); d != 0 {
		if d > 0 {
			return ApplyIncoming
		}
		return KeepTarget
	}
	if compareImages(c.After, c.Current) > 0 {
		return ApplyIncoming
	}
	return KeepTarget
}

// compare orders two column values: numerically when both are numbers,
// else by their text. nil is lowest.
func compare(a, b any) int {
	as, bs := text(a), text(b)
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	af, aerr := strconv.ParseFloat(as, 64)
	bf, berr := strconv.ParseFloat(bs, 64)
	if aerr == nil && berr == nil {
		switch {
		case af < bf:
			return -1
		case af > bf:
			return 1
		}
		return 0
	}
	return bytes.Compare([]byte(as), []byte(bs))
}

func compareImages(a, b map[string]any) int {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if d := compare(a[k], b[k]); d != 0 {
			return d
		}
	}
	return 0
}

func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []byte:
		return string(x)
	case string:
		return x
	}
	return fmt.Sprint(v)
}
