#!/usr/bin/env bash
# 0512-slow-pool: one vendor, a "slow" sender pool whose number takes 2 segments/s
# (senders.slow.rate_per_number) and the "main" pool under the vendor's 300/s. A slow
# campaign launched first must not hold back a fast one launched after it: the fast one
# finishes while the slow one is still trickling out at its number's rate.
source "$(dirname "$0")/lib.sh"
it_setup 0512-slow-pool
it_one_sms_stack '"senders":{"main":{"from":"+15005550006"}, "slow":{"from":"+15005550009","rate_per_number":2}}, "rate_per_s": 300'
it_gen_audience "$OUT/slow.csv" 200 0
it_gen_audience "$OUT/fast.csv" 1500 10000
it_campaign_as "$OUT/slow.json" slow slow.csv slow 0
it_campaign_as "$OUT/fast.json" fast fast.csv main 0
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/slow.json" > "$OUT/launch-slow.out" 2>&1 || it_fail "launch slow"
slow_started() { [ "$(it_final_count slow)" -ge 1 ]; }
it_wait_until 30 slow_started || it_fail "the slow campaign did not start"
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/fast.json" > "$OUT/launch-fast.out" 2>&1 || it_fail "launch fast"
fast_done() { [ "$(it_final_count fast)" -ge 1500 ]; }
# 1500 at 300/s is 5 s; behind the slow pool it would take 100 s
it_wait_until 40 fast_done || it_fail "fast: only $(it_final_count fast) of 1500 final while the slow pool trickles"
slow_then=$(it_final_count slow)
echo "fast campaign all final with the slow one at $slow_then of 200"
[ "$slow_then" -lt 150 ] || it_fail "the slow pool went faster than its 2/s ($slow_then of 200)"
it_sim_stats > "$OUT/sim.json"
[ "$(it_jq 'j["vendors"]["twilio"]["duplicate_count"]' "$OUT/sim.json")" = 0 ] || it_fail "an id was sent twice"
[ "$(it_status_field fast 'j["states"].get("accepted",0)')" = 1500 ] || it_fail "fast: not all accepted"
echo "ok: the slow pool (2/s) did not slow the fast pool: 1500 done while slow was at $slow_then"
