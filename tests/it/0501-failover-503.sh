#!/usr/bin/env bash
# 0501-failover-503: the primary SMS vendor starts answering 503 mid-blast. The rest of the
# blast goes out through the secondary; every recipient is accepted exactly once across both
# (emulator counts); the primary is declared open, and gets traffic back after it recovers.
source "$(dirname "$0")/lib.sh"
it_setup 0501-failover-503
SLA='"rate_per_s": 400, "sla": {"window_s": 1, "min_samples": 10, "min_open_s": 2,
  "probe_windows": 2, "probe_min_samples": 3, "probe_fraction": 0.2, "ramp_s": 2}'
it_two_sms_vendors "$SLA"
it_start_broker
it_start_sim
it_start_track
# again, now with the emulator's and the tracker's addresses (status callbacks carry our ids)
IT_EXTRA_TOP="\"tracker\": {\"public_url\": \"http://$TRACK\"}" it_two_sms_vendors "$SLA"
it_bg dispatch dispatch
it_gen_audience "$OUT/a1.csv" 3000 0
it_gen_audience "$OUT/a2.csv" 3000 3000
it_campaign "$OUT/c1.json" fo1 a1.csv
it_campaign "$OUT/c2.json" fo2 a2.csv

"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c1.json" > "$OUT/launch1.out" 2>&1 || it_fail "launch 1: $(cat "$OUT/launch1.out")"
twilio_accepted() { [ "$(it_sim_stats | it_jq 'j["vendors"].get("twilio",{}).get("accepted",0)')" -ge "$1" ]; }
it_wait_until 40 twilio_accepted 600 || it_fail "twilio never reached 600 accepted"
it_sim_fault '{"vendor":"twilio","outage":"503"}'
echo "twilio now answers 503"

all_final() { [ "$(it_final_count "$1")" -ge "$2" ]; }
it_wait_until 60 all_final fo1 3000 || it_fail "fo1: only $(it_final_count fo1) of 3000 final"
"$TOCSIN_BIN" -c "$CFG" status fo1 --json > "$OUT/fo1.json"
cat "$OUT/fo1.json"
[ "$(it_jq 'j["states"].get("accepted",0)' "$OUT/fo1.json")" = 3000 ] || it_fail "fo1: not all 3000 accepted"
it_sim_stats > "$OUT/sim1.json"; cat "$OUT/sim1.json"; echo
uniq=$(it_jq 'sum(v["unique_ids"] for v in j["vendors"].values())' "$OUT/sim1.json")
dups=$(it_jq 'sum(v["duplicate_count"] for v in j["vendors"].values())' "$OUT/sim1.json")
von=$(it_jq 'j["vendors"]["vonage"]["accepted"]' "$OUT/sim1.json")
[ "$uniq" = 3000 ] || it_fail "emulator accepted $uniq distinct ids, want 3000 (a recipient sent twice across vendors?)"
[ "$dups" = 0 ] || it_fail "emulator saw $dups ids twice"
[ "$von" -gt 500 ] || it_fail "secondary took only $von messages"
grep -q 'event=vendor_state vendor=twilio from=healthy to=open' "$OUT/dispatch.log" || it_fail "no open transition logged"

# Recovery: the primary answers again; a second blast must find its way back to it.
it_sim_fault '{"vendor":"twilio","outage":"none"}'
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c2.json" > "$OUT/launch2.out" 2>&1 || it_fail "launch 2"
it_wait_until 60 all_final fo2 3000 || it_fail "fo2: only $(it_final_count fo2) of 3000 final"
"$TOCSIN_BIN" -c "$CFG" status fo2 --json > "$OUT/fo2.json"
cat "$OUT/fo2.json"
back=$(it_jq 'j["vendors"].get("twilio",{}).get("accepted",0)' "$OUT/fo2.json")
[ "$(it_jq 'j["states"].get("accepted",0)' "$OUT/fo2.json")" = 3000 ] || it_fail "fo2: not all accepted"
[ "$back" -gt 1000 ] || it_fail "primary got only $back of the second blast back"
grep -q 'event=vendor_state vendor=twilio from=probing to=healthy' "$OUT/dispatch.log" || it_fail "no recovery logged"
dups=$(it_sim_stats | it_jq 'sum(v["duplicate_count"] for v in j["vendors"].values())')
[ "$dups" = 0 ] || it_fail "emulator saw $dups ids twice"
grep 'event=vendor_state' "$OUT/dispatch.log" | sed 's/^.*event=/event=/'
echo "ok: failover to vonage, nothing lost or doubled; twilio back with $back of 3000"
