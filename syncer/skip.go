package syncer

import "sync"

// skipSet holds the GTIDs `pitcrew skip` recorded for the channel.
type skipSet struct {
	mu sync.Mutex
	m  map[string]bool
}

func newSkipSet(gtids []string) *skipSet {
	s := &skipSet{m: map[string]bool{}}
	for _, g := range gtids {
		s.m[g] = true
	}
	return s
}

// take reports whether g is to be skipped, and forgets it.
func (s *skipSet) take(g string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g == "" || !s.m[g] {
		return false
	}
	delete(s.m, g)
	return true
}
