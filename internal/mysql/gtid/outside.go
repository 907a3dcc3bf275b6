package gtid

import (
	"fmt"
	"slices"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Outside describes, for a person, the parts of s that ref does not hold:
// for MariaDB per domain ("domain 5, which the source never had",
// "domain 0 at seq 999999, beyond the source's seq 42"), for MySQL per
// server UUID ("3e11...:43-50", "3e11... (a server UUID the source never
// had)"). ref names the other side in the text ("the source"). It returns
// "" when ref contains s.
func Outside(s, ref Set, refName string) string {
	var parts []string
	switch v := s.set.(type) {
	case *mysql.MariadbGTIDSet:
		r, _ := ref.set.(*mysql.MariadbGTIDSet)
		doms := make([]uint32, 0, len(v.Sets))
		for d := range v.Sets {
			doms = append(doms, d)
		}
		slices.Sort(doms)
		for _, d := range doms {
			seq := v.Sets[d].SequenceNumber
			var have *mysql.MariadbGTID
			if r != nil {
				have = r.Sets[d]
			}
			switch {
			case have == nil:
				parts = append(parts, fmt.Sprintf("domain %d, which %s never had", d, refName))
			case seq > have.SequenceNumber:
				parts = append(parts, fmt.Sprintf("domain %d at seq %d, beyond %s's seq %d", d, seq, refName, have.SequenceNumber))
			}
		}
	case *mysql.MysqlGTIDSet:
		r, _ := ref.set.(*mysql.MysqlGTIDSet)
		var uuids []string
		for sid := range *v {
			uuids = append(uuids, sid.String())
		}
		slices.Sort(uuids)
		for _, u := range uuids {
			for sid, tags := range *v {
				if sid.String() != u {
					continue
				}
				var haveTags map[mysql.Tag]mysql.IntervalSlice
				if r != nil {
					haveTags = (*r)[sid]
				}
				if haveTags == nil {
					parts = append(parts, fmt.Sprintf("%s (a server UUID %s never had)", u, refName))
					continue
				}
				one := mysql.NewMysqlGTIDSet()
				for tag, ivs := range tags {
					if rest := subtract(ivs, haveTags[tag]); len(rest) > 0 {
						if one[sid] == nil {
							one[sid] = map[mysql.Tag]mysql.IntervalSlice{}
						}
						one[sid][tag] = rest
					}
				}
				if len(one) > 0 {
					parts = append(parts, one.String()+" (not executed on "+refName+")")
				}
			}
		}
	}
	return strings.Join(parts, "; ")
}

// Known returns s restricted to what ref knows of: for MariaDB its
// replication domains, for MySQL its server UUIDs. A target's own writes
// (its domain, its UUID: an RDS instance's heartbeat table) mean nothing
// to its source.
func (s Set) Known(ref Set) Set {
	ms, ok := s.set.(*mysql.MysqlGTIDSet)
	rs, ok2 := ref.set.(*mysql.MysqlGTIDSet)
	if !ok || !ok2 {
		return s.Domains(ref)
	}
	out := Empty(MySQL)
	o := out.set.(*mysql.MysqlGTIDSet)
	for sid, tags := range *ms {
		if _, known := (*rs)[sid]; !known {
			continue
		}
		for tag, ivs := range tags {
			if (*o)[sid] == nil {
				(*o)[sid] = map[mysql.Tag]mysql.IntervalSlice{}
			}
			(*o)[sid][tag] = slices.Clone(ivs)
		}
	}
	return out
}
