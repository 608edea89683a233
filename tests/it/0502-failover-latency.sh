#!/usr/bin/env bash
# 0502-failover-latency: the primary's latency rises above its p95 threshold mid-blast. Traffic
# moves to the secondary; every recipient is accepted exactly once across both vendors.
# it-serial: it judges latency against a 150 ms p95 threshold, which a busy neighbour test skews
source "$(dirname "$0")/lib.sh"
it_setup 0502-failover-latency
SLA='"rate_per_s": 300, "timeout_ms": 5000, "sla": {"p95_ms": 150, "window_s": 1,
  "min_samples": 10, "min_open_s": 30, "probe_windows": 2, "probe_min_samples": 3}'
it_two_sms_vendors "$SLA"
it_start_broker
it_start_sim
it_start_track
IT_EXTRA_TOP="\"tracker\": {\"public_url\": \"http://$TRACK\"}" it_two_sms_vendors "$SLA"
it_bg dispatch dispatch
it_gen_audience "$OUT/a1.csv" 3000 0
it_campaign "$OUT/c1.json" lat1 a1.csv

"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c1.json" > "$OUT/launch1.out" 2>&1 || it_fail "launch: $(cat "$OUT/launch1.out")"
twilio_accepted() { [ "$(it_sim_stats | it_jq 'j["vendors"].get("twilio",{}).get("accepted",0)')" -ge "$1" ]; }
it_wait_until 40 twilio_accepted 500 || it_fail "twilio never reached 500 accepted"
it_sim_fault '{"vendor":"twilio","latency_ms":{"median":400,"tail":600}}'
slow_at=$(it_sim_stats | it_jq 'j["vendors"]["twilio"]["accepted"]')
echo "twilio now answers in ~400 ms (p95 threshold 150 ms) after $slow_at accepted"

all_final() { [ "$(it_final_count "$1")" -ge "$2" ]; }
it_wait_until 90 all_final lat1 3000 || it_fail "only $(it_final_count lat1) of 3000 final"
"$TOCSIN_BIN" -c "$CFG" status lat1 --json > "$OUT/lat1.json"; cat "$OUT/lat1.json"
it_sim_stats > "$OUT/sim.json"; cat "$OUT/sim.json"; echo
[ "$(it_jq 'j["states"].get("accepted",0)' "$OUT/lat1.json")" = 3000 ] || it_fail "not all 3000 accepted"
[ "$(it_jq 'sum(v["unique_ids"] for v in j["vendors"].values())' "$OUT/sim.json")" = 3000 ] || it_fail "ids not exactly once"
[ "$(it_jq 'sum(v["duplicate_count"] for v in j["vendors"].values())' "$OUT/sim.json")" = 0 ] || it_fail "duplicates"
grep -q 'event=vendor_state vendor=twilio from=healthy to=open reason="p95' "$OUT/dispatch.log" \
  || it_fail "no latency breach logged: $(grep vendor_state "$OUT/dispatch.log")"
tw=$(it_jq 'j["vendors"]["twilio"]["accepted"]' "$OUT/sim.json")
von=$(it_jq 'j["vendors"]["vonage"]["accepted"]' "$OUT/sim.json")
# Once open (min_open_s 30 keeps it out for the rest of the blast) only the requests in
# flight at the breach and during the window that detected it still reach the primary.
[ "$von" -gt 1500 ] || it_fail "secondary took only $von"
echo "ok: latency breach moved traffic: twilio $tw (slow from $slow_at), vonage $von"
