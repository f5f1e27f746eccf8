package tests

import (
	"bytes"
	"sort"
	"testing"

	"github.com/golang/protobuf/proto"
	"google.golang.org/grpc"

	"iovd.io/k8s/testenv"
	dp "iovd.io/k8sapi/deviceplugin"
	pr "iovd.io/k8sapi/podresources"
)

// The method paths kubelet calls and serves: "/package.Service/Method" is all gRPC
// matches on, so these must be kubelet's exactly.
func TestServiceNamesAreKubelets(t *testing.T) {
	s := grpc.NewServer()
	k := &testenv.Kubelet{}
	dp.RegisterRegistrationServer(s, k)
	pr.RegisterPodResourcesListerServer(s, k)
	dp.RegisterDevicePluginServer(s, &dp.UnimplementedDevicePluginServer{})
	want := map[string][]string{
		"v1beta1.Registration": {"Register"},
		"v1beta1.DevicePlugin": {"Allocate", "GetDevicePluginOptions", "GetPreferredAllocation",
			"ListAndWatch", "PreStartContainer"},
		"v1.PodResourcesLister": {"List"},
	}
	info := s.GetServiceInfo()
	for service, methods := range want {
		var got []string
		for _, m := range info[service].Methods {
			got = append(got, m.Name)
		}
		sort.Strings(got)
		if !equal(got, methods) {
			t.Errorf("service %s has methods %v, kubelet's has %v", service, got, methods)
		}
	}
}

// Bytes as the public API's field numbers and types make them (protobuf encoding: tag =
// field << 3 | wire type; 2 = length-delimited, 0 = varint), so a renumbered or retyped
// field fails here.
func TestMessageEncodingIsKubelets(t *testing.T) {
	cases := []struct {
		name string
		msg  proto.Message
		want []byte
	}{
		{"Device", &dp.Device{ID: "a", Health: "Healthy",
			Topology: &dp.TopologyInfo{Nodes: []*dp.NUMANode{{ID: 1}}}},
			[]byte("\x0a\x01a\x12\x07Healthy\x1a\x04\x0a\x02\x08\x01")},
		{"RegisterRequest", &dp.RegisterRequest{Version: "v", Endpoint: "e", ResourceName: "r",
			Options: &dp.DevicePluginOptions{GetPreferredAllocationAvailable: true}},
			[]byte("\x0a\x01v\x12\x01e\x1a\x01r\x22\x02\x10\x01")},
		{"ContainerAllocateRequest", &dp.ContainerAllocateRequest{DevicesIds: []string{"x"}},
			[]byte("\x0a\x01x")},
		{"ContainerAllocateResponse", &dp.ContainerAllocateResponse{Envs: map[string]string{"K": "V"},
			Devices: []*dp.DeviceSpec{{ContainerPath: "c", HostPath: "h", Permissions: "rw"}}},
			[]byte("\x0a\x06\x0a\x01K\x12\x01V\x1a\x0a\x0a\x01c\x12\x01h\x1a\x02rw")},
		{"ContainerPreferredAllocationRequest", &dp.ContainerPreferredAllocationRequest{
			AvailableDeviceIDs: []string{"a"}, MustIncludeDeviceIDs: []string{"b"}, AllocationSize: 2},
			[]byte("\x0a\x01a\x12\x01b\x18\x02")},
		{"PodResources", &pr.PodResources{Name: "p", Namespace: "n", Containers: []*pr.ContainerResources{
			{Name: "c", Devices: []*pr.ContainerDevices{{ResourceName: "r", DeviceIds: []string{"d"}}}}}},
			[]byte("\x0a\x01p\x12\x01n\x1a\x0b\x0a\x01c\x12\x06\x0a\x01r\x12\x01d")},
	}
	for _, c := range cases {
		got, err := proto.Marshal(c.msg)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !bytes.Equal(got, c.want) {
			t.Errorf("%s encodes as % x, the API's field numbers give % x", c.name, got, c.want)
		}
	}
}
