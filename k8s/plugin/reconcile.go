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

// reconcileOnce releases this plugin's iovd allocations whose device no container has
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
		resource, device, ok := parseOwner(a.Owner)
		if !ok || !served[resource] || a.State == "pending" || a.State == "releasing" {
			continue
		}
		if holder, ok := used[resource][device]; ok {
			if m.track.seenInUse(device, holder) {
				m.cfg.Log.Printf("%s (%s) held by %s", device, a.ID, holder)
			}
			continue
		}
		if m.track.recentlyGiven(device, now, m.cfg.ReleaseGrace) ||
			now.Sub(a.CreatedTime()) < m.cfg.ReleaseGrace ||
			m.track.unusedFor(device, now) < m.cfg.ReleaseGrace {
			continue
		}
		m.release(ctx, a, "no container holds it")
	}
}

func (m *Manager) release(ctx context.Context, a iovd.Allocation, why string) {
	lock := m.deviceLock(deviceOf(a))
	lock.Lock()
	defer lock.Unlock()
	if err := m.client.Release(ctx, a.ID); err != nil {
		m.cfg.Log.Printf("release %s (%s): %v", a.ID, a.Owner, err)
		return
	}
	m.track.forget(deviceOf(a))
	m.cfg.Log.Printf("released %s (%s): %s", a.ID, a.Owner, why)
}

func deviceOf(a iovd.Allocation) string {
	_, device, _ := parseOwner(a.Owner)
	return device
}
