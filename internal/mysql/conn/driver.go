package conn

import (
	"context"
	"database/sql/driver"
	"fmt"
)

type driverConn = driver.Conn

func execOn(ctx context.Context, dc driver.Conn, q string) error {
	ex, ok := dc.(driver.ExecerContext)
	if !ok {
		return fmt.Errorf("driver connection cannot exec")
	}
	_, err := ex.ExecContext(ctx, q, nil)
	return err
}
