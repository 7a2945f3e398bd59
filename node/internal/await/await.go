// Package await waits for what a module needs before it can start (another
// module on the bus, the node's registration): it asks again and again,
// backing off, until it gets an answer or the module is stopped.
package await

import (
	"context"
	"log/slog"
	"time"

	"github.com/grid4/grid4/node/internal/clock"
)

// The pace of Answer.
const (
	// firstPause is the pause after the first failed call; each failure
	// doubles it, up to maxPause.
	firstPause = 100 * time.Millisecond
	// maxPause bounds the pause between calls.
	maxPause = 5 * time.Second
	// callTimeout bounds one call.
	callTimeout = 5 * time.Second
)

// Answer calls f until it succeeds and returns its value, logging each
// failure ("waiting for " + what) and pausing on c between calls. When
// ctx ends first it returns the zero value and false.
func Answer[T any](ctx context.Context, c clock.Clock, log *slog.Logger, what string, f func(context.Context) (T, error)) (T, bool) {
	var zero T
	for d := firstPause; ; d = min(d*2, maxPause) {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		v, err := f(cctx)
		cancel()
		if err == nil {
			return v, true
		}
		if ctx.Err() != nil {
			return zero, false
		}
		log.Info("waiting for "+what, "err", err)
		if clock.Sleep(ctx, c, d) != nil {
			return zero, false
		}
	}
}
