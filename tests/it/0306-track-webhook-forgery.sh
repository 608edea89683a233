#!/usr/bin/env bash
# 0306-track-webhook-forgery.sh -- webhooks an outsider could send: unsigned, forged, stale,
# replayed (also across a tracker restart) and cross-vendor ones are refused (403/400) and change
# nothing (states in the store, opt-outs, replies counted at the emulator); correctly signed ones
# pass; inbound texts by POST only; a vendor without a verification key refuses everything; a
# control byte in the path cannot forge a log line. Signatures are computed by python
# (hashlib/hmac/cryptography), not by the C code. The tracker's clock is TOCSIN_TEST_NOW_S.
source "$(dirname "$0")/lib.sh"
it_setup 0306-track-webhook-forgery
export TOCSIN_VONAGE_SECRET=it-vonage-secret TOCSIN_VONAGE_SIG=it-vonage-signature-secret \
       TOCSIN_SENDGRID_KEY=it-sendgrid-key TOCSIN_MAILGUN_KEY=it-mailgun-key
NOW=1700000000
PUB="http://tracker.example.org"
python3 - "$OUT" <<'PY'
import sys, base64
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import serialization
k = ec.generate_private_key(ec.SECP256R1())
open(sys.argv[1] + "/sg.pem", "wb").write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
open(sys.argv[1] + "/sg.pub", "w").write(base64.b64encode(k.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode())
PY
config() {
  it_write_config '"vendors":[
  {"name":"twilio","kind":"twilio","base_url":"http://'"${SIM:-127.0.0.1:9}"'","account":"ACit","secret_env":"TOCSIN_TWILIO_TOKEN","senders":{"main":{"from":"+15005550006"}}},
  {"name":"vonage","kind":"vonage","base_url":"http://'"${SIM:-127.0.0.1:9}"'","account":"itvonagekey","secret_env":"TOCSIN_VONAGE_SECRET","signature_secret_env":"TOCSIN_VONAGE_SIG","senders":{"main":{"from":"15005550007"}}},
  {"name":"vonage512","kind":"vonage","base_url":"http://'"${SIM:-127.0.0.1:9}"'","account":"itvonagekey","secret_env":"TOCSIN_VONAGE_SECRET","signature_secret_env":"TOCSIN_VONAGE_SIG","signature_method":"sha512","senders":{"main":{"from":"15005550008"}}},
  {"name":"vonage-open","kind":"vonage","base_url":"http://'"${SIM:-127.0.0.1:9}"'","account":"itvonagekey","secret_env":"TOCSIN_VONAGE_SECRET","webhook_auth":"none","senders":{"main":{"from":"15005550009"}}},
  {"name":"vonage-nokey","kind":"vonage","base_url":"http://'"${SIM:-127.0.0.1:9}"'","account":"itvonagekey","secret_env":"TOCSIN_VONAGE_SECRET","senders":{"main":{"from":"15005550010"}}},
  {"name":"sendgrid","kind":"sendgrid","base_url":"http://127.0.0.1:9","secret_env":"TOCSIN_SENDGRID_KEY","senders":{"main":{"from":"news@example.org"}},"webhook_public_key":"'"$(cat "$OUT/sg.pub")"'"},
  {"name":"sendgrid-nokey","kind":"sendgrid","base_url":"http://127.0.0.1:9","secret_env":"TOCSIN_SENDGRID_KEY","senders":{"main":{"from":"news@example.org"}}},
  {"name":"mailgun","kind":"mailgun","base_url":"http://127.0.0.1:9","account":"mg.example.org","secret_env":"TOCSIN_MAILGUN_KEY","senders":{"main":{"from":"news@mg.example.org"}}}],
  "routes":{"sms":{"vendors":["twilio","vonage"]},"email":{"vendors":["sendgrid","mailgun"]}},
  "tracker":{"public_url":"'"$PUB"'"}'
}
config
it_start_broker
it_start_sim
config   # again, with the emulator's address
export TOCSIN_TEST_NOW_S=$NOW
it_start_track
A=http://$TRACK
grep -q 'lvl=error .*event=webhooks_unsigned vendor=vonage-open' "$OUT/track.log" || it_fail "no loud line for webhook_auth none"
grep -q 'event=webhooks_unverifiable vendor=sendgrid-nokey' "$OUT/track.log" || it_fail "no line for the unverifiable vendor"
grep -q 'event=webhooks_unverifiable vendor=vonage-nokey' "$OUT/track.log" || it_fail "no line for vonage without a signature secret"

