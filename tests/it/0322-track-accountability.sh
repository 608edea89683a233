#!/usr/bin/env bash
# 0322-track-accountability.sh -- controls carry who did them: a named token per person or role
# in tracker.control_tokens for the HTTP API, `--as NAME` (default the OS user) on the CLI;
# the timeline and the store keep the name. Refusals change nothing: a wrong token (401), a bad
# --as (exit 2), a token list with a repeated name or a shared token (the tracker does not start).
source "$(dirname "$0")/lib.sh"
it_setup 0322-track-accountability
export TOCSIN_T_ALICE=alice-token-0123456789 TOCSIN_T_ONCALL=oncall-token-0123456789
config() {
  it_write_config '"vendors":[{"name":"twilio","kind":"twilio","channel":"sms","base_url":"http://127.0.0.1:9","account":"ACit","secret_env":"TOCSIN_TWILIO_TOKEN","senders":{"main":{"from":"+15005550006"}}}],
  "tracker":{"control_tokens":['"$1"']}'
}
config '{"name":"alice","token_env":"TOCSIN_T_ALICE"},{"name":"on-call","token_env":"TOCSIN_T_ONCALL"}'
it_start_broker
python3 -c '
import json, time
now = int(time.time() * 1000)
print(json.dumps({"v":1,"id":"%032x" % 7,"campaign":"acct","channel":"sms","to":"+15550000007","state":"accepted","vendor":"twilio","latency_ms":50,"attempt":0,"ts_ms":now}))' > "$OUT/events.jsonl"
it_start_track
A=http://$TRACK
"$TOCSIN_BIN" -c "$CFG" track --replay "$OUT/events.jsonl" > /dev/null
known() { curl -sf "$A/api/campaigns/acct" > /dev/null; }
it_wait_until 20 known || it_fail "campaign acct never folded"
events() { curl -sf "$A/api/timeline?limit=100" | it_jq 'len(j["events"])'; }
post() { curl -s -o "$OUT/post.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $2" "$A$1"; }

# a wrong token: 401, nothing published
[ "$(post /api/campaigns/acct/pause wrong-token)" = 401 ] || it_fail "wrong token not refused"
sleep 1
[ "$(events)" = 0 ] || it_fail "a refused control reached the timeline"
# alice pauses over HTTP; on-call drains the vendor
[ "$(post /api/campaigns/acct/pause "$TOCSIN_T_ALICE")" = 200 ] || it_fail "alice's pause: $(cat "$OUT/post.json")"
[ "$(post /api/vendors/twilio/drain "$TOCSIN_T_ONCALL")" = 200 ] || it_fail "on-call's drain: $(cat "$OUT/post.json")"
# bob resumes from the CLI; a bad --as is refused before anything is published
"$TOCSIN_BIN" -c "$CFG" campaign pause acct --as 'bob; rm -rf /' > "$OUT/bad-as.out" 2>&1 && it_fail "a bad --as was accepted"
grep -q -- '--as needs a name' "$OUT/bad-as.out" || it_fail "bad --as: $(cat "$OUT/bad-as.out")"
"$TOCSIN_BIN" -c "$CFG" campaign resume acct --as bob > /dev/null || it_fail "resume --as bob"
"$TOCSIN_BIN" -c "$CFG" vendor undrain twilio > /dev/null || it_fail "undrain"
four() { [ "$(events)" = 4 ]; }
it_wait_until 20 four || it_fail "timeline: $(curl -sf "$A/api/timeline")"
curl -sf "$A/api/timeline?limit=100" > "$OUT/timeline.json"
me=$(id -un)
it_jq '[(e["subject"], e["detail"], e["actor"]) for e in j["events"]]' "$OUT/timeline.json" > "$OUT/timeline.txt"
cat "$OUT/timeline.txt"
python3 - "$OUT/timeline.txt" "$me" <<'PY' || it_fail "timeline does not say who"
import json, sys
ev = json.load(open(sys.argv[1])); me = sys.argv[2]
want = [["acct", "campaign paused by alice", "alice"],
        ["twilio", "new -> drained by operator (on-call): operator drain", "on-call"],
        ["acct", "campaign running by bob", "bob"],
        ["twilio", "drained -> healthy by operator (%s): operator undrain" % me, me]]
assert sorted(ev) == sorted(want), ev
PY
# kept in the store
[ "$(sqlite3 "$VAR/tocsin.db" "SELECT COUNT(*) FROM timeline WHERE actor IN ('alice','on-call','bob','$me')")" = 4 ] ||
  it_fail "actors not in the store"
it_stop "$PID_track" || true

# a token list the tracker refuses, with one line
for bad in '{"name":"alice","token_env":"TOCSIN_T_ALICE"},{"name":"alice","token_env":"TOCSIN_T_ONCALL"}' \
           '{"name":"alice","token_env":"TOCSIN_T_ALICE"},{"name":"eve","token_env":"TOCSIN_T_ALICE"}' \
           '{"name":"al ice","token_env":"TOCSIN_T_ALICE"}' '{"name":"alice","token":"x"}' \
           '{"name":"alice","token_env":"TOCSIN_T_ALICE","role":"root"}'; do
  config "$bad"
  "$TOCSIN_BIN" -c "$CFG" track --listen 127.0.0.1:0 > "$OUT/bad.out" 2>&1 && it_fail "tracker started with $bad"
  grep -q 'control_tokens' "$OUT/bad.out" || it_fail "no clear refusal for $bad: $(tail -2 "$OUT/bad.out")"
done
echo "ok: 0322-track-accountability"
