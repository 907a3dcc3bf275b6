package fleet

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pitcrew/pitcrew/internal/devtools/testenv"
)

// shop (orders and users) is cut over with --through cutover while its
// writer runs, then 'fleet rollback' moves it back: both runbooks fence
// their targets and drain, the hook runs once they are both ready, the
// sources take writes again. Every acknowledged write is on the sources
// exactly once.
func TestFleetRollback(t *testing.T) {
	testenv.Require(t)
	bin := buildPitcrew(t)
	names := []string{"orders", "users"}
	srcDB, tgtDB, ports := map[string]*sql.DB{}, map[string]*sql.DB{}, map[string][2]int{}
	for i, name := range names {
		s := testenv.New(t, testenv.Options{ServerID: uint32(10*i + 1), Extra: []string{"--auto-increment-increment=2", "--auto-increment-offset=1"}})
		g := testenv.New(t, testenv.Options{ServerID: uint32(10*i + 2), Extra: []string{"--auto-increment-increment=2", "--auto-increment-offset=2"}})
		srcDB[name], tgtDB[name], ports[name] = testenv.MustDB(t, s), testenv.MustDB(t, g), [2]int{s.Port, g.Port}
		appSchema(t, srcDB[name], tgtDB[name])
	}
	dir := t.TempDir()
	fleetYAML := writeFleet(t, dir, "{copies: 2}", names, ports, "quiet_period: 1s", "shop=orders,users")
	w := startWriter("shop", names, dir, ports)
	defer w.finish()

	apply := startFleet(t, bin, fleetYAML, func(string) {}, "--through", "cutover")
	if err := apply.wait(); err != nil {
		t.Fatalf("apply --through cutover: %v\n%s", err, apply.output())
	}
	waitFor(t, func() bool { return w.onTarget.Load() >= 20 })
	var ro int
	if err := srcDB["orders"].QueryRow("SELECT @@GLOBAL.read_only").Scan(&ro); err != nil || ro != 1 {
		t.Fatalf("orders' source read_only = %d (%v) after the cut-over", ro, err)
	}

	out := runCmd(t, bin, "fleet", "rollback", "--fleet", fleetYAML)
	t.Logf("rollback:\n%s", out)
	if !strings.Contains(out, "application shop is back on its sources") {
		t.Fatalf("rollback did not finish:\n%s", out)
	}
	before := w.count()
	waitFor(t, func() bool { return w.count() >= before+20 })
	w.finish()
	for _, d := range names {
		if err := srcDB[d].QueryRow("SELECT @@GLOBAL.read_only").Scan(&ro); err != nil || ro != 0 {
			t.Errorf("%s: source read_only = %d (%v) after the rollback", d, ro, err)
		}
		if err := tgtDB[d].QueryRow("SELECT @@GLOBAL.read_only").Scan(&ro); err != nil || ro != 0 {
			t.Errorf("%s: target read_only = %d (%v) after the rollback (the forward channel writes there)", d, ro, err)
		}
		assertOnce(t, srcDB[d], d+" source", w.acked[d])
	}
	hooks, _ := os.ReadFile(filepath.Join(dir, "hook.log"))
	if string(hooks) != "shop cutover\nshop rollback\n" {
		t.Errorf("hooks ran:\n%s", hooks)
	}
	if w.onTarget.Load() == 0 {
		t.Error("the writer never wrote to the targets")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met after 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
