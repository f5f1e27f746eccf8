#!/usr/bin/env python3
"""summary.py TAP CPU CYCLES: bench/vf-net's summary. TAP holds lab-vf-net-bench's lines
("# bench: ARM round=R cycle=C ms=.. lab_cpu_ms=.. client_cpu_ms=.. iovd_cpu_ms=.."), CPU
cpumon.py's ("bench-result: vf-net ARM run=R lab_cpu_s=.. lab_wall_s=..", one per block
of CYCLES cycles). Prints the medians per arm and the ratios iovd/bare."""
import re
import statistics
import sys

ARMS = ("iovd", "bare")
FIELDS = ("ms", "lab_cpu_ms", "client_cpu_ms", "iovd_cpu_ms")


def read_cycles(path):
    cycles = {arm: {f: [] for f in FIELDS} for arm in ARMS}
    for line in open(path, encoding="utf-8", errors="replace"):
        m = re.match(r"# bench: (\w+) round=\d+ cycle=\d+ (.*)", line)
        if not m or m.group(1) not in cycles:
            continue
        for key, value in re.findall(r"(\w+)=([0-9.]+)", m.group(2)):
            if key in FIELDS:
                cycles[m.group(1)][key].append(float(value))
    return cycles


def read_blocks(path, per_block):
    blocks = {arm: [] for arm in ARMS}
    try:
        lines = open(path, encoding="utf-8").readlines()
    except FileNotFoundError:
        return blocks
    for line in lines:
        m = re.match(r"bench-result: vf-net (\w+) run=\d+ lab_cpu_s=([0-9.]+)", line)
        if m and m.group(1) in blocks:
            blocks[m.group(1)].append(float(m.group(2)) * 1000 / per_block)
    return blocks


def main():
    cycles = read_cycles(sys.argv[1])
    blocks = read_blocks(sys.argv[2], int(sys.argv[3]))
    if not cycles["iovd"]["ms"] or not cycles["bare"]["ms"]:
        sys.exit("vf-net-bench: no figures (see the lab's work directory)")
    med = {a: {f: statistics.median(cycles[a][f]) for f in FIELDS} for a in ARMS}
    for arm in ARMS:
        m = med[arm]
        print("vf-net-bench: %-4s %d cycles: median %.0f ms wall, lab busy %.0f ms (in-lab "
              "/proc/stat), client CPU %.1f ms, iovd CPU %.0f ms"
              % (arm, len(cycles[arm]["ms"]), m["ms"], m["lab_cpu_ms"], m["client_cpu_ms"],
                 m["iovd_cpu_ms"]))
    print("vf-net-bench: allocate+release of a network VF with settings: ratio iovd/bare "
          "%.2f wall (target <= 1.3), %.2f lab busy time"
          % (med["iovd"]["ms"] / med["bare"]["ms"],
             med["iovd"]["lab_cpu_ms"] / max(med["bare"]["lab_cpu_ms"], 1)))
    if blocks["iovd"] and blocks["bare"]:
        qi, qb = statistics.median(blocks["iovd"]), statistics.median(blocks["bare"])
        print("vf-net-bench: the lab QEMU's CPU per cycle (cpumon.py, median of %d blocks): "
              "iovd %.0f ms, bare %.0f ms, ratio %.2f" % (len(blocks["iovd"]), qi, qb, qi / qb))
    else:
        print("vf-net-bench: no CPU figures from cpumon.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
