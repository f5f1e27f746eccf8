#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The event types api/openapi.yaml lists (Event.type enum) are exactly those the code
publishes: every daemon_event_publish(d, "type", ...) and vm_publish(t, "type", ...) call
in daemon/, alloc/, vms/ and api/, plus "subscribed" (the stream's first line,
api/events.c) and "gap" (first SSE event of a resume that lost events, api/events.c). A publish
call whose type is not a string literal must be one of the known wrappers, so no type
escapes the scan. TAP output. Usage: test-event-types.py SOURCE_ROOT"""
import os
import re
import sys

import spec_lists

PUBLISH = re.compile(r'\b(daemon_event_publish|vm_publish)\s*\(\s*[^,()]*(?:\([^()]*\))?[^,()]*,\s*'
                     r'("([a-z_]+)"|[A-Za-z_][A-Za-z_0-9]*)')
# Calls that pass a variable on: the wrapper's own body.
WRAPPERS = {("vms/vm-table.c", "type")}


def scan(root):
    published, problems = {}, []
    for sub in ("daemon", "alloc", "vms", "api"):
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
    spec = spec_lists.load_openapi(root)
    listed = spec["components"]["schemas"]["Event"]["properties"]["type"].get("enum", [])
    published, problems = scan(root)
    published.setdefault("subscribed", "api/events.c")
    published.setdefault("gap", "api/events.c")  # SSE resume that lost events
    return spec_lists.tap(spec_lists.compare(
        listed, published, problems, ("publish", "type", "published", "publishes"), 10))


if __name__ == "__main__":
    sys.exit(main())
