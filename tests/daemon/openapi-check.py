#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Check the running iovd against api/openapi.yaml.

Starts the real daemon on a generated lab tree, sends every x-iovd-examples request the
spec lists, and checks each answer's status and body against the schema the spec gives
for that status; reads the first line of the event stream and checks it too. Prints TAP.

The spec is JSON-compatible YAML with full-line comments, so the standard library reads
it (see the header of api/openapi.yaml). Usage: openapi-check.py SPEC IOVD IOV_FIXTURE
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

results = []


def tap(ok, name, detail=""):
    results.append(ok)
    print("%s %d - %s" % ("ok" if ok else "not ok", len(results), name))
    if not ok and detail:
        for line in str(detail).splitlines():
            print("# " + line)


def load_spec(path):
    with open(path) as f:
        text = "".join(l for l in f if not l.lstrip().startswith("#"))
    return json.loads(text)


class Validator:
    def __init__(self, spec):
        self.spec = spec

    def resolve(self, node):
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            assert ref.startswith("#/"), ref
            target = self.spec
            for part in ref[2:].split("/"):
                target = target[part]
            node = target
        return node

    def check(self, schema, value, where="$"):
        """A list of problems, empty when value matches schema."""
        schema = self.resolve(schema)
        if value is None:
            return [] if schema.get("nullable") else ["%s: null not allowed" % where]
        problems = []
        for sub in schema.get("allOf", []):
            problems += self.check(sub, value, where)
        t = schema.get("type")
        kinds = {"string": str, "boolean": bool, "object": dict, "array": list}
        if t == "integer":
            if not isinstance(value, int) or isinstance(value, bool):
                return problems + ["%s: %r is not an integer" % (where, value)]
        elif t == "number":
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                return problems + ["%s: %r is not a number" % (where, value)]
        elif t in kinds and not isinstance(value, kinds[t]):
            return problems + ["%s: %r is not %s" % (where, value, t)]
        if "enum" in schema and value not in schema["enum"]:
            problems.append("%s: %r not in %r" % (where, value, schema["enum"]))
        if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
            problems.append("%s: %r does not match %s" % (where, value, schema["pattern"]))
        if "minimum" in schema and isinstance(value, (int, float)) and value < schema["minimum"]:
            problems.append("%s: %r below %r" % (where, value, schema["minimum"]))
        if isinstance(value, dict):
            props = schema.get("properties", {})
            for name in schema.get("required", []):
                if name not in value:
                    problems.append("%s: missing %s" % (where, name))
            for name, v in value.items():
                if name in props:
                    problems += self.check(props[name], v, "%s.%s" % (where, name))
                elif schema.get("additionalProperties") is False:
                    problems.append("%s: undocumented field %s" % (where, name))
        if isinstance(value, list) and "items" in schema:
            for i, v in enumerate(value):
                problems += self.check(schema["items"], v, "%s[%d]" % (where, i))
        return problems


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("iovd", timeout=20)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(20)
        self.sock.connect(self.unix_path)


def request(sock_path, method, path, body=None):
    c = UnixConnection(sock_path)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheader("Content-Type", ""), data


