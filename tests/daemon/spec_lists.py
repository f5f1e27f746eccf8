# SPDX-License-Identifier: MIT
"""Shared by the checks that compare a list in api/openapi.yaml with what the code does
(test-event-types.py: event types, test-error-codes.py: error codes): read the spec,
compare both ways, print TAP."""
import json
import os


def load_openapi(root):
    """api/openapi.yaml: the JSON subset of YAML plus full-line comments (see its header)."""
    text = open(os.path.join(root, "api", "openapi.yaml"), encoding="utf-8").read()
    return json.loads("\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#")))


def compare(listed, found, problems, words, minimum):
    """The TAP cases: found ({name: where}) and listed (the spec's enum) hold the same names,
    once each, and the scan saw enough to mean something. words: (call, noun, participle,
    verb), e.g. ("publish", "type", "published", "publishes")."""
    call, noun, participle, verb = words
    tests = [(not problems, "every %s call names its %s" % (call, noun), problems),
             (len(found) >= minimum,
              "the scan found the %s calls (%d %ss)" % (call, len(found), noun), [])]
    missing = sorted(set(found) - set(listed))
    tests.append((not missing, "every %s %s is in openapi.yaml" % (participle, noun),
                  ["%s (%s in %s)" % (n, participle, found[n]) for n in missing]))
    stale = sorted(set(listed) - set(found))
    tests.append((not stale, "openapi.yaml lists no %s the code never %s" % (noun, verb), stale))
    dups = sorted({n for n in listed if listed.count(n) > 1})
    tests.append((not dups, "no %s listed twice" % noun, dups))
    return tests


def tap(tests):
    """Print the cases as TAP; the exit status (1 when one failed)."""
    print("1..%d" % len(tests))
    failed = 0
    for i, (ok, what, details) in enumerate(tests, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, what))
        for d in details:
            print("# " + d)
        failed += not ok
    return 1 if failed else 0
