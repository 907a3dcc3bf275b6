package fleet

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pitcrew/pitcrew/infra"
)

// Wave is a set of applications cut over together: all their databases
// are in sync before any of them is moved.
type Wave struct {
	Number       int      `json:"number"`
	Applications []string `json:"applications"`
	Databases    []string `json:"databases"`
}

// group is applications that share a database: they can only move together.
type group struct {
	apps, dbs []string
	after     map[int]bool // groups that must move in an earlier wave
}

// groups joins applications that share a database (union-find).
func (f *Fleet) groups() ([]*group, map[string]int) {
	parent := map[string]string{}
	var find func(string) string
	find = func(x string) string {
		if parent[x] == "" || parent[x] == x {
			parent[x] = x
			return x
		}
		parent[x] = find(parent[x])
		return parent[x]
	}
	owner := map[string]string{}
	for _, a := range f.Applications {
		find(a.Name)
		for _, db := range a.Databases {
			if o, ok := owner[db]; ok {
				parent[find(a.Name)] = find(o)
			} else {
				owner[db] = a.Name
			}
		}
	}
	byRoot := map[string]*group{}
	var roots []string
	for _, a := range f.Applications {
		r := find(a.Name)
		g := byRoot[r]
		if g == nil {
			g = &group{after: map[int]bool{}}
			byRoot[r] = g
			roots = append(roots, r)
		}
		g.apps = append(g.apps, a.Name)
		for _, db := range a.Databases {
			if !slices.Contains(g.dbs, db) {
				g.dbs = append(g.dbs, db)
			}
		}
	}
	var out []*group
	index := map[string]int{}
	for _, r := range roots {
		g := byRoot[r]
		slices.Sort(g.apps)
		slices.Sort(g.dbs)
		for _, a := range g.apps {
			index[a] = len(out)
		}
		out = append(out, g)
	}
	return out, index
}

// Waves orders the cut-overs: an application's databases all in one wave,
// applications sharing a database in the same wave, an application in a
// later wave than those it is after, at most limits.cutovers databases a
// wave. Cycles and limits no order can meet are refused.
func (f *Fleet) Waves() ([]Wave, error) {
	gs, index := f.groups()
	for _, a := range f.Applications {
		g := index[a.Name]
		for _, x := range a.After {
			h, ok := index[x]
			if !ok {
				continue
			}
			if h == g {
				return nil, fmt.Errorf("application %s is after %s, but they move together (%s): remove the after, or stop them sharing a database", a.Name, x, shareWhy(f, gs[g]))
			}
			gs[g].after[h] = true
		}
	}
	for _, g := range gs {
		if len(g.dbs) > f.Limits.Cutovers {
			return nil, fmt.Errorf("application %s uses %d databases (%s) but limits.cutovers is %d: an application's databases cut over in one wave; raise limits.cutovers to at least %d",
				strings.Join(g.apps, " + "), len(g.dbs), strings.Join(g.dbs, ", "), f.Limits.Cutovers, len(g.dbs))
		}
	}
	// Topological order (depth-first), naming a cycle when there is one.
	const (
		unseen = iota
		onPath
		placed
	)
	mark := make([]int, len(gs))
	var order []int
	var path []int
	var visit func(i int) error
	visit = func(i int) error {
		switch mark[i] {
		case placed:
			return nil
		case onPath:
			start := slices.Index(path, i)
			var names []string
			for _, j := range append(path[start:], i) {
				names = append(names, strings.Join(gs[j].apps, "+"))
			}
			return fmt.Errorf("applications' after forms a cycle: %s (each must move after the next): remove one of these after entries", strings.Join(names, " -> "))
		}
		mark[i] = onPath
		path = append(path, i)
		deps := make([]int, 0, len(gs[i].after))
		for h := range gs[i].after {
			deps = append(deps, h)
		}
		slices.Sort(deps)
		for _, h := range deps {
			if err := visit(h); err != nil {
				return err
			}
		}
		path = path[:len(path)-1]
		mark[i] = placed
		order = append(order, i)
		return nil
	}
	for i := range gs {
		if err := visit(i); err != nil {
			return nil, err
		}
	}
	// Pack: each group in the first wave after its dependencies' with room.
	waveOf := make([]int, len(gs))
	var size []int
	for _, i := range order {
		w := 0
		for h := range gs[i].after {
			w = max(w, waveOf[h]+1)
		}
		for w < len(size) && size[w]+len(gs[i].dbs) > f.Limits.Cutovers {
			w++
		}
		if w == len(size) {
			size = append(size, 0)
		}
		size[w] += len(gs[i].dbs)
		waveOf[i] = w
	}
	waves := make([]Wave, len(size))
	for i, g := range gs {
		w := &waves[waveOf[i]]
		w.Number = waveOf[i] + 1
		w.Applications = append(w.Applications, g.apps...)
		w.Databases = append(w.Databases, g.dbs...)
	}
	for i := range waves {
		slices.Sort(waves[i].Applications)
		slices.Sort(waves[i].Databases)
	}
	return waves, nil
}