def start_daemon(iovd, tree, work):
    notify_path = os.path.join(work, "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(0.2)
    sock_path = os.path.join(work, "iovd.sock")
    env = dict(os.environ, NOTIFY_SOCKET=notify_path)
    log = open(os.path.join(work, "iovd.log"), "w")
    proc = subprocess.Popen([iovd, "--listen", "unix:" + sock_path,
                             "--state-dir", os.path.join(work, "state"),
                             "--run-dir", os.path.join(work, "run"),
                             "--sysfs-root", os.path.join(tree, "sys"),
                             "--dev-root", os.path.join(tree, "dev"),
                             # The examples of api/openapi.yaml name /etc/passwd as a kernel
                             # (a file every host has): /etc is their image directory.
                             "--image-dir", "/etc"],
                            env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if b"READY=1" in notify.recv(512):
                return proc, sock_path
        except socket.timeout:
            pass
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("iovd did not become ready; log:\n" +
                       open(os.path.join(work, "iovd.log")).read())


def response_schema(spec, operation, status):
    responses = operation.get("responses", {})
    resp = responses.get(str(status))
    if resp is None:
        return None, "status %d is not documented" % status
    resp = Validator(spec).resolve(resp)
    content = resp.get("content", {})
    return content, None


def check_example(spec, sock_path, template, method, operation, ex):
    m = ex.get("method", method.upper())
    name = "%s %s -> %d" % (m, ex["path"], ex["status"])
    status, ctype, data = request(sock_path, m, ex["path"], ex.get("body"))
    if status != ex["status"]:
        return tap(False, name, "got %d: %s" % (status, data[:500]))
    content, err = response_schema(spec, operation, status)
    if err:
        return tap(False, name, err)
    media = ctype.split(";")[0].strip()
    if media not in content:
        return tap(False, name, "content type %s not documented for %d" % (ctype, status))
    if media != "application/json":
        return tap(True, name)
    try:
        body = json.loads(data)
    except ValueError as e:
        return tap(False, name, "body is not JSON: %s" % e)
    problems = Validator(spec).check(content[media]["schema"], body)
    tap(not problems, name, "\n".join(problems[:20]))


def read_events_head(sock_path, request, end):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock_path)
    s.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data or end not in data.split(b"\r\n\r\n", 1)[1]:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    ok = head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0] + b" "
    return ok, head, body


def check_event_json(spec, media, text):
    schema = spec["paths"]["/v1/events"]["get"]["responses"]["200"]["content"][media]["schema"]
    try:
        return Validator(spec).check(schema, json.loads(text))
    except ValueError as e:
        return ["event is not JSON: %s" % e]


def check_events(spec, sock_path):
    ok, head, body = read_events_head(sock_path, b"GET /v1/events HTTP/1.0\r\n\r\n", b"\n")
    ctype_ok = b"application/x-ndjson" in head
    problems = check_event_json(spec, "application/x-ndjson", body.split(b"\n")[0])
    tap(ok and ctype_ok and not problems, "GET /v1/events: first line matches Event",
        "\n".join(problems) or head.decode(errors="replace"))
    # Server-Sent Events: the first event's data line is an Event too.
    ok, head, body = read_events_head(
        sock_path, b"GET /v1/events HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n", b"\n\n")
    ctype_ok = b"text/event-stream" in head
    data = [l[5:].strip() for l in body.split(b"\n\n")[0].split(b"\n") if l.startswith(b"data:")]
    problems = check_event_json(spec, "text/event-stream", data[0]) if data else ["no data line"]
    tap(ok and ctype_ok and not problems, "GET /v1/events (SSE): first event's data matches Event",
        "\n".join(problems) or head.decode(errors="replace"))


def main():
    spec_path, iovd, fixture = sys.argv[1:4]
    spec = load_spec(spec_path)
    work = tempfile.mkdtemp(prefix="iovd-openapi-")
    proc = None
    try:
        tree = os.path.join(work, "tree")
        subprocess.run([fixture, "--lab", tree], check=True)
        proc, sock_path = start_daemon(iovd, tree, work)
        for template, item in spec["paths"].items():
            for method, operation in item.items():
                if method not in ("get", "post", "put", "delete"):
                    continue
                examples = operation.get("x-iovd-examples")
                if template == "/v1/events":
                    continue
                if not examples:
                    tap(False, "%s %s has x-iovd-examples" % (method.upper(), template))
                    continue
                for ex in examples:
                    check_example(spec, sock_path, template, method, operation, ex)
        check_events(spec, sock_path)
        proc.send_signal(signal.SIGTERM)
        tap(proc.wait(timeout=10) == 0, "iovd exits 0 on SIGTERM")
    finally:
        if proc and proc.poll() is None:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    print("1..%d" % len(results))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
