#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Allocation benchmark: iovd's allocate+release latency against the raw sysfs work.

One generated tree (default 64 PFs x 255 VFs, an IOMMU group per function: 16,385
functions) with the fake kernel reacting to writes. In the same run, in alternating
blocks so both see the same machine load:
  (a) iovd: POST /v1/allocations {"device": VF} then DELETE /v1/allocations/{id}, timed
      from the client (HTTP over the Unix socket, state saved, inventory refreshed)
  (b) the limit: sysfs-limit doing the same driver_override / drivers_probe / reset /
      unbind writes on the same tree, nothing else
Prints median and p99 of each and the ratio iovd / limit.
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=60)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def request(sock, method, path, body=None):
    conn = UnixHTTPConnection(sock)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def percentile(samples, p):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100.0 * (len(ordered) - 1))))]


def start_fakekernel(fakekernel, tree):
    proc = subprocess.Popen([fakekernel, tree], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline()
    if "READY" not in line:
        proc.kill()
        raise RuntimeError("iov-fakekernel did not get ready: %r" % line)
    return proc


def start_iovd(iovd, tree, work):
    state, run = os.path.join(work, "state"), os.path.join(work, "run")
    os.makedirs(state, exist_ok=True)
    os.makedirs(run, exist_ok=True)
    sock = os.path.join(run, "iovd.sock")
    proc = subprocess.Popen(
        [iovd, "--listen", "unix:" + sock, "--state-dir", state, "--run-dir", run,
         "--sysfs-root", os.path.join(tree, "sys"), "--dev-root", os.path.join(tree, "dev"),
         "--log-level", "warning"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("iovd exited with %d" % proc.returncode)
        if os.path.exists(sock):
            try:
                if request(sock, "GET", "/v1/host")[0] == 200:
                    return proc, sock
            except OSError:
                pass
        time.sleep(0.05)
    proc.terminate()
    raise RuntimeError("iovd did not answer within 300 s")


def stop_all(procs, work, timeout=30):
    """Ends what the benchmark started, last started first, and removes its directory."""
    for p in reversed(procs):
        p.terminate()
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
    shutil.rmtree(work, ignore_errors=True)


def iovd_round(sock, address):
    start = time.monotonic()
    status, body = request(sock, "POST", "/v1/allocations",
                           json.dumps({"owner": "bench", "device": address}))
    if status != 201:
        raise RuntimeError("allocate %s: %d %s" % (address, status, body[:300]))
    alloc_id = json.loads(body)["id"]
    status, body = request(sock, "DELETE", "/v1/allocations/" + alloc_id)
    if status != 200:
        raise RuntimeError("release %s: %d %s" % (alloc_id, status, body[:300]))
    return time.monotonic() - start


def unbind_host_driver(sysfs, address):
    link = os.path.join(sysfs, "bus/pci/devices", address, "driver")
    if not os.path.islink(link):
        return
    with open(os.path.join(link, "unbind"), "w") as f:
        f.write(address)
    deadline = time.monotonic() + 10
    while os.path.islink(link):
        if time.monotonic() > deadline:
            raise RuntimeError("%s kept its driver" % address)
        time.sleep(0.01)


def limit_block(limit, sysfs, rounds, addresses):
    out = subprocess.run([limit, sysfs, str(rounds)] + addresses, check=True,
                         capture_output=True, text=True).stdout
    return [int(x) / 1e6 for x in out.split()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fixture", required=True)
    ap.add_argument("--fakekernel", required=True)
    ap.add_argument("--iovd", required=True)
    ap.add_argument("--limit", required=True)
    ap.add_argument("--pfs", type=int, default=64)
    ap.add_argument("--vfs-per-pf", type=int, default=255)
    ap.add_argument("--rounds", type=int, default=40, help="allocate+release rounds each")
    ap.add_argument("--block", type=int, default=5, help="rounds per alternating block")
    ap.add_argument("--tree", help="reuse this generated tree (made with --iommu)")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="iov-alloc-bench-")
    procs = []
    try:
        tree = args.tree
        if not tree:
            tree = os.path.join(work, "tree")
            subprocess.run([args.fixture, "--pfs", str(args.pfs), "--vfs-per-pf",
                            str(args.vfs_per_pf), "--iommu", tree], check=True)
        sysfs = os.path.join(tree, "sys")
        n = 1 + args.pfs * (1 + args.vfs_per_pf)
        procs.append(start_fakekernel(args.fakekernel, tree))
        # Generated VFs come up on iavf; iovd hands out driverless ones (as PUT sriov
        # leaves them): unbind the two this run uses.
        ours_vf, limit_vf = "0000:01:00.1", "0000:02:00.1"
        for vf in (ours_vf, limit_vf):
            unbind_host_driver(sysfs, vf)
        t0 = time.monotonic()
        iovd, sock = start_iovd(args.iovd, tree, work)
        procs.append(iovd)
        print("# tree: %d functions; iovd answered after %.2f s" % (n, time.monotonic() - t0))
        # Two different VFs: iovd's on PF 1, the limit's on PF 2 (never the same device).
        iovd_round(sock, ours_vf)  # warm-up
        limit_block(args.limit, sysfs, 1, [limit_vf])
        ours, limit = [], []
        while len(ours) < args.rounds:
            k = min(args.block, args.rounds - len(ours))
            ours += [iovd_round(sock, ours_vf) for _ in range(k)]
            limit += limit_block(args.limit, sysfs, k, [limit_vf])
        mo, ml = statistics.median(ours), statistics.median(limit)
        po, pl = percentile(ours, 99), percentile(limit, 99)
        print("%-34s %12s %12s" % ("allocate+release, %d rounds" % args.rounds, "median ms",
                                   "p99 ms"))
        print("%-34s %12.2f %12.2f" % ("iovd (HTTP, state, inventory)", mo * 1e3, po * 1e3))
        print("%-34s %12.2f %12.2f" % ("limit (raw sysfs writes)", ml * 1e3, pl * 1e3))
        print("%-34s %12.2f %12.2f" % ("ratio iovd / limit", mo / ml, po / pl))
    finally:
        stop_all(procs, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
