package bench

import (
	"io"
	"os"
)

// setDefault sets *v to d when it is not positive.
func setDefault(v *int, d int) {
	if *v <= 0 {
		*v = d
	}
}

// scratch makes *dir a fresh temp dir when it is empty; the returned func
// removes what scratch made.
func scratch(dir *string) (func(), error) {
	if *dir != "" {
		return func() {}, nil
	}
	d, err := os.MkdirTemp("", "pitcrew-bench-")
	if err != nil {
		return nil, err
	}
	*dir = d
	return func() { os.RemoveAll(d) }, nil
}

func logTo(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
