#!/usr/bin/env python3
"""Summary of one lab benchmark (bench/lab/run): reads the "bench-result: BENCH WHO
key=value ..." lines the lab printed, prints every run and one summary line with the
medians and the ratio. Exit status 1 when a figure the summary needs is missing."""
import re
import statistics
import sys


def load(path, bench):
    """WHO -> list of per-run field dicts; lines with the same WHO and run= merge (the
    lab's figures and cpumon.py's CPU seconds for the same run)."""
    merged = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            words = line.split()
            if len(words) < 3 or words[1] != bench:
                continue
            fields = dict(w.split("=", 1) for w in words[3:] if "=" in w)
            if not fields:
                fields = {"counters": " ".join(words[3:])}
            key = fields.get("run", str(len(merged.get(words[2], {}))))
            merged.setdefault(words[2], {}).setdefault(key, {}).update(fields)
    runs = {who: list(by_run.values()) for who, by_run in merged.items()}
    for who, fields_list in runs.items():
        for fields in fields_list:
            print(f"  {bench} {who}: {' '.join(f'{k}={v}' for k, v in fields.items())}")
    return runs


def values(runs, who, key):
    out = []
    for fields in runs.get(who, []):
        try:
            out.append(float(fields[key]))
        except (KeyError, ValueError):
            pass
    return out


def median(runs, who, key):
    v = values(runs, who, key)
    if not v:
        raise LookupError(f"no {key} figure from {who}")
    return statistics.median(v), len(v)


def medians(runs, key, *whos):
    """The medians of KEY from each of WHOS, in that order, and the first one's run count;
    LookupError names the first of them without the figure."""
    found = [median(runs, who, key) for who in whos]
    return [m for m, _ in found], found[0][1]


def corrected(runs, who, key):
    """Median of the figure divided by the lab's CPU share during that run (lab CPU
    seconds / wall seconds, cpumon.py): the rate with a whole core for the lab."""
    v = []
    for fields in runs.get(who, []):
        try:
            share = float(fields["lab_cpu_s"]) / float(fields["lab_wall_s"])
            v.append(float(fields[key]) / share)
        except (KeyError, ValueError, ZeroDivisionError):
            pass
    if not v:
        raise LookupError(f"no CPU share for {who}")
    return statistics.median(v)


def cpu_note(runs, pairs):
    """ ratios of the CPU-share-corrected figures, or nothing without cpumon's data."""
    try:
        parts = [f"{label} {corrected(runs, a, key) / corrected(runs, b, key):.3f}"
                 for label, a, b, key in pairs]
    except LookupError:
        return ""
    return "; corrected for the lab's CPU share: " + ", ".join(parts)


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
        (cpu_ours, cpu_peer), _ = medians(runs, "lab_cpu_s", "iovd-vmm", "qemu-microvm")
        print(f"lab-bench boot (lab CPU seconds, independent of the machine's load): "
              f"iovd-vmm {cpu_ours:.1f} s, QEMU -M microvm {cpu_peer:.1f} s; ratio "
              f"{cpu_ours / cpu_peer:.2f}")
    except LookupError:
        pass
    try:
        nopci, k = median(runs, "iovd-vmm-pci-off", "boot_ms")
        exits = median(runs, "iovd-vmm", "exits")[0]
        pci = median(runs, "iovd-vmm", "pci_config_exits")[0]
        exits_off = median(runs, "iovd-vmm-pci-off", "exits")[0]
        try:
            cpu = (f", {median(runs, 'iovd-vmm-pci-off', 'lab_cpu_s')[0]:.1f} lab CPU s "
                   f"(ratio {median(runs, 'iovd-vmm-pci-off', 'lab_cpu_s')[0] / median(runs, 'qemu-microvm', 'lab_cpu_s')[0]:.2f})")
        except LookupError:
            cpu = ""
        print(f"lab-bench boot (diagnostic): iovd-vmm exits during the boot: {exits:.0f}, "
              f"{pci:.0f} of them PCI configuration space; with pci=off {exits_off:.0f} exits "
              f"and {nopci:.0f} ms to the marker (median of {k}), ratio to QEMU "
              f"{nopci / peer:.2f}{cpu}")
    except LookupError:
        pass


def blk_counters(runs):
    """Per request over the L2 guest's whole run, from iovd-vmm's virtio-blk counters:
    notifications (the guest's kicks, one VM exit each) and interrupts."""
    try:
        text = runs["iovd-vmm-counters"][0]["counters"]
        get = {k: int(re.search(f'"{k}":([0-9]+)', text).group(1))
               for k in ("requests_read", "requests_written", "notifications", "interrupts")}
    except (KeyError, IndexError, AttributeError):
        return ""
    requests = get["requests_read"] + get["requests_written"]
    if requests == 0:
        return ""
    return (f"; per request: {get['notifications'] / requests:.3f} notification exits, "
            f"{get['interrupts'] / requests:.3f} interrupts ({requests} requests)")


