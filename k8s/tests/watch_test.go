package tests

import (
	"context"
	"testing"

	"iovd.io/k8s/testenv"
	dp "iovd.io/k8sapi/deviceplugin"
)

func bg() context.Context { return context.Background() }

// A free VF that vanishes (hot unplug) leaves the list at once; counts follow the pool.
func TestVanishedVFLeavesTheList(t *testing.T) {
	env, p := start(t, 4)
	if _, ok := p.WaitFor(wait, func(d []*dp.Device) bool { return len(d) == 4 }); !ok {
		t.Fatal("no first list of 4")
	}
	if err := env.RemoveDevice("0000:01:00.3"); err != nil {
		t.Fatal(err)
	}
	devices, ok := p.WaitFor(wait, func(d []*dp.Device) bool { return absent(d, "0000:01:00.3") })
	if !ok {
		t.Fatalf("ListAndWatch still lists the vanished 0000:01:00.3: %v", ids(devices))
	}
	pl := pool(t, env)
	if len(devices) != pl.Capacity || len(testenv.Healthy(devices)) != pl.Free {
		t.Fatalf("list %v, pool capacity %d free %d", ids(devices), pl.Capacity, pl.Free)
	}
}

// New VFs appear in the list.
func TestNewVFAppears(t *testing.T) {
	env, p := start(t, 2)
	if _, ok := p.WaitFor(wait, func(d []*dp.Device) bool { return len(d) == 2 }); !ok {
		t.Fatal("no first list of 2")
	}
	body := map[string]int{"num_vfs": 4}
	if err := env.Client.Do(bg(), "PUT", "/v1/devices/0000:01:00.0/sriov", body, nil); err != nil {
		t.Fatalf("4 VFs: %v", err)
	}
	devices, ok := p.WaitFor(wait, func(d []*dp.Device) bool {
		return len(testenv.Healthy(d)) == 4
	})
	if !ok {
		t.Fatalf("ListAndWatch %v, expected 4 Healthy VFs", ids(devices))
	}
}

// A VF taken by another owner (a VM, an operator) is Unhealthy: kubelet must not count it.
func TestVFHeldByAnotherOwnerIsUnhealthy(t *testing.T) {
	env, p := start(t, 4)
	if _, err := env.Client.Allocate(bg(), "vm-1", "0000:01:00.2"); err != nil {
		t.Fatalf("allocate for vm-1: %v", err)
	}
	devices, ok := p.WaitFor(wait, func(d []*dp.Device) bool { return has(d, "0000:01:00.2", "Unhealthy") })
	if !ok {
		t.Fatalf("0000:01:00.2 held by vm-1 still Healthy: %v", ids(devices))
	}
	if pl := pool(t, env); len(testenv.Healthy(devices)) != pl.Free {
		t.Fatalf("%d Healthy, pool free %d", len(testenv.Healthy(devices)), pl.Free)
	}
}

// A VF released by the plugin that iovd cannot reset is quarantined: Unhealthy at once.
func TestQuarantinedVFTurnsUnhealthy(t *testing.T) {
	env, p := start(t, 2)
	p.WaitFor(wait, func(d []*dp.Device) bool { return len(testenv.Healthy(d)) == 2 })
	_, got, err := env.Kubelet.Admit(p, "pod-q", 1, nil)
	if err != nil {
		t.Fatalf("admit: %v", err)
	}
	if err := env.RemoveReset(got[0]); err != nil {
		t.Fatal(err)
	}
	env.Kubelet.RemovePod("pod-q")
	devices, ok := p.WaitFor(wait, func(d []*dp.Device) bool { return has(d, got[0], "Unhealthy") })
	if !ok {
		t.Fatalf("%s released without a reset method is not Unhealthy: %v", got[0], ids(devices))
	}
	waitAllocations(t, env, wait)
	q, err := env.Client.Quarantine(bg())
	if err != nil || len(q) != 1 || q[0].Address != got[0] {
		t.Fatalf("quarantine %v (%v), expected %s", q, err, got[0])
	}
}

// A VF that vanishes under a container stays listed, Unhealthy (its allocation is lost),
// until the pod is gone and the plugin released the allocation; then it leaves.
func TestVanishedAllocatedVFUnhealthyUntilReleased(t *testing.T) {
	env, p := start(t, 2)
	p.WaitFor(wait, func(d []*dp.Device) bool { return len(testenv.Healthy(d)) == 2 })
	_, got, err := env.Kubelet.Admit(p, "pod-v", 1, nil)
	if err != nil {
		t.Fatalf("admit: %v", err)
	}
	if err := env.RemoveDevice(got[0]); err != nil {
		t.Fatal(err)
	}
	devices, ok := p.WaitFor(wait, func(d []*dp.Device) bool { return has(d, got[0], "Unhealthy") })
	if !ok {
		t.Fatalf("%s vanished under pod-v: list %v, expected it Unhealthy", got[0], ids(devices))
	}
	if a := ownAllocations(t, env)[got[0]]; a.State != "lost" {
		t.Fatalf("allocation of the vanished %s: %+v, expected lost", got[0], a)
	}
	env.Kubelet.RemovePod("pod-v")
	devices, ok = p.WaitFor(wait, func(d []*dp.Device) bool { return absent(d, got[0]) })
	if !ok {
		t.Fatalf("pod-v gone, list %v still has %s", ids(devices), got[0])
	}
	waitAllocations(t, env, wait)
}