ID() { printf '%032x' "$1"; }
T1=$(ID 11) V1=$(ID 12) S1=$(ID 13) M1=$(ID 14) O1=$(ID 15)
python3 - "$OUT" "$T1" "$V1" "$S1" "$M1" "$O1" <<'PY'
import json, sys
out, t1, v1, s1, m1, o1 = sys.argv[1:]
L = [json.dumps({"v":1,"id":mid,"campaign":"fg","channel":ch,"to":to,"state":"accepted","vendor":v,"vendor_ref":ref,"latency_ms":50,"attempt":0,"ts_ms":1})
     for mid, ch, to, v, ref in [(t1,"sms","+15550000001","twilio","SMt1"),(v1,"sms","+15550000003","vonage","0A1"),
                                 (s1,"email","a@example.org","sendgrid","xid1"),(m1,"email","b@example.org","mailgun","<m1@mg.example.org>"),
                                 (o1,"sms","+15550000005","vonage-open","0A5")]]
open(out + "/events.jsonl", "w").write("\n".join(L) + "\n")
PY
"$TOCSIN_BIN" -c "$CFG" track --replay "$OUT/events.jsonl" > /dev/null
has5() { "$TOCSIN_BIN" -c "$CFG" status fg --json | grep -q '"total":5'; }
it_wait_until 20 has5 || it_fail "accepted events not folded"

post() { # NAME EXPECTED_CODE CURL-ARGS...
  local name=$1 want=$2; shift 2
  local code; code=$(curl -s -o "$OUT/$name.out" -w '%{http_code}' "$@")
  [ "$code" = "$want" ] || it_fail "$name: HTTP $code, want $want: $(cat "$OUT/$name.out")"
}
accepted() { it_sim_stats | it_jq 'j["vendors"]["vonage"]["accepted"]'; }
optouts() { local n; n=$(curl -sf "$A/metrics" | sed -n 's/^tocsin_optouts{channel="'"$1"'"} //p'); echo "${n:-0}"; }
inbound_n() { curl -sf "$A/api/inbound?limit=100" | it_jq 'len(j["inbound"])'; }
VIN="$A/webhooks/vonage/inbound"

# --- Vonage inbound: unsigned, forged, stale, GET, unknown method: refused, nothing happens ---
post vg-unsigned-stop 403 -X POST "$VIN" --data 'msisdn=15550000009&to=15005550007&messageId=0B1&type=text&text=STOP'
post vg-unsigned-start 403 -X POST "$VIN" --data 'msisdn=15550000003&to=15005550007&messageId=0B2&type=text&text=START'
post vg-unsigned-help 403 -X POST "$VIN" --data 'msisdn=15550000009&to=15005550007&messageId=0B3&type=text&text=HELP'
grep -q 'sig' "$OUT/vg-unsigned-stop.out" || it_fail "403 does not say why: $(cat "$OUT/vg-unsigned-stop.out")"
FORGED=$(TOCSIN_VONAGE_SIG=not-the-secret it_vonage_form msisdn=15550000009 to=15005550007 messageId=0B4 type=text text=STOP)
post vg-forged 403 -X POST "$VIN" --data "$FORGED"
post vg-stale 403 -X POST "$VIN" --data "$(it_vonage_form -t $((NOW - 301)) msisdn=15550000009 to=15005550007 messageId=0B5 type=text text=STOP)"
post vg-future 403 -X POST "$VIN" --data "$(it_vonage_form -t $((NOW + 301)) msisdn=15550000009 to=15005550007 messageId=0B6 type=text text=STOP)"
post vg-get 405 "$VIN?$(it_vonage_form msisdn=15550000009 to=15005550007 messageId=0B7 type=text text=STOP)"
post vg-wrongmethod 403 -X POST "$VIN" --data "$(it_vonage_form -m sha256 msisdn=15550000009 to=15005550007 messageId=0B8 type=text text=STOP)"
TAMPER=$(it_vonage_form msisdn=15550000009 to=15005550007 messageId=0B9 type=text text=HELP)
post vg-tampered 403 -X POST "$VIN" --data "${TAMPER/HELP/STOP}"
post vg-nokey 403 -X POST "$A/webhooks/vonage-nokey/inbound" --data "$(it_vonage_form msisdn=15550000009 to=15005550010 messageId=0BA type=text text=STOP)"
grep -q 'signature_secret_env' "$OUT/vg-nokey.out" || it_fail "vonage-nokey 403: $(cat "$OUT/vg-nokey.out")"
sleep 1
[ "$(optouts sms)" = 0 ] || it_fail "a refused webhook opted someone out: $(optouts sms)"
[ "$(accepted)" = 0 ] || it_fail "a refused webhook sent a reply (emulator accepted $(accepted))"
[ "$(inbound_n)" = 0 ] || it_fail "a refused webhook reached the review list"

