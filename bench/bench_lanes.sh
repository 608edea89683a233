#!/usr/bin/env bash
# bench_lanes.sh -- urgent overtakes bulk (issue 12): a BULK-recipient priority-0 campaign
# drains through one vendor limited at RATE segments/s (burst 20); 5 s after the dispatcher starts, an
# URGENT-recipient campaign with priority 5 (the urgent lane) is launched. Prints when its
# first and last messages were accepted, counted from the moment its launch finished, and
# checks that bulk resumes afterwards and that nothing is lost or sent twice.
#   bench/bench_lanes.sh [BULK (30000)] [URGENT (2000)] [RATE (1000)]
# The issue's full size: bench/bench_lanes.sh 500000 2000 1000 (bulk alone then takes 500 s).
source "$(dirname "$0")/lib.sh"
BULK=${1:-30000}; URGENT=${2:-2000}; RATE=${3:-1000}
bench_setup bench_lanes
export TOCSIN_TWILIO_TOKEN=bench-token
cfg() { bench_twilio_cfg '"main": {"from": "+15005550006"}' "\"rate_per_s\": $RATE, \"burst\": 20"; }
cfg
bench_start_broker_sim --outbox-partitions 48
cfg
bench_start_track
bench_sms_campaign bulk "$BULK" main 0
bench_sms_campaign urgent "$URGENT" main 5
"$B" -c "$CFG" launch --max-lag 0 --no-progress "$OUT/bulk.json" > "$OUT/launch-bulk.out" 2>&1
bench_bg dispatch dispatch
sleep 5
"$B" -c "$CFG" launch --max-lag 0 --no-progress "$OUT/urgent.json" > "$OUT/launch-urgent.out" 2>&1
t0=$(date +%s%3N)
for _ in $(seq 1200); do
  read -r n first last < <(bench_accepted urgent)
  [ "$n" -ge "$URGENT" ] && break; sleep 0.1
done
sleep 3   # the tracker catches up with the bulk outcomes of the next 2 s
read -r during _ _ < <(bench_accepted bulk "$t0" "$last")
read -r after _ _ < <(bench_accepted bulk "$last" "$((last + 2000))")
echo "urgent: $n of $URGENT accepted; first at +$((first - t0)) ms, last at +$((last - t0)) ms after its launch finished"
echo "bulk accepted meanwhile: $during; in the 2 s after the last urgent one: $after"
# bulk to the end, then the emulator's counts
for _ in $(seq $((BULK * 10 / RATE + 1200))); do [ "$(bench_sim_accepted twilio)" -ge $((BULK + URGENT)) ] && break; sleep 0.25; done
bench_sim_stats > "$OUT/stats.json"
python3 - "$OUT/stats.json" "$BULK" "$URGENT" "$((first - t0))" "$((last - t0))" "$n" "$after" "$RATE" <<'PY'
import json, sys
st = json.load(open(sys.argv[1]))["vendors"]["twilio"]
bulk, urgent, first, last, n, resumed, rate = map(int, sys.argv[2:])
print("emulator: accepted %d, unique %d, sent twice %d" % (st["accepted"], st["unique_ids"], st["duplicate_count"]))
ok = (st["unique_ids"] == bulk + urgent and st["duplicate_count"] == 0 and n == urgent and
      resumed > rate and first <= 1000 and last <= 3000)
print("first within 1 s: %s; all within 3 s: %s; bulk resumed: %s" % (first <= 1000, last <= 3000, resumed > rate))
print("check:", "OK" if ok else "WRONG")
sys.exit(0 if ok else 1)
PY
