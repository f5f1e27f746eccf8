// Package plugin is the iovd device plugin: one kubelet extended resource per iovd pool,
// its device list following iovd's event stream, allocations made and released in iovd.
package plugin

import (
	"context"
	"log"
	"sync"
	"time"

	"iovd.io/k8s/iovd"
)

// Config of one plugin process (cmd/iovd-device-plugin sets it from flags).
type Config struct {
	IovdSocket         string            // iovd's Unix socket
	PluginDir          string            // kubelet's device plugin directory (kubelet.sock)
	PodResourcesSocket string            // kubelet's pod-resources socket
	ResourcePrefix     string            // resource = PREFIX/POOL unless renamed
	ResourceNames      map[string]string // pool -> resource name
	Pools              []string          // the pools to serve; empty: all
	ReleaseGrace       time.Duration     // a device unused this long is released
	ReconcileInterval  time.Duration     // how often pod-resources is read
	KubeletPoll        time.Duration     // how often kubelet.sock is checked
	Log                *log.Logger
}

// Manager runs one device plugin server per served pool.
type Manager struct {
	cfg    Config
	client *iovd.Client
	resync chan struct{}

	mu   sync.Mutex
	snap *snapshot
	up   bool
	// downLogged: "iovd unreachable" said once per outage, not once per retry.
	downLogged bool
	plugins    map[string]*poolPlugin // by pool name

	locksMu sync.Mutex
	locks   map[string]*sync.Mutex // by device address: one Allocate at a time
	track   *tracker
}

// NewManager checks nothing yet: iovd and kubelet may come up after the plugin.
func NewManager(cfg Config) *Manager {
	if cfg.Log == nil {
		cfg.Log = log.Default()
	}
	return &Manager{cfg: cfg, client: iovd.New(cfg.IovdSocket), resync: make(chan struct{}, 1),
		plugins: map[string]*poolPlugin{}, locks: map[string]*sync.Mutex{}, track: newTracker()}
}

// Run serves until ctx is done, then stops every server and removes its socket.
func (m *Manager) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context){m.followEvents, m.resyncLoop, m.watchKubelet,
		m.reconcileLoop} {
		wg.Add(1)
		go func(f func(context.Context)) { defer wg.Done(); f(ctx) }(loop)
	}
	wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, p := range m.plugins {
		p.stop()
		delete(m.plugins, name)
	}
}

// followEvents keeps one event stream open; every event (and the subscribed line after a
// reconnect) asks for a resync. A stream that ends means iovd is down until it is back.
func (m *Manager) followEvents(ctx context.Context) {
	var last uint64
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := m.client.Follow(ctx, last, func(e iovd.Event) {
			if e.Seq > last {
				last = e.Seq
			}
			backoff = 50 * time.Millisecond
			m.requestResync()
		})
		if ctx.Err() != nil {
			return
		}
		m.markDown(err)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		if backoff < 2*time.Second {
			backoff *= 2
		}
	}
}

func (m *Manager) requestResync() {
	select {
	case m.resync <- struct{}{}:
	default:
	}
}

func (m *Manager) resyncLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.resync:
			if err := m.resyncNow(ctx); err != nil && ctx.Err() == nil {
				m.markDown(err)
			}
		}
	}
}

// resyncNow reads pools, devices, the quarantine and the allocations and hands each pool's device list to
// its server; pools that appeared get a server, pools that went lose theirs.
func (m *Manager) resyncNow(ctx context.Context) error {
	pools, err := m.client.Pools(ctx)
	if err != nil {
		return err
	}
	devices, err := m.client.Devices(ctx)
	if err != nil {
		return err
	}
	quarantine, err := m.client.Quarantine(ctx)
	if err != nil {
		return err
	}
	allocations, err := m.client.Allocations(ctx)
	if err != nil {
		return err
	}
	snap := newSnapshot(pools, devices, quarantine, allocations)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.up {
		m.cfg.Log.Printf("iovd reachable at %s: %d pools", m.cfg.IovdSocket, len(pools))
	}
	m.snap, m.up, m.downLogged = snap, true, false
	m.syncPlugins(snap)
	return nil
}

// markDown: iovd cannot be reached; every device turns Unhealthy until it is back.
func (m *Manager) markDown(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.up || !m.downLogged {
		m.cfg.Log.Printf("%v; devices reported Unhealthy until it is back", err)
	}
	m.up, m.downLogged = false, true
	for _, p := range m.plugins {
		p.update(allUnhealthy(p.current()))
	}
}

func (m *Manager) served(pool string) bool {
	if len(m.cfg.Pools) == 0 {
		return true
	}
	for _, p := range m.cfg.Pools {
		if p == pool {
			return true
		}
	}
	return false
}

func (m *Manager) resourceName(pool string) string {
	if name, ok := m.cfg.ResourceNames[pool]; ok {
		return name
	}
	return m.cfg.ResourcePrefix + "/" + pool
}

// syncPlugins, with m.mu held.
func (m *Manager) syncPlugins(snap *snapshot) {
	for name, p := range m.plugins {
		if _, ok := snap.pools[name]; !ok {
			m.cfg.Log.Printf("pool %s deleted: %s withdrawn", name, p.resource)
			p.stop()
			delete(m.plugins, name)
		}
	}
	for name := range snap.pools {
		if !m.served(name) {
			continue
		}
		p, ok := m.plugins[name]
		if !ok {
			p = newPoolPlugin(m, name, m.resourceName(name))
			m.plugins[name] = p
		}
		p.update(snap.deviceList(name, p.resource))
		if !ok {
			p.start() // the first list is ready before kubelet can ask
		}
	}
}

// snapshotFor gives the last snapshot and whether iovd is up.
func (m *Manager) snapshotNow() (*snapshot, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.snap, m.up
}

func (m *Manager) deviceLock(address string) *sync.Mutex {
	m.locksMu.Lock()
	defer m.locksMu.Unlock()
	l, ok := m.locks[address]
	if !ok {
		l = &sync.Mutex{}
		m.locks[address] = l
	}
	return l
}