# --- signed (md5hash, and sha512 on the other vendor): accepted; the same request again: refused ---
STOP=$(it_vonage_form msisdn=15550000009 to=15005550007 messageId=0BB type=text text=STOP)
post vg-stop 200 -X POST "$VIN" --data "$STOP"
is_acc() { [ "$(accepted)" = "$1" ]; }
it_wait_until 20 is_acc 1 || it_fail "signed STOP: confirmation not sent (accepted=$(accepted))"
opt1() { [ "$(optouts sms)" = 1 ]; }
it_wait_until 20 opt1 || it_fail "signed STOP not recorded"
post vg-replay 400 -X POST "$VIN" --data "$STOP"
grep -q 'replayed' "$OUT/vg-replay.out" || it_fail "replay answer: $(cat "$OUT/vg-replay.out")"
# a START replayed would re-subscribe: the first passes, its replay does not
START=$(it_vonage_form msisdn=15550000009 to=15005550007 messageId=0BC type=text text=START)
post vg-start 200 -X POST "$VIN" --data "$START"
opt0() { [ "$(optouts sms)" = 0 ]; }
it_wait_until 20 opt0 || it_fail "signed START not recorded"
STOP2=$(it_vonage_form msisdn=15550000009 to=15005550007 messageId=0BD type=text text=STOP)
post vg-stop2 200 -X POST "$VIN" --data "$STOP2"
it_wait_until 20 opt1 || it_fail "second STOP not recorded"
post vg-start-replay 400 -X POST "$VIN" --data "$START"
sleep 1
[ "$(optouts sms)" = 1 ] || it_fail "a replayed START re-subscribed: optouts=$(optouts sms)"
post vg512 200 -X POST "$A/webhooks/vonage512/inbound" --data "$(it_vonage_form -m sha512 msisdn=15550000008 to=15005550008 messageId=0BE type=text text=hello)"
post vg512-md5 403 -X POST "$A/webhooks/vonage512/inbound" --data "$(it_vonage_form msisdn=15550000008 to=15005550008 messageId=0BF type=text text=hello)"

