// Package ctxsleep waits for a duration or for a context to end, whichever
// comes first: the pause between two attempts of a retry loop, which must
// never outlive the deadline of the call it retries; and Until, such a
// loop polling for a condition within a time limit.
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

// Until calls done every interval until it says true, and then returns
// true; it returns false once limit has passed or ctx has ended first.
// done gets a context that ends with limit, for calls of its own.
func Until(ctx context.Context, limit, interval time.Duration, done func(context.Context) bool) bool {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if done(ctx) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}
