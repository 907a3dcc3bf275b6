package mysqltest

import (
	"errors"
	"fmt"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/google/uuid"
	"github.com/pitcrew/pitcrew/internal/mysql/gtid"
)

// MySQL's texts of error 1236 for a GTID auto-position dump (8.0.26+
// wording, 8.4 the same), with the sets printed as the server prints them.
const (
	msgPurged = "Cannot replicate because the source purged required binary logs. Replicate the missing transactions from elsewhere, or provision a new replica from backup. Consider increasing the source's binary log expiration period. The GTID set sent by the replica is '%s', and the missing transactions are '%s'."
	msgAhead  = "Replica has more GTIDs than the source has, using the source's SERVER_UUID. This may indicate that the end of the binary log was truncated or that the last binary log file was lost, e.g., after a power or disk failure when sync_binlog != 1. The source may or may not have rolled back transactions that were already replicated to the replica. Suggest to replicate any transactions that source has rolled back from replica to source, and/or commit empty transactions on source to account for transactions that have been committed on source but are not included in GTID_EXECUTED."
)

// errCut ends a dump the test cut.
var errCut = errors.New("test primary: connection cut in the middle of a transaction")

// HandleBinlogDumpGTID serves COM_BINLOG_DUMP_GTID on the session's own
// connection until it is cut, killed or closed. It never returns a
// streamer: the events are written here (so a cut lands exactly where the
// test asked), and the error it returns is sent to the replica in the
// stream as MySQL sends a dump's error.
func (s *session) HandleBinlogDumpGTID(set *mysql.MysqlGTIDSet) (*replication.BinlogStreamer, error) {
	p := s.p
	have, err := gtid.Parse(gtid.MySQL, set.String())
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	before, n := p.before, len(p.dumps)+1
	p.mu.Unlock()
	if before != nil {
		before(n)
	}
	p.mu.Lock()
	d := Dump{ServerID: p.regs[s.c.ConnectionID()], Set: have.String()}
	executed, purged := p.setOf(p.files), p.setOf(p.files[:p.purged])
	p.mu.Unlock()
	refuse := func(msg string) error {
		d.Err = msg
		p.mu.Lock()
		p.dumps = append(p.dumps, d)
		p.mu.Unlock()
		return mysql.NewError(mysql.ER_MASTER_FATAL_ERROR_READING_BINLOG, msg)
	}
	// MySQL refuses a replica ahead of it on its own UUID only; other
	// UUIDs may come from elsewhere in the topology.
	if own := ownPart(set, p.o.ServerUUID); !executed.Contains(own) {
		return nil, refuse(msgAhead)
	}
	if missing, n := gtid.Gap(have, purged); n > 0 {
		return nil, refuse(fmt.Sprintf(msgPurged, have.String(), missing))
	}
	p.mu.Lock()
	p.dumps = append(p.dumps, d)
	p.mu.Unlock()
	return nil, s.dump(have)
}

// ownPart is the part of set on the server's own UUID.
func ownPart(set *mysql.MysqlGTIDSet, serverUUID string) gtid.Set {
	u, err := uuid.Parse(serverUUID)
	if err != nil {
		return gtid.Empty(gtid.MySQL)
	}
	own := mysql.NewMysqlGTIDSet()
	if tags, ok := (*set)[u]; ok {
		own[u] = tags
	}
	s, _ := gtid.Parse(gtid.MySQL, own.String())
	return s
}

// dump sends the log after have. Like MySQL's dump thread it starts in the
// oldest file (not purged) that holds a transaction the replica lacks, sends
// a fake ROTATE to it (without checksum: the replica said
// @master_binlog_checksum='NONE', "checksum-aware, the first fake rotate
// needs none"), then each file's format description, its PREVIOUS_GTIDS
// and every transaction not in have; files are joined by ROTATE events;
// at the end it waits for more, with a heartbeat every period the replica
// asked for (@master_heartbeat_period).
func (s *session) dump(have gtid.Set) error {
	p := s.p
	send := func(ev []byte) error {
		data := make([]byte, 4, 5+len(ev))
		data = append(data, mysql.OK_HEADER)
		data = append(data, ev...)
		if err := s.c.WritePacket(data); err != nil {
			return err
		}
		return s.w.Flush()
	}
	p.mu.Lock()
	i := p.purged
	for i < len(p.files)-1 && have.Contains(p.files[i].gtids()) {
		i++
	}
	f := p.files[i]
	p.mu.Unlock()
	if err := send(rotate(p.o.ServerID, 0, 0, flagArtificial, f.name, false)); err != nil {
		return err
	}
	for {
		if err := send(f.fde); err != nil {
			return err
		}
		for _, ev := range f.head {
			if err := send(ev); err != nil {
				return err
			}
		}
		for _, g := range f.groups {
			if have.ContainsOne(g.gtid) {
				continue
			}
			cutAfter := -1
			p.mu.Lock()
			if p.cut == g.gtid {
				p.cut = ""
				cutAfter = min(1, len(g.events)-2)
			}
			p.mu.Unlock()
			for k, ev := range g.events {
				if err := send(ev); err != nil {
					return err
				}
				if k == cutAfter {
					s.end()
					return errCut
				}
			}
		}
		next, err := s.waitNext(i, f)
		if err != nil {
			return err
		}
		if err := send(rotate(p.o.ServerID, f.lastTS, f.size+rotateSize(next.name, f.crc), 0, next.name, f.crc)); err != nil {
			return err
		}
		i, f = i+1, next
	}
}

func rotateSize(name string, crc bool) uint32 {
	n := headerLen + 8 + len(name)
	if crc {
		n += 4
	}
	return uint32(n)
}

// waitNext waits at the end of file i (f) until a next file exists,
// sending heartbeats meanwhile.
func (s *session) waitNext(i int, f *binlogFile) (*binlogFile, error) {
	p := s.p
	var tick <-chan time.Time
	if s.heartbeat > 0 {
		t := time.NewTicker(s.heartbeat)
		defer t.Stop()
		tick = t.C
	}
	for {
		p.mu.Lock()
		changed := p.changed
		var next *binlogFile
		if i+1 < len(p.files) {
			next = p.files[i+1]
		}
		p.mu.Unlock()
		if next != nil {
			return next, nil
		}
		select {
		case <-s.done:
			return nil, errors.New("test primary: dump session ended")
		case <-changed:
		case <-tick:
			body := []byte(f.name)
			hb := event(evHeartbeat, p.o.ServerID, 0, f.size, flagArtificial, body, f.crc)
			data := make([]byte, 4, 5+len(hb))
			data = append(data, mysql.OK_HEADER)
			data = append(data, hb...)
			if err := s.c.WritePacket(data); err != nil {
				return nil, err
			}
			if err := s.w.Flush(); err != nil {
				return nil, err
			}
			p.mu.Lock()
			p.hbSent++
			p.mu.Unlock()
		}
	}
}
