package tests

import (
	"strings"
	"testing"
	"time"

	"iovd.io/k8s/testenv"
	dp "iovd.io/k8sapi/deviceplugin"
)

// The allocation lives while its pod does, owned by the pod's container once
// pod-resources names it, and is released (the VF back to Healthy and free) once the pod
// is gone and the grace period over.
func TestReleaseAfterPodIsGone(t *testing.T) {
	env, p := start(t, 2)
	p.WaitFor(wait, func(d []*dp.Device) bool { return len(testenv.Healthy(d)) == 2 })
	_, got, err := env.Kubelet.Admit(p, "pod-r", 1, nil)
	if err != nil {
		t.Fatalf("admit: %v", err)
	}
	a := waitOwner(t, env, wait, got[0], "k8s:default/pod-r/main")
	if a.State != "active" || a.Device != got[0] {
		t.Fatalf("relabelled allocation %+v, expected active and device %s", a, got[0])
	}
	time.Sleep(2 * time.Second) // twice the grace period: the pod still holds it
	waitAllocations(t, env, time.Second, got[0])
	if devices, _ := p.Devices(); !has(devices, got[0], "Healthy") {
		t.Fatalf("%s held by its pod is not Healthy: %v", got[0], ids(devices))
	}
	if log := env.Log("plugin.log"); !strings.Contains(log, got[0]) ||
		!strings.Contains(log, "held by default/pod-r/main") {
		t.Fatalf("the plugin never said which container holds %s; log:\n%s", got[0], log)
	}
	env.Kubelet.RemovePod("pod-r")
	waitAllocations(t, env, wait)
	if pl := pool(t, env); pl.Free != 2 {
		t.Fatalf("pool free %d after the release, expected 2", pl.Free)
	}
	devices, ok := p.WaitFor(wait, func(d []*dp.Device) bool { return has(d, got[0], "Healthy") })
	if !ok {
		t.Fatalf("released %s not Healthy: %v", got[0], ids(devices))
	}
}