def kvm_per(runs, who, count_who, count_key):
    """KVM's exits and interrupt injections (kvm-stat.sh, over WHO's runs) per request or
    frame (COUNT_KEY of COUNT_WHO's same runs): the cost behind a figure, counted by KVM the
    same way under any VMM; with the page faults KVM fixed (pf_fixed: guest RAM the host
    maps in 4 KiB pages costs one per first touch) where every run has them. " (exits,
    irqs[, faults])" text, or "" without the counters."""
    exits = irqs = faults = count = 0
    counts = {f.get("run"): f for f in runs.get(count_who, [])}
    for fields in runs.get(who, []):
        try:
            n = int(counts[fields.get("run")][count_key])
            e, i = int(fields["kvm_exits"]), int(fields["kvm_irq_injections"])
        except (KeyError, ValueError):
            continue
        if e < 0 or i < 0:
            continue  # the guest went away within the run: its counters left KVM's sums
        exits, irqs, count = exits + e, irqs + i, count + n
        faults = (faults + int(fields["kvm_pf_fixed"])
                  if faults is not None and "kvm_pf_fixed" in fields else None)
    if count == 0:
        return ""
    unit = count_key.split('_')[-1].rstrip('s')
    text = f" ({exits / count:.3f} exits, {irqs / count:.3f} interrupts"
    if faults is not None:
        text += f", {faults / count:.4f} page faults"
    return text + f" per {unit})"


def blk_compare(ours, qemu, lab, fmt, after_limit):
    """iovd-vmm, QEMU (None: not measured) and the limit, then the ratios iovd-vmm/limit and
    iovd-vmm/QEMU; after_limit follows the limit's figure."""
    text = f"iovd-vmm {ours:{fmt}}"
    if qemu is not None:
        text += f", QEMU {qemu:{fmt}}"
    text += f", limit {lab:{fmt}}{after_limit}; iovd-vmm/limit {ours / lab:.4f}"
    if qemu is not None:
        text += f", iovd-vmm/QEMU {ours / qemu:.3f}"
    return text


def blk_row(runs, label, key, unit, fmt):
    """One row: iovd-vmm, QEMU and the limit, raw medians and corrected for the lab's CPU
    share, with the ratios iovd-vmm/limit and iovd-vmm/QEMU."""
    ours, n = median(runs, "l2-virtio", key)
    lab, _ = median(runs, "lab", key)
    try:
        qemu, _ = median(runs, "qemu-l2-virtio", key)
    except LookupError:
        qemu = None
    text = f"{label}: " + blk_compare(ours, qemu, lab, fmt, f" {unit} (median of {n})")
    try:
        c_ours, c_lab = corrected(runs, "l2-virtio", key), corrected(runs, "lab", key)
        c_qemu = corrected(runs, "qemu-l2-virtio", key) if qemu is not None else None
        text += "; per lab CPU: " + blk_compare(c_ours, c_qemu, c_lab, fmt, "")
    except LookupError:
        pass
    return text


def blk(runs):
    rows = [("sequential 1 MiB", "seq_mib_s", "MiB/s", ".1f"),
            ("random 4 KiB", "rand4k_iops", "IOPS", ".0f"),
            ("sequential 1 MiB depth 16", "seq_qd16_mib_s", "MiB/s", ".1f"),
            ("random 4 KiB depth 16", "rand4k_qd16_iops", "IOPS", ".0f")]
    print("lab-bench blk: L2 guest virtio-blk (O_DIRECT) under iovd-vmm and QEMU (KVM, "
          "aio=io_uring) vs the image file in the lab (limit)" + blk_counters(runs))
    for label, key, unit, fmt in rows:
        try:
            print(f"lab-bench blk {blk_row(runs, label, key, unit, fmt)}")
        except LookupError:
            if key in ("seq_mib_s", "rand4k_iops"):
                raise
    print("lab-bench blk KVM counters over the runs: iovd-vmm"
          + (kvm_per(runs, "l2-virtio", "l2-virtio", "requests") or " (none)")
          + ", QEMU" + (kvm_per(runs, "qemu-l2-virtio", "qemu-l2-virtio", "requests") or " (none)"))


def net_arm(runs, p):
    """An arm of the net benchmark (results prefixed with p): the medians of guest->lab
    (the lab's TAP receiver) and lab->guest (the guest's receiver), and the run count."""
    (tx, rx), n = medians(runs, "mib_s", f"{p}tap-rx", f"{p}l2-net-rx")
    return tx, rx, n


def net_arms(runs, what, *prefixes):
    """net_arm of each prefix, or None after a line saying that WHAT's figures are missing
    (an optional arm of the benchmark)."""
    try:
        return [net_arm(runs, p) for p in prefixes]
    except LookupError as e:
        print(f"lab-bench net: no {what} figures ({e})")
        return None


def net_cpu_note(runs, p, over=None, label=""):
    """cpu_note of arm p's two directions over arm `over`'s, or over the veth limit (None)."""
    tx_base, rx_base = (("veth", "veth") if over is None
                        else (f"{over}tap-rx", f"{over}l2-net-rx"))
    return cpu_note(runs, [(f"guest->lab{label}", f"{p}tap-rx", tx_base, "mib_s"),
                           (f"lab->guest{label}", f"{p}l2-net-rx", rx_base, "mib_s")])


