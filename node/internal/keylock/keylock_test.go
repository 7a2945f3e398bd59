package keylock

import (
	"sync"
	"sync/atomic"
	"testing"
)

// Operations on one key never overlap; on two keys they may.
func TestOneAtATimePerKey(t *testing.T) {
	var l Locks
	var inside [2]atomic.Int32
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			k := i % 2
			defer l.Lock([]string{"a", "b"}[k])()
			if n := inside[k].Add(1); n != 1 {
				t.Errorf("%d operations on one key at once", n)
			}
			inside[k].Add(-1)
		})
	}
	wg.Wait()
	unlockA := l.Lock("a")
	done := make(chan struct{})
	go func() { l.Lock("b")(); close(done) }()
	<-done // b is free while a is held
	unlockA()
}
