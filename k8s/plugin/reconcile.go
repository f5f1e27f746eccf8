package plugin

import (
	"context"
	"time"

	"iovd.io/k8s/iovd"
	pr "iovd.io/k8sapi/podresources"
)

// inUse reads kubelet's pod-resources List: for each resource, the devices some
// container of a pod kubelet knows holds, with that container (namespace/pod/container).
func (m *Manager) inUse(ctx context.Context) (map[string]map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := dialUnix(ctx, m.cfg.PodResourcesSocket)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	reply, err := pr.NewPodResourcesListerClient(conn).List(ctx, &pr.ListPodResourcesRequest{})
	if err != nil {
		return nil, err
	}
	used := map[string]map[string]string{}
	for _, pod := range reply.PodResources {
		for _, c := range pod.Containers {
			holder := pod.Namespace + "/" + pod.Name + "/" + c.Name
			for _, d := range c.Devices {
				if used[d.ResourceName] == nil {
					used[d.ResourceName] = map[string]string{}
				}
				for _, id := range d.DeviceIds {
					used[d.ResourceName][id] = holder
				}
			}
		}
	}
	return used, nil
}

func (m *Manager) reconcileLoop(ctx context.Context) {
	ticker := time.NewTicker(m.cfg.ReconcileInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			m.reconcileOnce(ctx)
		}
	}
}

// servedResources: the resources this process registered; allocations of another
// plugin process (other pools, another prefix) are left to it.
func (m *Manager) servedResources() map[string]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]bool{}
	for _, p := range m.plugins {
		out[p.resource] = true
	}
	return out
}

// poolResource names the resource of a pool this process serves, "" for any other.
func (m *Manager) poolResource(pool string) string {
	if !m.served(pool) {
		return ""
	}
	return m.resourceName(pool)
}

// reconcileOnce names in iovd the container holding each of this plugin's allocations
// (owner k8s:NAMESPACE/POD/CONTAINER) and releases those whose device no container has
// held for the grace period. Nothing is released while kubelet or iovd cannot be asked:
// not knowing is never taken for "gone".
func (m *Manager) reconcileOnce(ctx context.Context) {
	used, err := m.inUse(ctx)
	if err != nil {
		return
	}
	allocations, err := m.client.Allocations(ctx)
	if err != nil {
		return
	}
	now, served := time.Now(), m.servedResources()
	for _, a := range allocations {
		c, ok := claimOf(a, m.poolResource)
		if !ok || !served[c.resource] || a.State == "pending" || a.State == "releasing" {
			continue
		}
		if holder, ok := used[c.resource][c.device]; ok {
			m.track.seenInUse(c.device)
			if c.holder != holder {
				m.setHolder(ctx, a, c.device, holder)
			}
			continue
		}
		if m.track.recentlyGiven(c.device, now, m.cfg.ReleaseGrace) ||
			now.Sub(a.CreatedTime()) < m.cfg.ReleaseGrace ||
			m.track.unusedFor(c.device, now) < m.cfg.ReleaseGrace {
			continue
		}
		m.release(ctx, a, c.device, "no container holds it")
	}
}

// setHolder relabels allocation a with the container pod-resources shows holding its
// device, under the device's lock (an Allocate or release of it goes first or after).
func (m *Manager) setHolder(ctx context.Context, a iovd.Allocation, device, holder string) {
	lock := m.deviceLock(device)
	lock.Lock()
	defer lock.Unlock()
	if _, err := m.client.SetOwner(ctx, a.ID, holderOwner(holder)); err != nil {
		m.cfg.Log.Printf("name the holder of %s (%s): %v", a.ID, a.Owner, err)
		return
	}
	m.cfg.Log.Printf("%s (%s) held by %s: owner %s", device, a.ID, holder, holderOwner(holder))
}

func (m *Manager) release(ctx context.Context, a iovd.Allocation, device, why string) {
	lock := m.deviceLock(device)
	lock.Lock()
	defer lock.Unlock()
	if err := m.client.Release(ctx, a.ID); err != nil {
		m.cfg.Log.Printf("release %s (%s): %v", a.ID, a.Owner, err)
		return
	}
	m.track.forget(device)
	m.cfg.Log.Printf("released %s (%s): %s", a.ID, a.Owner, why)
}
