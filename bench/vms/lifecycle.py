#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Benchmark 3, lifecycle rate: COUNT tiny VMs created, started, run to their boot marker
and deleted through iovd's API, CONCURRENCY at a time. Prints VMs per second and the
p50/p99 latency from POST /v1/vms to the marker being visible in GET /v1/vms/{id}
(targets, issue 12: at least 0.7 of the peer's rate, p99 under 50 ms).

  marker  payload bench/vms/marker.S (print, marker 1, halt): marker seen in the running
          VMM's stats, then POST .../kill and DELETE (an orchestrator ending a VM)
  reset   payload tests/guest/hello.S (print, marker 1, i8042 reset): wait until the
          guest's own reset stopped the VM (marker in its final stats), then DELETE
Peer, same run, same count and concurrency: iovd-vmm driven directly, no daemon, no API:
started with --control-socket, "stats" polled until marker 1, SIGKILL, reaped.

Usage: lifecycle.py [--no-vmm-jail] [--rounds N] [--trace] IOVD IOVD_VMM MARKER_PAYLOAD
                    HELLO_PAYLOAD [COUNT] [CONCURRENCY]
The payloads are copied into an image directory of the daemon (iovd --image-dir); with
--no-vmm-jail the daemon runs its VMMs unjailed (iovd --no-vmm-jail). The marker runs
through the API and the peer's alternate, N rounds each (default 3), COUNT VMs a round;
the ratio is the API's rate over the peer's. Below the API's figures, iovd's own time per
VM and step (iovd_vm_step_seconds_total in GET /metrics).

--trace: iovd and the VMMs run with IOVD_TRACE=1, so each VMM stamps its start-up steps
(CLOCK_MONOTONIC, the clock of time.monotonic(), and its CPU time; vmm/trace.c) and lists
them in its stats; each side then prints p50/p99 per step from the client's request to the
marker seen, the VMM's CPU time per step, the kill and delete, and the CPU the host, iovd
and this client spent per VM with the load average."""
import http.client
import resource
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=60)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(self.path)


def call(conn, method, path, body=None, want=200):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers=headers)
    r = conn.getresponse()
    data = r.read()
    if r.status != want:
        raise RuntimeError(f"{method} {path}: {r.status} {data!r}")
    return json.loads(data) if data else None


def has_marker(vm):
    stats = vm.get("stats") or {}
    return any(m.get("value") == 1 for m in stats.get("markers", []))


def one_vm(sock, payload, mode, latencies, traces=None):
    """mode "marker": kill once the marker is seen; "reset": wait for the guest's end.
    traces: a list to add the VM's times to (the client's and the VMM's, see --trace)."""
    conn = UnixConnection(sock)
    t0 = time.monotonic()
    vm = call(conn, "POST", "/v1/vms", {"kernel": payload, "memory_mib": 16}, want=201)
    t = {"request": t0, "created": time.monotonic()}
    path = "/v1/vms/" + vm["id"]
    vm = call(conn, "POST", path + "/start")
    t["started"] = time.monotonic()
    while not has_marker(vm):
        if vm["state"] not in ("running", "paused"):
            raise RuntimeError(f"{vm['id']} ended without its marker: {vm}")
        time.sleep(0.002)
        vm = call(conn, "GET", path)
    t["seen"] = time.monotonic()
    latencies.append(t["seen"] - t0)
    vmm_trace = (vm.get("stats") or {}).get("trace", {})
    if mode == "marker":
        if vm["state"] in ("running", "paused"):
            conn.request("POST", path + "/kill")
            r = conn.getresponse()
            r.read()  # 409 when the guest's reset won the race: fine either way
    while vm["state"] in ("running", "paused"):
        time.sleep(0.005)
        vm = call(conn, "GET", path)
    t["ended"] = time.monotonic()
    call(conn, "DELETE", path)
    t["deleted"] = time.monotonic()
    conn.close()
    if traces is not None:
        traces.append((t, vmm_trace))


def run_pool(count, concurrency, fn):
    """Run fn(i) for i in range(count), concurrency at a time; returns the elapsed time."""
    next_i = [0]
    lock = threading.Lock()
    errors = []

    def worker():
        while True:
            with lock:
                i = next_i[0]
                next_i[0] += 1
            if i >= count or errors:
                return
            try:
                fn(i)
            except Exception as e:  # reported once all workers ended
                errors.append(e)

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit(f"failed: {errors[0]}")
    return time.monotonic() - t0


def start_iovd(iovd, vmm, tmp, images, jail, trace):
    sock = os.path.join(tmp, "iovd.sock")
    for d in ("sys/bus/pci/devices", "sys/kernel/iommu_groups", "dev"):
        os.makedirs(os.path.join(tmp, d), exist_ok=True)
    env = dict(os.environ, IOVD_VMM_BINARY=vmm)
    log = open(os.path.join(tmp, "iovd.log"), "w")
    p = subprocess.Popen([iovd, "--listen", "unix:" + sock, "--state-dir", tmp + "/state",
                          "--run-dir", tmp + "/run", "--sysfs-root", tmp + "/sys",
                          "--dev-root", tmp + "/dev", "--image-dir", images,
                          "--log-level", "debug" if trace else "warning"] + ([] if jail else ["--no-vmm-jail"]),
                         env=env, stdout=log, stderr=log)
    for _ in range(500):
        # The socket file exists from bind(); connections are refused until listen().
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(sock)
            return p, sock
        except (FileNotFoundError, ConnectionRefusedError):
            time.sleep(0.01)
    p.kill()
    sys.exit("iovd did not start; see " + log.name)


def vmm_stats(path):
    """The "stats" reply of the control socket at path, or None while it does not answer."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(path)
            s.sendall(b"stats\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    return None
                data += chunk
            return json.loads(data)
    except (FileNotFoundError, ConnectionRefusedError):
        return None


def direct_vm(vmm, payload, tmp, i, latencies, traces=None):
    ctl = os.path.join(tmp, f"direct-{i}.sock")
    t0 = time.monotonic()
    p = subprocess.Popen([vmm, "--kernel", payload, "--memory", "16", "--serial", "none",
                          "--control-socket", ctl], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    while True:
        stats = vmm_stats(ctl)
        if stats and any(m.get("value") == 1 for m in stats.get("markers", [])):
            break
        if p.poll() is not None:
            raise RuntimeError(f"iovd-vmm exited {p.returncode} before its marker")
        time.sleep(0.002)
    t = {"request": t0, "seen": time.monotonic()}
    latencies.append(t["seen"] - t0)
    p.kill()
    p.wait()
    t["ended"] = time.monotonic()
    if traces is not None:
        traces.append((t, stats.get("trace", {})))


def step_metrics(sock):
    """iovd_vm_step_seconds_total and iovd_vm_steps_total of GET /metrics, by step."""
    conn = UnixConnection(sock)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    steps = {}
    for line in text.splitlines():
        for metric, i in (("iovd_vm_step_seconds_total", 0), ("iovd_vm_steps_total", 1)):
            if line.startswith(metric + "{"):
                name = line.split('"')[1]
                steps.setdefault(name, [0.0, 0])[i] = float(line.split()[-1])
    return steps


def report_steps(before, after, count):
    """Per VM: the time each step of iovd took between two step_metrics readings."""
    print(f"  {'step':14} {'ms per VM':>10} {'count per VM':>13} {'ms each':>8}")
    for name, (sec, n) in after.items():
        sec -= before.get(name, [0.0, 0])[0]
        n -= before.get(name, [0.0, 0])[1]
        each = sec * 1000 / n if n else 0.0
        print(f"  {name:14} {sec * 1000 / count:10.2f} {n / count:13.2f} {each:8.2f}")


def report(what, count, elapsed, lat):
    print(f"{what:32}: {count / elapsed:6.1f} VMs/s   create-to-marker p50 "
          f"{percentile(lat, 0.5) * 1000:6.1f} ms  p99 {percentile(lat, 0.99) * 1000:6.1f} ms")


# The VMM's stamps in order (vmm/trace.c); a step is the time from the one before.
VMM_STEPS = ["exec", "jail", "kvm_open", "memory", "vm_create", "devices", "boot_load",
             "vcpus", "sandbox", "running", "marker"]


def trace_steps(t, vmm):
    """One VM's steps: (name, wall seconds, VMM CPU seconds or None), in order."""
    usec = {k: v[0] / 1e6 for k, v in vmm.items()}
    cpu = {k: v[1] / 1e6 for k, v in vmm.items()}
    if "exec" not in usec or "marker" not in usec:
        return []
    first = "created" if "created" in t else "request"
    steps = []
    if first == "created":
        steps.append(("create (POST, saved)", t["created"] - t["request"], None))
    steps.append(("to exec (spawn)" if first == "request" else "start to exec",
                  usec["exec"] - t[first], None))
    prev = "exec"
    for name in VMM_STEPS[1:]:
        if name in usec:
            steps.append((name, usec[name] - usec[prev], cpu[name] - cpu[prev]))
            prev = name
    steps.append(("marker to seen", t["seen"] - usec["marker"], None))
    if "started" in t:
        steps.append(("(start answered)", t["started"] - usec["running"], None))
    steps.append(("= request to seen", t["seen"] - t["request"], cpu["marker"]))
    end = "deleted" if "deleted" in t else "ended"
    steps.append(("kill and end" + (", delete" if end == "deleted" else ""),
                  t[end] - t["seen"], None))
    return steps


def report_trace(what, traces):
    """p50/p99 of each step over the traced VMs, wall and the VMM's CPU, in ms."""
    rows = {}
    for t, vmm in traces:
        for name, wall, cpu in trace_steps(t, vmm):
            rows.setdefault(name, ([], []))
            rows[name][0].append(wall)
            if cpu is not None:
                rows[name][1].append(cpu)
    print(f"  {what}, {len(traces)} VMs traced, ms:")
    print(f"  {'step':24} {'p50':>7} {'p99':>7} {'max':>7} {'cpu p50':>8} {'cpu p99':>8}")
    for name, (wall, cpu) in rows.items():
        c = (f"{percentile(cpu, 0.5) * 1000:8.2f} {percentile(cpu, 0.99) * 1000:8.2f}"
             if cpu else "")
        print(f"  {name:24} {percentile(wall, 0.5) * 1000:7.2f} "
              f"{percentile(wall, 0.99) * 1000:7.2f} {max(wall) * 1000:7.2f} {c}")


def report_iovd_steps(log_path):
    """p50/p99 of each of iovd's steps, from its debug lines "vm step NAME START END"."""
    steps = {}
    with open(log_path, errors="replace") as f:
        for line in f:
            i = line.find("vm step ")
            if i >= 0:
                name, start, end = line[i + 8:].split()[:3]
                steps.setdefault(name, []).append((int(end) - int(start)) / 1e6)
    print(f"  iovd's steps (its debug log), ms:")
    print(f"  {'step':24} {'p50':>7} {'p99':>7} {'max':>7} {'count':>6}")
    for name, v in steps.items():
        print(f"  {name:24} {percentile(v, 0.5) * 1000:7.2f} {percentile(v, 0.99) * 1000:7.2f} "
              f"{max(v) * 1000:7.2f} {len(v):6}")


def cpu_sample(pid):
    """(monotonic s, host busy CPU s, iovd's CPU s, this client's CPU s, load average,
    CPU s of iovd's ended children (monitors, theirs: the VMMs), of the client's (the
    peer's VMMs))."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    busy = (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # all but idle, iowait
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    iovd = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    iovd_children = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    me = resource.getrusage(resource.RUSAGE_SELF)
    mine = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (time.monotonic(), busy, iovd, me.ru_utime + me.ru_stime, os.getloadavg()[0],
            iovd_children, mine.ru_utime + mine.ru_stime)


def report_cpu(what, spent, count):
    """CPU per VM from the summed differences of cpu_sample()s: the host's, iovd's, the
    client's (the peer's iovd is idle; its VMMs are the client's children, not in it)."""
    wall, busy, iovd, me, _, iovd_children, mine = (x * 1000 / count for x in spent)
    print(f"  {what}: wall {wall:.2f} ms/VM; CPU ms per VM: host {busy:.2f} "
          f"({busy / wall:.2f} of {os.cpu_count()} CPUs busy, everyone's), iovd {iovd:.2f}, "
          f"its monitors and VMMs {iovd_children:.2f}, client {me:.2f}, "
          f"the client's VMMs {mine:.2f}")


def percentile(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def main():
    args = sys.argv[1:]
    jail = "--no-vmm-jail" not in args
    args = [a for a in args if a != "--no-vmm-jail"]
    trace = "--trace" in args
    args = [a for a in args if a != "--trace"]
    if trace:
        os.environ["IOVD_TRACE"] = "1"  # iovd passes it on to its VMMs; the peer's too
    rounds = 3
    if "--rounds" in args:
        i = args.index("--rounds")
        rounds = int(args[i + 1])
        del args[i:i + 2]
    if len(args) < 4:
        sys.exit(__doc__)
    iovd, vmm, marker, hello = (os.path.abspath(a) for a in args[0:4])
    count = int(args[4]) if len(args) > 4 else 100
    concurrency = int(args[5]) if len(args) > 5 else 8
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("SKIP: /dev/kvm is not usable here")
        return 77
    tmp = tempfile.mkdtemp(prefix="iovd-bench-vms-")
    # VM files must be inside an image directory; a jailed VMM (its own uid) reads them too.
    images = os.path.join(tmp, "images")
    os.makedirs(images)
    os.chmod(tmp, 0o755)
    payloads = {}
    for mode, src in (("marker", marker), ("reset", hello)):
        payloads[mode] = os.path.join(images, mode + ".bzImage")
        shutil.copyfile(src, payloads[mode])
        os.chmod(payloads[mode], 0o644)
    p, sock = start_iovd(iovd, vmm, tmp, images, jail, trace)
    try:
        print(f"{count} VMs, {concurrency} at a time, 16 MiB, 1 vCPU, VMM jail "
              f"{'on' if jail else 'off'}, {rounds} rounds of API then peer")
        api, peer = [0.0, [], [], [0.0] * 7], [0.0, [], [], [0.0] * 7]
        before = step_metrics(sock)
        for _ in range(rounds):
            # Alternated, so that a change of the host's load hits both sides alike.
            lat, c0 = [], cpu_sample(p.pid)
            api[0] += run_pool(count, concurrency,
                               lambda i: one_vm(sock, payloads["marker"], "marker", lat,
                                                api[2]))
            api[1] += lat
            c1 = cpu_sample(p.pid)
            api[3] = [a + (y - x) for a, x, y in zip(api[3], c0, c1)]
            lat = []
            peer[0] += run_pool(count, concurrency,
                                lambda i: direct_vm(vmm, marker, tmp, i, lat, peer[2]))
            peer[1] += lat
            c2 = cpu_sample(p.pid)
            peer[3] = [a + (y - x) for a, x, y in zip(peer[3], c1, c2)]
            if trace:
                print(f"  load average {c0[4]:.1f} {c1[4]:.1f} {c2[4]:.1f}")
        report("iovd API, marker", count * rounds, api[0], api[1])
        report_steps(before, step_metrics(sock), count * rounds)
        report("peer: iovd-vmm direct, marker", count * rounds, peer[0], peer[1])
        print(f"{'ratio API / peer':32}: {peer[0] / api[0]:6.2f}")
        if trace:
            for what, side in (("iovd API", api), ("peer", peer)):
                report_trace(what, side[2])
                report_cpu(what, side[3], count * rounds)
            report_iovd_steps(os.path.join(tmp, "iovd.log"))
        lat = []
        elapsed = run_pool(count, concurrency,
                           lambda i: one_vm(sock, payloads["reset"], "reset", lat))
        report("iovd API, reset", count, elapsed, lat)
    finally:
        p.terminate()
        p.wait()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
