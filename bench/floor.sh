#!/usr/bin/env bash
# The floors of the single-charge design on this machine: canopy-floor (bench/floor_server.cpp) in
# each mode, driven by canopy-loadgen's probe (GET /healthz), and Canopy itself under the same load
# generator's single charges for comparison. Modes run in rounds (every mode once per round, in turn)
# so the machine's drift falls on all of them alike; prints each run, then each mode's medians.
#
#   bench/floor.sh                         # 3 rounds of 5 s, 64 connections
#   ROUNDS=5 DURATION=10 CONNECTIONS=128 MODES="bare chain fsync canopy" bench/floor.sh
#   FLOOR_ARGS="--actor-threads 1" SERVER_ARGS="--actor-threads 1" bench/floor.sh   # flags for each server
#
# Loopback only; every run is bounded by DURATION seconds. Needs a Release build in build/ (or BUILD).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
rounds=${ROUNDS:-3}
duration=${DURATION:-5}
connections=${CONNECTIONS:-64}
modes=${MODES:-bare actor chain writer fsync direct canopy}
port=${PORT:-18790}
work=$(mktemp -d /tmp/canopy-floor-XXXXXX)
export CANOPY_OPERATOR_TOKEN=bench-operator-token
server=
stop() { [ -n "$server" ] && { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }; server=; }
trap 'stop; rm -rf "$work"' EXIT
# A server that did not come up, or died: say so with its log (the trap removes the folder).
fail() { echo "bench/floor.sh: $1" >&2; tail -20 "$work/server.log" >&2 || true; exit 1; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# The same per thread, summed by role: the I/O thread (`canopy`, whose idle main thread adds nothing,
# or `canopy-floor`, whose main thread it is), the CAF workers (`caf.multiplexer`), the detached
# writer (`caf.actor`), and the rest (Canopy's state committer, trimmer and sorter, CAF's clock).
thread_ticks() {
  for t in /proc/$1/task/*; do echo "$(cat "$t/comm") $(awk '{print $14 + $15}' "$t/stat")"; done |
    awk '{r = $1 ~ /^canopy(-floor)?$/ ? "io" : $1 == "caf.multiplexer" ? "workers" : $1 == "caf.actor" ? "writer" : "other";
          a[r] += $2} END {printf "{\"io\": %d, \"workers\": %d, \"writer\": %d, \"other\": %d}\n", a["io"], a["workers"], a["writer"], a["other"]}'
}
ready() {
  for _ in $(seq 1 100); do
    kill -0 "$server" 2>/dev/null || fail "the $mode server exited"
    curl -sf "http://127.0.0.1:$port/healthz" > /dev/null && return
    sleep 0.1
  done
  fail "the $mode server did not answer on port $port within 10 s"
}
# Another server on the port would answer for ours.
if curl -sf "http://127.0.0.1:$port/healthz" > /dev/null; then echo "bench/floor.sh: port $port is in use (PORT=...)" >&2; exit 1; fi

for round in $(seq 1 "$rounds"); do
  for mode in $modes; do
    args=(--url "http://127.0.0.1:$port" --connections "$connections" --duration "$duration")
    if [ "$mode" = canopy ]; then
      rm -rf "$work/var"
      "$build/canopy" serve --data-dir "$work/var" --listen "127.0.0.1:$port" ${SERVER_ARGS:-} > "$work/server.log" 2>&1 &
      server=$!
      ready
      "$build/bench/canopy-loadgen" "${args[@]}" --save-forest "$work/forest.txt" --setup-only > /dev/null
      args+=(--load-forest "$work/forest.txt" --mode single)
    else
      "$build/bench/canopy-floor" --listen "127.0.0.1:$port" --mode "$mode" ${FLOOR_ARGS:-} > "$work/server.log" 2>&1 &
      server=$!
      ready
      args+=(--mode probe)
    fi
    before=$(ticks "$server")
    thread_ticks "$server" > "$work/threads_before"
    # The load generator's own CPU: on two cores it is most of what the server does not use.
    # Bash's own `time` (no package for /usr/bin/time): user and system seconds of the load generator.
    { TIMEFORMAT="%U %S"; time "$build/bench/canopy-loadgen" "${args[@]}" > "$work/run.out"; } 2> "$work/lg_time"
    tail -1 "$work/run.out" > "$work/run.json"
    kill -0 "$server" 2>/dev/null || fail "the $mode server exited during the run"
    after=$(ticks "$server")
    thread_ticks "$server" > "$work/threads_after"
    stop
    python3 - "$work/run.json" "$work/lg_time" "$mode" "$((after - before))" "$(getconf CLK_TCK)" \
      "$work/threads_before" "$work/threads_after" >> "$work/rows" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t0, t1 = json.load(open(sys.argv[6])), json.load(open(sys.argv[7]))
user, system = map(float, open(sys.argv[2]).read().split()[-2:])
ticks, hz = int(sys.argv[4]), int(sys.argv[5])
requests = max(r["requests"], 1)
# Both CPU figures include the one-second warmup, whose requests are not counted (~1/DURATION high).
print(json.dumps({"mode": sys.argv[3], "rps": r["requests_per_s"], "p50": r["latency_ms"]["p50"],
                  "p99": r["latency_ms"]["p99"], "server_us": 1e6 * ticks / hz / requests,
                  "loadgen_us": 1e6 * (user + system) / requests,
                  **{k + "_us": 1e6 * (t1[k] - t0[k]) / hz / requests for k in t1}}))
PY
    tail -1 "$work/rows" | python3 -c "import json,sys; r=json.loads(sys.stdin.read()); print(f\"round $round {r['mode']:>7}: {r['rps']:>9.0f} req/s  p50 {r['p50']:.2f}  p99 {r['p99']:.2f} ms  server {r['server_us']:.1f} us/req (io {r['io_us']:.1f}, workers {r['workers_us']:.1f}, writer {r['writer_us']:.1f}, other {r['other_us']:.1f})  loadgen {r['loadgen_us']:.1f} us/req\")"
  done
done
python3 - "$work/rows" "$modes" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("medians:")
for mode in sys.argv[2].split():
    mine = [r for r in rows if r["mode"] == mode]
    med = lambda k: statistics.median(r[k] for r in mine)
    print(f"  {mode:>7}: {med('rps'):>9.0f} req/s  p50 {med('p50'):.2f}  p99 {med('p99'):.2f} ms  "
          f"server {med('server_us'):.1f} us/req (io {med('io_us'):.1f}, workers {med('workers_us'):.1f}, "
          f"writer {med('writer_us'):.1f}, other {med('other_us'):.1f})  loadgen {med('loadgen_us'):.1f} us/req")
PY
