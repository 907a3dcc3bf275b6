package gtid

import "testing"

func TestOutside(t *testing.T) {
	const a, b = "3e11fa47-71ca-11e1-9e33-c80aa9429562", "4e11fa47-71ca-11e1-9e33-c80aa9429562"
	for _, c := range []struct {
		flavor, s, ref, want string
	}{
		{MariaDB, "0-1-5", "0-1-42", ""},
		{MariaDB, "0-1-999999", "0-1-42", "domain 0 at seq 999999, beyond the source's seq 42"},
		{MariaDB, "0-1-5,7-7-1", "0-1-42", "domain 7, which the source never had"},
		{MariaDB, "0-1-50,7-7-1", "0-1-42", "domain 0 at seq 50, beyond the source's seq 42; domain 7, which the source never had"},
		{MySQL, a + ":1-5", a + ":1-42", ""},
		{MySQL, a + ":1-50", a + ":1-42", a + ":43-50 (not executed on the source)"},
		{MySQL, a + ":1-5," + b + ":1", a + ":1-42", b + " (a server UUID the source never had)"},
		{MySQL, a + ":1-5:7", a + ":1-6", a + ":7 (not executed on the source)"},
	} {
		got := Outside(MustParse(c.flavor, c.s), MustParse(c.flavor, c.ref), "the source")
		if got != c.want {
			t.Errorf("Outside(%s, %s) = %q; want %q", c.s, c.ref, got, c.want)
		}
		if contained := MustParse(c.flavor, c.ref).Contains(MustParse(c.flavor, c.s)); contained != (c.want == "") {
			t.Errorf("Contains(%s, %s) = %v, but Outside says %q", c.ref, c.s, contained, got)
		}
	}
}

func TestKnown(t *testing.T) {
	const a, b = "3e11fa47-71ca-11e1-9e33-c80aa9429562", "4e11fa47-71ca-11e1-9e33-c80aa9429562"
	if got := MustParse(MySQL, a+":1-10,"+b+":1-3").Known(MustParse(MySQL, a+":1-99")); got.String() != a+":1-10" {
		t.Errorf("Known = %q", got)
	}
	if got := MustParse(MariaDB, "0-1-10,5-5-5").Known(MustParse(MariaDB, "0-1-99")); got.String() != "0-1-10" {
		t.Errorf("Known = %q", got)
	}
	if got := MustParse(MySQL, b+":1-3").Known(MustParse(MySQL, a+":1-99")); !got.IsEmpty() {
		t.Errorf("Known = %q; want empty", got)
	}
}
