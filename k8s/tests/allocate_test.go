package tests

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"iovd.io/k8s/iovd"
	"iovd.io/k8s/testenv"
	dp "iovd.io/k8sapi/deviceplugin"
)

// Allocate answers with the VFIO nodes, PCIDEVICE_IOVD_IO_NVME and makes the iovd
// allocation, owned by the resource and device until pod-resources names the container.
func TestAllocateAnswersDeviceNodesAndEnv(t *testing.T) {
	env, p := start(t, 2)
	p.WaitFor(wait, func(d []*dp.Device) bool { return len(testenv.Healthy(d)) == 2 })
	resp, got, err := env.Kubelet.Admit(p, "pod-a", 1, nil)
	if err != nil {
		t.Fatalf("admit: %v", err)
	}
	own := waitAllocations(t, env, wait, got[0])
	a := own[got[0]]
	// The reconcile loop may have named the container already.
	if (a.Owner != "k8s:iovd.io/nvme:"+got[0] && a.Owner != "k8s:default/pod-a/main") ||
		a.State != "active" {
		t.Fatalf("allocation %+v: expected owner k8s:iovd.io/nvme:%s (or the container), active", a, got[0])
	}
	waitOwner(t, env, wait, got[0], "k8s:default/pod-a/main")
	if v := resp.Envs["PCIDEVICE_IOVD_IO_NVME"]; v != got[0] {
		t.Fatalf("PCIDEVICE_IOVD_IO_NVME=%q, expected %s", v, got[0])
	}
	dev := filepath.Join(env.Tree, "dev", "vfio")
	want := map[string]string{"/dev/vfio/vfio": filepath.Join(dev, "vfio"),
		filepath.Join("/dev/vfio", filepath.Base(a.VFIOGroup)): a.VFIOGroup}
	if len(resp.Devices) != 2 {
		t.Fatalf("devices %v, expected /dev/vfio/vfio and the group", resp.Devices)
	}
	for _, d := range resp.Devices {
		if want[d.ContainerPath] != d.HostPath || d.Permissions != "rw" {
			t.Fatalf("device %+v, expected one of %v with rw", d, want)
		}
	}
}

// The last free VF asked by two containers at once: exactly one gets it.
func TestLastFreeVFToTwoContainersAtOnce(t *testing.T) {
	env, p := start(t, 2)
	p.WaitFor(wait, func(d []*dp.Device) bool { return len(testenv.Healthy(d)) == 2 })
	if _, _, err := env.Kubelet.Admit(p, "pod-first", 1, map[string]bool{"0000:01:00.2": true}); err != nil {
		t.Fatalf("admit the first VF: %v", err)
	}
	last := "0000:01:00.2"
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = p.Client.Allocate(bg(), &dp.AllocateRequest{
				ContainerRequests: []*dp.ContainerAllocateRequest{{DevicesIds: []string{last}}}})
		}(i)
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("two Allocates of %s: %v and %v, expected exactly one success", last, errs[0], errs[1])
	}
	failed := errs[0]
	if failed == nil {
		failed = errs[1]
	}
	if status.Code(failed) != codes.FailedPrecondition {
		t.Fatalf("the loser got %v, expected FailedPrecondition", failed)
	}
	waitAllocations(t, env, wait, "0000:01:00.1", last)
}

