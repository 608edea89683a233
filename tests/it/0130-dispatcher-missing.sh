#!/usr/bin/env bash
# 0130-dispatcher-missing: an SMS + email campaign (and an urgent email one, on the .urgent
# lane) with only the SMS dispatcher running. The
# tracker warns that nothing consumes tocsin.outbox.email (in /api/health, which the dashboard
# shows, and in `tocsin status`), never about sms; once an email dispatcher starts the warning
# goes away and every message is delivered.
source "$(dirname "$0")/lib.sh"
it_setup 0130-dispatcher-missing
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export TOCSIN_SENDGRID_KEY=it-sendgrid-key TOCSIN_UNSUB_KEY=it-unsubscribe-key-0130
cfg() {
  it_write_config '"vendors":[
  {"name":"twilio","kind":"twilio","base_url":"http://'"${SIM:-127.0.0.1:9}"'","account":"ACit00000000000000000000000000000","secret_env":"TOCSIN_TWILIO_TOKEN","senders":{"main":{"from":"+15005550006"}}},
  {"name":"sendgrid","kind":"sendgrid","base_url":"http://'"${SIM:-127.0.0.1:9}"'","account":"-","secret_env":"TOCSIN_SENDGRID_KEY","senders":{"main":{"from":"news@example.org"}}}],
  "tracker":{"public_url":"http://127.0.0.1:9","dispatcher_idle_s":2}'
}
cfg
it_start_broker
it_start_sim
cfg
it_start_track
it_bg dispatch-sms dispatch --channel sms
cp "$ROOT/examples/rally.json" "$ROOT/examples/supporters.csv" "$OUT/"
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/rally.json" > "$OUT/launch.out" 2>&1 || it_fail "launch: $(cat "$OUT/launch.out")"
# an urgent email-only campaign (priority 1: the .urgent lane) waits too
python3 -c 'import json; c=json.load(open("'"$OUT"'/rally.json")); del c["sms"]; c.update(id="alert", priority=1); json.dump(c, open("'"$OUT"'/alert.json", "w"))'
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/alert.json" > "$OUT/launch-alert.out" 2>&1 || it_fail "launch alert: $(cat "$OUT/launch-alert.out")"

health() { curl -sf "http://$TRACK/api/health"; }
warns() { health | it_jq '" | ".join(j["warnings"])'; }
email_warned() { warns | grep -q "no dispatcher for channel email"; }
sms_done() { [ "$(it_status_field rally 'sum(j["vendors"].get("twilio",{}).values())')" = 200 ]; }
it_wait_until 40 sms_done || it_fail "the SMS half was not delivered"
it_wait_until 40 email_warned || it_fail "no warning about the email channel: $(health)"
sleep 2.5   # one more check after the SMS half is done (every 2 s)
health | tee "$OUT/health.json"; echo
it_jq '" | ".join(j["warnings"])' "$OUT/health.json" | grep -q "channel sms" && it_fail "a warning about sms, which has its dispatcher: $(warns)"
it_jq 'j["channels"]["email"]["waiting"]' "$OUT/health.json" | grep -qx 400 || it_fail "email waiting is not 200 bulk + 200 urgent"
it_jq 'j["channels"]["sms"]["waiting"]' "$OUT/health.json" | grep -qx 0 || it_fail "sms waiting is not 0"
"$TOCSIN_BIN" -c "$CFG" status rally > "$OUT/status.out"; cat "$OUT/status.out"
grep -q "^warning: no dispatcher for channel email" "$OUT/status.out" || it_fail "tocsin status does not warn"
curl -sf "http://$TRACK/" > "$OUT/dash.html"; grep -q '/api/health' "$OUT/dash.html" || it_fail "the dashboard does not read /api/health"

# the email dispatcher arrives: the warning goes, everything is delivered
it_bg dispatch-email dispatch --channel email
all_done() { [ "$(it_status_field rally 'j["states"].get("delivered",0)+j["states"].get("accepted",0)')" = 400 ]; }
it_wait_until 60 all_done || it_fail "not all 400 accepted with both dispatchers"
alert_done() { [ "$(it_final_count alert)" = 200 ]; }
it_wait_until 60 alert_done || it_fail "the urgent campaign was not sent"
no_warn() { [ -z "$(warns)" ]; }
it_wait_until 20 no_warn || it_fail "the warning stayed: $(warns)"
"$TOCSIN_BIN" -c "$CFG" status rally | grep -q "^warning" && it_fail "tocsin status still warns"
echo "ok 0130-dispatcher-missing"
