package plugin

import (
	"sort"
	"strings"

	"iovd.io/k8s/iovd"
	dp "iovd.io/k8sapi/deviceplugin"
)

// Health values of the device plugin API.
const (
	healthy   = "Healthy"
	unhealthy = "Unhealthy"
)

// snapshot is what iovd said in one resync: pools by name, functions by address, the
// quarantined addresses, the allocations.
type snapshot struct {
	pools       map[string]iovd.Pool
	devices     []iovd.Device
	byAddress   map[string]iovd.Device
	quarantined map[string]bool
	allocations []iovd.Allocation
	byID        map[string]iovd.Allocation
}

func newSnapshot(pools []iovd.Pool, devices []iovd.Device, q []iovd.Quarantined,
	allocations []iovd.Allocation) *snapshot {
	s := &snapshot{pools: map[string]iovd.Pool{}, devices: devices,
		byAddress: map[string]iovd.Device{}, quarantined: map[string]bool{},
		allocations: allocations, byID: map[string]iovd.Allocation{}}
	for _, a := range allocations {
		s.byID[a.ID] = a
	}
	for _, p := range pools {
		s.pools[p.Name] = p
	}
	for _, d := range devices {
		s.byAddress[d.Address] = d
	}
	for _, e := range q {
		s.quarantined[e.Address] = true
	}
	return s
}

// selectorMatches is iovd's pool selector (alloc/pools.c pool_selector_match) applied to
// a device as GET /v1/devices shows it. A held device is on vfio-pci by iovd's doing, so
// the driver criterion (the driver it had) is not checked for it.
func selectorMatches(sel iovd.Selector, d iovd.Device) bool {
	if sel.VendorID != "" && sel.VendorID != d.VendorID {
		return false
	}
	if sel.DeviceID != "" && sel.DeviceID != d.DeviceID {
		return false
	}
	if sel.Class != "" && !strings.HasPrefix(d.Class, sel.Class) {
		return false
	}
	if sel.Driver != "" && d.Allocation == nil && (d.Driver == nil || *d.Driver != sel.Driver) {
		return false
	}
	if sel.Physfn != "" && (d.Physfn == nil || *d.Physfn != sel.Physfn) {
		return false
	}
	if sel.NumaNode != nil && (d.NumaNode == nil || *d.NumaNode != *sel.NumaNode) {
		return false
	}
	return addressListed(sel.Addresses, d.Address)
}

func addressListed(list []string, address string) bool {
	if list == nil {
		return true
	}
	for _, a := range list {
		if a == address {
			return true
		}
	}
	return false
}

// members are the pool's functions, in address order.
func (s *snapshot) members(pool string) []iovd.Device {
	p, ok := s.pools[pool]
	if !ok {
		return nil
	}
	var out []iovd.Device
	for _, d := range s.devices {
		if selectorMatches(p.Selector, d) {
			out = append(out, d)
		}
	}
	return out
}

// deviceHealth: a member kubelet may hand out (free, or held by this plugin for this
// resource) is Healthy; one quarantined, lost, or held by another owner (a VM, an
// operator) is Unhealthy, so kubelet stops counting it at once.
func (s *snapshot) deviceHealth(d iovd.Device, pool, resource string) string {
	if s.quarantined[d.Address] {
		return unhealthy
	}
	if d.Allocation == nil {
		return healthy
	}
	if d.Allocation.State == "quarantined" || d.Allocation.State == "lost" {
		return unhealthy
	}
	a, ok := s.byID[d.Allocation.ID]
	if !ok { // the device's own view: enough for an owner that names the resource
		a = iovd.Allocation{ID: d.Allocation.ID, Owner: d.Allocation.Owner}
	}
	if c, ok := claimIn(a, pool, resource); !ok || c.resource != resource {
		return unhealthy
	}
	return healthy
}

// claimIn: the plugin's claim on allocation a as the plugin of pool (serving resource)
// reads it; false for an allocation that is not the plugin's.
func claimIn(a iovd.Allocation, pool, resource string) (claim, bool) {
	return claimOf(a, func(p string) string {
		if p == pool {
			return resource
		}
		return ""
	})
}

// deviceList is the ListAndWatch answer for one pool: its functions, and the devices
// that vanished under a container (the allocation is lost), Unhealthy until the
// container is gone and the allocation released; a vanished free VF just leaves.
func (s *snapshot) deviceList(pool, resource string) []*dp.Device {
	var out []*dp.Device
	listed := map[string]bool{}
	for _, d := range s.members(pool) {
		out = append(out, &dp.Device{ID: d.Address, Health: s.deviceHealth(d, pool, resource),
			Topology: topology(d)})
		listed[d.Address] = true
	}
	for _, a := range s.allocations {
		c, ok := claimIn(a, pool, resource)
		if ok && c.resource == resource && a.State == "lost" && !listed[c.device] {
			out = append(out, &dp.Device{ID: c.device, Health: unhealthy})
			listed[c.device] = true
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func topology(d iovd.Device) *dp.TopologyInfo {
	if d.NumaNode == nil {
		return nil
	}
	return &dp.TopologyInfo{Nodes: []*dp.NUMANode{{ID: int64(*d.NumaNode)}}}
}

// allUnhealthy is the list kubelet gets while iovd cannot be reached: the same devices,
// none usable.
func allUnhealthy(list []*dp.Device) []*dp.Device {
	out := make([]*dp.Device, 0, len(list))
	for _, d := range list {
		out = append(out, &dp.Device{ID: d.ID, Health: unhealthy, Topology: d.Topology})
	}
	return out
}

func sameList(a, b []*dp.Device) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || a[i].Health != b[i].Health {
			return false
		}
	}
	return true
}
