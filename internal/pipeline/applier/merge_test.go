package applier

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pitcrew/pitcrew/checkpoint"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
)

// The exactly-once algebra: the channel's progress row and the lanes' rows
// give together the exact set the target committed (the position) and the
// batches committed beyond it (extras), in both flavours.
func TestMerge(t *testing.T) {
	const uuid = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	flavours := map[string]func(n int) string{
		// up to n: the first n transactions of one stream
		gtid.MySQL: func(n int) string {
			if n == 0 {
				return ""
			}
			return fmt.Sprintf("%s:1-%d", uuid, n)
		},
		gtid.MariaDB: func(n int) string {
			if n == 0 {
				return ""
			}
			return fmt.Sprintf("0-1-%d", n)
		},
	}
	type lane struct {
		watermark int
		done      [][2]int // before, after
	}
	cases := []struct {
		name   string
		row    int
		lanes  []lane
		want   int
		extras [][2]int
	}{
		{name: "no lanes", row: 10, want: 10},
		{name: "lane rows at the channel's row", row: 10, lanes: []lane{{watermark: 10}, {watermark: 10}}, want: 10},
		{name: "a lane's watermark ahead", row: 10, lanes: []lane{{watermark: 20}, {watermark: 15}}, want: 20},
		{name: "a lane ahead by a batch that continues the row", row: 10, lanes: []lane{{watermark: 10, done: [][2]int{{10, 20}}}}, want: 20},
		{name: "batches continuing each other in two lanes", row: 10,
			lanes: []lane{{watermark: 10, done: [][2]int{{20, 30}}}, {watermark: 10, done: [][2]int{{10, 20}}}}, want: 30},
		{name: "a gap: a batch committed beyond one that was not", row: 10,
			lanes: []lane{{watermark: 10, done: [][2]int{{20, 30}}}}, want: 10, extras: [][2]int{{20, 30}}},
		{name: "a gap after a continued batch", row: 10,
			lanes: []lane{{watermark: 10, done: [][2]int{{10, 20}, {25, 30}}}, {watermark: 5, done: [][2]int{{30, 40}}}},
			want:  20, extras: [][2]int{{25, 30}, {30, 40}}},
		{name: "the same batch in two rows counts once", row: 10,
			lanes: []lane{{watermark: 10, done: [][2]int{{20, 30}}}, {watermark: 10, done: [][2]int{{20, 30}}}}, want: 10, extras: [][2]int{{20, 30}}},
		{name: "a lane row behind the channel's row", row: 30,
			lanes: []lane{{watermark: 10, done: [][2]int{{10, 20}}}, {watermark: 20}}, want: 30},
		{name: "a lane row behind, another beyond", row: 30,
			lanes: []lane{{watermark: 10, done: [][2]int{{10, 20}}}, {watermark: 30, done: [][2]int{{40, 50}}}}, want: 30, extras: [][2]int{{40, 50}}},
		{name: "from nothing", row: 0, lanes: []lane{{watermark: 0, done: [][2]int{{0, 5}}}}, want: 5},
	}
	for flavor, upTo := range flavours {
		set := func(n int) gtid.Set { return gtid.MustParse(flavor, upTo(n)) }
		for _, c := range cases {
			t.Run(flavor+"/"+c.name, func(t *testing.T) {
				var rows []checkpoint.LaneRow
				for i, l := range c.lanes {
					r := checkpoint.LaneRow{Lane: i, Flavor: flavor, Watermark: upTo(l.watermark)}
					for _, d := range l.done {
						r.Done = append(r.Done, checkpoint.LaneRange{Before: upTo(d[0]), After: upTo(d[1])})
					}
					rows = append(rows, r)
				}
				got, extras, err := Merge(flavor, set(c.row), rows)
				if err != nil {
					t.Fatal(err)
				}
				if !got.Equal(set(c.want)) {
					t.Errorf("position %q, want %q", got, upTo(c.want))
				}
				var want []string
				for _, x := range c.extras {
					want = append(want, upTo(x[0])+".."+upTo(x[1]))
				}
				var have []string
				for _, x := range extras {
					have = append(have, x.Before.String()+".."+x.After.String())
				}
				if strings.Join(have, " ") != strings.Join(want, " ") {
					t.Errorf("extras %q, want %q", have, want)
				}
			})
		}
	}
}

func TestMergeRefuses(t *testing.T) {
	w := gtid.MustParse(gtid.MariaDB, "0-1-10")
	for _, c := range []struct {
		name string
		row  checkpoint.LaneRow
		want string
	}{
		{"another flavour", checkpoint.LaneRow{Lane: 1, Flavor: gtid.MySQL, Watermark: "0-1-5"}, "lane 1's row on the target was recorded for a mysql source, but the source is mariadb"},
		{"a bad watermark", checkpoint.LaneRow{Lane: 2, Flavor: gtid.MariaDB, Watermark: "nonsense"}, "lane 2's row on the target"},
		{"a bad batch", checkpoint.LaneRow{Lane: 3, Flavor: gtid.MariaDB, Watermark: "0-1-5", Done: []checkpoint.LaneRange{{Before: "0-1-5", After: "x"}}}, "lane 3's row on the target"},
	} {
		if _, _, err := Merge(gtid.MariaDB, w, []checkpoint.LaneRow{c.row}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}