// Bad input from kubelet gets a gRPC error and the plugin goes on serving.
func TestBadInputGetsErrors(t *testing.T) {
	_, p := start(t, 2)
	p.WaitFor(wait, func(d []*dp.Device) bool { return len(d) == 2 })
	cases := []struct {
		name string
		req  *dp.AllocateRequest
	}{
		{"no container", &dp.AllocateRequest{}},
		{"no device", &dp.AllocateRequest{ContainerRequests: []*dp.ContainerAllocateRequest{{}}}},
		{"unknown id", &dp.AllocateRequest{ContainerRequests: []*dp.ContainerAllocateRequest{
			{DevicesIds: []string{"0000:99:00.0"}}}}},
		{"not an address", &dp.AllocateRequest{ContainerRequests: []*dp.ContainerAllocateRequest{
			{DevicesIds: []string{"../../etc"}}}}},
		{"twice", &dp.AllocateRequest{ContainerRequests: []*dp.ContainerAllocateRequest{
			{DevicesIds: []string{"0000:01:00.1"}}, {DevicesIds: []string{"0000:01:00.1"}}}}},
	}
	for _, c := range cases {
		if _, err := p.Client.Allocate(bg(), c.req); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("Allocate, %s: %v, expected InvalidArgument", c.name, err)
		}
	}
	prefs := []*dp.ContainerPreferredAllocationRequest{
		{AvailableDeviceIDs: []string{"0000:01:00.1"}, AllocationSize: 2},
		{AvailableDeviceIDs: []string{"0000:01:00.1"}, AllocationSize: 0},
		{AvailableDeviceIDs: []string{"bogus"}, AllocationSize: 1},
		{AvailableDeviceIDs: []string{"0000:01:00.1"}, MustIncludeDeviceIDs: []string{"0000:01:00.2"},
			AllocationSize: 1},
	}
	for _, c := range prefs {
		req := &dp.PreferredAllocationRequest{ContainerRequests: []*dp.ContainerPreferredAllocationRequest{c}}
		if _, err := p.Client.GetPreferredAllocation(bg(), req); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("GetPreferredAllocation %+v: %v, expected InvalidArgument", c, err)
		}
	}
	if _, err := p.Client.GetDevicePluginOptions(bg(), &dp.Empty{}); err != nil {
		t.Fatalf("plugin gone after bad input: %v", err)
	}
	if _, err := p.Client.PreStartContainer(bg(), &dp.PreStartContainerRequest{}); err != nil {
		t.Fatalf("PreStartContainer: %v", err)
	}
}

// GetPreferredAllocation: one NUMA node, spread over PFs (a generated tree: 4 PFs, PF b
// on NUMA node b%2, 2 VFs each).
func TestPreferredAllocationNumaAndSpread(t *testing.T) {
	tree := testenv.Tree{FixtureArgs: []string{"--pfs", "4", "--vfs-per-pf", "2", "--iommu"},
		Pool: "vf", Selector: selector("8086", "154c")}
	env, p := startTree(t, tree)
	devices, ok := p.WaitFor(wait, func(d []*dp.Device) bool { return len(d) == 8 })
	if !ok {
		t.Fatalf("list %v, expected 8 VFs", ids(devices))
	}
	info := vfInfo(t, env)
	var all []string
	for _, d := range devices {
		all = append(all, d.ID)
	}
	got := preferred(t, p, all, nil, 2)
	if info[got[0]].numa != info[got[1]].numa || info[got[0]].pf == info[got[1]].pf {
		t.Fatalf("preferred %v (%v, %v): expected one NUMA node, two PFs", got, info[got[0]], info[got[1]])
	}
	var must string
	for _, id := range all {
		if info[id].numa == 1 {
			must = id
			break
		}
	}
	got = preferred(t, p, all, []string{must}, 2)
	if got[0] != must || info[got[1]].numa != 1 || info[got[1]].pf == info[must].pf {
		t.Fatalf("preferred %v with %s required: expected it first, then NUMA 1 on another PF", got, must)
	}
}

// Allocate counts in the pool: GET /v1/pools shows the plugin's allocation there (its
// counts match what ListAndWatch lists), and the pool cannot be deleted while a pod holds
// one of its VFs, as for any other allocation from it.
func TestAllocationCountsInItsPool(t *testing.T) {
	env, p := start(t, 2)
	p.WaitFor(wait, func(d []*dp.Device) bool { return len(testenv.Healthy(d)) == 2 })
	_, got, err := env.Kubelet.Admit(p, "pod-p", 1, nil)
	if err != nil {
		t.Fatalf("admit: %v", err)
	}
	a := waitAllocations(t, env, wait, got[0])[got[0]]
	if a.Pool == nil || *a.Pool != env.Pool {
		t.Fatalf("allocation %+v: pool is not %s", a, env.Pool)
	}
	devices, _ := p.WaitFor(wait, func(d []*dp.Device) bool { return len(d) == 2 })
	pl := pool(t, env)
	if pl.Capacity != len(devices) || pl.Allocations != 1 ||
		pl.Free != len(testenv.Healthy(devices))-pl.Allocations {
		t.Fatalf("pool capacity %d free %d allocations %d; the plugin lists %v with 1 allocated",
			pl.Capacity, pl.Free, pl.Allocations, ids(devices))
	}
	err = env.Client.Do(bg(), "DELETE", "/v1/pools/"+env.Pool, nil, nil)
	var apiErr *iovd.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 409 || apiErr.Code != "pool_in_use" {
		t.Fatalf("DELETE pool %s while pod-p holds %s: %v, expected 409 pool_in_use", env.Pool, got[0], err)
	}
}
