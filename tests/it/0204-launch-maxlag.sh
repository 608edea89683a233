#!/usr/bin/env bash
# 0204-launch-maxlag.sh -- flow control against a real dispatcher: with --max-lag 500 a launch
# of 6,000 recipients through a vendor limited to 1,500 segments/s waits for the dispatcher
# instead of running ahead; when it ends the dispatcher is at most the bound (plus what is in
# flight) behind, and every recipient is accepted exactly once.
source "$(dirname "$0")/lib.sh"
it_setup 0204-launch-maxlag
V='"rate_per_s": 1500, "burst": 20'
it_two_sms_vendors "$V"
it_start_broker
it_start_sim
it_two_sms_vendors "$V"
it_bg dispatch dispatch
sleep 1
N=6000
it_gen_audience "$OUT/a.csv" $N 0
it_campaign "$OUT/c.json" lag1 a.csv
sim_total() { it_sim_stats | it_jq 'sum(v["accepted"] for v in j["vendors"].values())'; }
t0=$(date +%s.%N)
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c.json" --max-lag 500 --no-progress > "$OUT/launch.out" 2>&1 || it_fail "launch: $(cat "$OUT/launch.out")"
at_end=$(sim_total)
t1=$(date +%s.%N)
cat "$OUT/launch.out" | grep -v '^ts=' || true
waited=$(python3 -c "import json; print(json.load(open('$VAR/launch/lag1/report.json'))['lag_wait_ms'])")
echo "launch took $(python3 -c "print('%.1f' % ($t1 - $t0))") s, waited ${waited} ms for the dispatcher; the emulator had $at_end accepted when it ended"
grep -q "read $N, queued $N" "$OUT/launch.out" || it_fail "launch summary"
[ "$waited" -gt 1000 ] || it_fail "the launch did not wait for the dispatcher (${waited} ms)"
# at most the bound + the dispatcher's in-flight window (64) + one status/commit batch behind
[ "$at_end" -ge $((N - 500 - 64 - 500)) ] || it_fail "the launch ran ahead: only $at_end of $N sent when it ended"
done_all() { [ "$(sim_total)" -ge $N ]; }
it_wait_until 60 done_all || it_fail "not all $N accepted: $(sim_total)"
it_sim_stats > "$OUT/sim.json"
uniq=$(it_jq 'sum(v["unique_ids"] for v in j["vendors"].values())' "$OUT/sim.json")
dups=$(it_jq 'sum(v["duplicate_count"] for v in j["vendors"].values())' "$OUT/sim.json")
[ "$uniq" = $N ] || it_fail "emulator saw $uniq distinct ids, want $N"
[ "$dups" = 0 ] || it_fail "emulator saw $dups ids twice"
echo "ok 0204-launch-maxlag"
