// Package cpuprof writes a CPU profile (pprof) of a stretch of a run to a
// file: `pitcrew catchup --cpuprofile` and the benchmark harness.
package cpuprof

import (
	"os"
	"runtime/pprof"
)

// Start profiles the CPU into the file at path until stop is called. An
// empty path profiles nothing (stop does nothing).
func Start(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
