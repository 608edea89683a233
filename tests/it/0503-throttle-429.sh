#!/usr/bin/env bash
# 0503-throttle-429: mid-blast the only vendor answers 429 with Retry-After to half of the
# requests for 3 seconds (a storm). The dispatcher slows that vendor down and retries;
# nothing is marked failed, everyone is accepted exactly once.
source "$(dirname "$0")/lib.sh"
it_setup 0503-throttle-429
it_write_config '"vendors": [{"name":"twilio","kind":"twilio","base_url":"http://127.0.0.1:9",
  "account":"ACit00000000000000000000000000000","secret_env":"TOCSIN_TWILIO_TOKEN",
  "senders":{"main":{"from":"+15005550006"}}}]'
it_start_broker
it_start_sim
it_start_track
it_write_config "\"vendors\": [{\"name\":\"twilio\",\"kind\":\"twilio\",\"base_url\":\"http://$SIM\",
  \"account\":\"ACit00000000000000000000000000000\",\"secret_env\":\"TOCSIN_TWILIO_TOKEN\",
  \"senders\":{\"main\":{\"from\":\"+15005550006\"}}, \"rate_per_s\": 500}],
  \"dispatcher\": {\"max_attempts\": 3, \"retry_base_ms\": 50, \"retry_max_ms\": 500},
  \"tracker\": {\"public_url\": \"http://$TRACK\"}"
it_bg dispatch dispatch
it_gen_audience "$OUT/a.csv" 2000 0
it_campaign "$OUT/c.json" thr a.csv
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c.json" > "$OUT/launch.out" 2>&1 || it_fail "launch"
accepted_at_least() { [ "$(it_sim_stats | it_jq 'j["vendors"]["twilio"]["accepted"]')" -ge "$1" ]; }
it_wait_until 40 accepted_at_least 300 || it_fail "the blast did not start"
it_sim_fault '{"vendor":"twilio","throttle_rate":0.5,"retry_after_s":1}'
sleep 3
it_sim_fault '{"vendor":"twilio","throttle_rate":0}'
all_final() { [ "$(it_final_count thr)" -ge 2000 ]; }
it_wait_until 120 all_final || it_fail "only $(it_final_count thr) of 2000 final"
"$TOCSIN_BIN" -c "$CFG" status thr --json > "$OUT/st.json"; cat "$OUT/st.json"
it_sim_stats > "$OUT/sim.json"; cat "$OUT/sim.json"; echo
[ "$(it_jq 'j["states"].get("accepted",0)' "$OUT/st.json")" = 2000 ] || it_fail "not all accepted"
[ "$(it_jq 'j["states"].get("failed",0)' "$OUT/st.json")" = 0 ] || it_fail "429s were marked failed"
req=$(it_jq 'j["vendors"]["twilio"]["requests"]' "$OUT/sim.json")
[ "$req" -gt 2000 ] || it_fail "only $req requests: the emulator did not throttle?"
[ "$(it_jq 'j["vendors"]["twilio"]["unique_ids"]' "$OUT/sim.json")" = 2000 ] || it_fail "ids not exactly once"
[ "$(it_jq 'j["vendors"]["twilio"]["duplicate_count"]' "$OUT/sim.json")" = 0 ] || it_fail "duplicates"
# The rate came down: the dispatcher reports the vendor throttled with a reduced factor.
grep -Eq 'event=vendor_throttled vendor=twilio .* factor=0\.[0-4]' "$OUT/dispatch.log" \
  || it_fail "no rate decrease logged: $(grep vendor_throttled "$OUT/dispatch.log" | head -3)"
grep vendor_throttled "$OUT/dispatch.log" | sed 's/^.*event=/event=/' | head -5
echo "ok: $req requests for 2000 recipients, none failed"
