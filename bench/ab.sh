#!/usr/bin/env bash
# Alternating A/B runs of two builds: on this shared machine the speed drifts by half within an hour,
# so one build's runs against the other's, minutes apart, measure the drift. Each pair runs build A
# then build B (then B first in the next pair, so neither always runs second), each run on a fresh
# server, data folder and forest (bench/run.sh with RUNS=1). Prints every run, then per build the
# medians of events/s, p99 and server CPU per event by thread, and the median of the pair ratios.
#
#   bench/ab.sh /path/to/old/build build single            # 4 pairs of single-event charges
#   PAIRS=6 LOADGEN_ARGS="--batch-orgs 4" CONNECTIONS=8 bench/ab.sh ../old/build build batch
#
# A build is a folder holding `canopy` and `bench/canopy-loadgen` (a Release build tree; an older
# commit's in a second worktree: `git worktree add ../old <rev>`). Other settings as bench/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 3 ] || { echo "usage: bench/ab.sh BUILD_A BUILD_B single|batch" >&2; exit 2; }
a=$1; b=$2; mode=$3; pairs=${PAIRS:-4}
out=$(mktemp -d /tmp/canopy-ab-XXXXXX)
trap 'rm -rf "$out"' EXIT
for pair in $(seq 1 "$pairs"); do
  order=(A B)
  [ $((pair % 2)) -eq 0 ] && order=(B A)
  for tag in "${order[@]}"; do
    build=$a; [ "$tag" = B ] && build=$b
    line=$(RUNS=1 BUILD="$build" bench/run.sh "$mode" | grep '^run:')
    echo "pair $pair $tag $line"
    echo "$line" > "$out/$tag$pair"
  done
done
python3 - "$out" "$pairs" <<'PY'
import re, statistics, sys
out, pairs = sys.argv[1], int(sys.argv[2])
def parse(path):
    line = open(path).read()
    r = {"eps": float(re.search(r"run:\s+([\d.]+) events/s", line).group(1)),
         "p99": float(re.search(r"p99 ([\d.]+)", line).group(1)),
         "cpu": float(re.search(r"server cpu ([\d.]+) us/event", line).group(1))}
    for name, v in re.findall(r"([\w.]+) ([\d.]+)(?=[,)])", line.split("us/event", 1)[1]):
        r[name] = float(v)
    return r
runs = {t: [parse(f"{out}/{t}{p}") for p in range(1, pairs + 1)] for t in "AB"}
med = statistics.median
for t in "AB":
    rs = runs[t]
    threads = sorted({k for r in rs for k in r} - {"eps", "p99", "cpu"})
    print(f"{t}: median {med([r['eps'] for r in rs]):.0f} events/s, p99 {med([r['p99'] for r in rs]):.2f} ms, "
          f"server cpu {med([r['cpu'] for r in rs]):.2f} us/event ("
          + ", ".join(f"{k} {med([r.get(k, 0) for r in rs]):.2f}" for k in threads) + ")")
ratios = [b["eps"] / a["eps"] for a, b in zip(runs["A"], runs["B"])]
print("B/A events/s per pair: " + " ".join(f"{x:.2f}" for x in ratios) + f"; median {med(ratios):.2f}")
PY
