#!/usr/bin/env python3
"""Runs the display filter of every finding timewait prints for the shared
corpus through tshark and reports any that tshark rejects.

    cargo build --release
    python3 scripts/corpus-filters.py [--select] [CORPUS_DIR] > filters.tsv

Parsing: the distinct filters are checked against an empty capture, many at
a time as `(f1) || (f2) || ...` (one tshark start per batch; a batch that
fails is split until the rejected filters are found). With --select, every
filter is also run on its capture and what tshark selected is compared with
the finding (tshark 4.0's frame.number / tcp.stream), as
tests/cli/filters.rs does for the fixtures: `frames` must select exactly the
evidence frames, `connections` exactly the evidence connections' streams,
`first` only evidence frames, `broad` a frame of every evidence row.

Prints one row per finding (path, kind, selects, length, parses, selection
verdict, filter) and a summary on stderr; exits 1 if any filter is rejected
or (with --select) selects something else than its evidence.
"""
import json, os, subprocess, sys, tempfile
from concurrent.futures import ThreadPoolExecutor

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
args = [a for a in sys.argv[1:] if not a.startswith("--")]
select = "--select" in sys.argv[1:]
corpus = args[0] if args else os.path.join(root, "..", "shared", "corpus")
binary = os.path.join(root, "target", "release", "timewait")

paths = []
with open(os.path.join(corpus, "INDEX.tsv")) as f:
    head = f.readline().rstrip("\n").split("\t")
    for line in f:
        paths.append(dict(zip(head, line.rstrip("\n").split("\t")))["path"])


def analyze(path):
    p = subprocess.run([binary, "analyze", "--format", "json", os.path.join(corpus, path)],
                       capture_output=True, timeout=120)
    try:
        return path, json.loads(p.stdout)["findings"]
    except Exception:
        return path, []


with ThreadPoolExecutor(2) as ex:
    reports = list(ex.map(analyze, paths))
findings = [(path, f) for path, fs in reports for f in fs]
print(f"{len(paths)} files, {sum(1 for _, fs in reports if fs)} with findings, "
      f"{len(findings)} findings", file=sys.stderr)

tmp = tempfile.mkdtemp()
empty = os.path.join(tmp, "empty.pcap")
with open(empty, "wb") as f:
    f.write(bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"))


def tshark_accepts(expr):
    p = subprocess.run(["tshark", "-n", "-r", empty, "-Y", expr], capture_output=True)
    return p.returncode == 0


rejected = set()


def check(batch):
    """Finds the rejected filters of a batch, splitting failed batches."""
    if tshark_accepts(" || ".join(f"({x})" for x in batch)):
        return
    if len(batch) == 1:
        rejected.add(batch[0])
        return
    half = len(batch) // 2
    check(batch[:half])
    check(batch[half:])


distinct = sorted({f["display_filter"] for _, f in findings}
                  | {ff["display_filter"] for _, f in findings for ff in f.get("display_filters", [])})
batches, batch, size = [], [], 0
for x in distinct:
    # One argument stays far below the kernel's 128 KiB limit.
    if batch and size + len(x) > 60000:
        batches.append(batch)
        batch, size = [], 0
    batch.append(x)
    size += len(x) + 6
if batch:
    batches.append(batch)
for b in batches:
    check(b)


def selection(item):
    path, f = item
    flt = f["display_filter"]
    if flt in rejected:
        return "rejected"
    p = subprocess.run(["tshark", "-n", "-r", os.path.join(corpus, path), "-Y", flt,
                        "-T", "fields", "-e", "frame.number", "-e", "tcp.stream"],
                       capture_output=True, text=True, timeout=300)
    got, streams = set(), set()
    for line in p.stdout.splitlines():
        c = line.split("\t")
        if c and c[0].isdigit():
            got.add(int(c[0]))
            if len(c) > 1 and c[1].split(",")[0].isdigit():
                streams.add(int(c[1].split(",")[0]))
    evidence = set(f["frames"])
    scope = f["display_filter_selects"]
    if scope == "frames":
        ok = got == evidence
    elif scope == "connections":
        ok = streams == set(f["connections"]) and evidence <= got
    elif scope == "first":
        ok = bool(got) and got <= evidence
    else:
        ok = all(any(fr in got for fr in row["frames"]) for row in f["evidence"])
    return "ok" if ok else f"differs ({len(got)} selected, {len(evidence)} evidence frames)"


if select:
    with ThreadPoolExecutor(2) as ex:
        verdicts = list(ex.map(selection, findings))
else:
    verdicts = ["-"] * len(findings)

print("path\tkind\tselects\tlength\tparses\tselection\tfilter")
by_scope = {}
for (path, f), v in zip(findings, verdicts):
    flt = f["display_filter"]
    by_scope[f["display_filter_selects"]] = by_scope.get(f["display_filter_selects"], 0) + 1
    print("\t".join([path, f["kind"], f["display_filter_selects"], str(len(flt)),
                     "no" if flt in rejected else "yes", v, flt]))
bad_select = [v for v in verdicts if v not in ("ok", "-")]
print(f"{len(distinct)} distinct filters, {len(rejected)} rejected by tshark; "
      f"by scope {json.dumps(by_scope, sort_keys=True)}; longest "
      f"{max((len(x) for x in distinct), default=0)} characters", file=sys.stderr)
if select:
    print(f"selection: {verdicts.count('ok')} as stated, {len(bad_select)} not", file=sys.stderr)
for x in sorted(rejected):
    print(f"rejected: {x}", file=sys.stderr)
sys.exit(1 if rejected or bad_select else 0)
