package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"iovd.io/k8s/iovd"
	dp "iovd.io/k8sapi/deviceplugin"
)

// Allocate makes one iovd allocation per requested device (its whole IOMMU group on
// vfio-pci, reset by iovd), owned by this resource, and answers with the VFIO device
// nodes, PCIDEVICE_<RESOURCE> and the network settings iovd applied. Each device is
// allocated as a member of the pool, so iovd counts it there (GET /v1/pools matches what
// ListAndWatch shows) and refuses to delete the pool while a pod holds it. Either every device
// of the request is allocated or none is (the ones made are released again).
func (p *poolPlugin) Allocate(ctx context.Context, req *dp.AllocateRequest) (*dp.AllocateResponse, error) {
	if len(req.ContainerRequests) == 0 {
		return nil, status.Error(codes.InvalidArgument, "allocate: no container requests")
	}
	if err := p.checkIDs(req); err != nil {
		return nil, err
	}
	var made []*iovd.Allocation
	resp := &dp.AllocateResponse{}
	for _, c := range req.ContainerRequests {
		cresp, allocs, err := p.allocateContainer(ctx, c.DevicesIds)
		made = append(made, allocs...)
		if err != nil {
			p.rollback(made)
			return nil, err
		}
		resp.ContainerResponses = append(resp.ContainerResponses, cresp)
	}
	return resp, nil
}

// checkIDs: every container asks for at least one device, each a member of this pool
// kubelet could have been told about, none twice.
func (p *poolPlugin) checkIDs(req *dp.AllocateRequest) error {
	snap, _ := p.m.snapshotNow()
	known := map[string]bool{}
	for _, d := range p.current() {
		known[d.ID] = true
	}
	seen := map[string]bool{}
	for i, c := range req.ContainerRequests {
		if len(c.DevicesIds) == 0 {
			return status.Errorf(codes.InvalidArgument, "allocate: container request %d names no device", i)
		}
		for _, id := range c.DevicesIds {
			if !known[id] || snap == nil {
				return status.Errorf(codes.InvalidArgument, "allocate: unknown device %q for %s", id, p.resource)
			}
			if seen[id] {
				return status.Errorf(codes.InvalidArgument, "allocate: device %q requested twice", id)
			}
			seen[id] = true
		}
	}
	return nil
}

func (p *poolPlugin) allocateContainer(ctx context.Context, ids []string) (*dp.ContainerAllocateResponse, []*iovd.Allocation, error) {
	var made []*iovd.Allocation
	for _, id := range ids {
		a, err := p.allocateDevice(ctx, id)
		if err != nil {
			return nil, made, err
		}
		made = append(made, a)
	}
	return containerResponse(p.resource, made), made, nil
}

// allocateDevice allocates one device under its lock, so two Allocates of the same device
// at once are decided one after the other: exactly one gets it.
func (p *poolPlugin) allocateDevice(ctx context.Context, id string) (*iovd.Allocation, error) {
	lock := p.m.deviceLock(id)
	lock.Lock()
	defer lock.Unlock()
	owner := ownerFor(p.resource, id)
	a, err := p.m.client.AllocateInPool(ctx, owner, p.pool, id)
	var apiErr *iovd.APIError
	if err != nil && errors.As(err, &apiErr) && apiErr.Status == 409 {
		if stale := p.staleOwnAllocation(ctx, id); stale != nil {
			a, err = p.reallocate(ctx, stale, owner, id)
		}
	}
	if err != nil {
		return nil, grpcError(id, err)
	}
	// Still under the lock: a second Allocate of this device sees it given.
	p.m.track.allocated(id, time.Now())
	return a, nil
}

