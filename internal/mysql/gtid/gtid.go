// Package gtid is the engine's one position type for both flavours.
//
// A Set is what a server (or the engine) has executed: for MySQL an interval
// set `uuid[:tag]:a-b,...`, for MariaDB a position with one `domain-server-seq`
// per replication domain. Both are wrapped around go-mysql's GTIDSet so the rest
// of the engine never switches on the flavour.
//
// Invariant: a Set value is never mutated once shared; Add returns a new Set.
package gtid

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Flavours accepted by Parse.
const (
	MySQL   = mysql.MySQLFlavor
	MariaDB = mysql.MariaDBFlavor
)

// Set is an executed GTID set (MySQL) or GTID position (MariaDB).
type Set struct {
	flavor string
	set    mysql.GTIDSet
}

// Parse reads a set in the server's own notation. The empty string is the
// empty set. The error names the expected notation.
func Parse(flavor, s string) (Set, error) {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\n", "")
	switch flavor {
	case MySQL, MariaDB:
	default:
		return Set{}, fmt.Errorf("unknown flavour %q: use %q or %q", flavor, MySQL, MariaDB)
	}
	set, err := mysql.ParseGTIDSet(flavor, s)
	if err != nil || (flavor == MariaDB && !validMariaDB(s)) {
		if flavor == MariaDB {
			return Set{}, fmt.Errorf("malformed MariaDB GTID position %q: expected domain-server-seq[,domain-server-seq...], e.g. 0-1-42", s)
		}
		return Set{}, fmt.Errorf("malformed MySQL GTID set %q: expected uuid[:tag]:N[-M][,...], e.g. 3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5", s)
	}
	if m, ok := set.(*mysql.MariadbGTIDSet); ok {
		// Sequence 0 is "nothing applied in this domain": the same as no
		// entry (and 0-0-0 prints as "" in go-mysql).
		for dom, g := range m.Sets {
			if g.SequenceNumber == 0 {
				delete(m.Sets, dom)
			}
		}
	}
	return Set{flavor: flavor, set: set}, nil
}

// validMariaDB rejects what go-mysql's parser lets through (e.g. "1-2-3,").
func validMariaDB(s string) bool {
	if s == "" {
		return true
	}
	for _, part := range strings.Split(s, ",") {
		if _, err := mysql.ParseMariadbGTID(strings.TrimSpace(part)); err != nil || strings.TrimSpace(part) == "" {
			return false
		}
	}
	return true
}

// MustParse is Parse for constants in tests and fixtures.
func MustParse(flavor, s string) Set {
	set, err := Parse(flavor, s)
	if err != nil {
		panic(err)
	}
	return set
}

// Empty returns the empty set of a flavour.
func Empty(flavor string) Set { return MustParse(flavor, "") }

// Flavor is "mysql" or "mariadb".
func (s Set) Flavor() string { return s.flavor }

// IsZero reports whether s was never set (no flavour). An empty but typed set
// is not zero.
func (s Set) IsZero() bool { return s.set == nil }

// IsEmpty reports whether s holds no transaction.
func (s Set) IsEmpty() bool { return s.set == nil || s.set.IsEmpty() }

// String is the server's notation; stable (sorted) for both flavours.
func (s Set) String() string {
	if s.set == nil {
		return ""
	}
	return s.set.String()
}

// Raw is the go-mysql value, for the binlog dump command. Do not mutate.
func (s Set) Raw() mysql.GTIDSet { return s.set }

// Contains reports whether every transaction in o is in s.
func (s Set) Contains(o Set) bool {
	if o.IsEmpty() {
		return true
	}
	if s.set == nil || s.flavor != o.flavor {
		return false
	}
	return s.set.Contain(o.set)
}

// Equal reports whether s and o hold the same transactions.
func (s Set) Equal(o Set) bool { return s.Contains(o) && o.Contains(s) }

// Add returns s with one more transaction (a single GTID in the flavour's
// notation). For MariaDB the domain's position moves to the GTID.
func (s Set) Add(gtid string) (Set, error) {
	c := s.clone()
	if err := c.set.Update(gtid); err != nil {
		return Set{}, fmt.Errorf("adding GTID %q: %w", gtid, err)
	}
	return c, nil
}

// AddAll returns s with every transaction of gtids, cloning s once (Add
// per transaction clones per transaction).
func (s Set) AddAll(gtids []string) (Set, error) {
	c := s.clone()
	if c.set == nil {
		return Set{}, fmt.Errorf("adding GTIDs to a set without flavour")
	}
	for _, g := range gtids {
		if err := c.set.Update(g); err != nil {
			return Set{}, fmt.Errorf("adding GTID %q: %w", g, err)
		}
	}
	return c, nil
}

// Union returns a set holding every transaction of s and of o (the same
// flavour; s when o is empty).
func (s Set) Union(o Set) (Set, error) {
	if o.IsEmpty() {
		return s, nil
	}
	if s.set == nil {
		return o.clone(), nil
	}
	if s.flavor != o.flavor {
		return Set{}, fmt.Errorf("union of a %s and a %s GTID set", s.flavor, o.flavor)
	}
	c := s.clone()
	if m, ok := c.set.(*mysql.MariadbGTIDSet); ok {
		// One position per domain: the further one (Update would move a
		// domain back to o's position).
		for d, g := range o.set.(*mysql.MariadbGTIDSet).Sets {
			if have, ok := m.Sets[d]; !ok || g.SequenceNumber > have.SequenceNumber {
				m.Sets[d] = g.Clone()
			}
		}
		return c, nil
	}
	if err := c.set.Update(o.String()); err != nil {
		return Set{}, fmt.Errorf("union with %q: %w", o.String(), err)
	}
	return c, nil
}

