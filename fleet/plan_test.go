package fleet

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// local is a server-to-server database entry.
func local(name string, port int) string {
	return fmt.Sprintf(`  - name: %s
    migration:
      source: {database: {host: 127.0.0.1, port: %d}}
      target: {database: {host: 127.0.0.1, port: %d}}
`, name, port, port+1)
}

func parse(t *testing.T, yml string) (*Fleet, error) {
	t.Helper()
	dir := t.TempDir()
	return Parse([]byte(yml), dir)
}

func TestWaves(t *testing.T) {
	yml := "name: estate\nlimits: {copies: 2, cutovers: 2}\ndatabases:\n" + local("orders", 1000) + local("users", 1010) + local("posts", 1020) + local("contacts", 1030) + `
applications:
  - {name: shop, databases: [orders, users]}
  - {name: blog, databases: [posts]}
  - {name: crm, databases: [contacts]}
`
	f, err := parse(t, yml)
	if err != nil {
		t.Fatal(err)
	}
	waves, err := f.Waves()
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(waves)
	want := "[{1 [shop] [orders users]} {2 [blog crm] [contacts posts]}]"
	if got != want {
		t.Errorf("waves %s, want %s", got, want)
	}

	// after pushes an application into a later wave even with room.
	f, err = parse(t, strings.Replace(yml, "{name: blog, databases: [posts]}", "{name: blog, databases: [posts], after: [crm]}", 1)+"")
	if err != nil {
		t.Fatal(err)
	}
	waves, _ = f.Waves()
	if got, want := fmt.Sprint(waves), "[{1 [shop] [orders users]} {2 [crm] [contacts]} {3 [blog] [posts]}]"; got != want {
		t.Errorf("with after: waves %s, want %s", got, want)
	}

	// Applications sharing a database move together.
	f, err = parse(t, strings.Replace(yml, "{name: crm, databases: [contacts]}", "{name: crm, databases: [contacts, users]}", 1))
	if err == nil {
		t.Fatalf("shop+crm use 3 databases over cutovers 2, yet accepted: %v", f)
	}
	if !strings.Contains(err.Error(), "application crm + shop uses 3 databases (contacts, orders, users) but limits.cutovers is 2") || !strings.Contains(err.Error(), "at least 3") {
		t.Errorf("err = %v", err)
	}
	f, err = parse(t, strings.Replace(strings.Replace(yml, "{name: crm, databases: [contacts]}", "{name: crm, databases: [contacts, users]}", 1), "cutovers: 2", "cutovers: 3", 1))
	if err != nil {
		t.Fatal(err)
	}
	waves, _ = f.Waves()
	if got, want := fmt.Sprint(waves), "[{1 [crm shop] [contacts orders users]} {2 [blog] [posts]}]"; got != want {
		t.Errorf("shared database: waves %s, want %s", got, want)
	}
}

func TestRefused(t *testing.T) {
	base := "name: estate\nlimits: {copies: 2, cutovers: 2}\ndatabases:\n" + local("a", 1000) + local("b", 1010) + local("c", 1020)
	for _, c := range []struct{ name, yml, want string }{
		{"cycle", base + `applications:
  - {name: x, databases: [a], after: [z]}
  - {name: y, databases: [b], after: [x]}
  - {name: z, databases: [c], after: [y]}
`, "applications' after forms a cycle: x -> z -> y -> x"},
		{"after within a group", base + `applications:
  - {name: x, databases: [a, b]}
  - {name: y, databases: [b, c], after: [x]}
`, "application y is after x, but they move together (x and y share database b)"},
		{"too big", base + `applications:
  - {name: x, databases: [a, b, c]}
`, "application x uses 3 databases (a, b, c) but limits.cutovers is 2"},
		{"no copies", strings.Replace(base, "copies: 2", "copies: -1", 1) + "applications: [{name: x, databases: [a, b, c]}]\n", "limits.copies -1"},
		{"empty quiet hours", strings.Replace(base, "cutovers: 2}", "cutovers: 3, quiet_hours: \"02:00-02:00\"}", 1) + "applications: [{name: x, databases: [a, b, c]}]\n", "limits.quiet_hours \"02:00-02:00\" is empty"},
		{"bad quiet hours", strings.Replace(base, "cutovers: 2}", "cutovers: 3, quiet_hours: 2am}", 1) + "applications: [{name: x, databases: [a, b, c]}]\n", "use HH:MM-HH:MM"},
		{"orphan database", base + "applications: [{name: x, databases: [a, b]}]\n", "database c is used by no application"},
		{"unknown database", base + "applications: [{name: x, databases: [a, b, c, d]}]\n", "application x uses database d, which is not under databases"},
		{"one server_id twice on a server", "name: estate\ndatabases:\n" + local("a", 1000) + local("b", 1000) + "applications: [{name: x, databases: [a, b]}]\n", "databases a and b would both connect to 127.0.0.1:1000 as replica server_id 4207"},
		{"unknown key", strings.Replace(base, "limits:", "limtis:", 1), `unknown key "limtis" at line 2: remove it or fix its spelling`},
		{"unknown key in a plan", strings.Replace(base, "source: {database:", "source: {databse:", 1), `unknown key "databse" at line 6`},
		{"hook on a database", strings.Replace(base, "migration:\n", "migration:\n      options: {hook: ./move.sh}\n", 1) + "applications: [{name: x, databases: [a, b]}, {name: y, databases: [c]}]\n", "database a: options.hook is set"},
		{"plan and migration", strings.Replace(base, "migration:\n", "plan: a.yaml\n    migration:\n", 1) + "applications: [{name: x, databases: [a, b]}, {name: y, databases: [c]}]\n", "database a: both plan and migration are set"},
		{"missing plan file", strings.Replace(base, "  - name: a\n    migration:\n      source: {database: {host: 127.0.0.1, port: 1000}}\n      target: {database: {host: 127.0.0.1, port: 1001}}\n", "  - {name: a, plan: nowhere.yaml}\n", 1) + "applications: [{name: x, databases: [a, b]}, {name: y, databases: [c]}]\n", "plan file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(t, c.yml)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") && c.name != "cycle" {
				t.Logf("multi-line error: %v", err)
			}
		})
	}
}

// A plan file is read relative to fleet.yaml, strictly, and takes the
// fleet's defaults: named after its database, its data dir under the
// fleet's; passwords come from the named environment variables.
func TestLoadPlanFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "orders.yaml"), []byte("source: {database: {host: db1, password: inline}}\ntarget: {database: {host: db2}}\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "fleet.yaml"), []byte(`name: estate
data_dir: /var/lib/fleet
databases:
  - {name: orders, plan: orders.yaml, source_password_env: ORDERS_SRC, target_password_env: ORDERS_TGT}
applications:
  - {name: shop, databases: [orders], hook: ./move.sh}
`), 0o600)
	t.Setenv("ORDERS_TGT", "from-env")
	f, err := Load(filepath.Join(dir, "fleet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := f.Database("orders").PlanOf()
	if p.Name != "orders" || p.DataDir != "/var/lib/fleet/db/orders" || p.Target.Database.Password != "from-env" || p.Source.Database.Password != "inline" {
		t.Errorf("plan: name %s, data_dir %s, passwords %q/%q", p.Name, p.DataDir, p.Source.Database.Password, p.Target.Database.Password)
	}
	if f.Limits.Copies != 2 || f.Limits.Cutovers != 4 {
		t.Errorf("limits %+v, want the defaults 2 and 4", f.Limits)
	}
}
