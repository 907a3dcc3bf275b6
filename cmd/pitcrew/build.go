package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Set at link time by the Makefile (-X main.version=... -X main.commit=...
// -X main.date=...); a plain `go build` from a checkout falls back to what
// the Go toolchain stamped into the binary (vcs.revision, vcs.time).
var (
	version = "dev"
	commit  = ""
	date    = ""
)

// build is what this binary says about itself: `pitcrew version`, the
// console's footer and pitcrew_build_info.
type build struct {
	Version, Commit, Date, Go string
}

func buildInfo() build {
	b := build{Version: version, Commit: commit, Date: date, Go: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	dirty := false
	var rev, at string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" && dirty {
		rev += "-dirty"
	}
	if b.Commit == "" {
		b.Commit = rev
	}
	if b.Date == "" {
		b.Date = at
	}
	if b.Version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		b.Version = info.Main.Version
	}
	return b
}

// buildRevision is the commit this binary was built from, "" when unknown.
func buildRevision() string { return buildInfo().Commit }

func printVersion(w io.Writer) {
	b := buildInfo()
	fmt.Fprintf(w, "pitcrew %s\n", b.Version)
	fmt.Fprintf(w, "commit:  %s\n", orUnknown(b.Commit))
	fmt.Fprintf(w, "built:   %s\n", orUnknown(b.Date))
	fmt.Fprintf(w, "go:      %s %s/%s\n", b.Go, runtime.GOOS, runtime.GOARCH)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
