package plugin

import (
	"encoding/json"
	"testing"

	"iovd.io/k8s/iovd"
	dp "iovd.io/k8sapi/deviceplugin"
)

func TestEnvNameIsTheSriovCommunitys(t *testing.T) {
	cases := map[string]string{
		"iovd.io/nvme-vfs":     "PCIDEVICE_IOVD_IO_NVME_VFS",
		"intel.com/sriov_net":  "PCIDEVICE_INTEL_COM_SRIOV_NET",
		"example.org/Pool.2-a": "PCIDEVICE_EXAMPLE_ORG_POOL_2_A",
	}
	for resource, want := range cases {
		if got := envName(resource); got != want {
			t.Errorf("envName(%q) = %q, expected %q", resource, got, want)
		}
	}
}

func TestOwnerRoundTrip(t *testing.T) {
	owner := ownerFor("iovd.io/nvme", "0000:01:00.1")
	resource, device, ok := parseOwner(owner)
	if !ok || resource != "iovd.io/nvme" || device != "0000:01:00.1" {
		t.Fatalf("parseOwner(%q) = %q %q %v", owner, resource, device, ok)
	}
	for _, other := range []string{"vm-1", "k8s:", "k8s:iovd.io/nvme", "k8s::0000:01:00.1", "k8s:x:"} {
		if _, _, ok := parseOwner(other); ok {
			t.Errorf("parseOwner(%q) took another owner's allocation for the plugin's", other)
		}
	}
}

// The owner naming the container: recognised with its pool's resource and iovd's device,
// never mistaken for the resource:device form or another owner's label.
func TestHolderOwnerIsThePlugins(t *testing.T) {
	pool, vm := "p", "vm-id"
	resourceOf := func(p string) string {
		if p == pool {
			return "iovd.io/p"
		}
		return ""
	}
	a := iovd.Allocation{ID: "a-1", Owner: holderOwner("default/app/main"), Pool: &pool,
		Device: "0000:01:00.2"}
	c, ok := claimOf(a, resourceOf)
	if !ok || c.resource != "iovd.io/p" || c.device != "0000:01:00.2" || c.holder != "default/app/main" {
		t.Fatalf("claimOf(%q) = %+v %v", a.Owner, c, ok)
	}
	old := iovd.Allocation{ID: "a-2", Owner: ownerFor("iovd.io/p", "0000:01:00.3"), Pool: &pool}
	if c, ok := claimOf(old, resourceOf); !ok || c.device != "0000:01:00.3" || c.holder != "" {
		t.Fatalf("claimOf(%q) = %+v %v: the first form is assigned, pod not yet known", old.Owner, c, ok)
	}
	other := "q"
	for _, b := range []iovd.Allocation{
		{Owner: "k8s:default/app", Pool: &pool, Device: "0000:01:00.2"},
		{Owner: "k8s:a/b/c/d", Pool: &pool, Device: "0000:01:00.2"},
		{Owner: "k8s:default//main", Pool: &pool, Device: "0000:01:00.2"},
		{Owner: "default/app/main", Pool: &pool, Device: "0000:01:00.2"},
		{Owner: holderOwner("default/app/main"), Device: "0000:01:00.2"},
		{Owner: holderOwner("default/app/main"), Pool: &other, Device: "0000:01:00.2"},
		{Owner: holderOwner("default/app/main"), Pool: &pool, Device: "0000:01:00.2", VM: &vm},
	} {
		if c, ok := claimOf(b, resourceOf); ok {
			t.Errorf("claimOf(%+v) = %+v: not the plugin's", b, c)
		}
	}
}

// The network settings iovd applied reach the container, by address.
func TestContainerResponseCarriesNetSettings(t *testing.T) {
	net := map[string]any{"vf": "0000:03:10.2", "applied": map[string]any{"vlan": 42.0}}
	made := []*iovd.Allocation{
		{ID: "a-2", Owner: ownerFor("iovd.io/net", "0000:03:10.2"), IOMMUGroup: 22,
			VFIOGroup: "/dev/vfio/22", Net: &net},
		{ID: "a-1", Owner: ownerFor("iovd.io/net", "0000:03:10.0"), IOMMUGroup: 21,
			VFIOGroup: "/dev/vfio/21"},
	}
	resp := containerResponse("iovd.io/net", made)
	if got := resp.Envs["PCIDEVICE_IOVD_IO_NET"]; got != "0000:03:10.0,0000:03:10.2" {
		t.Fatalf("PCIDEVICE_IOVD_IO_NET=%q", got)
	}
	var nets map[string]map[string]any
	if err := json.Unmarshal([]byte(resp.Envs["PCIDEVICE_IOVD_IO_NET_NET"]), &nets); err != nil {
		t.Fatalf("PCIDEVICE_IOVD_IO_NET_NET=%q: %v", resp.Envs["PCIDEVICE_IOVD_IO_NET_NET"], err)
	}
	applied, _ := nets["0000:03:10.2"]["applied"].(map[string]any)
	if len(nets) != 1 || applied["vlan"] != 42.0 {
		t.Fatalf("net settings %v, expected vlan 42 for 0000:03:10.2 only", nets)
	}
	paths := map[string]string{}
	for _, d := range resp.Devices {
		paths[d.ContainerPath] = d.HostPath
	}
	if len(paths) != 3 || paths["/dev/vfio/vfio"] != "/dev/vfio/vfio" ||
		paths["/dev/vfio/21"] != "/dev/vfio/21" || paths["/dev/vfio/22"] != "/dev/vfio/22" {
		t.Fatalf("devices %v: expected the container node once and both groups", paths)
	}
	if resp.Annotations["iovd.io/allocations"] != "a-2,a-1" {
		t.Fatalf("annotation %q", resp.Annotations["iovd.io/allocations"])
	}
}

