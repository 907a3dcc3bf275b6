// Package conflict makes master-master safe: auto-increment offsets that
// keep nodes from taking the same ids, loop prevention so nothing pitcrew
// applied to a node comes back, and the policies that resolve the
// conflicts that remain (with a ledger of every one).
//
// Loop prevention uses the marker the engine writes anyway: every applied
// target transaction updates the channel's progress row, so on the node's
// binlog that transaction carries the name of the channel that applied it.
// A channel X->Y drops, whole, every transaction that a channel into X
// applied when the same change also reaches Y another way (the reverse
// channel Y->X, or in a mesh a direct channel Z->Y). DDL carries the same
// information in a comment: /* pitcrew origin=CHANNEL */.
package conflict

import (
	"fmt"
	"regexp"
)

// Channel is one direction between two nodes.
type Channel struct {
	Name   string
	Source string // node name
	Target string // node name
	// Echo lists the channels whose applied transactions this channel
	// drops when it reads them from its source.
	Echo []string
}

var nodeName = regexp.MustCompile(`^[a-z0-9_]{1,20}$`)

// ChannelName names the channel from src to dst.
func ChannelName(src, dst string) string { return src + "-" + dst }

// Mesh returns a channel for every ordered pair of nodes. For a channel
// X->Y, transactions that Z->X applied on X also reach Y through Z->Y (or
// are Y's own when Z is Y): they are echoes.
func Mesh(nodes []string) ([]Channel, error) {
	return Topology(nodes, nil)
}

// Topology returns the channels for the given directed links (nil: every
// ordered pair), with their echo sets: X->Y drops what Z->X applied when Z
// is Y or Z->Y exists. A chain A->B->C therefore forwards A's changes from
// B to C, and never sends anything back.
func Topology(nodes []string, links [][2]string) ([]Channel, error) {
	seen := map[string]bool{}
	for _, n := range nodes {
		if !nodeName.MatchString(n) {
			return nil, fmt.Errorf("node name %q is invalid: use 1-20 lower-case letters, digits or '_'", n)
		}
		if seen[n] {
			return nil, fmt.Errorf("node %q is listed twice", n)
		}
		seen[n] = true
	}
	if len(nodes) < 2 {
		return nil, fmt.Errorf("bidirectional sync needs at least two nodes, got %d", len(nodes))
	}
	if links == nil {
		for _, a := range nodes {
			for _, b := range nodes {
				if a != b {
					links = append(links, [2]string{a, b})
				}
			}
		}
	}
	exists := map[[2]string]bool{}
	for _, l := range links {
		if !seen[l[0]] || !seen[l[1]] || l[0] == l[1] {
			return nil, fmt.Errorf("link %s->%s names an unknown node or a node twice", l[0], l[1])
		}
		exists[l] = true
	}
	var out []Channel
	for _, l := range links {
		x, y := l[0], l[1]
		ch := Channel{Name: ChannelName(x, y), Source: x, Target: y}
		for _, in := range links {
			z := in[0]
			if in[1] == x && (z == y || exists[[2]string{z, y}]) {
				ch.Echo = append(ch.Echo, ChannelName(z, x))
			}
		}
		out = append(out, ch)
	}
	return out, nil
}
