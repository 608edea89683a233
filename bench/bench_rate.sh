#!/usr/bin/env bash
# bench_rate.sh -- rate precision end to end: one dispatcher, one vendor configured at RATE
# segments/s with BURST, SECONDS worth of single-segment messages; the emulator counts what it
# accepts in every wall-clock second. Prints the achieved rate (error vs configured) and the
# largest 1-second window (must not exceed RATE + BURST).
#   bench/bench_rate.sh [RATE (500)] [SECONDS (20)] [BURST (10)]
source "$(dirname "$0")/lib.sh"
RATE=${1:-500}; SECS=${2:-20}; BURST=${3:-10}
N=$((RATE * SECS))
bench_setup bench_rate
export TOCSIN_TWILIO_TOKEN=bench-token
cfg() { bench_twilio_cfg '"main": {"from": "+15005550006"}' "\"rate_per_s\": $RATE, \"burst\": $BURST"; }
cfg
bench_start_broker_sim
cfg
bench_sms_campaign rate "$N"
"$B" -c "$CFG" launch --max-lag 0 --no-progress "$OUT/rate.json" > "$OUT/launch.out" 2>&1
bench_bg dispatch dispatch
for _ in $(seq $((SECS * 8 + 200))); do [ "$(bench_sim_accepted twilio)" -ge "$N" ] && break; sleep 0.25; done
bench_sim_stats > "$OUT/stats.json"
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
