package mysqltest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
)

// Event type codes the primary reads or writes (MySQL's Log_event_type).
const (
	evStop           = 3
	evRotate         = 4
	evFDE            = 15
	evHeartbeat      = 27
	evGTID           = 33
	evAnonymousGTID  = 34
	evPreviousGTIDs  = 35
	evTaggedGTID     = 42
	headerLen        = 19
	flagInUse        = 0x0001
	flagArtificial   = 0x0020
	binlogMagic      = "\xfebin"
	checksumCRC32    = 1
	gtidBodySIDStart = 1 // after the GTID event's flags byte
)

// File is one binlog file of the served log: a real MySQL binlog file
// from ../shared/fixtures/mysql-binlogs, served under the name binlog.00000N.
type File struct {
	// Path of the fixture file.
	Path string
	// AssignUUID gives the file's anonymous transactions (written with
	// gtid_mode=OFF) GTIDs AssignUUID:1, :2, ... as they are served: the
	// ANONYMOUS_GTID event becomes a GTID event of the same layout (its
	// type, SID and GNO rewritten, its checksum recomputed); every other
	// byte is the file's. Empty: anonymous transactions are refused when
	// the file is loaded (a GTID auto-position replica cannot name them).
	AssignUUID string
}

// binlogFile is a fixture file cut into what the dump sends.
type binlogFile struct {
	name     string // binlog.00000N
	source   string // the fixture's base name, for messages
	serverID uint32
	crc      bool
	fde      []byte   // the format description, "in use" flag cleared
	head     [][]byte // events between the FDE and the first transaction (PREVIOUS_GTIDS)
	groups   []group
	size     uint32
	lastTS   uint32
}

// group is one transaction: its GTID event and every event up to the next.
type group struct {
	gtid   string // uuid:n
	events [][]byte
}

// readFile loads a fixture as the n-th file of the served log.
func readFile(f File, n int) (*binlogFile, error) {
	data, err := os.ReadFile(f.Path)
	if err != nil {
		return nil, err
	}
	base := filepath.Base(f.Path)
	if !bytes.HasPrefix(data, []byte(binlogMagic)) {
		return nil, fmt.Errorf("%s is not a binlog file (no magic header)", base)
	}
	bf := &binlogFile{name: fmt.Sprintf("binlog.%06d", n), source: base, size: uint32(len(data))}
	var assign uuid.UUID
	if f.AssignUUID != "" {
		if assign, err = uuid.Parse(f.AssignUUID); err != nil {
			return nil, fmt.Errorf("%s: AssignUUID: %w", base, err)
		}
	}
	var gno int64
	for off := 4; off < len(data); {
		if off+headerLen > len(data) {
			return nil, fmt.Errorf("%s: truncated event header at %d", base, off)
		}
		size := int(binary.LittleEndian.Uint32(data[off+9:]))
		if size < headerLen || off+size > len(data) {
			return nil, fmt.Errorf("%s: event at %d of size %d runs past the end", base, off, size)
		}
		ev := bytes.Clone(data[off : off+size])
		off += size
		typ := ev[4]
		bf.lastTS = binary.LittleEndian.Uint32(ev)
		switch typ {
		case evFDE:
			// The dump clears "in use" on the format description, as
			// MySQL's Binlog_sender does, and the checksum must then hold.
			binary.LittleEndian.PutUint16(ev[17:], binary.LittleEndian.Uint16(ev[17:])&^flagInUse)
			bf.crc = ev[len(ev)-5] == checksumCRC32
			bf.serverID = binary.LittleEndian.Uint32(ev[5:])
			if bf.crc && !checksumOK(ev) {
				return nil, fmt.Errorf("%s: the format description's checksum is wrong", base)
			}
			bf.fde = ev
			continue
		case evRotate, evStop:
			// The served log has its own file names: its rotates are
			// written by the primary.
			continue
		case evTaggedGTID:
			return nil, fmt.Errorf("%s: tagged GTIDs (MySQL 8.3+) are outside the 8.0/8.4 profiles", base)
		}
		if bf.crc && !checksumOK(ev) {
			return nil, fmt.Errorf("%s: event at %d (type %d) fails its checksum", base, off-size, typ)
		}
		switch typ {
		case evGTID, evAnonymousGTID:
			g := group{events: [][]byte{ev}}
			if typ == evAnonymousGTID {
				if f.AssignUUID == "" {
					return nil, fmt.Errorf("%s was written with gtid_mode=OFF (anonymous transactions): set File.AssignUUID", base)
				}
				gno++
				ev[4] = evGTID
				copy(ev[headerLen+gtidBodySIDStart:], assign[:])
				binary.LittleEndian.PutUint64(ev[headerLen+gtidBodySIDStart+16:], uint64(gno))
				if bf.crc {
					putChecksum(ev)
				}
			}
			sid, err := uuid.FromBytes(ev[headerLen+gtidBodySIDStart : headerLen+gtidBodySIDStart+16])
			if err != nil {
				return nil, err
			}
			g.gtid = fmt.Sprintf("%s:%d", sid, binary.LittleEndian.Uint64(ev[headerLen+gtidBodySIDStart+16:]))
			bf.groups = append(bf.groups, g)
		default:
			if len(bf.groups) == 0 {
				bf.head = append(bf.head, ev)
				continue
			}
			last := &bf.groups[len(bf.groups)-1]
			last.events = append(last.events, ev)
		}
	}
	if bf.fde == nil {
		return nil, fmt.Errorf("%s has no format description event", base)
	}
	return bf, nil
}

// gtids is the set of the file's transactions.
func (f *binlogFile) gtids() gtid.Set {
	s := gtid.Empty(gtid.MySQL)
	for _, g := range f.groups {
		s, _ = s.Add(g.gtid)
	}
	return s
}

func checksumOK(ev []byte) bool {
	n := len(ev) - 4
	return crc32.ChecksumIEEE(ev[:n]) == binary.LittleEndian.Uint32(ev[n:])
}

func putChecksum(ev []byte) {
	n := len(ev) - 4
	binary.LittleEndian.PutUint32(ev[n:], crc32.ChecksumIEEE(ev[:n]))
}

// event builds an event the primary writes itself (rotate, heartbeat).
func event(typ byte, serverID, ts, logPos uint32, flags uint16, body []byte, crc bool) []byte {
	size := headerLen + len(body)
	if crc {
		size += 4
	}
	ev := make([]byte, size)
	binary.LittleEndian.PutUint32(ev[0:], ts)
	ev[4] = typ
	binary.LittleEndian.PutUint32(ev[5:], serverID)
	binary.LittleEndian.PutUint32(ev[9:], uint32(size))
	binary.LittleEndian.PutUint32(ev[13:], logPos)
	binary.LittleEndian.PutUint16(ev[17:], flags)
	copy(ev[headerLen:], body)
	if crc {
		putChecksum(ev)
	}
	return ev
}

// rotate is a ROTATE event naming file at position 4.
func rotate(serverID, ts, logPos uint32, flags uint16, file string, crc bool) []byte {
	body := make([]byte, 8, 8+len(file))
	binary.LittleEndian.PutUint64(body, 4)
	body = append(body, file...)
	return event(evRotate, serverID, ts, logPos, flags, body, crc)
}

// mysqlSetText prints a set as MySQL prints gtid_executed: one UUID's
// intervals per line.
func mysqlSetText(s gtid.Set) string {
	return strings.ReplaceAll(s.String(), ",", ",\n")
}
