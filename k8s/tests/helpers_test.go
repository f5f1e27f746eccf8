// Package tests: the device plugin against the real iovd on a generated tree, driven by
// a fake kubelet making kubelet's calls in kubelet's order.
package tests

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"iovd.io/k8s/iovd"
	"iovd.io/k8s/testenv"
	dp "iovd.io/k8sapi/deviceplugin"
)

const (
	resource = "iovd.io/nvme"
	wait     = 10 * time.Second
)

// start: the lab tree with n VFs in pool nvme, iovd, kubelet, and the plugin registered
// and connected as kubelet connects.
func start(t *testing.T, n int) (*testenv.Env, *testenv.Plugin) {
	t.Helper()
	return startTree(t, testenv.LabTree(n))
}

func startTree(t *testing.T, tree testenv.Tree) (*testenv.Env, *testenv.Plugin) {
	t.Helper()
	programs, err := testenv.ProgramsFromEnv()
	if errors.Is(err, testenv.ErrSkip) {
		t.Skip(err)
	}
	env, err := testenv.Start(programs, tree)
	if err != nil {
		t.Fatalf("environment: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("plugin log:\n%s\niovd log (tail):\n%s", env.Log("plugin.log"), tail(env.Log("iovd.log")))
		}
		env.Close()
	})
	if err := env.StartPlugin(); err != nil {
		t.Fatalf("start plugin: %v", err)
	}
	return env, connect(t, env)
}

func tail(s string) string {
	if len(s) > 4000 {
		return s[len(s)-4000:]
	}
	return s
}

// connect waits for the next registration and connects to it.
func connect(t *testing.T, env *testenv.Env) *testenv.Plugin {
	t.Helper()
	req, err := env.Kubelet.WaitRegistration(wait)
	if err != nil {
		t.Fatalf("registration: %v", err)
	}
	p, err := env.Kubelet.Connect(req)
	if err != nil {
		t.Fatalf("connect to %s: %v", req.Endpoint, err)
	}
	t.Cleanup(p.Close)
	return p
}

func pool(t *testing.T, env *testenv.Env) iovd.Pool {
	t.Helper()
	var p iovd.Pool
	if err := env.Client.Do(context.Background(), "GET", "/v1/pools/"+env.Pool, nil, &p); err != nil {
		t.Fatalf("GET pool: %v", err)
	}
	return p
}

func ids(devices []*dp.Device) []string {
	var out []string
	for _, d := range devices {
		out = append(out, d.ID+"="+d.Health)
	}
	sort.Strings(out)
	return out
}

func has(devices []*dp.Device, id, health string) bool {
	for _, d := range devices {
		if d.ID == id {
			return d.Health == health
		}
	}
	return false
}

func absent(devices []*dp.Device, id string) bool {
	for _, d := range devices {
		if d.ID == id {
			return false
		}
	}
	return true
}

// ownAllocations are iovd's allocations made by the plugin, by device.
func ownAllocations(t *testing.T, env *testenv.Env) map[string]iovd.Allocation {
	t.Helper()
	all, err := env.Client.Allocations(context.Background())
	if err != nil {
		t.Fatalf("GET allocations: %v", err)
	}
	out := map[string]iovd.Allocation{}
	for _, a := range all {
		if len(a.Owner) > 4 && a.Owner[:4] == "k8s:" {
			out[a.Devices[0]] = a
		}
	}
	return out
}

// waitAllocations waits until the plugin's allocations are exactly the devices given.
func waitAllocations(t *testing.T, env *testenv.Env, timeout time.Duration, devices ...string) map[string]iovd.Allocation {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		own := ownAllocations(t, env)
		if len(own) == len(devices) && containsAll(own, devices) {
			return own
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin allocations %v, expected exactly %v", keys(own), devices)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitOwner waits until GET /v1/allocations/{id} of the plugin's allocation of device
// names owner; returns that allocation.
func waitOwner(t *testing.T, env *testenv.Env, timeout time.Duration, device, owner string) iovd.Allocation {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var a iovd.Allocation
		own, ok := ownAllocations(t, env)[device]
		if !ok {
			t.Fatalf("no allocation of %s", device)
		}
		err := env.Client.Do(context.Background(), "GET", "/v1/allocations/"+own.ID, nil, &a)
		if err == nil && a.Owner == owner {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("allocation %s of %s: owner %q (%v), expected %q", own.ID, device, a.Owner, err, owner)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func containsAll(m map[string]iovd.Allocation, devices []string) bool {
	for _, d := range devices {
		if _, ok := m[d]; !ok {
			return false
		}
	}
	return true
}

func keys(m map[string]iovd.Allocation) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func selector(vendor, device string) iovd.Selector {
	return iovd.Selector{VendorID: vendor, DeviceID: device}
}

type vf struct {
	numa int
	pf   string
}

func vfInfo(t *testing.T, env *testenv.Env) map[string]vf {
	t.Helper()
	devices, err := env.Client.Devices(context.Background())
	if err != nil {
		t.Fatalf("GET devices: %v", err)
	}
	out := map[string]vf{}
	for _, d := range devices {
		if d.Physfn != nil && d.NumaNode != nil {
			out[d.Address] = vf{numa: *d.NumaNode, pf: *d.Physfn}
		}
	}
	return out
}

func preferred(t *testing.T, p *testenv.Plugin, available, must []string, n int) []string {
	t.Helper()
	resp, err := p.Client.GetPreferredAllocation(context.Background(), &dp.PreferredAllocationRequest{
		ContainerRequests: []*dp.ContainerPreferredAllocationRequest{{AvailableDeviceIDs: available,
			MustIncludeDeviceIDs: must, AllocationSize: int32(n)}}})
	if err != nil {
		t.Fatalf("GetPreferredAllocation: %v", err)
	}
	got := resp.ContainerResponses[0].DeviceIDs
	if len(got) != n {
		t.Fatalf("preferred %v, expected %d devices", got, n)
	}
	return got
}