func shareWhy(f *Fleet, g *group) string {
	for _, db := range g.dbs {
		if apps := f.appsOf(db); len(apps) > 1 {
			return fmt.Sprintf("%s share database %s", strings.Join(apps, " and "), db)
		}
	}
	return "they share databases"
}

// Pair is two AWS accounts between which databases move: one KMS key and
// one VPC peering serve all of them.
type Pair struct {
	Name      string   `json:"name"` // FLEET-SOURCE-TARGET: the key alias, the peering's tag, the journal
	Source    string   `json:"source_account"`
	Target    string   `json:"target_account"`
	Databases []string `json:"databases"`
	plan      *infra.Plan
}

// Plan is the pair's stand-in migration plan: the shared steps run from it.
func (p *Pair) Plan() *infra.Plan { return p.plan }

// Pairs lists the account pairs (nil for a fleet without AWS moves).
func (f *Fleet) Pairs() []*Pair { return f.pairList }

// pairs groups the AWS moves by account pair and points each database's
// plan at its pair's key and peering (once, from prepare).
func (f *Fleet) pairs() ([]*Pair, error) {
	byName := map[string]*Pair{}
	var out []*Pair
	var errs []error
	for i := range f.Databases {
		d := &f.Databases[i]
		p := d.plan
		if p.Source.Account == "" {
			continue
		}
		name := f.Name + "-" + p.Source.Account + "-" + p.Target.Account
		pr := byName[name]
		if pr == nil {
			pp := *p
			pp.Name, pp.DataDir, pp.DNS, pp.HTTPAddr = name, filepath.Join(f.DataDir, "pairs", name), nil, "off"
			pp.Source.VPC, pp.Target.VPC = cloneVPC(p.Source.VPC), cloneVPC(p.Target.VPC)
			if pp.Source.VPC != nil {
				pp.Source.VPC.SharedPeering = ""
			}
			if !strings.HasPrefix(pp.Source.KMSKey, "alias/pitcrew-"+name) {
				pp.Source.KMSKey = ""
			}
			pr = &Pair{Name: name, Source: p.Source.Account, Target: p.Target.Account, plan: &pp}
			byName[name] = pr
			out = append(out, pr)
		}
		pr.Databases = append(pr.Databases, d.Name)
		pp := pr.plan
		if p.Source.Region != pp.Source.Region || p.Target.Region != pp.Target.Region {
			errs = append(errs, fmt.Errorf("databases %s and %s move between accounts %s and %s in different regions (%s/%s, %s/%s): a fleet shares one key and one peering per account pair; put them in two fleets",
				pr.Databases[0], d.Name, pr.Source, pr.Target, pp.Source.Region, pp.Target.Region, p.Source.Region, p.Target.Region))
			continue
		}
		if err := mergeVPCs(pr, d, pp, p); err != nil {
			errs = append(errs, err)
			continue
		}
		// The database's own plan uses the pair's key and peering.
		if p.Source.KMSKey == "" {
			p.Source.KMSKey = infra.KeyAlias(name)
		}
		if p.Source.VPC != nil {
			p.Source.VPC, p.Target.VPC = cloneVPC(p.Source.VPC), cloneVPC(p.Target.VPC)
			p.Source.VPC.SharedPeering = name
			p.Source.VPC.RouteTables, p.Source.VPC.SecurityGroups = nil, nil
			p.Target.VPC.RouteTables, p.Target.VPC.SecurityGroups = nil, nil
		}
	}
	return out, errors.Join(errs...)
}

func cloneVPC(v *infra.VPC) *infra.VPC {
	if v == nil {
		return nil
	}
	c := *v
	c.RouteTables, c.SecurityGroups = slices.Clone(v.RouteTables), slices.Clone(v.SecurityGroups)
	return &c
}

