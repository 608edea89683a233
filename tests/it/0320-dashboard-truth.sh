#!/usr/bin/env bash
# 0320-dashboard-truth.sh -- the dashboard tells the truth through a vendor outage, a cancel and
# a resend. One SMS vendor (the emulator's Twilio, receipts on, every message delivered):
# campaign "blast" (1,500 recipients + 3 numbers the vendor refuses for good) runs into a 503
# outage, some messages give up (max_attempts 3) while the SLA monitor opens the vendor; the
# outage ends and the rest goes out. Campaign "cancelme" is cancelled mid-way. Then
# `launch --resend-failed --dry-run` and `--resend-failed` resend what failed in the outage,
# leaving the 3 permanent failures out. Headless Chromium then checks that the numbers on the
# page equal the API's and the emulator's, that the vendor's error chart shows the outage,
# that the cancelled count is shown, that "blast" ends done with every resent recipient
# delivered; screenshot tests/out/0320-dashboard-truth/dashboard.png.
source "$(dirname "$0")/lib.sh"
it_setup 0320-dashboard-truth
it_browser_setup
export TOCSIN_IT_CONTROL_TOKEN=it-truth-token
TPORT=$(it_free_port)
TRACK=127.0.0.1:$TPORT
config() {
  it_write_config '"vendors":[{"name":"twilio","kind":"twilio","channel":"sms","base_url":"http://'"$1"'",
    "account":"ACsim0000000000000000000000000000","secret_env":"TOCSIN_TWILIO_TOKEN",
    "senders":{"main":{"from":"+15005550006"}},"rate_per_s":250,"max_in_flight":32,
    "sla":{"window_s":1,"min_samples":10,"min_open_s":2,"probe_windows":2,"probe_min_samples":3,
           "probe_fraction":0.2,"ramp_s":2}}],
    "routes":{"sms":{"vendors":["twilio"]}},
    "dispatcher":{"max_attempts":3,"retry_base_ms":100,"retry_max_ms":300,"retry_budget":1.0},
    "tracker":{"listen":"'"$TRACK"'","public_url":"http://'"$TRACK"'",
               "control_token_env":"TOCSIN_IT_CONTROL_TOKEN"}'
}
config 127.0.0.1:9
it_start_broker
it_start_sim
config "$SIM"
it_sim_fault '{"vendor":"twilio","receipts":{"enabled":true,"delay_ms":200,"delivered_rate":1}}'
it_bg track track
it_wait_file "$VAR/run/track.addr" 20
A=http://$TRACK
it_bg dispatch dispatch --channel sms

it_gen_audience "$OUT/blast.csv" 1500 0
printf 'Inv,+15005550001,Springfield\nCap,+15005550009,Springfield\nLand,+15005550010,Springfield\n' >> "$OUT/blast.csv"
it_gen_audience "$OUT/cancel.csv" 4000 5000
it_campaign "$OUT/blast.json" blast blast.csv
it_campaign "$OUT/cancel.json" cancelme cancel.csv
api() { curl -sf "$A$1"; }
camp() { api "/api/campaigns/$1" | it_jq "$2"; }

# 1. the blast runs into a 503 outage
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/blast.json" > "$OUT/launch-blast.out" 2>&1 || it_fail "launch: $(cat "$OUT/launch-blast.out")"
accepted_ge() { [ "$(it_sim_stats | it_jq 'j["vendors"].get("twilio",{}).get("accepted",0)')" -ge "$1" ]; }
it_wait_until 60 accepted_ge 300 || it_fail "the emulator never accepted 300"
it_sim_fault '{"vendor":"twilio","outage":"503"}'
gave_up() { [ "$(camp blast 'j["summary"]["failed"]')" -ge 13 ]; }
it_wait_until 30 gave_up || it_fail "no message gave up during the outage: $(camp blast 'j["summary"]')"
opened() { api "/api/timeline?limit=1000" | it_jq '[e["detail"] for e in j["events"] if e["subject"]=="twilio"]' | grep -q -- '-> open by'; }
it_wait_until 30 opened || it_fail "the vendor was never opened"
it_sim_fault '{"vendor":"twilio","outage":"none"}'
echo "outage over: $(camp blast 'j["summary"]')"
blast_settled() { [ "$(camp blast 'j["summary"]["in_progress"]+j["summary"]["awaiting_receipt"]')" = 0 ]; }
it_wait_until 120 blast_settled || it_fail "blast never settled: $(camp blast 'j["summary"]')"
failed1=$(camp blast 'j["summary"]["failed"]')
camp blast 'j["reasons"]' > "$OUT/reasons1.json"
# the three special numbers fail for good with their own codes, unless one was sent during the
# outage: then it failed with a 503 like the rest, and only the resend meets its own code
perm=$(it_jq 'sum(r["n"] for r in j if r["permanent"])' "$OUT/reasons1.json")
outage_failed=$((failed1 - perm))
[ "$outage_failed" -gt 0 ] || it_fail "no failure from the outage ($failed1 failed)"
it_jq '[r for r in j if r["reason"]=="vendor outage (5xx answers)"][0]["n"]' "$OUT/reasons1.json" | grep -qx "$outage_failed" ||
  it_fail "reasons do not count the $outage_failed outage failures: $(cat "$OUT/reasons1.json")"
