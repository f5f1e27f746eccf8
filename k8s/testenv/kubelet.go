package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"

	dp "iovd.io/k8sapi/deviceplugin"
	pr "iovd.io/k8sapi/podresources"
)

// Kubelet is the part of kubelet a device plugin talks to: the Registration service on
// PluginDir/kubelet.sock and the pod-resources List on PodResourcesSocket. Its pods are
// what the test says they are.
type Kubelet struct {
	pr.UnimplementedPodResourcesListerServer
	dp.UnimplementedRegistrationServer
	PluginDir          string
	PodResourcesSocket string

	registrations chan *dp.RegisterRequest
	mu            sync.Mutex
	pods          map[string]*pr.PodResources // by namespace/name
	registration  *grpc.Server
	podResources  *grpc.Server
}

// StartKubelet serves both sockets below dir.
func StartKubelet(dir string) (*Kubelet, error) {
	k := &Kubelet{PluginDir: filepath.Join(dir, "device-plugins"),
		PodResourcesSocket: filepath.Join(dir, "pod-resources", "kubelet.sock"),
		registrations:      make(chan *dp.RegisterRequest, 16), pods: map[string]*pr.PodResources{}}
	for _, d := range []string{k.PluginDir, filepath.Dir(k.PodResourcesSocket)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	s, err := serveUnix(k.PodResourcesSocket, func(s *grpc.Server) { pr.RegisterPodResourcesListerServer(s, k) })
	if err != nil {
		return nil, err
	}
	k.podResources = s
	return k, k.startRegistration()
}

func serveUnix(path string, register func(*grpc.Server)) (*grpc.Server, error) {
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	s := grpc.NewServer()
	register(s)
	go s.Serve(l)
	return s, nil
}

func (k *Kubelet) startRegistration() error {
	s, err := serveUnix(filepath.Join(k.PluginDir, "kubelet.sock"),
		func(s *grpc.Server) { dp.RegisterRegistrationServer(s, k) })
	k.registration = s
	return err
}

// Register records the request; like kubelet it refuses another API version.
func (k *Kubelet) Register(_ context.Context, req *dp.RegisterRequest) (*dp.Empty, error) {
	if req.Version != "v1beta1" {
		return nil, fmt.Errorf("unsupported API version %q", req.Version)
	}
	k.registrations <- req
	return &dp.Empty{}, nil
}

// WaitRegistration returns the next Register call.
func (k *Kubelet) WaitRegistration(timeout time.Duration) (*dp.RegisterRequest, error) {
	select {
	case r := <-k.registrations:
		return r, nil
	case <-time.After(timeout):
		return nil, fmt.Errorf("no registration within %v", timeout)
	}
}

// Restart is a kubelet restart as the plugin sees it: kubelet.sock goes away, every
// socket in the plugin directory is removed (kubelet does so when it starts), and a new
// kubelet.sock comes up. Pods (its checkpoint) are kept.
func (k *Kubelet) Restart() error {
	k.registration.Stop()
	entries, err := os.ReadDir(k.PluginDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		os.Remove(filepath.Join(k.PluginDir, e.Name()))
	}
	time.Sleep(300 * time.Millisecond)
	return k.startRegistration()
}

// Stop ends both servers.
func (k *Kubelet) Stop() {
	k.registration.Stop()
	k.podResources.Stop()
}

// SetContainer says that container of namespace/pod holds ids of resource.
func (k *Kubelet) SetContainer(pod, container, resource string, ids []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p, ok := k.pods[pod]
	if !ok {
		p = &pr.PodResources{Name: pod, Namespace: "default"}
		k.pods[pod] = p
	}
	p.Containers = append(p.Containers, &pr.ContainerResources{Name: container,
		Devices: []*pr.ContainerDevices{{ResourceName: resource, DeviceIds: ids}}})
}

// RemovePod: the pod is gone (deleted, finished).
func (k *Kubelet) RemovePod(pod string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.pods, pod)
}

// List is the pod-resources v1 List.
func (k *Kubelet) List(context.Context, *pr.ListPodResourcesRequest) (*pr.ListPodResourcesResponse, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	resp := &pr.ListPodResourcesResponse{}
	for _, p := range k.pods {
		resp.PodResources = append(resp.PodResources, p)
	}
	return resp, nil
}
