// Package dumpfile reads the GTID position a logical dump recorded, so a
// target loaded from the dump can stream from exactly that point: no gap, no
// overlap.
//
//   - mariadb-dump --gtid --master-data[=2] writes, after the data when
//     --single-transaction is used: [-- ]SET GLOBAL gtid_slave_pos='0-1-42';
//   - mysqldump --set-gtid-purged=ON writes near the top:
//     SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ 'uuid:1-5,uuid:1-3';
//     (the set may span lines).
package dumpfile

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
)

var (
	mariaRe = regexp.MustCompile(`^(?:--\s*)?SET GLOBAL gtid_slave_pos\s*=\s*'([^']*)'`)
	mysqlRe = regexp.MustCompile(`^(?:--\s*)?SET @@GLOBAL\.GTID_PURGED\s*=\s*(?:/\*!\d+ '\+'\*/\s*)?'([^']*)'?`)
)

// ErrNoPosition: the dump carries no GTID position.
var ErrNoPosition = errors.New("the dump records no GTID position: dump with `mariadb-dump --gtid --master-data=2` (MariaDB) or `mysqldump --set-gtid-purged=ON` (MySQL)")

// Position returns the flavour and GTID set recorded in the dump at path
// (gzip-compressed when the name ends in .gz). It reads the whole file: with
// --single-transaction MariaDB writes the position after the data.
func Position(path string) (flavor string, set gtid.Set, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", gtid.Set{}, fmt.Errorf("--start-from-dump: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return "", gtid.Set{}, fmt.Errorf("--start-from-dump %s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	flavor, s, err := scan(r)
	if err != nil {
		return "", gtid.Set{}, fmt.Errorf("--start-from-dump %s: %w", path, err)
	}
	set, err = gtid.Parse(flavor, s)
	if err != nil {
		return "", gtid.Set{}, fmt.Errorf("--start-from-dump %s: %w", path, err)
	}
	return flavor, set, nil
}

func scan(r io.Reader) (flavor, set string, err error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var mysqlSet *strings.Builder // collecting a GTID_PURGED value that spans lines
	atStart := true
	for {
		line, isPrefix, err := br.ReadLine()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", "", err
		}
		start := atStart
		atStart = !isPrefix
		if !start {
			continue // the middle of a long line (row data)
		}
		if mysqlSet != nil {
			if i := bytes.IndexByte(line, '\''); i >= 0 {
				mysqlSet.Write(line[:i])
				return gtid.MySQL, mysqlSet.String(), nil
			}
			mysqlSet.Write(line)
			continue
		}
		if len(line) == 0 || (line[0] != 'S' && line[0] != '-') {
			continue
		}
		if m := mariaRe.FindSubmatch(line); m != nil {
			return gtid.MariaDB, string(m[1]), nil
		}
		if m := mysqlRe.FindSubmatch(line); m != nil {
			if bytes.HasSuffix(bytes.TrimRight(line, "; "), []byte("'")) {
				return gtid.MySQL, string(m[1]), nil
			}
			mysqlSet = &strings.Builder{}
			mysqlSet.Write(m[1])
		}
	}
	return "", "", ErrNoPosition
}
