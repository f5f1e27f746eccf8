// Package testenv runs what the device plugin's tests and benchmark need, all real
// programs on a temporary directory: a generated sysfs tree (tests/fixtures) with the
// fake kernel reacting to it, iovd on that tree, a fake kubelet, and the plugin itself.
package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"iovd.io/k8s/iovd"
)

// Programs are the binaries, from the environment meson's test() sets.
type Programs struct {
	Iovd, Fixture, FakeKernel, FixtureRemove, Plugin string
}

// ErrSkip: the programs are not all there (the test is run outside meson).
var ErrSkip = errors.New("IOVD_BINARY, IOV_FIXTURE, IOV_FAKEKERNEL, K8S_FIXTURE_REMOVE, " +
	"IOVD_DEVICE_PLUGIN not set: run through meson test --suite k8s")

// ProgramsFromEnv reads the binaries' paths.
func ProgramsFromEnv() (Programs, error) {
	p := Programs{Iovd: os.Getenv("IOVD_BINARY"), Fixture: os.Getenv("IOV_FIXTURE"),
		FakeKernel: os.Getenv("IOV_FAKEKERNEL"), FixtureRemove: os.Getenv("K8S_FIXTURE_REMOVE"),
		Plugin: os.Getenv("IOVD_DEVICE_PLUGIN")}
	for _, path := range []string{p.Iovd, p.Fixture, p.FakeKernel, p.FixtureRemove, p.Plugin} {
		if path == "" {
			return p, ErrSkip
		}
	}
	return p, nil
}

// Tree says which generated hardware to write.
type Tree struct {
	FixtureArgs []string      // iov-fixture's options, e.g. --lab
	SriovPF     string        // a PF to give VFs through iovd's API ("" for none)
	NumVFs      int           // how many
	Pool        string        // the pool to define
	Selector    iovd.Selector // its selector
}

// LabTree is the lab machine with n driverless NVMe VFs in pool "nvme".
func LabTree(n int) Tree {
	return Tree{FixtureArgs: []string{"--lab"}, SriovPF: "0000:01:00.0", NumVFs: n, Pool: "nvme",
		Selector: iovd.Selector{Physfn: "0000:01:00.0"}}
}

// Env is one running set.
type Env struct {
	P       Programs
	Dir     string // everything lives below
	Tree    string // the generated tree (Tree/sys, Tree/dev)
	Socket  string // iovd's socket
	Client  *iovd.Client
	Kubelet *Kubelet
	Pool    string

	kernel, daemon, plugin *exec.Cmd
}

// Start writes the tree and starts the fake kernel, iovd (VFs made, pool defined) and
// the fake kubelet. The plugin is started by StartPlugin.
func Start(p Programs, t Tree) (*Env, error) {
	dir, err := os.MkdirTemp("", "iovd-k8s-")
	if err != nil {
		return nil, err
	}
	e := &Env{P: p, Dir: dir, Tree: filepath.Join(dir, "tree"), Socket: filepath.Join(dir, "iovd.sock"),
		Pool: t.Pool}
	e.Client = iovd.New(e.Socket)
	if err := e.setup(t); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func (e *Env) setup(t Tree) error {
	args := append(append([]string{}, t.FixtureArgs...), e.Tree)
	if out, err := exec.Command(e.P.Fixture, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("iov-fixture %v: %v: %s", args, err, out)
	}
	if err := e.startKernel(); err != nil {
		return err
	}
	if err := e.StartIovd(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if t.SriovPF != "" {
		body := map[string]int{"num_vfs": t.NumVFs}
		if err := e.Client.Do(ctx, "PUT", "/v1/devices/"+t.SriovPF+"/sriov", body, nil); err != nil {
			return fmt.Errorf("make %d VFs: %v", t.NumVFs, err)
		}
	}
	pool := map[string]interface{}{"name": t.Pool, "selector": t.Selector}
	if err := e.Client.Do(ctx, "POST", "/v1/pools", pool, nil); err != nil {
		return fmt.Errorf("define pool %s: %v", t.Pool, err)
	}
	k, err := StartKubelet(filepath.Join(e.Dir, "kubelet"))
	e.Kubelet = k
	return err
}

// startKernel runs iov-fakekernel and waits for its READY line.
func (e *Env) startKernel() error {
	cmd := exec.Command(e.P.FakeKernel, e.Tree)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = logFile(e.Dir, "fakekernel.log")
	if err := cmd.Start(); err != nil {
		return err
	}
	e.kernel = cmd
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "READY") {
		return fmt.Errorf("iov-fakekernel did not start: %q %v", line, err)
	}
	return nil
}

func logFile(dir, name string) *os.File {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil
	}
	return f
}

