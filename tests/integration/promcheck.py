# SPDX-License-Identifier: BSD-3-Clause
"""A strict checker of the Prometheus text exposition format (0.0.4), for
metrics.sh next to the Prometheus project's own `promtool check metrics`.

  promcheck.py FILE     exit 0 when valid; each problem on stderr, exit 1

Checks: every line is a comment, blank or a sample; names and label names
are legal; label values are escaped; each family has one HELP and one TYPE,
both before its samples, and its samples are contiguous; no sample line
repeats; values are floats; counters end in _total and are >= 0;
histograms have ascending `le` buckets, cumulative counts, a +Inf bucket
equal to _count, and a _sum, per label set.
"""
import math
import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"^({NAME})(?:\{{((?:{LABEL})(?:,{LABEL})*)?\}})? (\S+)$")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def family_of(name, types):
    for suf in ("_bucket", "_sum", "_count"):
        if name.endswith(suf) and types.get(name[: -len(suf)]) == "histogram":
            return name[: -len(suf)]
    return name


def main(path):
    errs, types, helps, seen, done = [], {}, set(), set(), set()
    hist = {}
    current = None
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        line = line.rstrip("\n")
        where = f"{path}:{n}"
        if not line:
            continue
        m = re.match(rf"^# (HELP|TYPE) ({NAME}) ?(.*)$", line)
        if m:
            kind, name, rest = m.groups()
            if kind == "HELP":
                if name in helps:
                    errs.append(f"{where}: second HELP for {name}")
                helps.add(name)
            else:
                if rest not in ("counter", "gauge", "histogram", "summary", "untyped"):
                    errs.append(f"{where}: bad TYPE {rest!r}")
                if name in types:
                    errs.append(f"{where}: second TYPE for {name}")
                if name in done or name == current:
                    errs.append(f"{where}: TYPE after samples of {name}")
                types[name] = rest
                if rest == "counter" and not name.endswith("_total"):
                    errs.append(f"{where}: counter {name} does not end in _total")
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            errs.append(f"{where}: not a sample: {line!r}")
            continue
        name, labels, value = m.groups()
        fam = family_of(name, types)
        if fam not in types:
            errs.append(f"{where}: {name} has no TYPE before it")
        if fam != current:
            if fam in done:
                errs.append(f"{where}: samples of {fam} are not contiguous")
            if current:
                done.add(current)
            current = fam
        key = (name, labels)
        if key in seen:
            errs.append(f"{where}: repeated sample {name}{{{labels}}}")
        seen.add(key)
        try:
            v = float(value)
        except ValueError:
            errs.append(f"{where}: value {value!r} is not a float")
            continue
        lab = dict(LABEL_RE.findall(labels or ""))
        if types.get(fam) == "counter" and not v >= 0:
            errs.append(f"{where}: counter {name} is {v}")
        if types.get(fam) == "histogram":
            rest = tuple(sorted((k, x) for k, x in lab.items() if k != "le"))
            h = hist.setdefault((fam, rest), {"b": [], "sum": None, "count": None})
            if name.endswith("_bucket"):
                if "le" not in lab:
                    errs.append(f"{where}: bucket without le")
                    continue
                h["b"].append((math.inf if lab["le"] == "+Inf" else float(lab["le"]), v))
            elif name.endswith("_sum"):
                h["sum"] = v
            else:
                h["count"] = v
    for (fam, rest), h in hist.items():
        b = h["b"]
        what = f"{fam}{dict(rest)}"
        if not b or b[-1][0] != math.inf:
            errs.append(f"{what}: no +Inf bucket last")
            continue
        if any(b[i][0] >= b[i + 1][0] for i in range(len(b) - 1)):
            errs.append(f"{what}: le not ascending")
        if any(b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
            errs.append(f"{what}: bucket counts not cumulative")
        if h["count"] != b[-1][1] or h["sum"] is None:
            errs.append(f"{what}: _count {h['count']} != +Inf {b[-1][1]} or no _sum")
    missing = set(types) - helps
    if missing:
        errs.append(f"families without HELP: {sorted(missing)[:5]}")
    for e in errs[:30]:
        print(e, file=sys.stderr)
    if not seen:
        print(f"{path}: no samples", file=sys.stderr)
        return 1
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
