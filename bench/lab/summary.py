#!/usr/bin/env python3
"""Summary of one lab benchmark (bench/lab/run): reads the "bench-result: BENCH WHO
key=value ..." lines the lab printed, prints every run and one summary line with the
medians and the ratio. Exit status 1 when a figure the summary needs is missing."""
import statistics
import sys


def load(path, bench):
    runs = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            words = line.split()
            if len(words) < 3 or words[1] != bench:
                continue
            fields = dict(w.split("=", 1) for w in words[3:] if "=" in w)
            runs.setdefault(words[2], []).append(fields)
            print(f"  {bench} {words[2]}: {' '.join(words[3:])}")
    return runs


def median(runs, who, key):
    values = []
    for fields in runs.get(who, []):
        try:
            values.append(float(fields[key]))
        except (KeyError, ValueError):
            pass
    if not values:
        raise LookupError(f"no {key} figure from {who}")
    return statistics.median(values), len(values)


def boot(runs):
    ours, n = median(runs, "iovd-vmm", "boot_ms")
    peer, m = median(runs, "qemu-microvm", "boot_ms")
    try:
        port = f" (its boot-progress port: {median(runs, 'iovd-vmm', 'port_us')[0] / 1e3:.0f} ms)"
    except LookupError:
        port = ""
    try:
        clocks = (f"; the L2 kernel's own clock at the marker: iovd-vmm "
                  f"{median(runs, 'iovd-vmm', 'guest_s')[0]:.1f} s, QEMU "
                  f"{median(runs, 'qemu-microvm', 'guest_s')[0]:.1f} s")
    except LookupError:
        clocks = ""
    print(f"lab-bench boot: VMM start to L2 userspace marker, median of {n}/{m} runs: "
          f"iovd-vmm {ours:.0f} ms{port}, QEMU -M microvm (KVM) {peer:.0f} ms; "
          f"ratio iovd-vmm/QEMU {ours / peer:.2f}{clocks}")
    try:
        nopci, k = median(runs, "iovd-vmm-pci-off", "boot_ms")
        exits = median(runs, "iovd-vmm", "exits")[0]
        pci = median(runs, "iovd-vmm", "pci_config_exits")[0]
        exits_off = median(runs, "iovd-vmm-pci-off", "exits")[0]
        print(f"lab-bench boot (diagnostic): iovd-vmm exits during the boot: {exits:.0f}, "
              f"{pci:.0f} of them PCI configuration space; with pci=off {exits_off:.0f} exits "
              f"and {nopci:.0f} ms to the marker (median of {k}), ratio to QEMU "
              f"{nopci / peer:.2f}")
    except LookupError:
        pass


def blk(runs):
    seq, n = median(runs, "l2-virtio", "seq_mib_s")
    seq_lab, _ = median(runs, "lab", "seq_mib_s")
    rnd, _ = median(runs, "l2-virtio", "rand4k_iops")
    rnd_lab, _ = median(runs, "lab", "rand4k_iops")
    print(f"lab-bench blk: median of {n} runs, L2 guest virtio-blk (O_DIRECT) vs the image "
          f"file in the lab: sequential 1 MiB {seq:.1f} vs {seq_lab:.1f} MiB/s "
          f"(ratio {seq / seq_lab:.3f}), random 4 KiB {rnd:.0f} vs {rnd_lab:.0f} IOPS "
          f"(ratio {rnd / rnd_lab:.4f})")


def net(runs):
    limit, n = median(runs, "veth", "mib_s")
    tx, _ = median(runs, "tap-rx", "mib_s")
    rx, _ = median(runs, "l2-net-rx", "mib_s")
    offered, _ = median(runs, "tap-tx-sender", "sent_mib_s")
    print(f"lab-bench net: 1514-byte raw frames, median of {n} runs: guest->lab over "
          f"virtio-net/TAP {tx:.2f} MiB/s (ratio {tx / limit:.3f}), lab->guest {rx:.2f} MiB/s "
          f"received of {offered:.2f} sent (ratio {rx / limit:.3f}), veth pair in the lab "
          f"(limit) {limit:.2f} MiB/s")


def main():
    bench, path = sys.argv[1], sys.argv[2]
    runs = load(path, bench)
    try:
        {"boot": boot, "blk": blk, "net": net}[bench](runs)
    except LookupError as e:
        print(f"lab-bench {bench}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
