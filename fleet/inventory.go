// Package fleet moves an estate: many databases, each with its own
// migration runbook (package infra) run as a process of its own, cut over
// in waves so that every application's databases switch together.
//
// The fleet is a layer above the runbook, not a second one: a database's
// plan is an infra.Plan, its runbook keeps its own journal, and the fleet
// only decides when each runbook starts copying (limits.copies) and when
// its application is moved (the wave), through the runbook's own confirm.
// The AWS resources a pair of accounts shares (the KMS key and the VPC
// peering) are made once per pair by the same runbook steps.
package fleet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pitcrew/pitcrew/infra"
	"gopkg.in/yaml.v3"
)

// Fleet is fleet.yaml. examples/fleet.yaml documents every key.
type Fleet struct {
	Name         string        `yaml:"name"`     // names the fleet journal and the account pairs' shared resources
	DataDir      string        `yaml:"data_dir"` // fleet journal; each database's data dir under it; default ./pitcrew-fleet
	Limits       Limits        `yaml:"limits"`
	Databases    []Database    `yaml:"databases"`
	Applications []Application `yaml:"applications"`
	Kubernetes   Kubernetes    `yaml:"kubernetes"`

	dir      string  // fleet.yaml's directory: plan paths are relative to it
	pairList []*Pair // the account pairs, made by prepare
}

// Limits bound the waves.
type Limits struct {
	Copies     int    `yaml:"copies"`      // runbooks copying (before they are in sync) at once; default 2
	Cutovers   int    `yaml:"cutovers"`    // databases cutting over in one wave; default 4
	QuietHours string `yaml:"quiet_hours"` // "HH:MM-HH:MM": a wave's cut-over begins only inside; empty: any time
	Timezone   string `yaml:"timezone"`    // of quiet_hours; default UTC
}

// Database is one migration of the fleet.
type Database struct {
	Name string `yaml:"name"`
	// Plan is a migration plan file (as for 'pitcrew migrate'), relative to
	// fleet.yaml; Migration inlines one instead.
	Plan      string      `yaml:"plan"`
	Migration *infra.Plan `yaml:"migration"`
	// The environment variables holding the passwords (passed to the
	// database's runbook as PITCREW_SOURCE_PASSWORD / _TARGET_; on
	// Kubernetes the Secret keys of the same names).
	SourcePasswordEnv string `yaml:"source_password_env"`
	TargetPasswordEnv string `yaml:"target_password_env"`
	// TPS is the source's expected transactions per second: it sizes the
	// channel's CPU request in the manifests; default 500.
	TPS int `yaml:"tps"`

	plan *infra.Plan // loaded, defaulted, fleet-adjusted
}

// Application is a set of databases that must switch together.
type Application struct {
	Name      string   `yaml:"name"`
	Databases []string `yaml:"databases"`
	// After lists applications that must be cut over in an earlier wave.
	After []string `yaml:"after"`
	// Hook moves the application's writers: run as 'hook cutover' once all
	// its databases are in sync, 'hook rollback' on the way back, with
	// PITCREW_APPLICATION and PITCREW_DATABASES set. Empty: the fleet waits
	// for 'pitcrew fleet confirm --application NAME'.
	Hook string `yaml:"hook"`
}

// Kubernetes tunes 'fleet manifests'.
type Kubernetes struct {
	Namespace    string `yaml:"namespace"`     // default pitcrew
	Image        string `yaml:"image"`         // default ghcr.io/pitcrew/pitcrew:latest
	StorageClass string `yaml:"storage_class"` // default: the cluster's default class
	Storage      string `yaml:"storage"`       // PVC size per channel; default 10Gi
	Secret       string `yaml:"secret"`        // the Secret holding the passwords; default pitcrew-passwords
}

