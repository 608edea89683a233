#!/usr/bin/env bash
# 0513-fair-campaigns: two campaigns of the same priority on one destination take turns
# (round-robin by campaign): the second, launched while the first drains, progresses at once
# and finishes long before the first does.
source "$(dirname "$0")/lib.sh"
it_setup 0513-fair-campaigns
it_one_sms_stack '"senders":{"main":{"from":"+15005550006"}}, "rate_per_s": 300'
it_gen_audience "$OUT/a1.csv" 3000 0
it_gen_audience "$OUT/a2.csv" 600 10000
it_campaign "$OUT/c1.json" first a1.csv
it_campaign "$OUT/c2.json" second a2.csv
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c1.json" > "$OUT/launch1.out" 2>&1 || it_fail "launch first"
at_least() { [ "$(it_final_count "$1")" -ge "$2" ]; }
it_wait_until 40 at_least first 300 || it_fail "the first campaign did not start"
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c2.json" > "$OUT/launch2.out" 2>&1 || it_fail "launch second"
it_wait_until 40 at_least second 600 || it_fail "second: only $(it_final_count second) of 600 final"
first_then=$(it_final_count first)
echo "second campaign all final with the first at $first_then of 3000"
# taking turns, 600 of the second cost about 600 of the first: the first is far from done
[ "$first_then" -lt 2400 ] || it_fail "the second campaign waited for the first ($first_then of 3000 first)"
it_wait_until 60 at_least first 3000 || it_fail "first: only $(it_final_count first) of 3000 final"
it_sim_stats > "$OUT/sim.json"
[ "$(it_jq 'j["vendors"]["twilio"]["unique_ids"]' "$OUT/sim.json")" = 3600 ] || it_fail "emulator: not 3600 distinct ids"
[ "$(it_jq 'j["vendors"]["twilio"]["duplicate_count"]' "$OUT/sim.json")" = 0 ] || it_fail "an id was sent twice"
echo "ok: two equal campaigns took turns: the second finished with the first at $first_then of 3000"