// ContainsOne reports whether s holds the single transaction g (in the
// flavour's notation); false for a malformed g. MariaDB GTIDs are compared
// without parsing into a set (the applier asks for every transaction).
func (s Set) ContainsOne(g string) bool {
	if m, ok := s.set.(*mysql.MariadbGTIDSet); ok {
		dom, rest, ok1 := strings.Cut(g, "-")
		_, seq, ok2 := strings.Cut(rest, "-")
		d, err1 := strconv.ParseUint(dom, 10, 32)
		n, err2 := strconv.ParseUint(seq, 10, 64)
		if ok1 && ok2 && err1 == nil && err2 == nil {
			have, ok := m.Sets[uint32(d)]
			return ok && have.SequenceNumber >= n
		}
	}
	one, err := Parse(s.flavor, g)
	return err == nil && s.Contains(one)
}

func (s Set) clone() Set {
	if s.set == nil {
		return Set{flavor: s.flavor}
	}
	return Set{flavor: s.flavor, set: s.set.Clone()}
}

// Behind counts the transactions in want that s does not hold. For MariaDB
// it is the per-domain sequence difference, exact under gtid_strict_mode.
func (s Set) Behind(want Set) int64 {
	if want.IsEmpty() {
		return 0
	}
	var n int64
	switch w := want.set.(type) {
	case *mysql.MariadbGTIDSet:
		have, _ := s.set.(*mysql.MariadbGTIDSet)
		for dom, g := range w.Sets {
			var seq uint64
			if have != nil {
				if h, ok := have.Sets[dom]; ok {
					seq = h.SequenceNumber
				}
			}
			if g.SequenceNumber > seq {
				n += int64(g.SequenceNumber - seq)
			}
		}
	case *mysql.MysqlGTIDSet:
		have, _ := s.set.(*mysql.MysqlGTIDSet)
		for sid, tags := range *w {
			for tag, ivs := range tags {
				var haveIvs mysql.IntervalSlice
				if have != nil {
					haveIvs = (*have)[sid][tag]
				}
				n += missing(ivs, haveIvs)
			}
		}
	}
	return n
}

// missing counts the numbers in want that are not in have (both normalized).
func missing(want, have mysql.IntervalSlice) int64 {
	var n int64
	for _, w := range want {
		n += w.Stop - w.Start
		for _, h := range have {
			lo, hi := max(w.Start, h.Start), min(w.Stop, h.Stop)
			if hi > lo {
				n -= hi - lo
			}
		}
	}
	return n
}

// Domains returns, for MariaDB, s restricted to the replication domains that
// ref knows; a target's own domains mean nothing to its source. For MySQL
// it returns s unchanged.
func (s Set) Domains(ref Set) Set {
	ms, ok := s.set.(*mysql.MariadbGTIDSet)
	rs, ok2 := ref.set.(*mysql.MariadbGTIDSet)
	if !ok || !ok2 {
		return s
	}
	out := Empty(MariaDB)
	o := out.set.(*mysql.MariadbGTIDSet)
	for dom, g := range ms.Sets {
		if _, known := rs.Sets[dom]; known {
			o.Sets[dom] = g.Clone()
		}
	}
	return out
}

// Gap describes the transactions in purged that have lacks: what a server
// no longer holds in its binlogs but a replica at have still needs. It
// returns "" and 0 when nothing is missing. MariaDB gaps are per-domain
// sequence ranges ("domain 5: seq 3-4"); MySQL gaps are a GTID set.
func Gap(have, purged Set) (string, int64) {
	var parts []string
	var n int64
	switch p := purged.set.(type) {
	case *mysql.MariadbGTIDSet:
		h, _ := have.set.(*mysql.MariadbGTIDSet)
		doms := make([]uint32, 0, len(p.Sets))
		for d := range p.Sets {
			doms = append(doms, d)
		}
		slices.Sort(doms)
		for _, d := range doms {
			var seq uint64
			if h != nil {
				if g, ok := h.Sets[d]; ok {
					seq = g.SequenceNumber
				}
			}
			if last := p.Sets[d].SequenceNumber; seq < last {
				parts = append(parts, fmt.Sprintf("domain %d: seq %d-%d", d, seq+1, last))
				n += int64(last - seq)
			}
		}
	case *mysql.MysqlGTIDSet:
		h, _ := have.set.(*mysql.MysqlGTIDSet)
		out := mysql.NewMysqlGTIDSet()
		for sid, tags := range *p {
			for tag, ivs := range tags {
				var hv mysql.IntervalSlice
				if h != nil {
					hv = (*h)[sid][tag]
				}
				if rest := subtract(ivs, hv); len(rest) > 0 {
					if out[sid] == nil {
						out[sid] = map[mysql.Tag]mysql.IntervalSlice{}
					}
					out[sid][tag] = rest
					n += missing(rest, nil)
				}
			}
		}
		if n > 0 {
			parts = append(parts, out.String())
		}
	}
	return strings.Join(parts, ", "), n
}

// subtract returns want minus have (both normalized).
func subtract(want, have mysql.IntervalSlice) mysql.IntervalSlice {
	var out mysql.IntervalSlice
	for _, w := range want {
		cur := []mysql.Interval{w}
		for _, h := range have {
			var next []mysql.Interval
			for _, c := range cur {
				if h.Stop <= c.Start || h.Start >= c.Stop {
					next = append(next, c)
					continue
				}
				if c.Start < h.Start {
					next = append(next, mysql.Interval{Start: c.Start, Stop: h.Start})
				}
				if h.Stop < c.Stop {
					next = append(next, mysql.Interval{Start: h.Stop, Stop: c.Stop})
				}
			}
			cur = next
		}
		out = append(out, cur...)
	}
	return out.Normalize()
}