// Default fills the documented defaults.
func (f *Fleet) Default() {
	if f.DataDir == "" {
		f.DataDir = "pitcrew-fleet"
	}
	if f.Limits.Copies == 0 {
		f.Limits.Copies = 2
	}
	if f.Limits.Cutovers == 0 {
		f.Limits.Cutovers = 4
	}
	if f.Limits.Timezone == "" {
		f.Limits.Timezone = "UTC"
	}
	k := &f.Kubernetes
	if k.Namespace == "" {
		k.Namespace = "pitcrew"
	}
	if k.Image == "" {
		k.Image = "ghcr.io/pitcrew/pitcrew:latest"
	}
	if k.Storage == "" {
		k.Storage = "10Gi"
	}
	if k.Secret == "" {
		k.Secret = "pitcrew-passwords"
	}
	for i := range f.Databases {
		if f.Databases[i].TPS == 0 {
			f.Databases[i].TPS = 500
		}
	}
}

// Load reads fleet.yaml and every plan it points at, strictly (an unknown
// key anywhere is an error naming its line), defaults and validates them.
func Load(path string) (*Fleet, error) {
	var f Fleet
	if err := decodeFile(path, "fleet", &f); err != nil {
		return nil, err
	}
	f.dir = filepath.Dir(path)
	if err := f.prepare(); err != nil {
		return nil, fmt.Errorf("fleet %s: %w", path, err)
	}
	return &f, nil
}

// Parse is Load for a fleet.yaml already read; plan paths are relative to dir.
func Parse(b []byte, dir string) (*Fleet, error) {
	var f Fleet
	if err := decode(b, "fleet", "fleet.yaml", &f); err != nil {
		return nil, err
	}
	f.dir = dir
	if err := f.prepare(); err != nil {
		return nil, err
	}
	return &f, nil
}

func decodeFile(path, what string, out any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s file %s not found: pass --fleet FILE (examples/fleet.yaml shows every key)", what, path)
		}
		return fmt.Errorf("reading %s %s: %w", what, path, err)
	}
	return decode(b, what, path, out)
}

var fieldRE = regexp.MustCompile(`line (\d+): field (\S+) not found in type \S+`)

// decode is strict: unknown keys fail with their line, one line of text.
func decode(b []byte, what, path string, out any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil && !errors.Is(err, io.EOF) {
		msg := fieldRE.ReplaceAllString(err.Error(), `unknown key "$2" at line $1: remove it or fix its spelling`)
		msg = strings.ReplaceAll(strings.TrimPrefix(msg, "yaml: unmarshal errors:\n  "), "\n  ", "; ")
		return fmt.Errorf("%s %s: %s", what, path, msg)
	}
	return nil
}

var fleetNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,13}$`)

// prepare loads the plans, applies the defaults and checks everything that
// needs no network; every problem is reported at once.
func (f *Fleet) prepare() error {
	f.Default()
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !fleetNameRE.MatchString(f.Name) {
		bad("name %q: use 1-14 lowercase letters, digits or '-', starting with a letter (it names the account pairs' keys and peerings)", f.Name)
	}
	if f.Limits.Copies < 1 {
		bad("limits.copies %d: at least 1 runbook must be allowed to copy", f.Limits.Copies)
	}
	if f.Limits.Cutovers < 1 {
		bad("limits.cutovers %d: at least 1 database must be allowed to cut over", f.Limits.Cutovers)
	}
	if _, err := f.quiet(); err != nil {
		errs = append(errs, err)
	}
	if len(f.Databases) == 0 {
		bad("no databases: list them under databases (each with plan: FILE or migration: {...})")
	}
	seen := map[string]bool{}
	dirs := map[string]string{}
	for i := range f.Databases {
		d := &f.Databases[i]
		if !dbNameRE.MatchString(d.Name) {
			bad("databases[%d].name %q: use 1-40 lowercase letters, digits or '-', starting with a letter (it names its migration)", i, d.Name)
			continue
		}
		if seen[d.Name] {
			bad("database %s is listed twice", d.Name)
			continue
		}
		seen[d.Name] = true
		if err := f.loadPlan(d); err != nil {
			errs = append(errs, fmt.Errorf("database %s: %w", d.Name, err))
			continue
		}
		if other, ok := dirs[d.plan.DataDir]; ok {
			bad("databases %s and %s share data_dir %s: each runbook needs its own (leave data_dir out: the fleet puts it under its own)", other, d.Name, d.plan.DataDir)
		}
		dirs[d.plan.DataDir] = d.Name
		if d.TPS < 1 {
			bad("database %s: tps %d: give the source's expected transactions per second (it sizes the channel's CPU request)", d.Name, d.TPS)
		}
	}
	errs = append(errs, f.checkServerIDs()...)
	apps := map[string]bool{}
	used := map[string]string{}
	for i, a := range f.Applications {
		if !dbNameRE.MatchString(a.Name) {
			bad("applications[%d].name %q: use 1-40 lowercase letters, digits or '-', starting with a letter", i, a.Name)
			continue
		}
		if apps[a.Name] {
			bad("application %s is listed twice", a.Name)
		}
		apps[a.Name] = true
		if len(a.Databases) == 0 {
			bad("application %s uses no database: list the databases it writes to", a.Name)
		}
		for _, db := range a.Databases {
			if !seen[db] {
				bad("application %s uses database %s, which is not under databases", a.Name, db)
			}
			used[db] = a.Name
		}
	}
	for _, a := range f.Applications {
		for _, x := range a.After {
			if !apps[x] {
				bad("application %s: after %s: no such application", a.Name, x)
			}
			if x == a.Name {
				bad("application %s is after itself: remove it from its own after", a.Name)
			}
		}
	}
	for _, d := range f.Databases {
		if seen[d.Name] && used[d.Name] == "" {
			bad("database %s is used by no application: list it under an application (whose hook moves its writers), or leave it out of the fleet", d.Name)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	pairs, err := f.pairs()
	if err != nil {
		return err
	}
	f.pairList = pairs
	_, err = f.Waves()
	return err
}

var dbNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,39}$`)

