#!/usr/bin/env bash
# 0328-track-late-retry.sh -- a genuine Vonage receipt retried later than webhook_max_age_s is
# taken: the emulator signs every delivery anew (timestamp and sig of the moment it is sent), as
# vendors do, so a retry that comes 400 s after the first attempt (the tracker was down) is fresh.
# No waiting: the emulator's signing clock is moved on 400 s (POST /_sim/clock) while the first
# attempts fail, and the tracker starts with its webhook clock 400 s ahead (TOCSIN_TEST_NOW_S).
# A webhook signed at the first attempt's time is refused as stale by that tracker (checked), so
# an emulator that resent the first signature would fail this test.
source "$(dirname "$0")/lib.sh"
it_setup 0328-track-late-retry
export TOCSIN_VONAGE_SECRET=it-vonage-secret TOCSIN_VONAGE_SIG=it-vonage-signature-secret
TRACK=127.0.0.1:$(it_free_port)
config() {
  it_write_config '"vendors":[
   {"name":"vonage","kind":"vonage","base_url":"http://'"$1"'","account":"itvonagekey",
    "secret_env":"TOCSIN_VONAGE_SECRET","signature_secret_env":"TOCSIN_VONAGE_SIG",
    "senders":{"vg":{"from":"15005550007"}}}],
  "routes":{"sms":{"vendors":["vonage"]}},
  "tracker":{"listen":"'"$TRACK"'","public_url":"http://'"$TRACK"'"}'
}
config 127.0.0.1:9
it_start_broker
it_start_sim
config "$SIM"
# receipts at once, retried on Vonage's schedule scaled by 0.01 (50 ms doubling up to 9 s)
it_sim_fault '{"receipts":{"enabled":true,"delay_ms":0,"delivered_rate":1,"retry_scale":0.01}}'

# one message sent to the emulator while the tracker is down: its receipt's deliveries fail
ID=0328aaaabbbbccccddddeeeeffff0001
ans=$(curl -sf "http://$SIM/sms/json" --data-urlencode api_key=itvonagekey \
  --data-urlencode api_secret="$TOCSIN_VONAGE_SECRET" --data-urlencode from=15005550007 \
  --data-urlencode to=15551230001 --data-urlencode text=hello --data-urlencode client-ref=$ID \
  --data-urlencode status-report-req=1 --data-urlencode callback="http://$TRACK/webhooks/vonage/status") \
  || it_fail "the emulator refused the send"
MID=$(echo "$ans" | it_jq 'j["messages"][0]["message-id"]')
t0=$(date +%s)
retried() { [ "$(curl -sf "http://$SIM/_sim/receipts" | it_jq 'j["retried"]')" -ge 2 ]; }
it_wait_until 20 retried || it_fail "the receipt's first deliveries did not fail and get retried"

# 400 s later, for the emulator and for the tracker
curl -sf -X POST -d '{"advance_s":400}' "http://$SIM/_sim/clock" > /dev/null || it_fail "/_sim/clock refused"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{"advance_s":"x"}' "http://$SIM/_sim/clock")
[ "$code" = 400 ] || it_fail "/_sim/clock took a bad body ($code)"
echo '{"v":1,"id":"'$ID'","campaign":"late","channel":"sms","to":"+15551230001","state":"accepted","vendor":"vonage","vendor_ref":"'$MID'","latency_ms":80,"attempt":0,"ts_ms":'$((t0 * 1000))'}' > "$OUT/seed.jsonl"
"$TOCSIN_BIN" -c "$CFG" track --replay "$OUT/seed.jsonl" > /dev/null || it_fail "seed"
export TOCSIN_TEST_NOW_S=$((t0 + 400))
it_bg track track
unset TOCSIN_TEST_NOW_S
it_wait_file "$VAR/run/track.addr" 20
A=http://$TRACK

# the tracker refuses a receipt signed at the first attempt's time (400 s before its clock) ...
form=$(it_vonage_form -t "$t0" msisdn=15551230002 to=15005550007 messageId="$MID" status=delivered \
  err-code=0 client-ref=$ID)
code=$(curl -s -o "$OUT/stale.out" -w '%{http_code}' -X POST -H 'Content-Type: application/x-www-form-urlencoded' \
  --data "$form" "$A/webhooks/vonage/status")
[ "$code" = 403 ] || it_fail "a receipt signed 400 s ago was answered $code, want 403"
grep -q 'timestamp' "$OUT/stale.out" || it_fail "the stale refusal does not name the timestamp: $(cat "$OUT/stale.out")"

# ... and takes the emulator's retry, signed when it was sent
delivered() { [ "$(it_status_field late 'j["states"].get("delivered", 0)')" = 1 ]; }
it_wait_until 40 delivered || it_fail "the late retry was not taken: $(curl -s "http://$SIM/_sim/receipts") $(grep webhook_ "$OUT/track.log" | tail -3)"
rc=$(curl -sf "http://$SIM/_sim/receipts")
[ "$(echo "$rc" | it_jq 'j["sent"]')" = 1 ] || it_fail "emulator receipts: $rc, want sent 1"
[ "$(echo "$rc" | it_jq 'j["failed"]')" = 0 ] || it_fail "emulator gave a receipt up: $rc"
wh=$(curl -sf "$A/api/vendors" | it_jq '[v["webhooks"] for v in j["vendors"] if v["name"] == "vonage"][0]')
[ "$(echo "$wh" | it_jq 'j["ok"]')" = 1 ] || it_fail "tracker webhooks: $wh, want ok 1"
[ "$(echo "$wh" | it_jq 'j["forbidden"]')" = 1 ] || it_fail "tracker webhooks: $wh, want forbidden 1 (the stale one)"
echo "ok: 0328-track-late-retry (first attempt at $t0, retry taken by a tracker at $((t0 + 400)); receipts $rc)"
