#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The man pages (docs/man/*.scd) and the programs agree on their options.

Every option that `iovd --help`, `iovd-vmm --help`, `iovctl --help` and each
`iovctl COMMAND --help` prints is documented in the matching section of the page, and
every option the page documents is one the program prints: both ways, so an option
added to a program or dropped from it fails here until the page follows. iovctl's
commands are taken from its own --help, so a new command needs its "## COMMAND"
section. The settings of systemd/iovd.service.in are all described in
iovd.service(8). TAP output.

Usage: check-man-options.py SOURCE_ROOT IOVD IOVCTL IOVD_VMM
"""
import os
import re
import subprocess
import sys

results = []


def tap(ok, name, detail=""):
    results.append((ok, name, detail))


def run_help(argv):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=30)
    if p.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (" ".join(argv), p.returncode, p.stderr))
    return p.stdout


# An option line of --help: "  --name ...", "  -x, --name ..." (iovctl pads the short
# column with spaces when there is no short name).
HELP_OPTION = re.compile(r"^\s+(?:(-[A-Za-z]),\s+)?(--[a-z0-9][a-z0-9-]*)")


def help_options(text):
    found = set()
    for line in text.splitlines():
        m = HELP_OPTION.match(line)
        if m:
            found.update(x for x in m.groups() if x)
    return found


def help_block(text, start, end=None):
    """The lines after the line `start` up to the line `end` (or a blank line)."""
    lines, inside = [], False
    for line in text.splitlines():
        if inside and (line == end or (end is None and not line.strip())):
            break
        if inside:
            lines.append(line)
        if line == start:
            inside = True
    return "\n".join(lines)


def page_sections(path, level):
    """{heading: body} for the "#"-level (1) or "##"-level (2) headings of a page."""
    marker = "#" * level + " "
    sections, name = {}, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") and not line.startswith(marker) and level == 2 \
                    and line.startswith("# "):
                name = None  # a new top-level section ends the subsections
                continue
            if line.startswith(marker):
                name = line[len(marker):].strip()
                sections[name] = ""
            elif name is not None:
                sections[name] += line
    return sections


# A documented option: a definition line starting with "*-", e.g. "*-n*, *--count* _N_".
def page_options(body):
    found = set()
    for line in body.splitlines():
        if line.startswith("*-"):
            found.update(re.findall(r"\*(--?[A-Za-z0-9][a-z0-9-]*)\*", line))
    return found


def compare(name, in_help, in_page, need_options=True):
    missing = sorted(in_help - in_page)
    extra = sorted(in_page - in_help)
    detail = ""
    if missing:
        detail += "in --help but not in the man page: %s. " % " ".join(missing)
    if extra:
        detail += "in the man page but not in --help: %s." % " ".join(extra)
    if need_options and not in_help:
        detail += "--help printed no options at all."
    tap(not missing and not extra and (bool(in_help) or not need_options), name, detail)


def iovctl_commands(main_help):
    """Command names from the "Commands:" block: the leading lower-case words of the
    synopsis column ("vm create [NAME] ..." -> "vm create"); arguments are upper case,
    options start with "-" or a bracket."""
    names = []
    for line in help_block(main_help, "Commands:").splitlines():
        words = []
        for w in line.strip().split("  ")[0].split():
            if not re.fullmatch(r"[a-z][a-z0-9-]*", w):
                break
            words.append(w)
        if words:
            names.append(" ".join(words))
    return names


def check_iovctl(root, iovctl):
    page = os.path.join(root, "docs", "man", "iovctl.1.scd")
    main_help = run_help([iovctl, "--help"])
    compare("iovctl(1) OPTIONS matches iovctl --help",
            help_options(help_block(main_help, "Options:")),
            page_options(page_sections(page, 1).get("OPTIONS", "")))
    commands = iovctl_commands(main_help)
    subsections = page_sections(page, 2)
    tap(len(commands) >= 10, "iovctl --help lists its commands (%d)" % len(commands))
    missing = [c for c in commands if c not in subsections]
    extra = [s for s in subsections if s not in commands]
    tap(not missing and not extra, "every iovctl command has its section in iovctl(1)",
        "no section: %s; no such command: %s" % (missing, extra))
    for c in commands:
        text = run_help([iovctl] + c.split() + ["--help"])
        compare("iovctl(1) section '%s' matches iovctl %s --help" % (c, c),
                help_options(help_block(text, "Options:", "Global options:")),
                page_options(subsections.get(c, "")), need_options=False)


def check_unit(root):
    unit = os.path.join(root, "systemd", "iovd.service.in")
    page = open(os.path.join(root, "docs", "man", "iovd.service.8.scd"),
                encoding="utf-8").read()
    keys = set()
    for line in open(unit, encoding="utf-8"):
        m = re.match(r"^([A-Z][A-Za-z]+)=", line)
        if m and m.group(1) not in ("Description", "After", "Wants", "WantedBy",
                                    "ExecStart"):
            keys.add(m.group(1))
    missing = sorted(k for k in keys if "*" + k not in page)
    tap(bool(keys) and not missing, "iovd.service(8) describes every setting of the unit",
        "not described: %s" % " ".join(missing))


def main():
    root, iovd, iovctl, vmm = sys.argv[1:5]
    man = os.path.join(root, "docs", "man")
    compare("iovd(8) OPTIONS matches iovd --help", help_options(run_help([iovd, "--help"])),
            page_options(page_sections(os.path.join(man, "iovd.8.scd"), 1)
                         .get("OPTIONS", "")))
    compare("iovd-vmm(1) OPTIONS matches iovd-vmm --help",
            help_options(run_help([vmm, "--help"])),
            page_options(page_sections(os.path.join(man, "iovd-vmm.1.scd"), 1)
                         .get("OPTIONS", "")))
    check_iovctl(root, iovctl)
    check_unit(root)
    print("1..%d" % len(results))
    for i, (ok, name, detail) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
        if not ok and detail:
            print("# " + detail)
    return 0 if all(ok for ok, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
