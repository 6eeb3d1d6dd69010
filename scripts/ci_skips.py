#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Fail a CI run in which a test was skipped without a recorded reason.

meson counts a skipped test (exit 77) as a success, so a machine without
root, the AF_XDP driver or clang used to turn the suite green while testing
nothing. scripts/test.sh runs this after `meson test` when CI=true:

  ci_skips.py TESTLOG.json ALLOWED.txt
  ci_skips.py --selftest        (meson test ci-skips-selftest)

TESTLOG.json is meson's build/meson-logs/testlog.json (one JSON object per
line, "name" as "project:suite / test" and "result"). ALLOWED.txt (tests/skips-allowed.txt) lists the
tests that may skip, one per line: the meson test name, then a `#` comment
saying why (an entry without a reason is an error). Blank lines and lines
starting with `#` are comments.

Exit 0 when every skipped test is listed, 1 otherwise (or on a malformed
list or log); entries that did not skip are reported as stale, not failed.
"""

import json
import sys


def load_allowed(path):
    allowed, bad = {}, []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            name, _, why = s.partition("#")
            name, why = name.strip(), why.strip()
            if not name or " " in name or not why:
                bad.append("%s:%d: want 'TEST-NAME  # reason': %r" % (path, n, s))
                continue
            allowed[name] = why
    return allowed, bad


def load_results(path):
    results = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                d = json.loads(line)
                # "mustang:integration / app-udp-af_xdp" -> "app-udp-af_xdp"
                results[d["name"].split(" / ")[-1]] = d["result"]
    return results


def selftest():
    """Synthetic logs: an unlisted skip fails, a listed one passes, a
    reasonless entry fails."""
    import os
    import tempfile
    d = tempfile.mkdtemp(prefix="ci_skips.")
    log, lst = os.path.join(d, "testlog.json"), os.path.join(d, "allowed.txt")

    def run(results, entries):
        with open(log, "w") as f:
            for n, r in results:
                f.write(json.dumps({"name": "mustang:unit / " + n, "result": r}) + "\n")
        with open(lst, "w") as f:
            f.write("# comment\n\n" + "".join(e + "\n" for e in entries))
        return main(["ci_skips.py", log, lst])

    cases = [
        ([("a", "OK"), ("b", "OK")], [], 0),
        ([("a", "OK"), ("b", "SKIP")], [], 1),
        ([("a", "OK"), ("b", "SKIP")], ["b  # no AF_XDP on this runner"], 0),
        ([("a", "OK"), ("b", "SKIP")], ["c  # other test"], 1),
        ([("a", "OK")], ["b"], 1),  # an entry without a reason
        ([("a", "FAIL"), ("b", "OK")], [], 0),  # failures are meson's job
    ]
    bad = 0
    for i, (res, ent, want) in enumerate(cases):
        got = run(res, ent)
        if got != want:
            print("selftest case %d: exit %d, want %d" % (i, got, want))
            bad += 1
    for p in (log, lst):
        os.unlink(p)
    os.rmdir(d)
    print("ci_skips selftest: %d of %d cases wrong" % (bad, len(cases)))
    return 1 if bad else 0


def main(argv):
    if argv[1:] == ["--selftest"]:
        return selftest()
    if len(argv) != 3:
        print("usage: ci_skips.py TESTLOG.json ALLOWED.txt", file=sys.stderr)
        return 2
    try:
        allowed, bad = load_allowed(argv[2])
        results = load_results(argv[1])
    except (OSError, ValueError, KeyError) as e:
        print("ci_skips: %s" % e, file=sys.stderr)
        return 1
    for b in bad:
        print("ci_skips: " + b)
    skipped = sorted(n for n, r in results.items() if r == "SKIP")
    unlisted = [n for n in skipped if n not in allowed]
    for n in skipped:
        if n in allowed:
            print("ci_skips: %s skipped (allowed: %s)" % (n, allowed[n]))
    for n in sorted(set(allowed) - set(skipped)):
        if n in results:
            print("ci_skips: note: %s is on the list but did not skip (stale entry?)" % n)
    for n in unlisted:
        print("ci_skips: FAIL %s skipped and is not on %s" % (n, argv[2]))
    print("ci_skips: %d tests, %d skipped, %d not allowed"
          % (len(results), len(skipped), len(unlisted)))
    return 1 if unlisted or bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
