# SPDX-License-Identifier: BSD-3-Clause
"""Read mustangd's counters through `mustangctl stats --json`.

Used by the integration tests (imported by the python ones, run as a small
CLI by the shell ones). Sums are taken over engines so that no check depends
on the number of engines:

  totals(doc) -> (counters, drops)    dicts name -> int

The daemon's JSON has a "totals" object with "counters" and "drops"; when it
does not, the per-engine objects are summed.

CLI:
  mststats.py snapshot MUSTANGCTL CTL > FILE         (raw JSON, validated)
  mststats.py get FILE counters|drops NAME           prints the value
  mststats.py delta BEFORE AFTER counters|drops NAME prints after - before
  mststats.py names HEADER                           counter and drop names
  mststats.py check-names FILE HEADER                every name is in FILE
"""

import json
import re
import subprocess
import sys


def fetch(mustangctl, ctl, timeout=10):
    """Return the parsed `mustangctl stats --json` document."""
    out = subprocess.run([mustangctl, "--ctl", ctl, "stats", "--json"],
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError("mustangctl stats --json exited %d: %s"
                           % (out.returncode, (out.stderr or out.stdout).strip()))
    return json.loads(out.stdout)


def _add(into, d):
    for k, v in (d or {}).items():
        if isinstance(v, int) and not isinstance(v, bool):
            into[k] = into.get(k, 0) + v


def totals(doc):
    """(counters, drops) summed over engines."""
    t = doc.get("totals")
    if isinstance(t, dict) and "counters" in t and "drops" in t:
        return dict(t["counters"]), dict(t["drops"])
    counters, drops = {}, {}
    for e in doc.get("engines", []):
        _add(counters, e.get("counters"))
        _add(drops, e.get("drops"))
    return counters, drops


def header_names(path):
    """Counter and drop names from include/mustang/counters.h (the spec)."""
    text = open(path).read()

    def names(macro):
        m = re.search(r"#define %s\(X\)(.*?)\n\n" % macro, text, re.S)
        if not m:
            raise RuntimeError("%s not found in %s" % (macro, path))
        return re.findall(r"X\((\w+),", m.group(1))

    return names("MST_FOREACH_COUNTER"), names("MST_FOREACH_DROP")


def _pick(doc, kind):
    c, d = totals(doc)
    return c if kind == "counters" else d


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "snapshot":
        doc = fetch(argv[2], argv[3])
        totals(doc)
        json.dump(doc, sys.stdout)
        return 0
    if cmd == "get":
        doc = json.load(open(argv[2]))
        print(_pick(doc, argv[3]).get(argv[4], "missing"))
        return 0
    if cmd == "delta":
        a = _pick(json.load(open(argv[2])), argv[4])
        b = _pick(json.load(open(argv[3])), argv[4])
        name = argv[5]
        if name not in a or name not in b:
            print("missing")
            return 1
        print(b[name] - a[name])
        return 0
    if cmd == "names":
        c, d = header_names(argv[2])
        print(" ".join(c))
        print(" ".join(d))
        return 0
    if cmd == "check-names":
        doc = json.load(open(argv[2]))
        cn, dn = header_names(argv[3])
        c, d = totals(doc)
        bad = [n for n in cn if n not in c] + [n for n in dn if n not in d]
        if bad:
            print("missing from stats --json totals: " + " ".join(bad))
            return 1
        for i, e in enumerate(doc.get("engines", [])):
            miss = [n for n in cn if n not in e.get("counters", {})]
            miss += [n for n in dn if n not in e.get("drops", {})]
            if miss:
                print("engine %d lacks: %s" % (i, " ".join(miss)))
                return 1
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