// mergeVPCs adds a database's route tables and security groups to its
// pair's: one peering means one VPC each side for all of them.
func mergeVPCs(pr *Pair, d *Database, pp, p *infra.Plan) error {
	if p.Source.VPC == nil {
		if pp.Source.VPC != nil {
			return fmt.Errorf("database %s has no vpc but %s (same accounts %s -> %s) has: one peering serves the pair; give every database of the pair the same vpc, or none", d.Name, pr.Databases[0], pr.Source, pr.Target)
		}
		return nil
	}
	if pp.Source.VPC == nil {
		return fmt.Errorf("database %s has a vpc but %s (same accounts %s -> %s) has none: one peering serves the pair; give every database of the pair the same vpc, or none", d.Name, pr.Databases[0], pr.Source, pr.Target)
	}
	for _, s := range []struct {
		role     string
		pair, db *infra.VPC
		port     [2]int
	}{{"source", pp.Source.VPC, p.Source.VPC, [2]int{pp.Source.Database.Port, p.Source.Database.Port}},
		{"target", pp.Target.VPC, p.Target.VPC, [2]int{pp.Target.Database.Port, p.Target.Database.Port}}} {
		if s.pair.ID != s.db.ID || s.pair.CIDR != s.db.CIDR {
			return fmt.Errorf("databases %s and %s (accounts %s -> %s) are in different %s VPCs (%s %s, %s %s): one peering per account pair joins one VPC each side; move them into one VPC or put them in two fleets",
				pr.Databases[0], d.Name, pr.Source, pr.Target, s.role, s.pair.ID, s.pair.CIDR, s.db.ID, s.db.CIDR)
		}
		if len(s.db.SecurityGroups) > 0 && s.port[0] != s.port[1] {
			return fmt.Errorf("databases %s and %s (accounts %s -> %s) listen on different %s ports (%d, %d): the pair opens its security groups once, for one port; use one port or put them in two fleets",
				pr.Databases[0], d.Name, pr.Source, pr.Target, s.role, s.port[0], s.port[1])
		}
		for _, rt := range s.db.RouteTables {
			if !slices.Contains(s.pair.RouteTables, rt) {
				s.pair.RouteTables = append(s.pair.RouteTables, rt)
			}
		}
		for _, g := range s.db.SecurityGroups {
			if !slices.Contains(s.pair.SecurityGroups, g) {
				s.pair.SecurityGroups = append(s.pair.SecurityGroups, g)
			}
		}
	}
	return nil
}

// Preview writes the fleet's order: waves, shared resources, and each
// database's runbook as 'pitcrew migrate plan' prints it.
func (f *Fleet) Preview(w io.Writer) error {
	waves, err := f.Waves()
	if err != nil {
		return err
	}
	quiet := "any time"
	if f.Limits.QuietHours != "" {
		quiet = f.Limits.QuietHours + " " + f.Limits.Timezone
	}
	fmt.Fprintf(w, "fleet %s: %d databases, %d applications, %d waves (copies %d at once, cut-overs %d at once, quiet hours %s; journal in %s)\n",
		f.Name, len(f.Databases), len(f.Applications), len(waves), f.Limits.Copies, f.Limits.Cutovers, quiet, f.DataDir)
	fmt.Fprintf(w, "\nwaves (an application moves once all its databases are in sync):\n")
	for _, wv := range waves {
		var apps []string
		for _, a := range wv.Applications {
			app := f.app(a)
			move := "hook: " + app.Hook
			if app.Hook == "" {
				move = "waits for 'pitcrew fleet confirm --application " + a + "'"
			}
			apps = append(apps, fmt.Sprintf("%s (%s; %s)", a, strings.Join(app.Databases, ", "), move))
		}
		fmt.Fprintf(w, "  wave %d: %s\n", wv.Number, strings.Join(apps, ", "))
	}
	fmt.Fprintf(w, "  each runbook copies, then waits in its cut-over step, in sync, until the fleet has moved its application and confirms it\n")
	pairs := f.Pairs()
	if len(pairs) > 0 {
		fmt.Fprintf(w, "\nshared AWS resources (one KMS key and one VPC peering per account pair):\n")
		for _, pr := range pairs {
			fmt.Fprintf(w, "  pair %s: accounts %s -> %s, databases %s\n", pr.Name, pr.Source, pr.Target, strings.Join(pr.Databases, ", "))
			if err := (&infra.Runner{Plan: pr.plan}).PreviewSteps(w, infra.SharedSteps); err != nil {
				return err
			}
		}
	}
	for _, d := range f.Databases {
		fmt.Fprintf(w, "\ndatabase %s (application %s, wave %d):\n", d.Name, strings.Join(f.appsOf(d.Name), ", "), waveOf(waves, d.Name))
		var b strings.Builder
		if err := (&infra.Runner{Plan: d.plan}).Preview(&b); err != nil {
			return err
		}
		for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
			if line == "" {
				continue
			}
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
	return nil
}

func (f *Fleet) app(name string) *Application {
	for i := range f.Applications {
		if f.Applications[i].Name == name {
			return &f.Applications[i]
		}
	}
	return nil
}

func waveOf(waves []Wave, db string) int {
	for _, w := range waves {
		if slices.Contains(w.Databases, db) {
			return w.Number
		}
	}
	return 0
}
