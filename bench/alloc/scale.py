#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Scale benchmark: 10,000 pools and 10,000 allocations created and listed on one iovd.

One generated tree (default 40 PFs x 255 VFs, an IOMMU group per function: 10,241
functions; the VFs driverless, as PUT .../sriov leaves them) with the fake kernel reacting
to writes.
Then, timed from the client (HTTP over the Unix socket):
  pools        POST /v1/pools {"name": "p-N", "selector": {"addresses": [VF N]}} until
               --count pools exist or iovd refuses (409 too_many_pools: the cap, printed)
  allocations  POST /v1/allocations {"device": VF N} for --count VFs
  lists        GET /v1/pools and GET /v1/allocations, after the first --window objects and
               at the end
  restart      SIGTERM, start again on the same state, until GET /v1/host answers with
               every pool and allocation counted
Per-operation figures are the median and p99 of the first and the last --window
operations; the target is the last median within 2x of the first. On a shared machine the
load changes between the start and the end of a run, so the last --window operations also
alternate, one by one, with the same operation on a second, fresh iovd: "last/fresh"
compares the two at the same moment, under the same load. The fresh iovd runs on the same
tree (so a cost that grows with the host's size is the same for both) with VFs past
--count; where the tree has no spare VFs, on a small tree of its own. RSS is iovd's VmRSS at
the end and after the restart. Where the time of an allocation goes, in the first and the
last window: iovd's own per-step timings (/metrics iovd_allocation_step_seconds_total),
so a change in the client's figure can be told from the machine's load.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import percentile, request, start_fakekernel, start_iovd, stop_all  # noqa: E402


def timed(sock, method, path, body=None):
    start = time.monotonic()
    status, data = request(sock, method, path, body)
    return time.monotonic() - start, status, data


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def vf_addresses(pfs, vfs_per_pf):
    # Generated VFs: PF 0000:BB:00.0, VFs from offset 1 stride 1 on the same bus.
    out = []
    for b in range(1, pfs + 1):
        for i in range(1, vfs_per_pf + 1):
            out.append("0000:%02x:%02x.%d" % (b, i // 8, i % 8))
    return out


def create_all(sock, path, bodies, refusal, before=0):
    """POST each body; stop at the first 409 with code refusal. A 5xx (a bind the fake
    kernel did not finish in time on a loaded machine) is counted and skipped. Prints the
    median of each 1,000th block so a long run shows its trend as it goes.
    Returns (seconds, ids, bodies used)."""
    times, ids, failed, used = [], [], 0, 0
    for body in bodies:
        used += 1
        t, status, data = timed(sock, "POST", path, json.dumps(body))
        if status == 409 and json.loads(data)["error"]["code"] == refusal:
            print("# %s: iovd refused the %dth with 409 %s" % (path, before + len(times) + 1,
                                                                refusal), flush=True)
            break
        if status >= 500:
            failed += 1
            print("# %s: %d %s" % (path, status, data[:200]), flush=True)
            continue
        if status != 201:
            raise RuntimeError("POST %s %s: %d %s" % (path, body, status, data[:300]))
        times.append(t)
        ids.append(json.loads(data).get("id") or body.get("name"))
        n = before + len(times)
        if n % 1000 == 0:
            print("# %s: %d created, median of the last 100 %.2f ms" % (
                path, n, statistics.median(times[-100:]) * 1e3), flush=True)
    if failed:
        print("# %s: %d refused with 5xx and skipped" % (path, failed), flush=True)
    return times, ids, used


def create_beside(sock, path, bodies, fresh_sock, fresh_bodies):
    """POST each of bodies to sock, each followed by the same kind of POST to the fresh
    iovd. Returns (times, ids, fresh times)."""
    times, ids, fresh = [], [], []
    for body, other in zip(bodies, fresh_bodies):
        t, status, data = timed(sock, "POST", path, json.dumps(body))
        if status != 201:
            raise RuntimeError("POST %s %s: %d %s" % (path, body, status, data[:300]))
        times.append(t)
        ids.append(json.loads(data).get("id") or body.get("name"))
        t, status, data = timed(fresh_sock, "POST", path, json.dumps(other))
        if status != 201:
            raise RuntimeError("fresh iovd: POST %s %s: %d %s" % (path, other, status,
                                                                   data[:300]))
        fresh.append(t)
    return times, ids, fresh


def report_beside(name, last, fresh):
    ml, mf = statistics.median(last), statistics.median(fresh)
    print("%-28s %7d %10.2f %10.2f %10.2f %10.2f %7.2f" % (
        name, len(last), mf * 1e3, percentile(fresh, 99) * 1e3, ml * 1e3,
        percentile(last, 99) * 1e3, ml / mf))


def start_fresh(args, work, tree, spare, n):
    """A second iovd with its own state on tree, given the spare VFs there; where fewer
    than n are spare, on a tree of one PF with n VFs and its own fake kernel."""
    if len(spare) >= n:
        iovd, sock = start_iovd(args.iovd, tree, os.path.join(work, "fresh"))
        print("# fresh iovd: on the same tree, VFs %s..%s" % (spare[0], spare[n - 1]), flush=True)
        return [iovd], sock, spare[:n]
    tree = os.path.join(work, "fresh-tree")
    subprocess.run([args.fixture, "--pfs", "1", "--vfs-per-pf", str(n), "--iommu",
                    "--vfs-driverless", tree], check=True, stdout=subprocess.DEVNULL)
    kernel = start_fakekernel(args.fakekernel, tree)
    iovd, sock = start_iovd(args.iovd, tree, os.path.join(work, "fresh"))
    print("# fresh iovd: on a tree of its own (1 PF x %d VFs)" % n, flush=True)
    return [kernel, iovd], sock, vf_addresses(1, n)


def step_seconds(sock):
    """iovd's cumulative time per allocation step, {step: seconds}."""
    status, data = request(sock, "GET", "/metrics")
    out = {}
    for line in data.decode().splitlines():
        if line.startswith("iovd_allocation_step_seconds_total{step=\""):
            out[line.split('"')[1]] = float(line.split()[-1])
    return out


def step_report(name, before, after, n):
    """Milliseconds per allocation in each step between two step_seconds() readings."""
    steps = ["%s %.2f" % (k, (after[k] - before.get(k, 0.0)) * 1e3 / n)
             for k in sorted(after) if after[k] > before.get(k, 0.0)]
    print("%-28s ms/allocation: %s" % (name, ", ".join(steps)))


def list_time(sock, path, key):
    t, status, data = timed(sock, "GET", path)
    if status != 200:
        raise RuntimeError("GET %s: %d" % (path, status))
    return t, len(json.loads(data)[key])


def report(name, times, window):
    if len(times) < 2 * window:
        window = max(1, len(times) // 2)
    first, last = times[:window], times[-window:]
    mf, ml = statistics.median(first), statistics.median(last)
    print("%-28s %7d %10.2f %10.2f %10.2f %10.2f %7.2f" % (
        name, len(times), mf * 1e3, percentile(first, 99) * 1e3, ml * 1e3,
        percentile(last, 99) * 1e3, ml / mf))


def restart(iovd_path, tree, work, proc, n_pools, n_allocs):
    proc.terminate()
    proc.wait(timeout=120)
    start = time.monotonic()
    proc, sock = start_iovd(iovd_path, tree, work)
    up = time.monotonic() - start
    status, data = request(sock, "GET", "/v1/host")
    counts = json.loads(data)["counts"]
    if counts.get("pools") != n_pools or counts.get("allocations") != n_allocs:
        raise RuntimeError("after restart: %s, expected %d pools, %d allocations"
                           % (counts, n_pools, n_allocs))
    return proc, sock, up


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fixture", required=True)
    ap.add_argument("--fakekernel", required=True)
    ap.add_argument("--iovd", required=True)
    ap.add_argument("--pfs", type=int, default=40)
    ap.add_argument("--vfs-per-pf", type=int, default=255)
    ap.add_argument("--count", type=int, default=10000, help="pools and allocations each")
    ap.add_argument("--allocations", type=int,
                    help="allocations, when fewer than --count (each waits for the fake "
                         "kernel's reactions, seconds apiece on a loaded machine)")
    ap.add_argument("--window", type=int, default=100, help="operations per start/end figure")
    args = ap.parse_args()
    if args.allocations is None or args.allocations > args.count:
        args.allocations = args.count

    work = tempfile.mkdtemp(prefix="iov-alloc-scale-")
    procs = []
    try:
        tree = os.path.join(work, "tree")
        subprocess.run([args.fixture, "--pfs", str(args.pfs), "--vfs-per-pf",
                        str(args.vfs_per_pf), "--iommu", "--vfs-driverless", tree], check=True)
        procs.append(start_fakekernel(args.fakekernel, tree))
        iovd, sock = start_iovd(args.iovd, tree, work)
        procs.append(iovd)
        all_vfs = vf_addresses(args.pfs, args.vfs_per_pf)
        vfs = all_vfs[:args.count]
        print("# tree: %d PFs x %d VFs; %d pools and %d allocations asked for"
              % (args.pfs, args.vfs_per_pf, len(vfs), args.allocations), flush=True)

        fresh_procs, fresh_sock, fresh_vfs = start_fresh(args, work, tree, all_vfs[len(vfs):],
                                                         min(args.window, 255))
        procs += fresh_procs
        window = len(fresh_vfs)

        pool_bodies = [{"name": "p-%d" % i, "selector": {"addresses": [vf]}}
                       for i, vf in enumerate(vfs)]
        pool_times, pools, used = create_all(sock, "/v1/pools", pool_bodies[:args.window],
                                             "too_many_pools")
        lists = [("GET /v1/pools", len(pools)) + list_time(sock, "/v1/pools", "pools")]
        cut = max(used, len(pool_bodies) - window)
        if len(pools) == used:  # not capped yet
            more, more_pools, _ = create_all(sock, "/v1/pools", pool_bodies[used:cut],
                                             "too_many_pools", len(pools))
            pool_times += more
            pools += more_pools
        pools_beside = None
        if len(pools) == cut:  # not capped yet: the last window beside the fresh iovd
            fresh_bodies = [{"name": "f-%d" % i, "selector": {"addresses": [vf]}}
                            for i, vf in enumerate(fresh_vfs)]
            last, last_pools, fresh = create_beside(sock, "/v1/pools", pool_bodies[cut:],
                                                    fresh_sock, fresh_bodies)
            pool_times += last
            pools += last_pools
            pools_beside = (last, fresh)
        lists.append(("GET /v1/pools", len(pools)) + list_time(sock, "/v1/pools", "pools"))

        alloc_bodies = [{"owner": "bench", "device": vf} for vf in vfs[:args.allocations]]
        steps = [step_seconds(sock)]
        alloc_times, allocs, used = create_all(sock, "/v1/allocations",
                                               alloc_bodies[:args.window], "none")
        steps.append(step_seconds(sock))
        lists.append(("GET /v1/allocations", len(allocs)) +
                     list_time(sock, "/v1/allocations", "allocations"))
        cut = max(used, len(alloc_bodies) - window)
        more, more_allocs, _ = create_all(sock, "/v1/allocations", alloc_bodies[used:cut],
                                          "none", len(allocs))
        steps.append(step_seconds(sock))
        fresh_bodies = [{"owner": "bench", "device": vf} for vf in fresh_vfs]
        last, last_allocs, fresh = create_beside(sock, "/v1/allocations", alloc_bodies[cut:],
                                                 fresh_sock, fresh_bodies)
        allocs_beside = (last, fresh)
        steps.append(step_seconds(sock))
        alloc_times += more + last
        allocs += more_allocs + last_allocs
        lists.append(("GET /v1/allocations", len(allocs)) +
                     list_time(sock, "/v1/allocations", "allocations"))
        rss = rss_kib(iovd.pid)

        print("%-28s %7s %10s %10s %10s %10s %7s" % ("operation", "count", "first ms",
                                                     "first p99", "last ms", "last p99",
                                                     "last/1st"))
        report("POST /v1/pools", pool_times, args.window)
        report("POST /v1/allocations", alloc_times, args.window)
        print("%-28s %7s %10s %10s %10s %10s %7s" % ("last, beside a fresh iovd", "count",
                                                     "fresh ms", "fresh p99", "last ms",
                                                     "last p99", "l/fresh"))
        if pools_beside:
            report_beside("POST /v1/pools", *pools_beside)
        report_beside("POST /v1/allocations", *allocs_beside)
        step_report("  first %d, iovd's steps" % len(alloc_times[:args.window]), steps[0],
                    steps[1], max(1, len(alloc_times[:args.window])))
        step_report("  last %d, iovd's steps" % len(last), steps[2], steps[3], max(1, len(last)))
        for name, n, t, listed in lists:
            print("%-28s %7d %10.2f   (%d listed)" % ("%s at %d" % (name, n), 1, t * 1e3,
                                                      listed))
        procs.remove(iovd)
        iovd, sock, up = restart(args.iovd, tree, work, iovd, len(pools), len(allocs))
        procs.append(iovd)
        print("iovd RSS: %.1f MiB with %d pools and %d allocations; %.1f MiB after restart"
              % (rss / 1024.0, len(pools), len(allocs), rss_kib(iovd.pid) / 1024.0))
        print("restart: %.2f s until GET /v1/host answered with every pool and allocation"
              % up)
    finally:
        stop_all(procs, work, timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