// staleOwnAllocation: the device is held by this resource's own allocation, but no
// container holds it any more (kubelet handed it out again before the release ran):
// that allocation may be released and made anew, so the next tenant gets a reset device.
// A device Allocate gave out moments ago, or that pod-resources shows in use, is not
// stale; nor is anything while kubelet cannot be asked.
func (p *poolPlugin) staleOwnAllocation(ctx context.Context, id string) *iovd.Allocation {
	if p.m.track.recentlyGiven(id, time.Now(), p.m.cfg.ReleaseGrace) {
		return nil
	}
	allocations, err := p.m.client.Allocations(ctx)
	if err != nil {
		return nil
	}
	for i := range allocations {
		c, own := claimOf(allocations[i], p.m.poolResource)
		if !own || c.resource != p.resource || c.device != id || allocations[i].State != "active" {
			continue
		}
		used, err := p.m.inUse(ctx)
		if _, held := used[p.resource][id]; err != nil || held {
			return nil
		}
		return &allocations[i]
	}
	return nil
}

func (p *poolPlugin) reallocate(ctx context.Context, stale *iovd.Allocation, owner, id string) (*iovd.Allocation, error) {
	if err := p.m.client.Release(ctx, stale.ID); err != nil {
		return nil, err
	}
	p.m.cfg.Log.Printf("released %s (%s): handed out again", stale.ID, stale.Owner)
	return p.m.client.AllocateInPool(ctx, owner, p.pool, id)
}

func (p *poolPlugin) rollback(made []*iovd.Allocation) {
	for _, a := range made {
		p.m.track.forget(deviceOf(*a))
		if err := p.m.client.Release(context.Background(), a.ID); err != nil {
			p.m.cfg.Log.Printf("rollback: release %s: %v", a.ID, err)
		}
	}
}

// grpcError maps an iovd failure to the gRPC status kubelet shows in the pod's events.
func grpcError(id string, err error) error {
	if iovd.IsUnreachable(err) {
		return status.Errorf(codes.Unavailable, "allocate %s: %v", id, err)
	}
	var apiErr *iovd.APIError
	if errors.As(err, &apiErr) {
		code := codes.Internal
		switch apiErr.Status {
		case 400, 404:
			code = codes.InvalidArgument
		case 409:
			code = codes.FailedPrecondition
		case 503:
			code = codes.Unavailable
		}
		return status.Errorf(code, "allocate %s: %v", id, err)
	}
	return status.Errorf(codes.Internal, "allocate %s: %v", id, err)
}

// containerResponse: /dev/vfio/vfio and each group's /dev/vfio/N (the host paths are
// below iovd's dev root), PCIDEVICE_<RESOURCE> = the PCI addresses as the SR-IOV
// community's plugin sets it, and, for pools with network settings, what was applied.
func containerResponse(resource string, made []*iovd.Allocation) *dp.ContainerAllocateResponse {
	resp := &dp.ContainerAllocateResponse{Envs: map[string]string{},
		Annotations: map[string]string{}}
	var addresses, ids []string
	net := map[string]interface{}{}
	for i, a := range made {
		hostDir := filepath.Dir(a.VFIOGroup)
		if i == 0 {
			resp.Devices = append(resp.Devices, &dp.DeviceSpec{ContainerPath: "/dev/vfio/vfio",
				HostPath: filepath.Join(hostDir, "vfio"), Permissions: "rw"})
		}
		resp.Devices = append(resp.Devices, &dp.DeviceSpec{
			ContainerPath: fmt.Sprintf("/dev/vfio/%d", a.IOMMUGroup), HostPath: a.VFIOGroup,
			Permissions: "rw"})
		addresses = append(addresses, deviceOf(*a))
		ids = append(ids, a.ID)
		if a.Net != nil {
			net[deviceOf(*a)] = a.Net
		}
	}
	sort.Strings(addresses)
	resp.Envs[envName(resource)] = strings.Join(addresses, ",")
	if len(net) > 0 {
		raw, _ := json.Marshal(net)
		resp.Envs[envName(resource)+"_NET"] = string(raw)
	}
	resp.Annotations["iovd.io/allocations"] = strings.Join(ids, ",")
	return resp
}
