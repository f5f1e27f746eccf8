package plugin

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"

	dp "iovd.io/k8sapi/deviceplugin"
)

// poolPlugin is the DevicePlugin service of one pool, on its own socket in kubelet's
// device plugin directory, registered as one extended resource.
type poolPlugin struct {
	dp.UnimplementedDevicePluginServer
	m        *Manager
	pool     string
	resource string
	endpoint string // socket file name, relative to the plugin directory

	mu          sync.Mutex
	devices     []*dp.Device
	changed     chan struct{} // closed and replaced on every change of devices
	server      *grpc.Server
	stopped     chan struct{} // closed by stop(): ends every ListAndWatch
	registered  bool
	registering bool // one Register call at a time
}

func newPoolPlugin(m *Manager, pool, resource string) *poolPlugin {
	return &poolPlugin{m: m, pool: pool, resource: resource, endpoint: "iovd-" + pool + ".sock",
		changed: make(chan struct{}), stopped: make(chan struct{})}
}

func (p *poolPlugin) socketPath() string { return filepath.Join(p.m.cfg.PluginDir, p.endpoint) }

// start serves on the socket (a stale one is replaced) and registers with kubelet; a
// kubelet that is not there yet is retried by the kubelet watcher.
func (p *poolPlugin) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.serveLocked(); err != nil {
		p.m.cfg.Log.Printf("%s: cannot serve on %s: %v", p.resource, p.socketPath(), err)
		return
	}
	go p.register()
}

func (p *poolPlugin) serveLocked() error {
	if p.server != nil {
		p.server.Stop()
		p.server = nil
	}
	path := p.socketPath()
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	s := grpc.NewServer()
	dp.RegisterDevicePluginServer(s, p)
	p.server = s
	p.registered = false
	go s.Serve(l) //nolint:errcheck // ends when the server is stopped
	return nil
}

// restart: kubelet came back (it removes every plugin socket when it starts), so serve
// again on a fresh socket and register again.
func (p *poolPlugin) restart() {
	p.m.cfg.Log.Printf("%s: kubelet restarted: serving and registering again", p.resource)
	p.start()
}

func (p *poolPlugin) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.stopped:
	default:
		close(p.stopped)
	}
	if p.server != nil {
		p.server.Stop()
		p.server = nil
	}
	os.Remove(p.socketPath())
}

// register calls kubelet's Registration.Register (device plugin API v1beta1).
func (p *poolPlugin) register() {
	p.mu.Lock()
	busy := p.registering
	p.registering = true
	p.mu.Unlock()
	if busy {
		return
	}
	defer func() {
		p.mu.Lock()
		p.registering = false
		p.mu.Unlock()
	}()
	kubelet := filepath.Join(p.m.cfg.PluginDir, "kubelet.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := dialUnix(ctx, kubelet)
	if err != nil {
		p.m.cfg.Log.Printf("%s: kubelet not reachable at %s: %v", p.resource, kubelet, err)
		return
	}
	defer conn.Close()
	req := &dp.RegisterRequest{Version: "v1beta1", Endpoint: p.endpoint, ResourceName: p.resource,
		Options: &dp.DevicePluginOptions{GetPreferredAllocationAvailable: true}}
	if _, err := dp.NewRegistrationClient(conn).Register(ctx, req); err != nil {
		p.m.cfg.Log.Printf("%s: registration refused: %v", p.resource, err)
		return
	}
	p.mu.Lock()
	p.registered = true
	p.mu.Unlock()
	p.m.cfg.Log.Printf("%s: registered with kubelet (endpoint %s)", p.resource, p.endpoint)
}

func (p *poolPlugin) isRegistered() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.registered
}

// dialUnix opens a gRPC client connection on a Unix socket, waiting until it is up.
func dialUnix(ctx context.Context, path string) (*grpc.ClientConn, error) {
	dialer := func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", strings.TrimPrefix(addr, "unix:"))
	}
	return grpc.DialContext(ctx, path, grpc.WithInsecure(), grpc.WithBlock(),
		grpc.WithContextDialer(dialer))
}

// update replaces the device list; ListAndWatch streams send it when it differs.
func (p *poolPlugin) update(devices []*dp.Device) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.devices != nil && sameList(p.devices, devices) {
		return
	}
	if devices == nil {
		devices = []*dp.Device{}
	}
	p.devices = devices
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *poolPlugin) current() []*dp.Device {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.devices
}

func (p *poolPlugin) watch() ([]*dp.Device, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.devices, p.changed
}

// GetDevicePluginOptions: no PreStartContainer needed (iovd reset the device before it
// handed it out); GetPreferredAllocation is offered.
func (p *poolPlugin) GetDevicePluginOptions(context.Context, *dp.Empty) (*dp.DevicePluginOptions, error) {
	return &dp.DevicePluginOptions{GetPreferredAllocationAvailable: true}, nil
}

// ListAndWatch sends the pool's device list now and again on every change, until kubelet
// hangs up or the pool's server stops.
func (p *poolPlugin) ListAndWatch(_ *dp.Empty, stream dp.DevicePlugin_ListAndWatchServer) error {
	for {
		devices, changed := p.watch()
		if err := stream.Send(&dp.ListAndWatchResponse{Devices: devices}); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-p.stopped:
			return nil
		case <-stream.Context().Done():
			return nil
		}
	}
}

// PreStartContainer is not asked for (options), but answers kindly if called.
func (p *poolPlugin) PreStartContainer(context.Context, *dp.PreStartContainerRequest) (*dp.PreStartContainerResponse, error) {
	return &dp.PreStartContainerResponse{}, nil
}
