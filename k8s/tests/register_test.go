package tests

import (
	"strings"
	"testing"

	dp "iovd.io/k8sapi/deviceplugin"
)

// Registration as kubelet sees it, then the first ListAndWatch list: every VF of the
// pool, Healthy, in the counts iovd gives for the pool.
func TestRegistrationAndFirstList(t *testing.T) {
	env, p := start(t, 4)
	if p.Resource != resource {
		t.Fatalf("registered resource %q, expected %q", p.Resource, resource)
	}
	if !p.Options.GetPreferredAllocationAvailable || p.Options.PreStartRequired {
		t.Fatalf("options %+v: expected preferred allocation offered, no pre-start", p.Options)
	}
	devices, ok := p.WaitFor(wait, func(d []*dp.Device) bool { return len(d) == 4 })
	if !ok {
		t.Fatalf("ListAndWatch %v, expected the 4 VFs", ids(devices))
	}
	for _, d := range devices {
		if d.Health != "Healthy" || !strings.HasPrefix(d.ID, "0000:01:00.") {
			t.Fatalf("device %s=%s, expected a Healthy VF of 0000:01:00.0", d.ID, d.Health)
		}
	}
	pl := pool(t, env)
	if pl.Capacity != len(devices) || pl.Free != len(devices) {
		t.Fatalf("pool capacity %d free %d, ListAndWatch %d Healthy", pl.Capacity, pl.Free, len(devices))
	}
}

// A second pool appearing in iovd becomes a second resource, registered at once.
func TestNewPoolRegistersAnotherResource(t *testing.T) {
	env, _ := start(t, 4)
	pool := map[string]interface{}{"name": "two", "selector": map[string]interface{}{
		"addresses": []string{"0000:01:00.3", "0000:01:00.4"}}}
	if err := env.Client.Do(bg(), "POST", "/v1/pools", pool, nil); err != nil {
		t.Fatalf("define pool two: %v", err)
	}
	second := connect(t, env)
	if second.Resource != "iovd.io/two" {
		t.Fatalf("second registration %q, expected iovd.io/two", second.Resource)
	}
	devices, ok := second.WaitFor(wait, func(d []*dp.Device) bool { return len(d) == 2 })
	if !ok {
		t.Fatalf("iovd.io/two lists %v, expected 0000:01:00.3 and .4", ids(devices))
	}
}
