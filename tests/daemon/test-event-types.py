#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The event types api/openapi.yaml lists (Event.type enum) are exactly those the code
publishes: every daemon_event_publish(d, "type", ...) and vm_publish(t, "type", ...) call
in daemon/ and api/, plus "subscribed" (the stream's first line, api/events.c). A publish
call whose type is not a string literal must be one of the known wrappers, so no type
escapes the scan. TAP output. Usage: test-event-types.py SOURCE_ROOT"""
import json
import os
import re
import sys

PUBLISH = re.compile(r'\b(daemon_event_publish|vm_publish)\s*\(\s*[^,()]*(?:\([^()]*\))?[^,()]*,\s*'
                     r'("([a-z_]+)"|[A-Za-z_][A-Za-z_0-9]*)')
# Calls that pass a variable on: the wrapper's own body.
WRAPPERS = {("daemon/vms.c", "type")}


def scan(root):
    published, problems = {}, []
    for sub in ("daemon", "api"):
        for name in sorted(os.listdir(os.path.join(root, sub))):
            if not name.endswith(".c"):
                continue
            rel = sub + "/" + name
            text = open(os.path.join(root, rel), encoding="utf-8").read()
            for m in PUBLISH.finditer(text):
                if m.group(2) == "const":
                    continue  # the definition or a declaration, not a call
                if m.group(3):
                    published.setdefault(m.group(3), rel)
                elif (rel, m.group(2)) not in WRAPPERS:
                    line = text.count("\n", 0, m.start()) + 1
                    problems.append("%s:%d publishes a non-literal type %s" % (rel, line, m.group(2)))
    return published, problems


def main():
    root = sys.argv[1]
    # The JSON subset of YAML plus full-line comments (see the header of openapi.yaml).
    text = open(os.path.join(root, "api", "openapi.yaml"), encoding="utf-8").read()
    spec = json.loads("\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#")))
    listed = spec["components"]["schemas"]["Event"]["properties"]["type"].get("enum", [])
    published, problems = scan(root)
    published.setdefault("subscribed", "api/events.c")
    tests = []
    tests.append((not problems, "every publish call names its type", problems))
    tests.append((len(published) >= 10, "the scan found the publish calls (%d types)" % len(published), []))
    missing = sorted(set(published) - set(listed))
    tests.append((not missing, "every published type is in openapi.yaml",
                  ["%s (published in %s)" % (t, published[t]) for t in missing]))
    stale = sorted(set(listed) - set(published))
    tests.append((not stale, "openapi.yaml lists no type the code never publishes", stale))
    dups = sorted({t for t in listed if listed.count(t) > 1})
    tests.append((not dups, "no type listed twice", dups))
    print("1..%d" % len(tests))
    failed = 0
    for i, (ok, what, details) in enumerate(tests, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, what))
        for d in details:
            print("# " + d)
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
