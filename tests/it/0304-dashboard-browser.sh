#!/usr/bin/env bash
# 0304-dashboard-browser.sh -- headless Chromium opens the dashboard during a running blast
# (broker, vendor-sim, dispatcher, tracker, launch of the 10,000-recipient example paced at
# 300/s), checks the counts shown match the API, clicks pause (confirming) and sees the
# campaign paused; saves tests/out/0304-dashboard-browser/dashboard.png.
source "$(dirname "$0")/lib.sh"
it_setup 0304-dashboard-browser
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
it_browser_setup
export TOCSIN_IT_CONTROL_TOKEN=it-browser-token
config() { # the emulator learns the account from the config; everyone else needs its address
  it_write_config '"vendors":[{"name":"twilio","kind":"twilio","channel":"sms","base_url":"http://'"$1"'",
    "account":"ACsim0000000000000000000000000000","secret_env":"TOCSIN_TWILIO_TOKEN",
    "senders":{"main":{"from":"+15005550006"}},"rate_per_s":300,"max_in_flight":32}],
    "routes":{"sms":{"vendors":["twilio"]}},
    "tracker":{"control_token_env":"TOCSIN_IT_CONTROL_TOKEN"}'
}
config 127.0.0.1:9
it_start_broker
it_bg vendor-sim vendor-sim --listen 127.0.0.1:0
it_wait_file "$VAR/run/vendor-sim.addr" 20
config "$(cat "$VAR/run/vendor-sim.addr")"
it_bg track track --listen 127.0.0.1:0
it_wait_file "$VAR/run/track.addr" 20
A=http://$(cat "$VAR/run/track.addr")
it_bg dispatch dispatch --channel sms
cp "$ROOT/examples/campaign.json" "$ROOT/examples/audience.csv" "$OUT/"
it_bg launch launch "$OUT/campaign.json"
started() { curl -sf "$A/api/campaigns/demo" | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["total"]>0 else 1)'; }
it_wait_until 30 started || it_fail "no message reached the tracker: $(tail -3 "$OUT/dispatch.log")"

(cd "$BROWSER_DIR" && timeout 120 node dashboard.mjs "$A" demo "$TOCSIN_IT_CONTROL_TOKEN" "$OUT/dashboard.png") ||
  it_fail "browser test failed"
[ -s "$OUT/dashboard.png" ] || it_fail "no screenshot"
curl -sf "$A/api/timeline" | grep -q '"detail":"campaign paused by operator"' || it_fail "pause not on the timeline"
# cancel what is left, so the dispatcher has nothing pending when it is stopped
"$TOCSIN_BIN" -c "$CFG" campaign cancel demo > /dev/null || it_fail "cancel"
cancelled() { curl -sf "$A/api/campaigns/demo" | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["state"]=="cancelled" else 1)'; }
it_wait_until 10 cancelled || it_fail "campaign not cancelled"
echo "ok: 0304-dashboard-browser"
