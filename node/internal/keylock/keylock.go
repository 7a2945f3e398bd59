// Package keylock serialises operations per key (a workload's ID): one at
// a time for each key, any number at once across keys.
package keylock

import "sync"

// Locks holds a mutex per key; the zero value is ready to use. A key's
// mutex is kept once made (one per workload a module has seen).
type Locks struct {
	mu sync.Mutex
	m  map[string]*sync.Mutex
}

// Lock waits for key to be free, takes it and returns its unlock.
func (l *Locks) Lock(key string) func() {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*sync.Mutex{}
	}
	k, ok := l.m[key]
	if !ok {
		k = &sync.Mutex{}
		l.m[key] = k
	}
	l.mu.Unlock()
	k.Lock()
	return k.Unlock
}
