#!/usr/bin/env bash
# 0515-hang: the primary vendor stops answering (emulator outage "hang") mid-blast. Requests in
# flight past its SLA p95_ms (500) with no answer open it as "hung" -- long before its
# timeout_ms (8000) could count a single timeout -- and the rest of the blast goes through the
# secondary. The hung requests time out later and are retried there: every recipient is
# accepted exactly once (emulator counts).
source "$(dirname "$0")/lib.sh"
it_setup 0515-hang
SLA='"rate_per_s": 300, "timeout_ms": 8000, "sla": {"p95_ms": 500, "window_s": 2, "min_open_s": 30}'
it_two_sms_vendors "$SLA"
it_start_broker
it_start_sim
it_start_track
IT_EXTRA_TOP="\"tracker\": {\"public_url\": \"http://$TRACK\"}" it_two_sms_vendors "$SLA"
it_bg dispatch dispatch
it_gen_audience "$OUT/a.csv" 3000 0
it_campaign "$OUT/c.json" hang a.csv
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c.json" > "$OUT/launch.out" 2>&1 || it_fail "launch"
twilio_accepted() { [ "$(it_sim_stats | it_jq 'j["vendors"].get("twilio",{}).get("accepted",0)')" -ge "$1" ]; }
it_wait_until 40 twilio_accepted 300 || it_fail "twilio never reached 300 accepted"
it_sim_fault '{"vendor":"twilio","outage":"hang"}'
echo "twilio now hangs"
it_wait_until 20 grep -q 'event=vendor_state vendor=twilio from=healthy to=open reason="p95_ms 500: hung, ' "$OUT/dispatch.log" \
  || it_fail "twilio was not opened as hung: $(grep 'event=vendor_state' "$OUT/dispatch.log" || echo no transition)"
grep 'event=vendor_state vendor=twilio' "$OUT/dispatch.log" | sed 's/^.*event=/event=/'
all_final() { [ "$(it_final_count hang)" -ge 3000 ]; }
it_wait_until 60 all_final || it_fail "only $(it_final_count hang) of 3000 final"
[ "$(it_status_field hang 'j["states"].get("accepted",0)')" = 3000 ] || it_fail "not all 3000 accepted"
it_sim_stats > "$OUT/sim.json"
uniq=$(it_jq 'sum(v["unique_ids"] for v in j["vendors"].values())' "$OUT/sim.json")
dups=$(it_jq 'sum(v["duplicate_count"] for v in j["vendors"].values())' "$OUT/sim.json")
[ "$uniq" = 3000 ] || it_fail "emulator accepted $uniq distinct ids, want 3000"
[ "$dups" = 0 ] || it_fail "emulator saw $dups ids twice"
echo "ok: the hung vendor was opened as hung (before any timeout), 3000 accepted once each"