// StartIovd starts iovd on the tree (the same state directory every time) and waits
// until it answers.
func (e *Env) StartIovd() error {
	cmd := exec.Command(e.P.Iovd, "--listen", "unix:"+e.Socket,
		"--state-dir", filepath.Join(e.Dir, "state"), "--run-dir", filepath.Join(e.Dir, "run"),
		"--sysfs-root", filepath.Join(e.Tree, "sys"), "--dev-root", filepath.Join(e.Tree, "dev"))
	cmd.Stdout = logFile(e.Dir, "iovd.log")
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	e.daemon = cmd
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := e.Client.Do(ctx, "GET", "/v1/host", nil, nil)
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("iovd did not answer on %s; log:\n%s", e.Socket, e.Log("iovd.log"))
}

// StopIovd ends iovd (SIGTERM) and waits for it.
func (e *Env) StopIovd() { stopProcess(&e.daemon) }

// StartPlugin starts iovd-device-plugin against this iovd and kubelet, with short
// timings (release grace 1 s) unless args say otherwise.
func (e *Env) StartPlugin(args ...string) error {
	base := []string{"--iovd-socket", e.Socket, "--plugin-dir", e.Kubelet.PluginDir,
		"--pod-resources-socket", e.Kubelet.PodResourcesSocket, "--release-grace", "1s",
		"--reconcile-interval", "200ms", "--kubelet-poll", "100ms"}
	cmd := exec.Command(e.P.Plugin, append(base, args...)...)
	cmd.Stdout = logFile(e.Dir, "plugin.log")
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	e.plugin = cmd
	return nil
}

// StopPlugin ends the plugin (SIGTERM) and waits for it.
func (e *Env) StopPlugin() { stopProcess(&e.plugin) }

// KillPlugin ends the plugin without letting it clean up (SIGKILL), as a crash would.
func (e *Env) KillPlugin() {
	if e.plugin != nil {
		e.plugin.Process.Kill()
		e.plugin.Wait()
		e.plugin = nil
	}
}

func stopProcess(c **exec.Cmd) {
	if *c == nil {
		return
	}
	(*c).Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { (*c).Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		(*c).Process.Kill()
		<-done
	}
	*c = nil
}

// Log is one of the programs' logs (iovd.log, plugin.log, fakekernel.log).
func (e *Env) Log(name string) string {
	raw, _ := os.ReadFile(filepath.Join(e.Dir, name))
	return string(raw)
}

// RemoveDevice makes a function vanish from the tree and has iovd rescan (the tree has no
// uevents).
func (e *Env) RemoveDevice(address string) error {
	if err := e.Unplug(address); err != nil {
		return err
	}
	return e.Client.Rescan(context.Background())
}

// Unplug makes a function vanish from the tree; iovd sees it at its next rescan.
func (e *Env) Unplug(address string) error {
	if out, err := exec.Command(e.P.FixtureRemove, e.Tree, address).CombinedOutput(); err != nil {
		return fmt.Errorf("remove %s: %v: %s", address, err, out)
	}
	return nil
}

// RemoveReset takes the reset method away from a function: iovd will quarantine it when
// it is released.
func (e *Env) RemoveReset(address string) error {
	return os.Remove(filepath.Join(e.Tree, "sys", "bus", "pci", "devices", address, "reset"))
}

// Close stops everything this Env started and removes its directory.
func (e *Env) Close() {
	stopProcess(&e.plugin)
	if e.Kubelet != nil {
		e.Kubelet.Stop()
	}
	stopProcess(&e.daemon)
	stopProcess(&e.kernel)
	os.RemoveAll(e.Dir)
}