// loadPlan reads (or takes the inlined) plan and adjusts it to the fleet:
// its name is the database's, its data dir under the fleet's, its console
// on a free loopback port unless set, the application moved by the fleet.
func (f *Fleet) loadPlan(d *Database) error {
	switch {
	case d.Plan != "" && d.Migration != nil:
		return errors.New("both plan and migration are set: point at a plan file or inline it, not both")
	case d.Plan != "":
		path := d.Plan
		if !filepath.IsAbs(path) {
			path = filepath.Join(f.dir, path)
		}
		var p infra.Plan
		if err := decodeFile(path, "plan", &p); err != nil {
			return err
		}
		d.plan = &p
	case d.Migration != nil:
		c := *d.Migration
		d.plan = &c
	default:
		return errors.New("no plan: set plan: FILE (a migration plan as for 'pitcrew migrate') or migration: {...}")
	}
	p := d.plan
	if p.Name == "" {
		p.Name = d.Name
	}
	if p.Name != d.Name {
		return fmt.Errorf("its plan is named %s: a fleet's migration is named after its database; rename the database %s or the plan %s", p.Name, p.Name, d.Name)
	}
	if p.DataDir == "" {
		p.DataDir = filepath.Join(f.DataDir, "db", d.Name)
	}
	if p.HTTPAddr == "" {
		p.HTTPAddr = "127.0.0.1:0" // the fleet reads the port the runbook prints
	}
	if p.Options.Hook != "" {
		return fmt.Errorf("options.hook is set: in a fleet the application's hook moves the writers of all its databases at once; move it to applications[].hook")
	}
	if v := os.Getenv(d.SourcePasswordEnv); d.SourcePasswordEnv != "" && v != "" {
		p.Source.Database.Password = v
	}
	if v := os.Getenv(d.TargetPasswordEnv); d.TargetPasswordEnv != "" && v != "" {
		p.Target.Database.Password = v
	}
	p.Default()
	if err := p.Validate(); err != nil {
		return fmt.Errorf("plan: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return nil
}

// Database returns the database named name.
func (f *Fleet) Database(name string) *Database {
	for i := range f.Databases {
		if f.Databases[i].Name == name {
			return &f.Databases[i]
		}
	}
	return nil
}

// PlanOf is the database's migration plan as its runbook runs it.
func (d *Database) PlanOf() *infra.Plan { return d.plan }

// quietWindow is limits.quiet_hours: minutes of the day [from, to), in loc.
type quietWindow struct {
	set      bool
	from, to int
	loc      *time.Location
}

var hhmmRE = regexp.MustCompile(`^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])$`)

func (f *Fleet) quiet() (quietWindow, error) {
	loc, err := time.LoadLocation(f.Limits.Timezone)
	if err != nil {
		return quietWindow{}, fmt.Errorf("limits.timezone %q: use an IANA zone such as UTC or Europe/Berlin", f.Limits.Timezone)
	}
	q := quietWindow{loc: loc}
	if f.Limits.QuietHours == "" {
		return q, nil
	}
	m := hhmmRE.FindStringSubmatch(f.Limits.QuietHours)
	if m == nil {
		return q, fmt.Errorf("limits.quiet_hours %q: use HH:MM-HH:MM, e.g. 01:00-05:00 (it may wrap midnight: 22:00-04:00)", f.Limits.QuietHours)
	}
	atoi := func(s string) int { n := 0; fmt.Sscan(s, &n); return n }
	q.set, q.from, q.to = true, atoi(m[1])*60+atoi(m[2]), atoi(m[3])*60+atoi(m[4])
	if q.from == q.to {
		return q, fmt.Errorf("limits.quiet_hours %q is empty: no wave could ever cut over; widen it or leave it out", f.Limits.QuietHours)
	}
	return q, nil
}

// open tells whether a cut-over may begin at t.
func (q quietWindow) open(t time.Time) bool {
	if !q.set {
		return true
	}
	t = t.In(q.loc)
	m := t.Hour()*60 + t.Minute()
	if q.from < q.to {
		return m >= q.from && m < q.to
	}
	return m >= q.from || m < q.to
}

// appsOf lists the applications using a database, sorted.
func (f *Fleet) appsOf(db string) []string {
	var out []string
	for _, a := range f.Applications {
		if slices.Contains(a.Databases, db) {
			out = append(out, a.Name)
		}
	}
	slices.Sort(out)
	return out
}

// checkServerIDs refuses two channels with one server_id on one server: a
// server keeps one replica connection per id, so they would push each
// other off (forward uses options.server_id on the source, reverse +1 on
// the target).
func (f *Fleet) checkServerIDs() []error {
	var errs []error
	seen := map[string]string{}
	for _, d := range f.Databases {
		if d.plan == nil {
			continue
		}
		o := d.plan.Options
		for _, k := range []struct {
			side string
			e    string
			id   uint32
		}{{"source", fmt.Sprintf("%s:%d", d.plan.Source.Database.Host, d.plan.Source.Database.Port), o.ServerID},
			{"target", fmt.Sprintf("%s:%d", d.plan.Target.Database.Host, d.plan.Target.Database.Port), o.ServerID + 1}} {
			if strings.HasPrefix(k.e, ":") {
				continue // an RDS instance: its endpoint is known at run time
			}
			key := fmt.Sprintf("%s/%d", k.e, k.id)
			if other, ok := seen[key]; ok {
				errs = append(errs, fmt.Errorf("databases %s and %s would both connect to %s as replica server_id %d: give each its own options.server_id (the reverse channel takes server_id+1)", other, d.Name, k.e, k.id))
				continue
			}
			seen[key] = d.Name
		}
	}
	return errs
}
