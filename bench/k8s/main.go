// iovd-k8s-bench: the device plugin's cost, next to its peer in the same run.
//
//  1. Allocate latency: kubelet's Allocate of one VF through the plugin (gRPC on its
//     socket, then POST /v1/allocations by the plugin) against the same POST sent
//     straight to iovd, same tree, same VF, in alternating blocks so both see the same
//     machine load; each allocation is released (untimed) before the next. Medians and
//     the ratio plugin / direct (target <= 1.2).
//  2. ListAndWatch update latency: a VF vanishes from the tree, iovd rescans, and the
//     time until kubelet's ListAndWatch stream no longer lists it; next to it, how long
//     the rescan request itself took.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"time"

	"iovd.io/k8s/iovd"
	"iovd.io/k8s/testenv"
	dp "iovd.io/k8sapi/deviceplugin"
)

func main() {
	rounds := flag.Int("rounds", 200, "allocations timed on each side")
	block := flag.Int("block", 10, "allocations per side before switching")
	vanish := flag.Int("vanish", 20, "VFs removed one by one for the ListAndWatch latency")
	flag.Parse()
	programs, err := testenv.ProgramsFromEnv()
	if errors.Is(err, testenv.ErrSkip) {
		fmt.Println("iovd-k8s-bench: skipped:", err)
		os.Exit(77)
	}
	if err := benchAllocate(programs, *rounds, *block); err != nil {
		fail(err)
	}
	if err := benchVanish(programs, *vanish); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "iovd-k8s-bench:", err)
	os.Exit(1)
}

// startEnv: the tree, iovd, kubelet, the plugin (no release during the run), connected.
func startEnv(p testenv.Programs, tree testenv.Tree, want int) (*testenv.Env, *testenv.Plugin, error) {
	env, err := testenv.Start(p, tree)
	if err != nil {
		return nil, nil, err
	}
	// Production timings for the reconciler (the tests shorten them).
	if err := env.StartPlugin("--release-grace", "1h", "--reconcile-interval", "5s"); err != nil {
		env.Close()
		return nil, nil, err
	}
	req, err := env.Kubelet.WaitRegistration(20 * time.Second)
	if err != nil {
		env.Close()
		return nil, nil, err
	}
	plugin, err := env.Kubelet.Connect(req)
	if err != nil {
		env.Close()
		return nil, nil, err
	}
	if _, ok := plugin.WaitFor(20*time.Second, func(d []*dp.Device) bool {
		return len(testenv.Healthy(d)) == want
	}); !ok {
		env.Close()
		return nil, nil, fmt.Errorf("plugin never listed %d Healthy devices", want)
	}
	return env, plugin, nil
}

func benchAllocate(p testenv.Programs, rounds, block int) error {
	env, plugin, err := startEnv(p, testenv.LabTree(2), 2)
	if err != nil {
		return err
	}
	defer env.Close()
	const vf = "0000:01:00.1"
	var viaPlugin, direct []time.Duration
	for len(direct) < rounds {
		for i := 0; i < block; i++ {
			d, err := allocateThroughPlugin(env, plugin, vf)
			if err != nil {
				return err
			}
			viaPlugin = append(viaPlugin, d)
		}
		for i := 0; i < block; i++ {
			d, err := allocateDirect(env.Client, vf)
			if err != nil {
				return err
			}
			direct = append(direct, d)
		}
	}
	mp, md := median(viaPlugin), median(direct)
	fmt.Printf("allocate one VF (lab tree, %d each, alternating blocks of %d)\n", rounds, block)
	fmt.Printf("  through the plugin (kubelet Allocate)    median %8.3f ms  p90 %8.3f ms\n", ms(mp), ms(pct(viaPlugin, 90)))
	fmt.Printf("  direct POST /v1/allocations (the peer)   median %8.3f ms  p90 %8.3f ms\n", ms(md), ms(pct(direct, 90)))
	fmt.Printf("  ratio plugin / direct                    %.2f (target <= 1.2)\n", float64(mp)/float64(md))
	return nil
}

func allocateThroughPlugin(env *testenv.Env, plugin *testenv.Plugin, vf string) (time.Duration, error) {
	req := &dp.AllocateRequest{ContainerRequests: []*dp.ContainerAllocateRequest{{DevicesIds: []string{vf}}}}
	start := time.Now()
	_, err := plugin.Client.Allocate(context.Background(), req)
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("plugin Allocate: %v", err)
	}
	return took, releaseAll(env.Client)
}

func allocateDirect(c *iovd.Client, vf string) (time.Duration, error) {
	start := time.Now()
	_, err := c.Allocate(context.Background(), "bench", vf)
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("direct allocate: %v", err)
	}
	return took, releaseAll(c)
}

func releaseAll(c *iovd.Client) error {
	all, err := c.Allocations(context.Background())
	for _, a := range all {
		if err == nil {
			err = c.Release(context.Background(), a.ID)
		}
	}
	return err
}

func benchVanish(p testenv.Programs, n int) error {
	tree := testenv.Tree{FixtureArgs: []string{"--pfs", "1", "--vfs-per-pf", fmt.Sprint(n + 1), "--iommu"},
		Pool: "vf", Selector: iovd.Selector{VendorID: "8086", DeviceID: "154c"}}
	env, plugin, err := startEnv(p, tree, n+1)
	if err != nil {
		return err
	}
	defer env.Close()
	devices, _ := plugin.Devices()
	var update, rescan []time.Duration
	for _, d := range devices[:n] {
		u, r, err := vanishOne(env, plugin, d.ID)
		if err != nil {
			return err
		}
		update, rescan = append(update, u), append(rescan, r)
	}
	fmt.Printf("ListAndWatch update after a VF vanishes (%d VFs, one at a time)\n", n)
	fmt.Printf("  rescan to the list without it            median %8.3f ms  max %8.3f ms\n", ms(median(update)), ms(pct(update, 100)))
	fmt.Printf("  the rescan request alone (iovd)          median %8.3f ms\n", ms(median(rescan)))
	return nil
}

func vanishOne(env *testenv.Env, plugin *testenv.Plugin, id string) (time.Duration, time.Duration, error) {
	if err := env.Unplug(id); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	if err := env.Client.Rescan(context.Background()); err != nil {
		return 0, 0, err
	}
	rescan := time.Since(start)
	_, ok := plugin.WaitFor(10*time.Second, func(d []*dp.Device) bool {
		for _, x := range d {
			if x.ID == id {
				return false
			}
		}
		return true
	})
	if !ok {
		return 0, 0, fmt.Errorf("%s still listed 10 s after the rescan", id)
	}
	// The list may come before the rescan's reply: the time it came, not when seen here.
	return plugin.UpdatedAt().Sub(start), rescan, nil
}

func median(d []time.Duration) time.Duration { return pct(d, 50) }

func pct(d []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s) - 1) * p / 100
	return s[i]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
