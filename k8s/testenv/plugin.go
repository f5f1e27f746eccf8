package testenv

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"

	dp "iovd.io/k8sapi/deviceplugin"
)

// Plugin is kubelet's side of one registered plugin: what kubelet does right after a
// registration (GetDevicePluginOptions, then ListAndWatch kept open) and the calls it
// makes to admit a pod.
type Plugin struct {
	Client   dp.DevicePluginClient
	Options  *dp.DevicePluginOptions
	Resource string
	conn     *grpc.ClientConn

	mu      sync.Mutex
	devices []*dp.Device
	updates int
	at      time.Time // when the latest list came
	changed chan struct{}
	err     error
}

// Connect does what kubelet does on a Register: dial the endpoint, ask the options,
// open ListAndWatch and keep its latest list.
func (k *Kubelet) Connect(req *dp.RegisterRequest) (*Plugin, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	path := filepath.Join(k.PluginDir, req.Endpoint)
	dialer := func(ctx context.Context, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}
	conn, err := grpc.DialContext(ctx, path, grpc.WithInsecure(), grpc.WithBlock(),
		grpc.WithContextDialer(dialer))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %v", path, err)
	}
	p := &Plugin{Client: dp.NewDevicePluginClient(conn), conn: conn, Resource: req.ResourceName,
		changed: make(chan struct{})}
	if p.Options, err = p.Client.GetDevicePluginOptions(ctx, &dp.Empty{}); err != nil {
		conn.Close()
		return nil, err
	}
	stream, err := p.Client.ListAndWatch(context.Background(), &dp.Empty{})
	if err != nil {
		conn.Close()
		return nil, err
	}
	go p.watch(stream)
	return p, nil
}

func (p *Plugin) watch(stream dp.DevicePlugin_ListAndWatchClient) {
	for {
		resp, err := stream.Recv()
		p.mu.Lock()
		if err != nil {
			p.err = err
		} else {
			p.devices = resp.Devices
			p.updates++
			p.at = time.Now()
		}
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// Close hangs up.
func (p *Plugin) Close() { p.conn.Close() }

// Devices is the latest list and how many lists came.
func (p *Plugin) Devices() ([]*dp.Device, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.devices, p.updates
}

// UpdatedAt is when the latest list came.
func (p *Plugin) UpdatedAt() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.at
}

// WaitFor waits until the latest list satisfies ok; returns the last list either way.
func (p *Plugin) WaitFor(timeout time.Duration, ok func([]*dp.Device) bool) ([]*dp.Device, bool) {
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		devices, updates, changed, err := p.devices, p.updates, p.changed, p.err
		p.mu.Unlock()
		if updates > 0 && ok(devices) {
			return devices, true
		}
		if err != nil {
			return devices, false
		}
		select {
		case <-changed:
		case <-deadline:
			return devices, false
		}
	}
}

// Healthy is the IDs of the Healthy devices of a list.
func Healthy(devices []*dp.Device) []string {
	var ids []string
	for _, d := range devices {
		if d.Health == "Healthy" {
			ids = append(ids, d.ID)
		}
	}
	return ids
}

// Admit is kubelet admitting a pod with one container asking for n devices: it picks
// from the Healthy devices it has not given out, asks GetPreferredAllocation (when
// offered), calls Allocate, and on success records the container in pod-resources.
func (k *Kubelet) Admit(p *Plugin, pod string, n int, taken map[string]bool) (*dp.ContainerAllocateResponse, []string, error) {
	var available []string
	devices, _ := p.Devices()
	for _, id := range Healthy(devices) {
		if !taken[id] {
			available = append(available, id)
		}
	}
	if len(available) < n {
		return nil, nil, fmt.Errorf("%d devices free, %d asked", len(available), n)
	}
	ids := available[:n]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if p.Options.GetPreferredAllocationAvailable {
		pref, err := p.Client.GetPreferredAllocation(ctx, &dp.PreferredAllocationRequest{
			ContainerRequests: []*dp.ContainerPreferredAllocationRequest{
				{AvailableDeviceIDs: available, AllocationSize: int32(n)}}})
		if err != nil {
			return nil, nil, fmt.Errorf("GetPreferredAllocation: %v", err)
		}
		ids = pref.ContainerResponses[0].DeviceIDs
	}
	resp, err := p.Client.Allocate(ctx, &dp.AllocateRequest{
		ContainerRequests: []*dp.ContainerAllocateRequest{{DevicesIds: ids}}})
	if err != nil {
		return nil, ids, err
	}
	k.SetContainer(pod, "main", p.Resource, ids)
	return resp.ContainerResponses[0], ids, nil
}