def net(runs):
    limit, n = median(runs, "veth", "mib_s")
    tx, rx, _ = net_arm(runs, "")
    offered, _ = median(runs, "tap-tx-sender", "sent_mib_s")
    print(f"lab-bench net: 1514-byte raw frames, median of {n} runs: guest->lab over "
          f"virtio-net/TAP {tx:.2f} MiB/s (ratio {tx / limit:.3f}), lab->guest {rx:.2f} MiB/s "
          f"received of {offered:.2f} sent (ratio {rx / limit:.3f}), veth pair in the lab "
          f"(limit) {limit:.2f} MiB/s" + net_cpu_note(runs, ""))
    vhost_net(runs, limit, tx, rx)
    qemu_net(runs, limit)
    for p, label in (("", "iovd-vmm userspace"), ("vhost-", "iovd-vmm vhost-net"),
                     ("qemu-vhost-", "QEMU vhost-net")):
        print(f"lab-bench net KVM counters, {label}: guest->lab"
              + (kvm_per(runs, f"{p}tap-rx", f"{p}l2-net-tx", "sent_frames") or " (none)")
              + ", lab->guest" + (kvm_per(runs, f"{p}l2-net-rx", f"{p}l2-net-rx", "frames")
                                  or " (none)"))


def qemu_net(runs, limit):
    """The same guest under QEMU with vhost-net, beside iovd-vmm on vhost-net."""
    arms = net_arms(runs, "QEMU", "qemu-vhost-", "vhost-")
    if arms is None:
        return
    (qtx, qrx, n), (vtx, vrx, _) = arms
    print(f"lab-bench net QEMU: median of {n} runs: guest->lab on QEMU with vhost-net "
          f"{qtx:.2f} MiB/s (ratio to veth {qtx / limit:.3f}; iovd-vmm vhost/QEMU "
          f"{vtx / qtx:.2f}), lab->guest {qrx:.2f} MiB/s (ratio to veth {qrx / limit:.3f}; "
          f"iovd-vmm vhost/QEMU {vrx / qrx:.2f})"
          + net_cpu_note(runs, "vhost-", "qemu-vhost-", " iovd-vmm vhost/QEMU"))


def vhost_net(runs, limit, tx, rx):
    """The same guest on vhost-net, beside the userspace path and the veth limit."""
    arms = net_arms(runs, "vhost-net", "vhost-")
    if arms is None:
        return
    ((vtx, vrx, n),) = arms
    print(f"lab-bench net vhost: median of {n} runs: guest->lab on vhost-net {vtx:.2f} MiB/s "
          f"(ratio to veth {vtx / limit:.3f}, to userspace {vtx / tx:.2f}), lab->guest "
          f"{vrx:.2f} MiB/s (ratio to veth {vrx / limit:.3f}, to userspace {vrx / rx:.2f})"
          + net_cpu_note(runs, "vhost-"))


def frame_rate(runs, who):
    """WHO's medians of MiB/s and frames/s (netbench recv), and its run count."""
    mib, n = median(runs, who, "mib_s")
    return mib, median(runs, who, "pps")[0], n


def link(runs):
    link_rx, link_pps, n = frame_rate(runs, "link-rx")
    tap_rx, tap_pps, _ = frame_rate(runs, "tap-rx")
    print(f"lab-bench link: 1514-byte raw frames, median of {n} runs: client VM -> driver VM "
          f"over a VM-to-VM link {link_rx:.2f} MiB/s {link_pps:.0f} frames/s, the same client "
          f"-> the lab over a TAP {tap_rx:.2f} MiB/s {tap_pps:.0f} frames/s, ratio link/tap "
          f"{link_rx / tap_rx:.3f}")


def domain(runs):
    arms = [("own-rx", "the driver VM's own passthrough (limit)"),
            ("domain-rx", "client through the device domain"),
            ("tap-rx", "the same client on a TAP bridged by the lab")]
    fig = {who: frame_rate(runs, who) for who, _ in arms}
    own = fig["own-rx"][0]
    parts = [f"{label} {fig[who][0]:.2f} MiB/s {fig[who][1]:.0f} frames/s (median of "
             f"{fig[who][2]})" for who, label in arms]
    print(f"lab-bench domain: 1514-byte raw frames to the lab's end of the e1000e: "
          + ", ".join(parts)
          + f"; ratios domain/limit {fig['domain-rx'][0] / own:.3f}, tap/limit "
          f"{fig['tap-rx'][0] / own:.3f}, domain/tap "
          f"{fig['domain-rx'][0] / fig['tap-rx'][0]:.3f}")


def main():
    bench, path = sys.argv[1], sys.argv[2]
    runs = load(path, bench)
    try:
        {"boot": boot, "blk": blk, "net": net, "link": link,
         "domain": domain}[bench](runs)
    except LookupError as e:
        print(f"lab-bench {bench}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
