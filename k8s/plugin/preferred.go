package plugin

import (
	"context"
	"fmt"
	"sort"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	dp "iovd.io/k8sapi/deviceplugin"
)

// GetPreferredAllocation picks, for each container, allocation_size devices out of the
// available ones, the must-include ones first: devices on one NUMA node (the node of the
// must-include devices, else the node with the most available), spread over as many PFs
// as possible so one PF's failure or bandwidth does not hit the whole pod.
func (p *poolPlugin) GetPreferredAllocation(_ context.Context, req *dp.PreferredAllocationRequest) (*dp.PreferredAllocationResponse, error) {
	snap, _ := p.m.snapshotNow()
	if snap == nil {
		return nil, status.Error(codes.Unavailable, "preferred allocation: no inventory from iovd yet")
	}
	resp := &dp.PreferredAllocationResponse{}
	for i, c := range req.ContainerRequests {
		ids, err := preferDevices(snap, c)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "preferred allocation, container %d: %v", i, err)
		}
		resp.ContainerResponses = append(resp.ContainerResponses,
			&dp.ContainerPreferredAllocationResponse{DeviceIDs: ids})
	}
	return resp, nil
}

type candidate struct {
	id   string
	numa int // -1: unknown
	pf   string
}

func candidateOf(snap *snapshot, id string) (candidate, bool) {
	d, ok := snap.byAddress[id]
	if !ok {
		return candidate{}, false
	}
	c := candidate{id: id, numa: -1, pf: id}
	if d.NumaNode != nil {
		c.numa = *d.NumaNode
	}
	if d.Physfn != nil {
		c.pf = *d.Physfn
	}
	return c, true
}

func preferDevices(snap *snapshot, req *dp.ContainerPreferredAllocationRequest) ([]string, error) {
	size := int(req.AllocationSize)
	if size <= 0 || size > len(req.AvailableDeviceIDs) || len(req.MustIncludeDeviceIDs) > size {
		return nil, fmt.Errorf("size %d for %d available, %d required",
			size, len(req.AvailableDeviceIDs), len(req.MustIncludeDeviceIDs))
	}
	available, err := candidates(snap, req.AvailableDeviceIDs)
	if err != nil {
		return nil, err
	}
	chosen, err := candidates(snap, req.MustIncludeDeviceIDs)
	if err != nil {
		return nil, err
	}
	for _, c := range chosen {
		if _, ok := available[c.id]; !ok {
			return nil, fmt.Errorf("must-include %s is not available", c.id)
		}
		delete(available, c.id)
	}
	list := pick(chosen, available, size)
	ids := make([]string, 0, len(list))
	for _, c := range list {
		ids = append(ids, c.id)
	}
	return ids, nil
}

func candidates(snap *snapshot, ids []string) (map[string]candidate, error) {
	out := map[string]candidate{}
	for _, id := range ids {
		c, ok := candidateOf(snap, id)
		if !ok {
			return nil, fmt.Errorf("unknown device %q", id)
		}
		out[id] = c
	}
	return out, nil
}

// pick adds devices to chosen until size: on the target NUMA node first, then on the PF
// with the fewest chosen so far, then by address (a stable answer for the same input).
func pick(required, available map[string]candidate, size int) []candidate {
	var chosen []candidate
	for _, c := range sortedCandidates(required) {
		chosen = append(chosen, c)
	}
	target := targetNode(chosen, available)
	perPF := map[string]int{}
	for _, c := range chosen {
		perPF[c.pf]++
	}
	rest := sortedCandidates(available)
	for len(chosen) < size {
		best := -1
		for i, c := range rest {
			if best < 0 || better(c, rest[best], target, perPF) {
				best = i
			}
		}
		chosen = append(chosen, rest[best])
		perPF[rest[best].pf]++
		rest = append(rest[:best], rest[best+1:]...)
	}
	return chosen
}

func better(a, b candidate, target int, perPF map[string]int) bool {
	if (a.numa == target) != (b.numa == target) {
		return a.numa == target
	}
	if perPF[a.pf] != perPF[b.pf] {
		return perPF[a.pf] < perPF[b.pf]
	}
	return a.id < b.id
}

// targetNode: the NUMA node of the first required device that has one, else the node
// with the most available devices (the lowest on a tie), -1 when none is known.
func targetNode(chosen []candidate, available map[string]candidate) int {
	for _, c := range chosen {
		if c.numa >= 0 {
			return c.numa
		}
	}
	count := map[int]int{}
	for _, c := range available {
		count[c.numa]++
	}
	target, most := -1, 0
	for node, n := range count {
		if node >= 0 && (n > most || (n == most && node < target)) {
			target, most = node, n
		}
	}
	return target
}

func sortedCandidates(m map[string]candidate) []candidate {
	out := make([]candidate, 0, len(m))
	for _, c := range m {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}