# the vendor's recent figures count the deferred answers as the failover did
api /api/vendors > "$OUT/vendors1.json"
[ "$(it_jq 'j["vendors"][0]["recent"]["errors"]' "$OUT/vendors1.json")" -gt 0 ] || it_fail "no vendor errors counted: $(cat "$OUT/vendors1.json")"
echo "blast after the outage: $failed1 failed ($outage_failed in the outage, $perm permanent)"

# 2. a second campaign is cancelled mid-way
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/cancel.json" > "$OUT/launch-cancel.out" 2>&1 || it_fail "launch cancelme"
cancel_sent_ge() { [ "$(camp cancelme 'j["summary"]["sent"]')" -ge "$1" ]; }
it_wait_until 60 cancel_sent_ge 200 || it_fail "cancelme never got going"
"$TOCSIN_BIN" -c "$CFG" campaign cancel cancelme --as it-operator > "$OUT/cancel.out" 2>&1 || it_fail "cancel: $(cat "$OUT/cancel.out")"
cancel_settled() { [ "$(camp cancelme 'j["summary"]["in_progress"]+j["summary"]["awaiting_receipt"]')" = 0 ]; }
it_wait_until 60 cancel_settled || it_fail "cancelme never settled: $(camp cancelme 'j["summary"]')"
ncancelled=$(camp cancelme 'j["summary"]["cancelled"]')
[ "$ncancelled" -gt 1000 ] || it_fail "only $ncancelled cancelled"

# 3. resend what failed: the dry run counts, the run re-queues exactly that, permanent ones left out
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/blast.json" --resend-failed --dry-run > "$OUT/dry.out" 2>&1 || it_fail "dry run: $(cat "$OUT/dry.out")"
cat "$OUT/dry.out"
grep -q "would re-queue $outage_failed message" "$OUT/dry.out" || it_fail "dry run does not say $outage_failed"
grep -q "$perm permanent failure" "$OUT/dry.out" || it_fail "dry run does not leave the $perm permanent failures out"
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/blast.json" --resend-failed --no-progress > "$OUT/resend.out" 2>&1 || it_fail "resend: $(cat "$OUT/resend.out")"
cat "$OUT/resend.out"
grep -q "re-queued $outage_failed message" "$OUT/resend.out" || it_fail "resend summary does not say $outage_failed"
resent_delivered() { [ "$(camp blast 'j["summary"]["delivered"]')" = 1500 ] && [ "$(camp blast 'j["state"]')" = done ]; }
it_wait_until 60 resent_delivered || it_fail "resent messages not delivered: $(camp blast 'j["state"], j["summary"]')"
[ "$(camp blast 'j["summary"]["failed"]')" = 3 ] || it_fail "blast should end with the 3 permanent failures"
# tocsin status reads the same columns and reasons
"$TOCSIN_BIN" -c "$CFG" status blast > "$OUT/status.out" || it_fail "status"
grep -q '^  audience 1503, sent 1500, delivered 1500, failed 3, in progress 0 ' "$OUT/status.out" &&
  grep -q '^  why: .*invalid number 1' "$OUT/status.out" || it_fail "tocsin status: $(cat "$OUT/status.out")"
# each resent recipient shows delivered, with its failed first attempt in its history
api "/api/campaigns/blast/recipients?state=delivered&limit=10000" > "$OUT/delivered.json"
n=$(it_jq 'sum(1 for i in j["items"] if i["resends"]==1 and i["history"][0]["code"]=="http_503")' "$OUT/delivered.json")
[ "$n" = "$((outage_failed - (3 - perm)))" ] || it_fail "$n resent recipients show delivered with history, want $((outage_failed - (3 - perm)))"

# 4. the page, against the API and the emulator
it_sim_stats > "$OUT/sim.json"
[ "$(it_jq 'j["vendors"]["twilio"]["duplicate_count"]' "$OUT/sim.json")" = 0 ] || it_fail "the emulator saw ids twice"
# a test send: its receipts belong to no campaign
"$TOCSIN_BIN" -c "$CFG" vendor-send twilio --to +15551230000 > "$OUT/vendor-send.out" 2>&1 || it_fail "vendor-send: $(cat "$OUT/vendor-send.out")"
unattributed() { [ "$(api /api/campaigns | it_jq 'j["unattributed"]["total"]')" -ge 1 ]; }
it_wait_until 20 unattributed || it_fail "the test send's receipt is not counted apart"
(cd "$BROWSER_DIR" && timeout 120 node truth.mjs "$A" "$OUT/sim.json" "$OUT/dashboard.png") ||
  it_fail "browser test failed"
[ -s "$OUT/dashboard.png" ] || it_fail "no screenshot"
echo "ok: 0320-dashboard-truth ($outage_failed resent and delivered, $ncancelled cancelled)"
