package load

import (
	"context"
	"sync"
	"time"
)

// MemorySampler reads a process's resident memory at a fixed period and
// keeps the peak, so that a scenario's peak is known even where VmHWM
// (the peak since the process started) covers earlier scenarios too.
type MemorySampler struct {
	pid  int
	stop context.CancelFunc
	done chan struct{}

	mu   sync.Mutex
	peak uint64
	last Memory
	err  error
}

// SampleMemory starts sampling process pid every period until ctx ends or
// Stop is called.
func SampleMemory(ctx context.Context, pid int, period time.Duration) *MemorySampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &MemorySampler{pid: pid, stop: cancel, done: make(chan struct{})}
	s.sample()
	go func() {
		defer close(s.done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return s
}

func (s *MemorySampler) sample() {
	m, err := ReadMemory(s.pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.err = err
		return
	}
	s.last = m
	s.peak = max(s.peak, m.RSS)
}

// Take samples now and returns the memory now and the peak RSS since the
// previous Take (or the start), then starts a new peak.
func (s *MemorySampler) Take() (now Memory, peak uint64, err error) {
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	now, peak, err = s.last, s.peak, s.err
	s.peak, s.err = 0, nil
	return now, peak, err
}

// Stop stops sampling.
func (s *MemorySampler) Stop() {
	s.stop()
	<-s.done
}
