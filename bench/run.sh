#!/usr/bin/env bash
# Reproducible benchmark: a fresh server on a fresh data folder, a fresh forest, then RUNS runs of the
# load generator; prints each run's summary line and the median events/s and latencies.
#
#   bench/run.sh single            # single-event HTTP, 64 connections
#   bench/run.sh batch             # usage:batch, 1,000 events per batch
#   bench/run.sh probe             # GET /healthz: the HTTP floor (figures per request)
#   LOADGEN_ARGS="--rate 6000" bench/run.sh single   # open loop at a fixed rate
#   RUNS=5 DURATION=10 CONNECTIONS=128 SERVER_ARGS="--actor-threads 1" bench/run.sh single
#
# Loopback only; every run is bounded by DURATION seconds. Needs a Release build in build/ (or BUILD).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-single}
build=${BUILD:-build}
runs=${RUNS:-3}
duration=${DURATION:-5}
connections=${CONNECTIONS:-64}
batch_size=${BATCH_SIZE:-1000}
port=${PORT:-18765}
extra=${LOADGEN_ARGS:-}
work=$(mktemp -d /tmp/canopy-bench-XXXXXX)
export CANOPY_OPERATOR_TOKEN=bench-operator-token

"$build/canopy" serve --data-dir "$work/var" --listen "127.0.0.1:$port" ${SERVER_ARGS:-} > "$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" > /dev/null && break; sleep 0.1; done

"$build/bench/canopy-loadgen" --url "http://127.0.0.1:$port" --save-forest "$work/forest.txt" --setup-only | tail -2
# The server's CPU time (user + system, in clock ticks) from /proc: per accepted event it is far less
# noisy than events/s on a shared machine. It includes the loadgen's warmup, whose events are not
# counted, so it overstates the cost by about warmup/duration.
server_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
# The same per thread, summed by thread name: `canopy` is the Asio I/O thread (and the idle main
# thread), `caf.multiplexer` CAF's scheduler workers (the org actors), `caf.actor` the detached
# persistence writer, `canopy.state` its state committer, `canopy.trim` the journal trimmer (the audit
# base's fold), `canopy.sort` the sorter of checkpoints' event ids, `caf.clock` CAF's timer thread. A
# change on one thread shows here through noise that hides it in the total.
thread_ticks() { for t in /proc/$server/task/*; do echo "$(cat "$t/comm") $(awk '{print $14 + $15}' "$t/stat")"; done; }
# Bytes the server passed to write(2)-family calls, almost all LMDB pages (socket sends go through
# sendmsg and are not counted; Asio's 8-byte wake-ups and the log are). Whole pages, fsynced every
# commit, so about what the disk writes: on this machine's kernel (6.18) /proc/PID/io's write_bytes
# counted ~5x the bytes the block device saw (/sys/block/*/stat), so it is not used. Like the CPU,
# it includes the warmup's events, which are not counted.
server_wchar() { awk '/^wchar/{print $2}' "/proc/$server/io"; }
for run in $(seq 1 "$runs"); do
  args=(--url "http://127.0.0.1:$port" --load-forest "$work/forest.txt" --mode "$mode" --connections "$connections"
        --duration "$duration")
  [ "$mode" = batch ] && args+=(--batch-size "$batch_size")
  before=$(server_ticks)
  wchar_before=$(server_wchar)
  thread_ticks > "$work/threads_before$run"
  "$build/bench/canopy-loadgen" "${args[@]}" $extra | tail -1 > "$work/run$run.json"
  echo $(( $(server_ticks) - before )) > "$work/ticks$run"
  echo $(( $(server_wchar) - wchar_before )) > "$work/wchar$run"
  thread_ticks > "$work/threads_after$run"
done
python3 - "$work" "$runs" "$(getconf CLK_TCK)" <<'PY'
import json, statistics, sys
work, runs, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = [json.load(open(f"{work}/run{i}.json")) for i in range(1, runs + 1)]
def by_name(path):
    out = {}
    for line in open(path):
        name, ticks = line.rsplit(" ", 1)
        out[name] = out.get(name, 0) + int(ticks)
    return out
for i, r in enumerate(rows, 1):
    # Per event accepted; `probe` (GET /healthz) accepts none, so its costs are per request.
    if r["mode"] == "probe":
        r["events_accepted"], r["events_accepted_per_s"] = r["requests"], r["requests_per_s"]
    per = max(r["events_accepted"], 1)
    r["cpu_us_per_event"] = 1e6 * int(open(f"{work}/ticks{i}").read()) / hz / per
    r["written_per_event"] = int(open(f"{work}/wchar{i}").read()) / per
    a, b = by_name(f"{work}/threads_before{i}"), by_name(f"{work}/threads_after{i}")
    r["threads"] = {n: 1e6 * (b[n] - a.get(n, 0)) / hz / per for n in b if b[n] > a.get(n, 0)}
for r in rows:
    l = r["latency_ms"]
    print(f"run: {r['events_accepted_per_s']:>10.0f} events/s  {r['requests_per_s']:>9.0f} req/s  "
          f"p50 {l['p50']:.2f}  p99 {l['p99']:.2f}  p999 {l['p999']:.2f} ms  refused {r['events_refused']}  "
          f"written {r['written_per_event']:.0f} B/event  server cpu {r['cpu_us_per_event']:.2f} us/event ("
          + ", ".join(f"{n} {v:.2f}" for n, v in sorted(r["threads"].items())) + ")")
med = lambda k: statistics.median(k)
print(f"median: {med([r['events_accepted_per_s'] for r in rows]):.0f} events/s, "
      f"p50 {med([r['latency_ms']['p50'] for r in rows]):.2f} ms, p99 {med([r['latency_ms']['p99'] for r in rows]):.2f} ms, "
      f"p999 {med([r['latency_ms']['p999'] for r in rows]):.2f} ms, "
      f"written {med([r['written_per_event'] for r in rows]):.0f} B/event, "
      f"server cpu {med([r['cpu_us_per_event'] for r in rows]):.2f} us/event ("
      + ", ".join(f"{n} {med([r['threads'].get(n, 0) for r in rows]):.2f}" for n in sorted({n for r in rows for n in r['threads']}))
      + ")")
PY
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^canopy_(journal|commit)' | tr '\n' ' '; echo
# The data folder's parts as they stand (LMDB files never shrink: this is the most each part held).
# Without the journal trim the journal part grows by every record; with it, by a few checkpoints'.
echo "data folder: $(du -sm "$work/var/data.mdb" | cut -f1) MB journal part, $(du -sm "$work/var/state" | cut -f1) MB state" \
  "part, $( [ -d "$work/var/audit" ] && du -sm "$work/var/audit" | cut -f1 || echo 0) MB audit part"
