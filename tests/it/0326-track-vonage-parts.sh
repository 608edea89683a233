#!/usr/bin/env bash
# 0326-track-vonage-parts.sh -- a 3-part SMS through Vonage: the emulator answers one message-id
# per part and sends one signed receipt per part; every part's receipt is applied (none counted
# as mismatched), the messages end delivered, and a correctly signed receipt naming a part id of
# another message, or sent to another vendor's webhook, is refused (403, counted mismatched).
source "$(dirname "$0")/lib.sh"
it_setup 0326-track-vonage-parts
export TOCSIN_VONAGE_SECRET=it-vonage-secret TOCSIN_VONAGE_SIG=it-vonage-signature-secret
config() {
  it_write_config '"vendors":[
  {"name":"vonage","kind":"vonage","base_url":"http://'"${SIM:-127.0.0.1:9}"'","account":"itvonagekey","secret_env":"TOCSIN_VONAGE_SECRET","signature_secret_env":"TOCSIN_VONAGE_SIG","senders":{"main":{"from":"15005550007"}}},
  {"name":"vonage2","kind":"vonage","base_url":"http://'"${SIM:-127.0.0.1:9}"'","account":"itvonagekey2","secret_env":"TOCSIN_VONAGE_SECRET","signature_secret_env":"TOCSIN_VONAGE_SIG","senders":{"main":{"from":"15005550008"}}}],
  "routes":{"sms":{"vendors":["vonage"]}},
  "tracker":{"public_url":"http://'"${TRACK:-127.0.0.1:9}"'"}'
}
config
it_start_broker
it_start_sim
it_start_track
config   # again, with the emulator's and the tracker's addresses
it_sim_fault '{"vendor":"vonage","receipts":{"enabled":true,"delay_ms":100,"delivered_rate":1}}'
it_bg dispatch dispatch
it_gen_audience "$OUT/a.csv" 2 0
# 3 GSM-7 parts: more than 2 x 153 characters, at most 3 x 153
LONG=$(python3 -c 'print("Polls open 7am-8pm. " * 19)')
printf '{"id":"vp","name":"vp","audience":{"path":"a.csv","format":"csv","phone":"phone"},
 "sms":{"sender":"main","template":"Hi {{first_name}}. %s"},"expires_in_s":3600}\n' "$LONG" > "$OUT/c.json"
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c.json" > "$OUT/launch.out" 2>&1 || it_fail "launch: $(cat "$OUT/launch.out")"

delivered() { [ "$(it_status_field vp 'j["states"].get("delivered",0)')" -ge 2 ]; }
webhooks() { curl -sf "http://$TRACK/api/vendors" | it_jq '[v for v in j["vendors"] if v["name"]=="'"$1"'"][0]["webhooks"]'; }
ok6() { [ "$(webhooks vonage | it_jq 'j["ok"]')" -ge 6 ]; }
it_wait_until 40 delivered || it_fail "not delivered: $("$TOCSIN_BIN" -c "$CFG" status vp --json)"
it_wait_until 20 ok6 || it_fail "not every part's receipt taken: $(webhooks vonage)"
sleep 0.5   # a seventh receipt (there must be none) would have arrived by now
W=$(webhooks vonage); echo "vonage webhooks: $W"
it_sim_stats > "$OUT/sim.json"
python3 - "$W" "$OUT/sim.json" <<'PY' || it_fail "counts"
import json, sys
w, sim = json.loads(sys.argv[1]), json.load(open(sys.argv[2]))
assert w["ok"] == 6 and w["mismatched"] == 0 and w["forbidden"] == 0 and w["bad"] == 0, w
assert sim["vendors"]["vonage"]["accepted"] == 2, sim["vendors"]["vonage"]
PY
[ "$(it_status_field vp 'j["states"]')" = '{"delivered": 2}' ] || it_fail "states: $(it_status_field vp 'j["states"]')"

# each message's stored reference: its three part ids
python3 - "$VAR/tocsin.db" > "$OUT/refs.txt" <<'PY' || it_fail "reading the store"
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
for mid, ref in db.execute("SELECT lower(hex(id)), vendor_ref FROM msgs ORDER BY id"):
    print(mid, ref)
PY
cat "$OUT/refs.txt"
read -r A A1 A2 A3 < <(sed -n 1p "$OUT/refs.txt")
read -r B B1 B2 B3 < <(sed -n 2p "$OUT/refs.txt")
[ -n "$A3" ] && [ -n "$B3" ] || it_fail "stored references are not three part ids: $(cat "$OUT/refs.txt")"

post() { # NAME EXPECTED_CODE URL FORM
  local code; code=$(curl -s -o "$OUT/$1.out" -w '%{http_code}' -X POST "$3" --data "$4")
  [ "$code" = "$2" ] || it_fail "$1: HTTP $code, want $2: $(cat "$OUT/$1.out")"
}
rcpt() { it_vonage_form msisdn=15550000003 to=15005550007 "messageId=$1" status=failed err-code=5 "client-ref=$2" "api-key=$3"; }
# signed, but naming message A with a part id of message B: refused
post cross-msg 403 "http://$TRACK/webhooks/vonage/status" "$(rcpt "$B2" "$A" itvonagekey)"
# A's own part id, at the webhook of a vendor that did not carry A: refused
post cross-vendor 403 "http://$TRACK/webhooks/vonage2/status" "$(rcpt "$A2" "$A" itvonagekey2)"
grep -q 'did not carry' "$OUT/cross-msg.out" || it_fail "403 does not say why: $(cat "$OUT/cross-msg.out")"
# A's own third part, signed: taken (a late duplicate outcome changes nothing: A stays delivered)
post own-part 200 "http://$TRACK/webhooks/vonage/status" "$(rcpt "$A3" "$A" itvonagekey)"
sleep 0.5
W=$(webhooks vonage); W2=$(webhooks vonage2); echo "vonage: $W vonage2: $W2"
python3 - "$W" "$W2" <<'PY' || it_fail "refusals not counted"
import json, sys
w, w2 = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert w["mismatched"] == 1 and w["ok"] == 7, w
assert w2["mismatched"] == 1 and w2["ok"] == 0, w2
PY
[ "$(it_status_field vp 'j["states"]')" = '{"delivered": 2}' ] || it_fail "a refused receipt changed a state"
echo "ok: 2 x 3-part Vonage SMS delivered, 6 part receipts taken, 0 mismatched; cross-message and cross-vendor part ids refused"
