#!/usr/bin/env bash
# bench_rate.sh -- rate precision end to end: one dispatcher, one vendor configured at RATE
# segments/s with BURST, SECONDS worth of single-segment messages; the emulator counts what it
# accepts in every wall-clock second. Prints the achieved rate (error vs configured) and the
# largest 1-second window (must not exceed RATE + BURST).
#   bench/bench_rate.sh [RATE (500)] [SECONDS (20)] [BURST (10)]
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-500}; SECS=${2:-20}; BURST=${3:-10}
N=$((RATE * SECS))
B=${TOCSIN_BIN:-$PWD/tocsin}
OUT=$PWD/bench/out/bench_rate
rm -rf "$OUT"; mkdir -p "$OUT/var"
CFG=$OUT/tocsin.json
export TOCSIN_TWILIO_TOKEN=bench-token
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
cfg() {
  cat > "$CFG" <<JSON
{"var_dir": "$OUT/var",
 "vendors": [{"name": "twilio", "kind": "twilio", "base_url": "http://${1:-127.0.0.1:9}",
   "account": "ACbench00000000000000000000000000", "secret_env": "TOCSIN_TWILIO_TOKEN",
   "senders": {"main": {"from": "+15005550006"}}, "rate_per_s": $RATE, "burst": $BURST}],
 "tracker": {"public_url": "http://127.0.0.1:9"}}
JSON
}
wait_file() { for _ in $(seq 300); do [ -s "$1" ] && return 0; sleep 0.1; done; echo "no $1" >&2; exit 1; }
cfg
"$B" -c "$CFG" broker > "$OUT/broker.log" 2>&1 & PIDS+=($!)
wait_file "$OUT/var/run/broker.bootstrap"
"$B" -c "$CFG" vendor-sim --listen 127.0.0.1:0 > "$OUT/sim.log" 2>&1 & PIDS+=($!)
wait_file "$OUT/var/run/vendor-sim.addr"
SIM=$(cat "$OUT/var/run/vendor-sim.addr")
cfg "$SIM"
curl -sf -X POST -d '{"vendor":"twilio","receipts":{"enabled":false}}' "http://$SIM/_sim/config" > /dev/null
python3 - "$OUT/a.csv" "$N" <<'PY'
import sys
p, n = sys.argv[1], int(sys.argv[2])
areas = [202, 212, 303, 415, 617, 718, 312, 512, 213, 404]
exch = [234, 345, 456, 567, 678, 789, 432, 543, 654, 765]
with open(p, "w") as f:
    f.write("first_name,phone\n")
    for i in range(n):
        f.write("Pat%d,+1%d%d%04d\n" % (i, areas[i // 100000 % 10], exch[i // 10000 % 10], i % 10000))
PY
printf '{"id":"rate","audience":{"path":"a.csv","phone":"phone"},"sms":{"sender":"main","template":"Hi {{first_name}}, vote no tonight."}}\n' > "$OUT/c.json"
"$B" -c "$CFG" launch --max-lag 0 "$OUT/c.json" > "$OUT/launch.out" 2>&1
"$B" -c "$CFG" dispatch > "$OUT/dispatch.log" 2>&1 & PIDS+=($!)
for _ in $(seq $((SECS * 8 + 200))); do
  acc=$(curl -sf "http://$SIM/_sim/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["vendors"]["twilio"]["accepted"])')
  [ "$acc" -ge "$N" ] && break
  sleep 0.25
done
curl -sf "http://$SIM/_sim/stats" > "$OUT/stats.json"
python3 - "$OUT/stats.json" "$RATE" "$BURST" "$N" <<'PY'
import json, sys
st = json.load(open(sys.argv[1]))["vendors"]["twilio"]
rate, burst, n = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
secs = [c for _, c in st["per_second"]]
full = secs[1:-1]                       # first and last seconds are partial
achieved = sum(full) / len(full)
err = (achieved - rate) / rate * 100
print("per second:", secs)
print("configured %d/s burst %d: achieved %.1f/s over %d full seconds (%+.2f%%); largest 1-s window %d (limit %d)"
      % (rate, burst, achieved, len(full), err, max(secs), rate + burst))
ok = st["accepted"] == n and st["duplicate_count"] == 0 and abs(err) <= 1.0 and max(secs) <= rate + burst
print("check:", "OK" if ok else "WRONG")
sys.exit(0 if ok else 1)
PY
