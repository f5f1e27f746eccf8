#!/usr/bin/env python3
"""Summary of one host benchmark (bench/host/run): the lab's summary (bench/lab/summary.py,
the same result lines, the same medians and ratios) with the lab's names for the host's,
and what only the host run has: each VMM's CPU time per request or frame (vmm_cpu_ticks
from kvm-stat.sh), the shape of the sequential depth-16 reads, QEMU's userspace network
path when the host has no vhost-net."""
import contextlib
import io
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
import summary as lab  # noqa: E402  (bench/lab/summary.py)

TICKS = os.sysconf("SC_CLK_TCK")
RENAMES = [("lab-bench", "host-bench"), ("in the lab", "on the host"),
           ("guest->lab", "guest->host"), ("lab->guest", "host->guest"),
           ("the lab's", "the host's")]


def cpu_per(runs, who, count_who, count_key):
    """The VMM's CPU seconds (all its threads: vCPU, I/O) per request or frame over WHO's
    runs: on a shared host the wall-clock rate swings with others' load, this less."""
    ticks = count = 0
    counts = {f.get("run"): f for f in runs.get(count_who, [])}
    for fields in runs.get(who, []):
        try:
            n = int(counts[fields.get("run")][count_key])
            t = int(fields["kvm_vmm_cpu_ticks"])
        except (KeyError, ValueError):
            continue
        ticks, count = ticks + t, count + n
    if count == 0:
        return "(none)"
    return f"{ticks / TICKS / count * 1e6:.1f} CPU us per {count_key.split('_')[-1].rstrip('s')}"


def blk_extra(runs):
    print("host-bench blk VMM CPU time over the runs: iovd-vmm "
          + cpu_per(runs, "l2-virtio", "l2-virtio", "requests") + ", QEMU "
          + cpu_per(runs, "qemu-l2-virtio", "qemu-l2-virtio", "requests"))
    for who, name in (("l2-", "iovd-vmm"), ("qemu-l2-", "QEMU")):
        for kind in ("queue", "seq16"):
            for fields in runs.get(who + kind, []):
                shown = " ".join(f"{k}={v}" for k, v in fields.items()
                                 if not k.startswith("kvm_") and k != "run")
                print(f"host-bench blk sequential 1 MiB depth 16, {name} {kind}: {shown}")


def net_extra(runs):
    try:
        qtx, n = lab.median(runs, "qemu-tap-tap-rx", "mib_s")
        qrx, _ = lab.median(runs, "qemu-tap-l2-net-rx", "mib_s")
        tx, _ = lab.median(runs, "tap-rx", "mib_s")
        rx, _ = lab.median(runs, "l2-net-rx", "mib_s")
        print(f"host-bench net QEMU userspace (vhost=off, no vhost-net here): median of {n} "
              f"runs: guest->host {qtx:.2f} MiB/s (iovd-vmm userspace/QEMU {tx / qtx:.2f}), "
              f"host->guest {qrx:.2f} MiB/s (iovd-vmm userspace/QEMU {rx / qrx:.2f})")
    except LookupError:
        pass
    for p, label in (("", "iovd-vmm userspace"), ("vhost-", "iovd-vmm vhost-net"),
                     ("qemu-vhost-", "QEMU vhost-net"), ("qemu-tap-", "QEMU userspace")):
        if f"{p}tap-rx" in runs:
            print(f"host-bench net VMM CPU time, {label}: guest->host "
                  + cpu_per(runs, f"{p}tap-rx", f"{p}l2-net-tx", "sent_frames")
                  + ", host->guest " + cpu_per(runs, f"{p}l2-net-rx", f"{p}l2-net-rx", "frames"))


def main():
    bench, path = sys.argv[1], sys.argv[2]
    out = io.StringIO()
    status = 0
    with contextlib.redirect_stdout(out):
        runs = lab.load(path, bench)
        try:
            {"boot": lab.boot, "blk": lab.blk, "net": lab.net}[bench](runs)
        except LookupError as e:
            print(f"lab-bench {bench}: {e}", file=sys.stderr)
            status = 1
    text = out.getvalue()
    for old, new in RENAMES:
        text = text.replace(old, new)
    sys.stdout.write(text)
    if status == 0:
        {"boot": lambda r: None, "blk": blk_extra, "net": net_extra}[bench](runs)
    return status


if __name__ == "__main__":
    sys.exit(main())