# --- receipts: only the vendor that carried the message, under its reference ---
VST="$A/webhooks/vonage/status"
post vg-rc-unsigned 403 -X POST "$VST" --data "msisdn=15550000003&to=15005550007&messageId=0A1&status=failed&err-code=9&client-ref=$V1"
post vg-rc-cross 403 -X POST "$VST" --data "$(it_vonage_form msisdn=15550000001 to=15005550007 messageId=SMt1 status=failed err-code=9 client-ref=$T1)"
grep -q 'did not carry' "$OUT/vg-rc-cross.out" || it_fail "cross-vendor answer: $(cat "$OUT/vg-rc-cross.out")"
post vg-rc-wrongref 403 -X POST "$VST" --data "$(it_vonage_form msisdn=15550000003 to=15005550007 messageId=0A9 status=failed err-code=9 client-ref=$V1)"
post vg-rc-open-cross 403 -X POST "$A/webhooks/vonage-open/status" --data "msisdn=15550000003&to=15005550009&messageId=0A1&status=failed&err-code=9&client-ref=$V1"
post vg-rc-ok 200 -X POST "$VST" --data "$(it_vonage_form msisdn=15550000003 to=15005550007 messageId=0A1 status=delivered err-code=0 client-ref=$V1)"
post vg-rc-open-ok 200 -X POST "$A/webhooks/vonage-open/status" --data "msisdn=15550000005&to=15005550009&messageId=0A5&status=delivered&err-code=0&client-ref=$O1"

# --- a receipt that overtakes its message's accepted record waits for it (bounded), then counts ---
E1=$(ID 16)
# (Twilio deferred it, the dispatcher failed over to Vonage: the store holds it under Twilio)
echo '{"v":1,"id":"'$E1'","campaign":"early","channel":"sms","to":"+15550000006","state":"retrying","vendor":"twilio","code":"http_503","latency_ms":40,"attempt":0,"ts_ms":1}' > "$OUT/early-q.jsonl"
"$TOCSIN_BIN" -c "$CFG" track --replay "$OUT/early-q.jsonl" > /dev/null
retrying1() { "$TOCSIN_BIN" -c "$CFG" status early --json | grep -q '"retrying":1'; }
it_wait_until 20 retrying1 || it_fail "early: retrying record not folded"
curl -s -o "$OUT/vg-rc-early.out" -w '%{http_code}' -X POST "$VST" \
  --data "$(it_vonage_form msisdn=15550000006 to=15005550007 messageId=0E1 status=delivered err-code=0 client-ref=$E1)" \
  > "$OUT/vg-rc-early.code" &
early_pid=$!
sleep 1 # the receipt waits: its message is stored under Twilio, Vonage's accepted record not yet here
kill -0 $early_pid 2>/dev/null || it_fail "early receipt answered before its accepted record: $(cat "$OUT/vg-rc-early.code") $(cat "$OUT/vg-rc-early.out")"
echo '{"v":1,"id":"'$E1'","campaign":"early","channel":"sms","to":"+15550000006","state":"accepted","vendor":"vonage","vendor_ref":"0E1","latency_ms":50,"attempt":1,"ts_ms":2}' > "$OUT/early-a.jsonl"
"$TOCSIN_BIN" -c "$CFG" track --replay "$OUT/early-a.jsonl" > /dev/null
wait $early_pid || true
[ "$(cat "$OUT/vg-rc-early.code")" = 200 ] || it_fail "early receipt: HTTP $(cat "$OUT/vg-rc-early.code"): $(cat "$OUT/vg-rc-early.out")"
delivered1() { "$TOCSIN_BIN" -c "$CFG" status early --json | grep -q '"delivered":1'; }
it_wait_until 20 delivered1 || it_fail "early receipt not applied: $("$TOCSIN_BIN" -c "$CFG" status early --json)"
grep -q "event=webhook_early_taken path=/webhooks/vonage/status" "$OUT/track.log" || it_fail "no event=webhook_early_taken"

