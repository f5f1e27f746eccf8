#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The case for paravirtualization, measured: the same guest payload sends the same N MiB
once through the emulated 16550A UART and once through virtio-console, under iovd-vmm on
/dev/kvm. Prints bytes per second and VM exits per KiB for both, side by side.

  console-bench.py IOVD_VMM PAYLOAD [--mib N] [--runs R] [--virtio-mib M]

The payload is tests/guest/virtio-console.S; the correctness of the virtio path is the
test virtio-guest (tests/unit/virtio/test-guest.c). Every run here also checks that the
console stream received exactly N MiB of the payload's pattern.

Time is taken inside the guest (boot-progress markers 1 and 2, recorded by iovd-vmm in
microseconds); exits are all of iovd-vmm's KVM_RUN returns for the whole run (driver
set-up included), from its stats line. Doorbell writes that KVM completes through an
ioeventfd do not return to userspace and are reported separately ("kicks").
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

SKIP = 77


def pattern(n):
    line = bytes(0x40 + (i & 31) for i in range(63)) + b"\n"
    return (line * (n // 64 + 1))[:n]


def run(vmm, payload, mode, mib, workdir):
    out = os.path.join(workdir, f"out-{mode}")
    if os.path.exists(out):
        os.unlink(out)
    cfg = os.path.join(workdir, "vm.json")
    with open(cfg, "w") as f:
        json.dump({"name": "console-bench", "vcpus": 1, "memory_mib": 64,
                   "kernel": payload, "cmdline": f"{mode} {mib}",
                   "devices": [{"type": "virtio-console"}]}, f)
    p = subprocess.run([vmm, "--config", cfg, "--serial", f"file:{out}"],
                       capture_output=True, text=True, timeout=900)
    stats = None
    for line in p.stderr.splitlines():
        if line.startswith("iovd-vmm: stats "):
            stats = json.loads(line[len("iovd-vmm: stats "):])
    if p.returncode != 0 or stats is None:
        raise RuntimeError(f"iovd-vmm ({mode} {mib}) exited {p.returncode}: {p.stderr.strip()}")
    markers = {m["value"]: m["usec"] for m in stats.get("markers", [])}
    if 0xdead in markers or 1 not in markers or 2 not in markers:
        raise RuntimeError(f"guest did not finish ({mode} {mib}): markers {markers}")
    size = os.path.getsize(out)
    want = mib << 20
    with open(out, "rb") as f:
        head = f.read(4096)
    if size != want or head != pattern(len(head)):
        raise RuntimeError(f"{mode}: console got {size} bytes, expected {want} of the pattern")
    virtio = next((d for d in stats.get("virtio", []) if d.get("type") == "virtio-console"), {})
    return {
        "usec": markers[2] - markers[1],
        "exits": sum(stats.get("exits", {}).values()),
        "bytes": size,
        "kicks": virtio.get("notifications"),
    }


def bench(args):
    results = {}
    with tempfile.TemporaryDirectory() as d:
        for mode in ("u", "v"):
            runs = [run(args.vmm, args.payload, mode, args.mib, d) for _ in range(args.runs)]
            results[mode] = runs
    print(f"console throughput, {args.mib} MiB from one guest, median of {args.runs} run(s)")
    print(f"{'path':<16}{'MiB/s':>12}{'bytes/s':>16}{'exits':>10}{'exits/KiB':>12}")
    rows = {}
    for mode, name in (("u", "16550A UART"), ("v", "virtio-console")):
        usec = statistics.median(r["usec"] for r in results[mode])
        exits = statistics.median(r["exits"] for r in results[mode])
        bps = (args.mib << 20) / (usec / 1e6)
        per_kib = exits / (args.mib * 1024)
        rows[mode] = (bps, per_kib)
        print(f"{name:<16}{bps / 2**20:>12.2f}{bps:>16.0f}{exits:>10.0f}{per_kib:>12.4f}")
    speedup = rows["v"][0] / rows["u"][0]
    exit_ratio = rows["v"][1] / rows["u"][1]
    print(f"virtio / UART: throughput x{speedup:.0f} (target >= 100), "
          f"exits per KiB x{exit_ratio:.5f} (target <= 0.01)")
    print(f"virtio doorbells: {args.mib} per run (one per MiB), completed by KVM through an "
          f"ioeventfd, not counted as exits above")
    if args.virtio_mib:
        with tempfile.TemporaryDirectory() as d:
            r = run(args.vmm, args.payload, "v", args.virtio_mib, d)
        print(f"virtio-console alone, {args.virtio_mib} MiB: "
              f"{(args.virtio_mib << 20) / (r['usec'] / 1e6) / 2**20:.0f} MiB/s, "
              f"{r['exits']} exits")
    return 0 if speedup >= 100 and exit_ratio <= 0.01 else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vmm")
    ap.add_argument("payload")
    ap.add_argument("--mib", type=int, default=1)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--virtio-mib", type=int, default=0,
                    help="also time virtio-console alone on this many MiB (steady state)")
    args = ap.parse_args()
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
        os.close(fd)
    except OSError as e:
        print(f"/dev/kvm cannot be opened ({e.strerror}): nothing to measure")
        return SKIP
    return bench(args)


if __name__ == "__main__":
    sys.exit(main())
