package gtid

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		flavor, in, want string
		ok               bool
	}{
		{MariaDB, "", "", true},
		{MariaDB, "0-1-42", "0-1-42", true},
		{MariaDB, " 1-2-3,0-1-5 ", "0-1-5,1-2-3", true},
		{MariaDB, "0-1-x", "", false},
		{MariaDB, "0-1", "", false},
		{MariaDB, "0-1-2,", "", false},
		{MySQL, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5", true},
		{MySQL, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:tag:1-2", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:tag:1-2", true},
		{MySQL, "3e11fa47-71ca-11e1-9e33-c80aa9429562:5-1", "", false},
		{MySQL, "not-a-uuid:1", "", false},
		{"postgres", "", "", false},
	}
	for _, c := range cases {
		s, err := Parse(c.flavor, c.in)
		if (err == nil) != c.ok {
			t.Errorf("Parse(%s, %q) error = %v, want ok=%v", c.flavor, c.in, err, c.ok)
			continue
		}
		if err != nil {
			if !strings.Contains(err.Error(), "expected") && c.flavor != "postgres" {
				t.Errorf("error %q does not say what is expected", err)
			}
			continue
		}
		if s.String() != c.want {
			t.Errorf("Parse(%s, %q) = %q, want %q", c.flavor, c.in, s, c.want)
		}
	}
}

func TestContainsAddBehind(t *testing.T) {
	a := MustParse(MariaDB, "0-1-10,1-2-3")
	if !a.Contains(MustParse(MariaDB, "0-1-9")) || a.Contains(MustParse(MariaDB, "0-1-11")) {
		t.Error("MariaDB containment by sequence within a domain")
	}
	if a.Contains(MustParse(MariaDB, "2-1-1")) {
		t.Error("an unknown domain is not contained")
	}
	if got := a.Behind(MustParse(MariaDB, "0-1-15,1-2-3,2-7-4")); got != 9 {
		t.Errorf("Behind = %d, want 5+0+4", got)
	}
	b, err := a.Add("0-1-11")
	if err != nil || b.String() != "0-1-11,1-2-3" || a.String() != "0-1-10,1-2-3" {
		t.Errorf("Add: %v %q (original %q must not change)", err, b, a)
	}
	u := "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	m := MustParse(MySQL, u+":1-5:7-9")
	if got := m.Behind(MustParse(MySQL, u+":1-12")); got != 4 {
		t.Errorf("MySQL Behind = %d, want 4 (6, 10, 11, 12)", got)
	}
	m2, _ := m.Add(u + ":6")
	if m2.String() != u+":1-9" {
		t.Errorf("MySQL Add = %q", m2)
	}
	if !m2.Contains(m) || m.Contains(m2) {
		t.Error("MySQL containment")
	}
	if m.Contains(MustParse(MariaDB, "0-1-1")) {
		t.Error("sets of different flavours never contain each other")
	}
	if got := MustParse(MariaDB, "0-1-10,5-5-5").Domains(MustParse(MariaDB, "0-1-99")); got.String() != "0-1-10" {
		t.Errorf("Domains = %q", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"0-1-2", "0-1-2,1-2-3", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:tag:1-2", "", "-", ":::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, fl := range []string{MariaDB, MySQL} {
			set, err := Parse(fl, s)
			if err != nil {
				continue
			}
			// What parses must round-trip through its own notation.
			again, err := Parse(fl, set.String())
			if err != nil || !again.Equal(set) {
				t.Fatalf("%s %q -> %q does not round-trip: %v", fl, s, set, err)
			}
		}
	})
}

func TestGap(t *testing.T) {
	u := "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	cases := []struct {
		flavor, have, purged, want string
		n                          int64
	}{
		{MariaDB, "5-5-2", "5-5-4", "domain 5: seq 3-4", 2},
		{MariaDB, "5-5-4", "5-5-4", "", 0},
		{MariaDB, "5-5-9", "5-5-4", "", 0},
		{MariaDB, "", "0-1-3,5-5-4", "domain 0: seq 1-3, domain 5: seq 1-4", 7},
		{MySQL, u + ":1-5", u + ":1-9", u + ":6-9", 4},
		{MySQL, u + ":1-3:7-20", u + ":1-9", u + ":4-6", 3},
		{MySQL, u + ":1-20", u + ":1-9", "", 0},
	}
	for _, c := range cases {
		got, n := Gap(MustParse(c.flavor, c.have), MustParse(c.flavor, c.purged))
		if got != c.want || n != c.n {
			t.Errorf("Gap(%q, %q) = %q, %d; want %q, %d", c.have, c.purged, got, n, c.want, c.n)
		}
	}
}

// ContainsOne and AddAll agree with Contains and Add in both flavours.
func TestContainsOneAddAll(t *testing.T) {
	for _, c := range []struct {
		flavor, set string
		gtids       []string
	}{
		{MariaDB, "0-1-10,2-5-7", []string{"0-1-9", "0-1-10", "0-1-11", "0-2-3", "2-5-7", "2-9-8", "1-1-1", "bad", "0-1-x"}},
		{MariaDB, "", []string{"0-1-1"}},
		{MySQL, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:8", []string{"3e11fa47-71ca-11e1-9e33-c80aa9429562:5", "3e11fa47-71ca-11e1-9e33-c80aa9429562:6", "3e11fa47-71ca-11e1-9e33-c80aa9429562:8", "4e11fa47-71ca-11e1-9e33-c80aa9429562:1"}},
	} {
		s := MustParse(c.flavor, c.set)
		for _, g := range c.gtids {
			one, err := Parse(c.flavor, g)
			want := err == nil && s.Contains(one)
			if got := s.ContainsOne(g); got != want {
				t.Errorf("%s %q ContainsOne(%q) = %v, Contains says %v", c.flavor, c.set, g, got, want)
			}
		}
		var valid []string
		one := s
		for _, g := range c.gtids {
			if next, err := one.Add(g); err == nil {
				one, valid = next, append(valid, g)
			}
		}
		all, err := s.AddAll(valid)
		if err != nil || !all.Equal(one) {
			t.Errorf("%s: AddAll(%v) = %v, %v; Add one by one: %v", c.flavor, valid, all, err, one)
		}
		if s.String() != MustParse(c.flavor, c.set).String() {
			t.Errorf("AddAll changed its receiver: %v", s)
		}
	}
}

func TestUnion(t *testing.T) {
	for _, c := range []struct{ flavor, a, b, want string }{
		{MariaDB, "0-1-10", "0-1-12,1-2-3", "0-1-12,1-2-3"},
		{MariaDB, "0-1-12", "0-1-10", "0-1-12"},
		{MariaDB, "", "0-1-5", "0-1-5"},
		{MySQL, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5", "3e11fa47-71ca-11e1-9e33-c80aa9429562:6-9", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-9"},
	} {
		a, b := MustParse(c.flavor, c.a), MustParse(c.flavor, c.b)
		u, err := a.Union(b)
		if err != nil {
			t.Fatal(err)
		}
		if !u.Equal(MustParse(c.flavor, c.want)) || !u.Contains(a) || !u.Contains(b) {
			t.Errorf("%s ∪ %s = %s, want %s", c.a, c.b, u, c.want)
		}
		if a.String() != MustParse(c.flavor, c.a).String() {
			t.Errorf("Union changed its receiver: %s", a)
		}
	}
}
