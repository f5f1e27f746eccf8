package plugin

import (
	"sync"
	"time"
)

// tracker remembers, per device this plugin allocated, when Allocate handed it out and
// since when kubelet's pod-resources no longer shows a container holding it. It is only a
// memory of timings: which allocations exist is always read from iovd.
type tracker struct {
	mu      sync.Mutex
	given   map[string]time.Time // device -> when Allocate answered
	missing map[string]time.Time // device -> first reconcile that did not see it in use
}

func newTracker() *tracker {
	return &tracker{given: map[string]time.Time{}, missing: map[string]time.Time{}}
}

func (t *tracker) allocated(device string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.given[device] = at
	delete(t.missing, device)
}

func (t *tracker) forget(device string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.given, device)
	delete(t.missing, device)
}

// recentlyGiven: Allocate answered within grace, so the container may not be listed by
// pod-resources yet (kubelet records it after Allocate returns).
func (t *tracker) recentlyGiven(device string, now time.Time, grace time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.given[device]
	return ok && now.Sub(at) < grace
}

// seenInUse: pod-resources shows a container holding the device, so its unused clock
// stops (which container it is goes to iovd as the allocation's owner: reconcile.go).
func (t *tracker) seenInUse(device string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.missing, device)
}

// unusedFor: how long the device has been seen unused; the first call starts the clock.
func (t *tracker) unusedFor(device string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	since, ok := t.missing[device]
	if !ok {
		t.missing[device] = now
		return 0
	}
	return now.Sub(since)
}
