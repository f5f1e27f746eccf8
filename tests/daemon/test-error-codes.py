#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The error codes api/openapi.yaml lists (the ErrorCode enum) are exactly those the code
can answer with. Scanned in daemon/, alloc/, vms/ and api/: the code argument of every api_error,
send_error, daemon_problem_set and parse_fail call, and every string assigned to a
field or variable named code. An argument without a string literal must be one of the known
pass-through places (a wrapper handing on a code it was given), so no code escapes the
scan. TAP output. Usage: test-error-codes.py SOURCE_ROOT"""
import os
import re
import sys

import spec_lists

# Emitting function -> index of its code argument.
EMITTERS = {"api_error": 2, "send_error": 5, "daemon_problem_set": 2, "parse_fail": 0}
CALL = re.compile(r"\b(%s)\s*\(" % "|".join(EMITTERS))
ASSIGN = re.compile(r"(?:\b|->|\.|\*)(?:ret_)?code\s*=(?!=)\s*([^;]*);")
LITERAL = re.compile(r'"((?:[^"\\]|\\.)*)"')
CODE = re.compile(r"^[a-z][a-z0-9_]*$")
# (file, argument text) of calls and assignments that pass on a code given to them.
PASS_THROUGH = {
    ("api/response.c", "p->code"),  # api_reply_problem: a module's struct iov_problem
    ("api/pools.c", "e.code"),  # a alloc/pools.c parse error
    ("api/server.c", "code"),  # send_error and the strict body parser's code
    ("api/body.c", "code"),  # parse_fail, fed from json_check_text
    ("daemon/problem.c", "code"),  # daemon_problem_set's own body
}


def split_args(text, start):
    """The top-level arguments of the call whose '(' ends just before start."""
    args, cur, depth, i = [], "", 1, start
    while depth and i < len(text):
        c = text[i]
        if c == '"':
            m = LITERAL.match(text, i)
            cur += m.group(0)
            i = m.end()
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if depth == 1 and c == ",":
            args.append(cur.strip())
            cur = ""
        elif depth:
            cur += c
        i += 1
    args.append(cur.strip())
    return args


def scan_file(rel, text, emitted, problems):
    def take(arg, pos):
        literals = LITERAL.findall(arg)
        line = text.count("\n", 0, pos) + 1
        if not literals and (rel, arg) not in PASS_THROUGH:
            problems.append("%s:%d passes a non-literal code %s" % (rel, line, arg))
        for code in literals:
            if not CODE.match(code):
                problems.append("%s:%d code %r is not snake_case" % (rel, line, code))
            emitted.setdefault(code, "%s:%d" % (rel, line))

    for m in CALL.finditer(text):
        args = split_args(text, m.end())
        index = EMITTERS[m.group(1)]
        if index >= len(args) or args[index].startswith("const char"):
            continue  # the definition or a declaration, not a call
        take(args[index], m.start())
    for m in ASSIGN.finditer(text):
        if m.group(1).strip() != "NULL":  # a code variable before it is set
            take(m.group(1).strip(), m.start())


def scan(root):
    emitted, problems = {}, []
    for sub in ("daemon", "alloc", "vms", "api"):
        for name in sorted(os.listdir(os.path.join(root, sub))):
            if name.endswith(".c"):
                rel = sub + "/" + name
                scan_file(rel, open(os.path.join(root, rel), encoding="utf-8").read(), emitted,
                          problems)
    return emitted, problems


def main():
    root = sys.argv[1]
    spec = spec_lists.load_openapi(root)
    listed = spec["components"]["schemas"].get("ErrorCode", {}).get("enum", [])
    emitted, problems = scan(root)
    return spec_lists.tap(spec_lists.compare(
        listed, emitted, problems, ("error", "code", "emitted", "emits"), 40))


if __name__ == "__main__":
    sys.exit(main())
