// iovd-device-plugin: kubelet's device plugin (API v1beta1) for the pools of the iovd on
// this node. See docs/kubernetes.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"iovd.io/k8s/plugin"
)

type resourceFlag map[string]string

func (r resourceFlag) String() string { return fmt.Sprint(map[string]string(r)) }

func (r resourceFlag) Set(v string) error {
	pool, name, ok := strings.Cut(v, "=")
	if !ok || pool == "" || name == "" {
		return fmt.Errorf("want POOL=RESOURCE, got %q", v)
	}
	r[pool] = name
	return nil
}

func main() {
	names := resourceFlag{}
	cfg := plugin.Config{ResourceNames: names}
	var pools string
	flag.StringVar(&cfg.IovdSocket, "iovd-socket", "/run/iovd/iovd.sock", "iovd's API socket")
	flag.StringVar(&cfg.PluginDir, "plugin-dir", "/var/lib/kubelet/device-plugins",
		"kubelet's device plugin directory (kubelet.sock, the plugin sockets)")
	flag.StringVar(&cfg.PodResourcesSocket, "pod-resources-socket",
		"/var/lib/kubelet/pod-resources/kubelet.sock", "kubelet's pod-resources socket")
	flag.StringVar(&cfg.ResourcePrefix, "resource-prefix", "iovd.io",
		"extended resource of pool P: PREFIX/P")
	flag.Var(names, "resource", "POOL=NAME: the extended resource name of one pool (repeatable)")
	flag.StringVar(&pools, "pools", "", "comma-separated pools to serve (default: every pool)")
	flag.DurationVar(&cfg.ReleaseGrace, "release-grace", 30*time.Second,
		"release an allocation no container has held for this long")
	flag.DurationVar(&cfg.ReconcileInterval, "reconcile-interval", 5*time.Second,
		"how often kubelet's pod-resources is read")
	flag.DurationVar(&cfg.KubeletPoll, "kubelet-poll", time.Second,
		"how often kubelet.sock is checked for a kubelet restart")
	flag.Parse()
	if flag.NArg() != 0 || cfg.ReleaseGrace <= 0 || cfg.ReconcileInterval <= 0 || cfg.KubeletPoll <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	if pools != "" {
		cfg.Pools = strings.Split(pools, ",")
	}
	cfg.Log = log.New(os.Stderr, "iovd-device-plugin: ", log.LstdFlags|log.Lmicroseconds)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg.Log.Printf("iovd %s, kubelet %s", cfg.IovdSocket, cfg.PluginDir)
	plugin.NewManager(cfg).Run(ctx)
	cfg.Log.Printf("stopped")
}
