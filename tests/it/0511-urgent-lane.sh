#!/usr/bin/env bash
# 0511-urgent-lane: an urgent campaign (priority >= 1) launched while a bulk blast drains
# goes to tocsin.outbox.sms.urgent and overtakes the bulk records already waiting: all of it
# is final while most of the bulk blast is still to go; then the bulk blast finishes. Nothing
# is lost or sent twice (emulator counts).
source "$(dirname "$0")/lib.sh"
it_setup 0511-urgent-lane
it_one_sms_stack '"senders":{"main":{"from":"+15005550006"}}, "rate_per_s": 200'
it_gen_audience "$OUT/bulk.csv" 3000 0
it_gen_audience "$OUT/alert.csv" 300 10000
it_campaign_as "$OUT/bulk.json" bulk bulk.csv main 0
it_campaign_as "$OUT/alert.json" alert alert.csv main 5
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/bulk.json" > "$OUT/launch-bulk.out" 2>&1 || it_fail "launch bulk"
at_least() { [ "$(it_final_count bulk)" -ge "$1" ]; }
it_wait_until 40 at_least 300 || it_fail "the bulk blast did not start"
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/alert.json" > "$OUT/launch-alert.out" 2>&1 || it_fail "launch alert"
"$TOCSIN_BIN" -c "$CFG" launch --check-outbox "$OUT/alert.json" > "$OUT/check-alert.out" 2>&1 || true
"$TOCSIN_BIN" -c "$CFG" launch --check-outbox "$OUT/bulk.json" > "$OUT/check-bulk.out" 2>&1 || true
cat "$OUT/check-alert.out" "$OUT/check-bulk.out"
grep -q 'tocsin.outbox.sms.urgent: campaign alert: 300 messages' "$OUT/check-alert.out" || it_fail "the alert is not on the urgent lane"
grep -q 'tocsin.outbox.sms: campaign bulk: 3000 messages' "$OUT/check-bulk.out" || it_fail "the bulk campaign is not on the bulk lane"
alert_done() { [ "$(it_final_count alert)" -ge 300 ]; }
it_wait_until 40 alert_done || it_fail "alert: only $(it_final_count alert) of 300 final"
bulk_then=$(it_final_count bulk)
echo "alert all final with bulk at $bulk_then of 3000"
# 300 at 200/s is 1.5 s of sending; bulk behind it would have needed 13 s more
[ "$bulk_then" -lt 2400 ] || it_fail "the alert waited for the bulk blast ($bulk_then of 3000 bulk final first)"
it_wait_until 60 at_least 3000 || it_fail "bulk: only $(it_final_count bulk) of 3000 final after the alert"
it_sim_stats > "$OUT/sim.json"
[ "$(it_jq 'j["vendors"]["twilio"]["unique_ids"]' "$OUT/sim.json")" = 3300 ] || it_fail "emulator: not 3300 distinct ids"
[ "$(it_jq 'j["vendors"]["twilio"]["duplicate_count"]' "$OUT/sim.json")" = 0 ] || it_fail "an id was sent twice"
[ "$(it_status_field alert 'j["states"].get("accepted",0)')" = 300 ] || it_fail "alert: not all accepted"
[ "$(it_status_field bulk 'j["states"].get("accepted",0)')" = 3000 ] || it_fail "bulk: not all accepted"
echo "ok: the urgent campaign overtook the bulk blast (bulk at $bulk_then of 3000); 3300 sent once each"
