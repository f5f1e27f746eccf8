#!/usr/bin/env python3
"""cpumon.py CONSOLE_LOG PID OUT: follows the lab's console log while the lab's QEMU
(PID) runs and, for every "bench-cpu: begin|end BENCH WHO run=N" line, samples the CPU
time that QEMU process has had on this machine. Each begin/end pair becomes
"bench-result: BENCH WHO run=N lab_cpu_s=C lab_wall_s=W" in OUT.

Why: the machine is shared, so the lab gets anything from a fraction of a core to a whole
one and its wall-clock figures swing by 2-3x between runs. The lab's CPU seconds for the
same piece of work do not depend on how much of the machine others use."""
import os
import sys
import time

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def main():
    console, pid, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    begun = {}
    pending, offset = b"", 0
    with open(out, "w", encoding="utf-8") as results:
        while True:
            alive = os.path.exists(f"/proc/{pid}")
            try:
                with open(console, "rb") as f:
                    f.seek(offset)
                    data = f.read()
                    offset += len(data)
            except FileNotFoundError:
                data = b""
            pending += data
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                words = raw.decode("utf-8", "replace").strip().split()
                if "bench-cpu:" not in words:
                    continue
                words = words[words.index("bench-cpu:") + 1:]
                if len(words) != 4 or not alive:
                    continue
                key = " ".join(words[1:])
                now = (cpu_seconds(pid), time.monotonic())
                if words[0] == "begin":
                    begun[key] = now
                elif words[0] == "end" and key in begun:
                    cpu, wall = now[0] - begun[key][0], now[1] - begun[key][1]
                    results.write(f"bench-result: {key} lab_cpu_s={cpu:.2f} lab_wall_s={wall:.2f}\n")
                    results.flush()
            if not alive:
                return 0
            time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
