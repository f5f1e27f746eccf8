package tests

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"iovd.io/k8s/testenv"
	dp "iovd.io/k8sapi/deviceplugin"
)

// kubelet restarts (sockets removed, kubelet.sock anew): the plugin registers again and
// nothing is released, the pod being in kubelet's checkpoint.
func TestKubeletRestart(t *testing.T) {
	env, p := start(t, 2)
	p.WaitFor(wait, func(d []*dp.Device) bool { return len(testenv.Healthy(d)) == 2 })
	_, got, err := env.Kubelet.Admit(p, "pod-k", 1, nil)
	if err != nil {
		t.Fatalf("admit: %v", err)
	}
	if err := env.Kubelet.Restart(); err != nil {
		t.Fatalf("kubelet restart: %v", err)
	}
	again := connect(t, env)
	if again.Resource != resource {
		t.Fatalf("registered again as %q", again.Resource)
	}
	devices, ok := again.WaitFor(wait, func(d []*dp.Device) bool { return len(testenv.Healthy(d)) == 2 })
	if !ok {
		t.Fatalf("after the restart ListAndWatch %v, expected 2 Healthy", ids(devices))
	}
	time.Sleep(2 * time.Second)
	waitAllocations(t, env, time.Second, got[0])
}

// The plugin dies (SIGKILL) with an allocation outstanding and comes back: iovd still
// holds it, the plugin recognises it by its owner (the pod's container), lists it
// Healthy, keeps it while the pod lives, releases it after.
func TestPluginRestartKeepsAllocations(t *testing.T) {
	env, p := start(t, 2)
	p.WaitFor(wait, func(d []*dp.Device) bool { return len(testenv.Healthy(d)) == 2 })
	_, got, err := env.Kubelet.Admit(p, "pod-p", 1, nil)
	if err != nil {
		t.Fatalf("admit: %v", err)
	}
	waitOwner(t, env, wait, got[0], "k8s:default/pod-p/main")
	env.KillPlugin()
	waitAllocations(t, env, time.Second, got[0])
	if err := env.StartPlugin(); err != nil {
		t.Fatal(err)
	}
	again := connect(t, env)
	devices, ok := again.WaitFor(wait, func(d []*dp.Device) bool { return len(testenv.Healthy(d)) == 2 })
	if !ok {
		t.Fatalf("restarted plugin lists %v, expected 2 Healthy", ids(devices))
	}
	time.Sleep(2 * time.Second)
	waitAllocations(t, env, time.Second, got[0])
	waitOwner(t, env, time.Second, got[0], "k8s:default/pod-p/main")
	env.Kubelet.RemovePod("pod-p")
	waitAllocations(t, env, wait)
}

// An allocation in the first owner form (k8s:RESOURCE:DEVICE: assigned, pod not yet
// known), as a plugin killed before its reconcile left it, is the plugin's: named after
// its container once pod-resources shows it, released once the pod is gone.
func TestAssignedOwnerFormIsNamedThenReleased(t *testing.T) {
	env, p := start(t, 2)
	p.WaitFor(wait, func(d []*dp.Device) bool { return len(testenv.Healthy(d)) == 2 })
	dev := "0000:01:00.1"
	if _, err := env.Client.AllocateInPool(bg(), "k8s:"+resource+":"+dev, "nvme", dev); err != nil {
		t.Fatalf("allocate as the plugin does: %v", err)
	}
	env.Kubelet.SetContainer("pod-o", "main", resource, []string{dev})
	waitOwner(t, env, wait, dev, "k8s:default/pod-o/main")
	if devices, _ := p.WaitFor(wait, func(d []*dp.Device) bool { return has(d, dev, "Healthy") }); !has(devices, dev, "Healthy") {
		t.Fatalf("%s held by the plugin's allocation not Healthy: %v", dev, ids(devices))
	}
	env.Kubelet.RemovePod("pod-o")
	waitAllocations(t, env, wait)
}

// iovd goes down: every device Unhealthy, Allocate fails with Unavailable naming iovd;
// iovd back: Healthy again, its allocations kept.
func TestIovdDownAndBack(t *testing.T) {
	env, p := start(t, 2)
	p.WaitFor(wait, func(d []*dp.Device) bool { return len(testenv.Healthy(d)) == 2 })
	_, got, err := env.Kubelet.Admit(p, "pod-d", 1, nil)
	if err != nil {
		t.Fatalf("admit: %v", err)
	}
	env.StopIovd()
	devices, ok := p.WaitFor(wait, func(d []*dp.Device) bool {
		return len(d) == 2 && len(testenv.Healthy(d)) == 0
	})
	if !ok {
		t.Fatalf("iovd down, ListAndWatch %v, expected 2 Unhealthy", ids(devices))
	}
	var free string
	for _, d := range devices {
		if d.ID != got[0] {
			free = d.ID
		}
	}
	_, err = p.Client.Allocate(bg(), &dp.AllocateRequest{
		ContainerRequests: []*dp.ContainerAllocateRequest{{DevicesIds: []string{free}}}})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "iovd unreachable") {
		t.Fatalf("Allocate with iovd down: %v, expected Unavailable naming iovd", err)
	}
	if err := env.StartIovd(); err != nil {
		t.Fatal(err)
	}
	devices, ok = p.WaitFor(wait, func(d []*dp.Device) bool { return len(testenv.Healthy(d)) == 2 })
	if !ok {
		t.Fatalf("iovd back, ListAndWatch %v, expected 2 Healthy", ids(devices))
	}
	waitAllocations(t, env, time.Second, got[0])
	if _, _, err := env.Kubelet.Admit(p, "pod-e", 1, map[string]bool{got[0]: true}); err != nil {
		t.Fatalf("admit after recovery: %v", err)
	}
}
