#!/usr/bin/env bash
# 0509-dead-letters: messages that cannot be sent end final and on tocsin.dead with the reason:
# a vendor that only ever answers 503 (attempts run out: failed) and a campaign whose messages
# expire while the vendor is down (expired). `tocsin dead` lists them.
source "$(dirname "$0")/lib.sh"
it_setup 0509-dead-letters
cfg() {
  it_write_config "\"vendors\": [{\"name\":\"twilio\",\"kind\":\"twilio\",\"base_url\":\"http://${SIM:-127.0.0.1:9}\",
    \"account\":\"ACit00000000000000000000000000000\",\"secret_env\":\"TOCSIN_TWILIO_TOKEN\",
    \"senders\":{\"main\":{\"from\":\"+15005550006\"}}, \"sla\": {\"error_rate\": 1, \"timeout_rate\": 1}}],
    \"dispatcher\": {\"max_attempts\": $1, \"retry_base_ms\": 50, \"retry_max_ms\": 200, \"retry_budget\": 10},
    \"tracker\": {\"public_url\": \"http://${TRACK:-127.0.0.1:9}\"}"
}
cfg 3
it_start_broker
it_start_sim
it_start_track
cfg 3
it_sim_fault '{"vendor":"twilio","outage":"503"}'
it_bg dispatch dispatch
it_gen_audience "$OUT/a.csv" 200 0
it_campaign "$OUT/c.json" dead1 a.csv
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c.json" > "$OUT/launch.out" 2>&1 || it_fail "launch"
all_final() { [ "$(it_final_count "$1")" -ge "$2" ]; }
it_wait_until 60 all_final dead1 200 || it_fail "only $(it_final_count dead1) of 200 final"
[ "$(it_status_field dead1 'j["states"].get("failed",0)')" = 200 ] || it_fail "not all 200 failed"
"$TOCSIN_BIN" -c "$CFG" dead --campaign dead1 > "$OUT/dead1.txt" || it_fail "tocsin dead failed"
tail -3 "$OUT/dead1.txt"
grep -q '^200 dead letters for dead1$' "$OUT/dead1.txt" || it_fail "tocsin dead: $(tail -1 "$OUT/dead1.txt")"
[ "$(grep -c 'gave up after 3 attempts' "$OUT/dead1.txt")" = 200 ] || it_fail "reasons do not say the attempts ran out"
"$TOCSIN_BIN" -c "$CFG" dead --campaign dead1 --json | python3 -c '
import json, sys
recs = [json.loads(l) for l in sys.stdin]
assert len(recs) == 200 and len({r["id"] for r in recs}) == 200
assert all(r["state"] == "failed" and r["attempts"] == 3 and r["message"]["campaign"] == "dead1" for r in recs)
assert all(r["message"]["body"].startswith("Hi Pat") for r in recs)
' || it_fail "dead letters do not carry the original message"
[ "$(it_sim_stats | it_jq 'j["vendors"]["twilio"]["accepted"]')" = 0 ] || it_fail "the emulator accepted something"

# Expiry: plenty of attempts, but the messages expire 2 s after the launch.
it_stop "$PID_dispatch"; mv "$OUT/dispatch.log" "$OUT/dispatch-1.log"
cfg 100
it_bg dispatch dispatch
it_gen_audience "$OUT/b.csv" 100 1000
printf '{"id":"exp1","audience":{"path":"b.csv","phone":"phone"},"sms":{"sender":"main","template":"Hi {{first_name}}"},"expires_in_s":2}\n' > "$OUT/e.json"
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/e.json" > "$OUT/launch-e.out" 2>&1 || it_fail "launch exp1"
it_wait_until 60 all_final exp1 100 || it_fail "only $(it_final_count exp1) of 100 final"
[ "$(it_status_field exp1 'j["states"].get("expired",0)')" = 100 ] || it_fail "not all 100 expired: $("$TOCSIN_BIN" -c "$CFG" status exp1 --json)"
"$TOCSIN_BIN" -c "$CFG" dead --campaign exp1 > "$OUT/exp1.txt"
grep -q '^100 dead letters for exp1$' "$OUT/exp1.txt" || it_fail "expired messages not on tocsin.dead"
"$TOCSIN_BIN" -c "$CFG" dead | tail -1 | grep -q '^300 dead letters$' || it_fail "total dead letters"

# An unreachable vendor: the reason says what the transport said, and where.
it_stop "$PID_dispatch"; mv "$OUT/dispatch.log" "$OUT/dispatch-2.log"
closed=$(it_free_port)
SIM=127.0.0.1:$closed cfg 2
it_bg dispatch dispatch
it_gen_audience "$OUT/u.csv" 20 2000
it_campaign "$OUT/u.json" unreach u.csv
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/u.json" > "$OUT/launch-u.out" 2>&1 || it_fail "launch unreach"
it_wait_until 60 all_final unreach 20 || it_fail "only $(it_final_count unreach) of 20 final"
"$TOCSIN_BIN" -c "$CFG" dead --campaign unreach > "$OUT/unreach.txt"
grep -q "gave up after 2 attempts; last answer: Couldn't connect to server (http://127.0.0.1:$closed)" "$OUT/unreach.txt" \
  || it_fail "unreachable vendor reason: $(head -2 "$OUT/unreach.txt")"
echo "ok: 200 failed after 3 attempts, 100 expired, 20 unreachable: all on tocsin.dead with their reasons"
