// Package ctxsleep waits for a duration or for a context to end, whichever
// comes first: the pause between two attempts of a retry loop, which must
// never outlive the deadline of the call it retries.
package ctxsleep

import (
	"context"
	"time"
)

// Sleep waits d, or until ctx is done and then returns ctx.Err(). With d
// zero or negative it does not wait, and still reports an ended ctx.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
