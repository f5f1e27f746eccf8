#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Inventory benchmark: iovd's view of a large generated SR-IOV host against lspci's.

One tree (default 64 PFs x 255 VFs + a host bridge = 16,385 functions) is generated once;
then, in the same run, each figure is the median of --runs runs:
  (a) lspci -D -vmm -A linux-sysfs -O sysfs.path=TREE/sys/bus/pci >/dev/null  (the peer)
  (b) inventory-scan: pci_inventory_scan() in a fresh process (process wall time, so it
      pays for start-up and pci.ids like lspci does), the scan alone in-process, and the
      two ways of listing the IOMMU groups
  (c) iovd start to the first complete GET /v1/devices (all functions listed)
  (d) GET /v1/devices latency on a running iovd (curl --unix-socket)
Every line prints our figure, lspci's and the ratio ours/lspci (below 1: faster); lspci
runs are interleaved with ours in each phase, so both see the same machine load.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def median_ms(samples):
    return statistics.median(samples) * 1000.0


def timed(cmd, **kw):
    start = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)
    return time.monotonic() - start


def curl_devices(sock):
    out = subprocess.run(
        ["curl", "-sS", "--unix-socket", sock, "-o", "-", "-w", "\n%{http_code} %{time_total}",
         "http://localhost/v1/devices"], capture_output=True, text=True)
    if out.returncode != 0:
        return None, None, None
    body, _, tail = out.stdout.rpartition("\n")
    code, seconds = tail.split()
    return int(code), body, float(seconds)


def count_devices(body):
    doc = json.loads(body)
    if isinstance(doc, dict):
        doc = doc.get("devices", [])
    return len(doc)


def start_iovd(iovd, tree, work, n):
    state, run = os.path.join(work, "state"), os.path.join(work, "run")
    shutil.rmtree(state, ignore_errors=True)
    shutil.rmtree(run, ignore_errors=True)
    os.makedirs(state)
    os.makedirs(run)
    sock = os.path.join(run, "iovd.sock")
    start = time.monotonic()
    proc = subprocess.Popen(
        [iovd, "--listen", "unix:" + sock, "--state-dir", state, "--run-dir", run,
         "--sysfs-root", os.path.join(tree, "sys"), "--dev-root", os.path.join(tree, "dev"),
         "--log-level", "warning"], stdout=subprocess.DEVNULL)
    deadline = start + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("iovd exited with %d" % proc.returncode)
        if os.path.exists(sock):
            code, body, _ = curl_devices(sock)
            if code == 200 and count_devices(body) >= n:
                return proc, sock, time.monotonic() - start
        time.sleep(0.002)
    proc.terminate()
    raise RuntimeError("iovd did not list %d devices within 120 s" % n)


def stop_iovd(proc):
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def line(name, ours, peer):
    print("%-44s %9.1f ms   lspci %9.1f ms   ratio %.2f" % (name, ours, peer, ours / peer))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fixture", required=True, help="iov-fixture executable")
    p.add_argument("--scan", required=True, help="inventory-scan executable")
    p.add_argument("--iovd", help="iovd executable (figures c and d)")
    p.add_argument("--pfs", type=int, default=64)
    p.add_argument("--vfs-per-pf", type=int, default=255)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--keep", action="store_true", help="keep the generated tree")
    args = p.parse_args()
    if not shutil.which("lspci"):
        print("SKIP: lspci (pciutils) is not installed")
        return 77

    work = tempfile.mkdtemp(prefix="iovd-bench-inventory.")
    tree = os.path.join(work, "tree")
    try:
        t = timed([args.fixture, "--pfs", str(args.pfs), "--vfs-per-pf", str(args.vfs_per_pf),
                   "--iommu", tree])
        n = len(os.listdir(os.path.join(tree, "sys/bus/pci/devices")))
        print("tree: %d PCI functions (%d PFs x %d VFs + host bridge), generated in %.1f s; "
              "median of %d runs each" % (n, args.pfs, args.vfs_per_pf, t, args.runs))

        lspci = ["lspci", "-D", "-vmm", "-A", "linux-sysfs", "-O",
                 "sysfs.path=" + os.path.join(tree, "sys/bus/pci")]
        scan = [args.scan, os.path.join(tree, "sys")]
        peer, ours, inproc, derived, groups = [], [], [], [], []
        for _ in range(args.runs):  # interleaved, so both see the same machine load
            peer.append(timed(lspci))
            start = time.monotonic()
            subprocess.run(scan[:1] + ["--scan-only"] + scan[1:], check=True,
                           stdout=subprocess.DEVNULL)
            ours.append(time.monotonic() - start)
            out = subprocess.run(scan, check=True, capture_output=True, text=True).stdout
            # "scan 0 usec X devices N", "derived 0 usec X groups G", "groups 0 usec X groups G"
            rows = {f[0]: f for f in (l.split() for l in out.splitlines())}
            if int(rows["scan"][5]) != n:
                raise RuntimeError("inventory-scan saw %s functions, not %s" % (rows["scan"][5], n))
            inproc.append(int(rows["scan"][3]) / 1e6)
            derived.append(int(rows["derived"][3]) / 1e6)
            groups.append(int(rows["groups"][3]) / 1e6)
        peer_ms = median_ms(peer)
        line("(b) pci_inventory_scan, fresh process", median_ms(ours), peer_ms)
        line("    pci_inventory_scan, scan alone", median_ms(inproc), peer_ms)
        line("    iommu_groups_scan alone", median_ms(groups), peer_ms)
        line("    iommu_groups_from_inventory alone", median_ms(derived), peer_ms)

        if not args.iovd or not os.access(args.iovd, os.X_OK):
            print("(c), (d): iovd not built; skipped")
            return 0
        starts, latency, peer = [], [], []
        for i in range(args.runs):  # lspci again, interleaved with the daemon starts
            peer.append(timed(lspci))
            proc, sock, seconds = start_iovd(args.iovd, tree, work, n)
            starts.append(seconds)
            if i == 0:
                for _ in range(max(args.runs, 10)):
                    code, _, s = curl_devices(sock)
                    if code != 200:
                        raise RuntimeError("GET /v1/devices returned %s" % code)
                    latency.append(s)
            stop_iovd(proc)
        peer_ms = median_ms(peer)
        line("(c) iovd start to first full GET /v1/devices", median_ms(starts), peer_ms)
        line("(d) GET /v1/devices latency", median_ms(latency), peer_ms)
        return 0
    finally:
        if args.keep:
            print("tree kept in", tree)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
