package testenv

import (
	"context"
	"database/sql"
	"time"

	"github.com/pitcrew/pitcrew/internal/devtools/mariadb"
)

// The servers themselves are internal/devtools/mariadb's (which the binary
// links, so it must not import testing); these names keep the tests'
// spelling, testenv.Server and testenv.Options, on top of it. Code that is
// not a test (bench, the sandbox) uses mariadb directly.

// Server is a running (or stopped) throwaway server (mariadb.Server).
type Server = mariadb.Server

// Options describe one server (mariadb.Options).
type Options = mariadb.Options

// Certs are a throwaway CA's, server's and client's PEM files (mariadb.Certs).
type Certs = mariadb.Certs

// ReplicaOptions say how a native replica replicates (mariadb.ReplicaOptions).
type ReplicaOptions = mariadb.ReplicaOptions

// Start initialises the data dir if it is new, starts the server and waits
// until it accepts connections (mariadb.Start); New is the test's way.
func Start(ctx context.Context, o Options) (*Server, error) { return mariadb.Start(ctx, o) }

// NewCerts writes throwaway certificates into dir (mariadb.NewCerts);
// NewTestCerts is the test's way.
func NewCerts(dir string, names ...string) (*Certs, error) { return mariadb.NewCerts(dir, names...) }

// WaitReplica waits until the replica behind db has applied pos, for at
// most timeout (mariadb.WaitReplica).
func WaitReplica(ctx context.Context, db *sql.DB, pos string, timeout time.Duration) error {
	return mariadb.WaitReplica(ctx, db, pos, timeout)
}