func intp(v int) *int       { return &v }
func strp(v string) *string { return &v }

func TestSelectorMatchesAsIovdDoes(t *testing.T) {
	vf := iovd.Device{Address: "0000:01:00.1", VendorID: "1b36", DeviceID: "0010", Class: "010802",
		Physfn: strp("0000:01:00.0"), NumaNode: intp(1), Driver: strp("nvme")}
	yes := []iovd.Selector{{}, {VendorID: "1b36", DeviceID: "0010"}, {Class: "01"}, {Class: "0108"},
		{Physfn: "0000:01:00.0"}, {NumaNode: intp(1)}, {Driver: "nvme"},
		{Addresses: []string{"0000:01:00.1"}}}
	no := []iovd.Selector{{VendorID: "8086"}, {Class: "02"}, {Physfn: "0000:02:00.0"},
		{NumaNode: intp(0)}, {Driver: "vfio-pci"}, {Addresses: []string{"0000:01:00.2"}}}
	for _, s := range yes {
		if !selectorMatches(s, vf) {
			t.Errorf("selector %+v does not match %s", s, vf.Address)
		}
	}
	for _, s := range no {
		if selectorMatches(s, vf) {
			t.Errorf("selector %+v matches %s", s, vf.Address)
		}
	}
	held := vf
	held.Driver, held.Allocation = strp("vfio-pci"), &iovd.Held{ID: "a-1", State: "active"}
	if !selectorMatches(iovd.Selector{Driver: "nvme"}, held) {
		t.Error("a held VF (on vfio-pci by iovd) left its pool of driver nvme")
	}
}

// Health as kubelet must see it.
func TestDeviceHealth(t *testing.T) {
	free := iovd.Device{Address: "0000:01:00.1"}
	own := iovd.Device{Address: "0000:01:00.2", Allocation: &iovd.Held{Owner: ownerFor("iovd.io/p", "0000:01:00.2"), State: "active"}}
	vm := iovd.Device{Address: "0000:01:00.3", Allocation: &iovd.Held{Owner: "vm-1", State: "active"}}
	quarantined := iovd.Device{Address: "0000:01:00.4", Allocation: &iovd.Held{State: "quarantined"}}
	pool, other := "p", "q"
	named := iovd.Device{Address: "0000:01:00.5", Allocation: &iovd.Held{ID: "a-5", Owner: "k8s:ns/pod/c", State: "active"}}
	elsewhere := iovd.Device{Address: "0000:01:00.6", Allocation: &iovd.Held{ID: "a-6", Owner: "k8s:ns/pod/c", State: "active"}}
	allocations := []iovd.Allocation{
		{ID: "a-5", Owner: "k8s:ns/pod/c", Pool: &pool, Device: named.Address, State: "active"},
		{ID: "a-6", Owner: "k8s:ns/pod/c", Pool: &other, Device: elsewhere.Address, State: "active"},
	}
	s := newSnapshot(nil, []iovd.Device{free, own, vm, quarantined, named, elsewhere}, nil, allocations)
	want := map[string]string{free.Address: healthy, own.Address: healthy, vm.Address: unhealthy,
		quarantined.Address: unhealthy, named.Address: healthy, elsewhere.Address: unhealthy}
	for _, d := range s.devices {
		if got := s.deviceHealth(d, pool, "iovd.io/p"); got != want[d.Address] {
			t.Errorf("%s: %s, expected %s", d.Address, got, want[d.Address])
		}
	}
	if got := allUnhealthy([]*dp.Device{{ID: "x", Health: healthy}}); got[0].Health != unhealthy {
		t.Error("iovd down left a device Healthy")
	}
}
