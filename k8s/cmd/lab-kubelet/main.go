// lab-kubelet: the fake kubelet of the test suite as a program, for the lab (a real
// kernel, real VFs, real vfio-pci; tests/lab/scenarios/k8s.sh). It serves Registration
// and pod-resources below --dir, and makes kubelet's calls in kubelet's order: after a
// registration GetDevicePluginOptions and ListAndWatch; once --want devices are Healthy
// it admits one pod (GetPreferredAllocation, Allocate) and writes what the container
// would get to DIR/admitted ("device ADDR", "host PATH", "env NAME=VALUE" lines). When
// DIR/remove-pod appears it forgets the pod and waits until the plugin released its
// allocation in iovd, then writes DIR/released. Failures go to stderr, exit status 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"iovd.io/k8s/iovd"
	"iovd.io/k8s/testenv"
	dp "iovd.io/k8sapi/deviceplugin"
)

func main() {
	dir := flag.String("dir", "/tmp/kubelet", "kubelet's directory (device-plugins/, pod-resources/)")
	socket := flag.String("iovd-socket", "/run/iovd/iovd.sock", "iovd's API socket")
	want := flag.Int("want", 1, "Healthy devices to wait for before admitting the pod")
	timeout := flag.Duration("timeout", 5*time.Minute, "how long each step may take")
	flag.Parse()
	if err := run(*dir, iovd.New(*socket), *want, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "lab-kubelet:", err)
		os.Exit(1)
	}
}

func run(dir string, client *iovd.Client, want int, timeout time.Duration) error {
	k, err := testenv.StartKubelet(dir)
	if err != nil {
		return err
	}
	defer k.Stop()
	req, err := k.WaitRegistration(timeout)
	if err != nil {
		return err
	}
	fmt.Printf("registered %s on %s\n", req.ResourceName, req.Endpoint)
	p, err := k.Connect(req)
	if err != nil {
		return err
	}
	defer p.Close()
	devices, ok := p.WaitFor(timeout, func(d []*dp.Device) bool { return len(testenv.Healthy(d)) >= want })
	if !ok {
		return fmt.Errorf("ListAndWatch %v: fewer than %d Healthy", devices, want)
	}
	resp, ids, err := k.Admit(p, "lab-pod", 1, nil)
	if err != nil {
		return fmt.Errorf("admit: %v", err)
	}
	if err := writeAdmitted(filepath.Join(dir, "admitted"), ids, resp); err != nil {
		return err
	}
	if !waitFor(timeout, func() bool { return exists(filepath.Join(dir, "remove-pod")) }) {
		return fmt.Errorf("no %s/remove-pod", dir)
	}
	k.RemovePod("lab-pod")
	if !waitFor(timeout, func() bool { return noPluginAllocation(client) }) {
		return fmt.Errorf("the plugin did not release its allocation")
	}
	return os.WriteFile(filepath.Join(dir, "released"), []byte("released\n"), 0o644)
}

func writeAdmitted(path string, ids []string, resp *dp.ContainerAllocateResponse) error {
	var lines []string
	for _, id := range ids {
		lines = append(lines, "device "+id)
	}
	for _, d := range resp.Devices {
		lines = append(lines, "host "+d.HostPath+" "+d.ContainerPath)
	}
	var env []string
	for k, v := range resp.Envs {
		env = append(env, "env "+k+"="+v)
	}
	sort.Strings(env)
	lines = append(lines, env...)
	// Written whole, then renamed: the scenario never reads half of it.
	if err := os.WriteFile(path+".tmp", []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

func noPluginAllocation(c *iovd.Client) bool {
	all, err := c.Allocations(context.Background())
	if err != nil {
		return false
	}
	for _, a := range all {
		if strings.HasPrefix(a.Owner, "k8s:") {
			return false
		}
	}
	return true
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func waitFor(timeout time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}