# --- Twilio: a captured request with its idempotency token replays once only ---
twilio_sig() { python3 -c '
import sys, hmac, hashlib, base64
url = sys.argv[1]; params = sorted(a.split("=", 1) for a in sys.argv[2:])
s = url + "".join(k + v for k, v in params)
print(base64.b64encode(hmac.new(b"it-twilio-token", s.encode(), hashlib.sha1).digest()).decode())' "$@"; }
P="/webhooks/twilio/status?mid=$T1"
sig=$(twilio_sig "$PUB$P" MessageSid=SMt1 MessageStatus=delivered To=+15550000001)
tw() { post "$1" "$2" -X POST "$A$P" -H "X-Twilio-Signature: $sig" -H 'I-Twilio-Idempotency-Token: idem-1' \
  --data-urlencode MessageSid=SMt1 --data-urlencode MessageStatus=delivered --data-urlencode To=+15550000001; }
tw tw-ok 200
tw tw-replay 400
# the token is an unsigned header: the same request without it, or with another, is refused too
post tw-replay-notoken 400 -X POST "$A$P" -H "X-Twilio-Signature: $sig" \
  --data-urlencode MessageSid=SMt1 --data-urlencode MessageStatus=delivered --data-urlencode To=+15550000001
post tw-replay-newtoken 400 -X POST "$A$P" -H "X-Twilio-Signature: $sig" -H 'I-Twilio-Idempotency-Token: idem-2' \
  --data-urlencode MessageSid=SMt1 --data-urlencode MessageStatus=delivered --data-urlencode To=+15550000001

# --- SendGrid: stale or future timestamps refused; a replayed batch refused ---
sg_post() { # NAME CODE TIMESTAMP BODY
  local sig; sig=$(printf '%s%s' "$3" "$4" | openssl dgst -sha256 -sign "$OUT/sg.pem" | base64 -w0)
  post "$1" "$2" -X POST "$A/webhooks/${SGV:-sendgrid}/events" -H 'Content-Type: application/json' \
    -H "X-Twilio-Email-Event-Webhook-Signature: $sig" -H "X-Twilio-Email-Event-Webhook-Timestamp: $3" --data-binary "$4"
}
SGB='[{"email":"a@example.org","timestamp":1700000000,"event":"delivered","sg_event_id":"ev-1","sg_message_id":"xid1.filter0001.0","tocsin_id":"'$S1'"}]'
SGU='[{"email":"z@example.org","timestamp":1700000000,"event":"spamreport","sg_event_id":"ev-2","sg_message_id":"xid9.f.0"}]'
sg_post sg-stale 403 $((NOW - 301)) "$SGU"
sg_post sg-future 403 $((NOW + 400)) "$SGU"
SGV=sendgrid-nokey sg_post sg-nokey 403 $NOW "$SGU"
sg_post sg-ok 200 $NOW "$SGB"
sg_post sg-replay 400 $NOW "$SGB"
sg_post sg-spam 200 $NOW "$SGU"
sg_post sg-spam-replay 400 $((NOW + 5)) "$SGU"

# --- Mailgun: stale timestamp refused; one captured signature used three times counts once ---
mg_body() { python3 -c '
import sys, hmac, hashlib, json
ts, tok, event, rcpt, mid = sys.argv[1:6]
sig = hmac.new(b"it-mailgun-key", (ts + tok).encode(), hashlib.sha256).hexdigest()
ed = {"event": event, "recipient": rcpt, "message": {"headers": {"message-id": "m1@mg.example.org"}}}
if mid: ed["user-variables"] = {"tocsin_id": mid}
print(json.dumps({"signature": {"timestamp": ts, "token": tok, "signature": sig}, "event-data": ed}))' "$@"; }
MG="$A/webhooks/mailgun/events"
post mg-old 403 -X POST "$MG" -H 'Content-Type: application/json' --data-binary "$(mg_body 1600000000 tok-old complained c@example.org '')"
post mg-stale 403 -X POST "$MG" -H 'Content-Type: application/json' --data-binary "$(mg_body $((NOW - 301)) tok-stale complained c@example.org '')"
C1=$(mg_body $NOW tok-c1 complained c@example.org '')
post mg-c1 200 -X POST "$MG" -H 'Content-Type: application/json' --data-binary "$C1"
post mg-c1-again 400 -X POST "$MG" -H 'Content-Type: application/json' --data-binary "$C1"
post mg-c1-third 400 -X POST "$MG" -H 'Content-Type: application/json' --data-binary "$C1"
MD=$(mg_body $NOW tok-d1 delivered b@example.org "$M1")
post mg-ok 200 -X POST "$MG" -H 'Content-Type: application/json' --data-binary "$MD"
email2() { [ "$(optouts email)" = 2 ]; }   # SendGrid spamreport + Mailgun complained, once each
it_wait_until 20 email2 || it_fail "email opt-outs: $(optouts email), want 2"

# every state as the signed, matching receipts left it (T1 delivered by Twilio once)
want='{"campaign":"fg","total":5,"states":{"delivered":5},"vendors":{"mailgun":{"delivered":1},"sendgrid":{"delivered":1},"twilio":{"delivered":1},"vonage":{"delivered":1},"vonage-open":{"delivered":1}}}'
folded() { [ "$("$TOCSIN_BIN" -c "$CFG" status fg --json)" = "$want" ]; }
it_wait_until 20 folded || it_fail "states: $("$TOCSIN_BIN" -c "$CFG" status fg --json)"

# counters: /api/vendors and /metrics
curl -sf "$A/api/vendors" > "$OUT/vendors.json"
python3 - "$OUT/vendors.json" <<'PY' || it_fail "api/vendors: $(cat "$OUT/vendors.json")"
import json, sys
v = {x["name"]: x for x in json.load(open(sys.argv[1]))["vendors"]}
assert v["vonage"]["webhook_auth"] == "signed" and v["vonage-open"]["webhook_auth"] == "none", v
assert v["sendgrid-nokey"]["webhook_auth"] == "unverifiable" and v["vonage-nokey"]["webhook_auth"] == "unverifiable", v
w = v["vonage"]["webhooks"]
assert w["mismatched"] == 2 and w["replayed"] == 2, w
assert v["vonage-open"]["webhooks"]["mismatched"] == 1, v["vonage-open"]
assert v["twilio"]["webhooks"]["replayed"] == 3 and v["mailgun"]["webhooks"]["replayed"] == 2, v
assert v["sendgrid"]["webhooks"]["replayed"] == 2 and v["sendgrid"]["webhooks"]["forbidden"] == 2, v
PY
curl -sf "$A/metrics" > "$OUT/metrics.txt"
for l in 'tocsin_webhook_events_refused_total{vendor="vonage",reason="mismatched"} 2' \
         'tocsin_webhook_events_refused_total{vendor="mailgun",reason="replayed"} 2' \
         'tocsin_webhook_auth{vendor="vonage-open",auth="none"} 1'; do
  grep -qxF "$l" "$OUT/metrics.txt" || it_fail "metrics: missing $l"
done
[ "$(accepted)" = 3 ] || it_fail "emulator accepted $(accepted) replies, want 3 (STOP, START, STOP confirmations)"

# a control byte in the path is logged escaped, never as a line of its own
post log-inject 403 -X POST "$A/webhooks/vonage/inbound%0Alvl=error%20comp=track%20event=forged" --data 'msisdn=1&text=x'
grep -q '^lvl=error comp=track event=forged' "$OUT/track.log" && it_fail "a forged log line was written"
grep -q 'inbound\\x0alvl=error comp=track event=forged' "$OUT/track.log" || it_fail "the escaped path is not in the log"

# the replay memory survives a restart: the captured Mailgun body is still refused
it_stop "$PID_track" || it_fail "track did not stop cleanly"
[ "$(stat -c %a "$VAR/tocsin.db")" = 600 ] || it_fail "tocsin.db mode $(stat -c %a "$VAR/tocsin.db"), want 600"
[ "$(stat -c %a "$VAR/tocsin.db-webhooks")" = 600 ] || it_fail "tocsin.db-webhooks mode, want 600"
it_start_track
A=http://$TRACK
post mg-after-restart 400 -X POST "$A/webhooks/mailgun/events" -H 'Content-Type: application/json' --data-binary "$C1"
post vg-after-restart 400 -X POST "$A/webhooks/vonage/inbound" --data "$STOP"
sleep 1
[ "$(optouts email)" = 2 ] || it_fail "email opt-outs changed after restart: $(optouts email)"
[ "$(accepted)" = 3 ] || it_fail "a reply was sent after the restart: $(accepted)"
it_stop "$PID_track" || it_fail "track did not stop cleanly"
echo "ok: 0306-track-webhook-forgery"
