#!/usr/bin/env bash
# bench_track_consume.sh -- status ingest end to end: `tocsin track` consuming tocsin.status from the
# embedded broker and folding it into sqlite (100,000 messages x accepted/sent/delivered, the
# order one dispatcher produces them). Baseline in the same run: producing the same records
# (`tocsin track --replay`). Checks every message ends delivered.
#   bench/bench_track_consume.sh [MESSAGES]   (TOCSIN_BIN picks the binary)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BIN=${TOCSIN_BIN:-$root/tocsin}
N=${1:-100000}
OUT=$here/out/bench_track_consume
rm -rf "$OUT"; mkdir -p "$OUT/var/run"
pids=()
cleanup() { for ((k=${#pids[@]}-1; k>=0; k--)); do kill -TERM "${pids[$k]}" 2>/dev/null || true; wait "${pids[$k]}" 2>/dev/null || true; done; }
trap cleanup EXIT
echo "{\"var_dir\": \"$OUT/var\"}" > "$OUT/tocsin.json"
T() { "$BIN" -c "$OUT/tocsin.json" "$@"; }
python3 - "$OUT/events.jsonl" "$N" <<'PY'
import json, sys
path, n = sys.argv[1], int(sys.argv[2]); win = 5000
with open(path, "w") as f:
    for base in range(0, n, win):
        for st in ("accepted", "sent", "delivered"):
            for i in range(base, min(base + win, n)):
                f.write(json.dumps({"v": 1, "id": "%032x" % (i + 1), "campaign": "bench", "channel": "sms",
                    "to": "+1555%07d" % i, "state": st, "vendor": "twilio", "vendor_ref": "SM%032x" % i,
                    "latency_ms": 80 if st == "accepted" else -1, "attempt": 0, "ts_ms": 1700000000000 + i}) + "\n")
PY
TOCSIN_LOG=warn "$BIN" -c "$OUT/tocsin.json" broker > "$OUT/broker.log" 2>&1 & pids+=($!)
for _ in $(seq 200); do [ -s "$OUT/var/run/broker.bootstrap" ] && break; sleep 0.1; done
p0=$(date +%s.%N); T track --replay "$OUT/events.jsonl" > /dev/null; p1=$(date +%s.%N)
TOCSIN_LOG=info "$BIN" -c "$OUT/tocsin.json" track --no-http > "$OUT/track.log" 2>&1 & pids+=($!)
t0=$(date +%s.%N); first=""; done_=0
for _ in $(seq 2400); do
  out=$(T status bench --json 2>/dev/null || true)
  if [ -z "$first" ] && [ -n "$out" ]; then first=$(date +%s.%N); fi
  if [ "$out" = "{\"campaign\":\"bench\",\"total\":$N,\"states\":{\"delivered\":$N},\"vendors\":{\"twilio\":{\"delivered\":$N}}}" ]; then done_=1; break; fi
  sleep 0.05
done
t1=$(date +%s.%N)
[ $done_ = 1 ] || { echo "bench_track_consume: FAIL not every message delivered: $out"; exit 1; }
python3 - "$N" "$p0" "$p1" "$t0" "$first" "$t1" <<'PY'
import sys
n, p0, p1, t0, first, t1 = int(sys.argv[1]), *map(float, sys.argv[2:])
ev = 3 * n; prod = ev / (p1 - p0); cons = ev / (t1 - first)
print(f"bench_track_consume: {ev} status events ({n} messages x accepted/sent/delivered)")
print(f"  baseline: produce (track --replay)      : {prod:9.0f} events/s")
print(f"  consume + fold into sqlite (tocsin track): {cons:9.0f} events/s ({cons/prod:.2f}x baseline)  target >= 60000")
print(f"  (from the first folded transaction; start-up and group join took {first - t0:.1f} s)")
PY
echo OK
