#!/usr/bin/env bash
# 0303-track-webhooks.sh -- vendor webhooks signed and tampered for Twilio, Vonage, SendGrid and
# Mailgun; inbound STOP (one confirmation) / HELP / free text; RFC 8058 one-click unsubscribe.
source "$(dirname "$0")/lib.sh"
it_setup 0303-track-webhooks
export TOCSIN_VONAGE_SECRET=it-vonage-secret TOCSIN_VONAGE_SIG=it-vonage-signature-secret \
       TOCSIN_SENDGRID_KEY=it-sendgrid-key \
       TOCSIN_MAILGUN_KEY=it-mailgun-key TOCSIN_UNSUB_KEY=it-unsubscribe-key-0123456789
PUB="http://tracker.example.org"
# an ECDSA P-256 key pair for the SendGrid event webhook
python3 - "$OUT" <<'PY'
import sys, base64
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import serialization
k = ec.generate_private_key(ec.SECP256R1())
open(sys.argv[1] + "/sg.pem", "wb").write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
open(sys.argv[1] + "/sg.pub", "w").write(base64.b64encode(k.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode())
PY
it_write_config '"vendors":[
  {"name":"twilio","kind":"twilio","channel":"sms","base_url":"http://127.0.0.1:9","account":"ACit","secret_env":"TOCSIN_TWILIO_TOKEN","senders":{"main":{"from":"+15005550006"}}},
  {"name":"vonage","kind":"vonage","channel":"sms","base_url":"http://127.0.0.1:9","account":"key","secret_env":"TOCSIN_VONAGE_SECRET","signature_secret_env":"TOCSIN_VONAGE_SIG","signature_method":"sha256","senders":{"main":{"from":"15005550007"}}},
  {"name":"sendgrid","kind":"sendgrid","channel":"email","base_url":"http://127.0.0.1:9","secret_env":"TOCSIN_SENDGRID_KEY","senders":{"main":{"from":"news@example.org"}},"webhook_public_key":"'"$(cat "$OUT/sg.pub")"'"},
  {"name":"mailgun","kind":"mailgun","channel":"email","base_url":"http://127.0.0.1:9","account":"mg.example.org","secret_env":"TOCSIN_MAILGUN_KEY","senders":{"main":{"from":"news@mg.example.org"}}}],
  "routes":{"sms":{"vendors":["twilio","vonage"]},"email":{"vendors":["sendgrid","mailgun"]}},
  "tracker":{"public_url":"'"$PUB"'"},
  "compliance":{"help_reply":"Rally alerts: msg freq varies. Msg&data rates may apply. Reply STOP to stop. help@example.org"}'
it_start_broker
# the tracker's webhook clock (tests only): the signed timestamps below are fresh at this time
export TOCSIN_TEST_NOW_S=1700000001
it_bg track track --listen 127.0.0.1:0
it_wait_file "$VAR/run/track.addr" 20
A=http://$(cat "$VAR/run/track.addr")

ID() { printf '%032x' "$1"; }
T1=$(ID 1) T2=$(ID 2) V1=$(ID 3) S1=$(ID 4) M1=$(ID 5)
python3 - "$OUT" "$T1" "$T2" "$V1" "$S1" "$M1" <<'PY'
import json, sys
out, t1, t2, v1, s1, m1 = sys.argv[1:]
L = []
for mid, ch, to, v in [(t1,"sms","+15550000001","twilio"),(t2,"sms","+15550000002","twilio"),(v1,"sms","+15550000003","vonage"),
                       (s1,"email","a@example.org","sendgrid"),(m1,"email","b@example.org","mailgun")]:
    L.append(json.dumps({"v":1,"id":mid,"campaign":"wh","channel":ch,"to":to,"state":"accepted","vendor":v,"latency_ms":50,"attempt":0,"ts_ms":1}))
open(out + "/events.jsonl", "w").write("\n".join(L) + "\n")
PY
"$TOCSIN_BIN" -c "$CFG" track --replay "$OUT/events.jsonl" > /dev/null
has5() { "$TOCSIN_BIN" -c "$CFG" status wh --json | grep -q '"total":5'; }
it_wait_until 20 has5 || it_fail "accepted events not folded"

# signing helpers: python prints curl arguments
post() { # post NAME EXPECTED_CODE CURL-ARGS... ; body saved in $OUT/NAME.out
  local name=$1 want=$2; shift 2
  local code; code=$(curl -s -o "$OUT/$name.out" -w '%{http_code}' "$@")
  [ "$code" = "$want" ] || it_fail "$name: HTTP $code, want $want: $(cat "$OUT/$name.out")"
}
twilio_sig() { # URL then name=value pairs
  python3 -c '
import sys, hmac, hashlib, base64
url = sys.argv[1]; params = sorted(a.split("=", 1) for a in sys.argv[2:])
s = url + "".join(k + v for k, v in params)
print(base64.b64encode(hmac.new(b"it-twilio-token", s.encode(), hashlib.sha1).digest()).decode())' "$@"; }

# Twilio status callback: signed -> 200 and delivered; tampered and unsigned -> 403, nothing recorded
P="/webhooks/twilio/status?mid=$T1"
sig=$(twilio_sig "$PUB$P" MessageSid=SM1 MessageStatus=delivered To=+15550000001 AccountSid=ACit)
post tw-ok 200 -X POST "$A$P" -H "X-Twilio-Signature: $sig" --data-urlencode MessageSid=SM1 --data-urlencode MessageStatus=delivered --data-urlencode To=+15550000001 --data-urlencode AccountSid=ACit
P2="/webhooks/twilio/status?mid=$T2"
sig=$(twilio_sig "$PUB$P2" MessageSid=SM2 MessageStatus=delivered To=+15550000002 AccountSid=ACit)
post tw-tampered 403 -X POST "$A$P2" -H "X-Twilio-Signature: $sig" --data-urlencode MessageSid=SM2 --data-urlencode MessageStatus=undelivered --data-urlencode To=+15550000002 --data-urlencode AccountSid=ACit
post tw-unsigned 403 -X POST "$A$P2" --data-urlencode MessageSid=SM2 --data-urlencode MessageStatus=undelivered
post unknown-vendor 404 -X POST "$A/webhooks/nosuch/status" -d x=1

# Vonage receipt, signed (HMAC-SHA256 over the sorted parameters, with the timestamp)
VQ=$(python3 -c '
import sys, hmac, hashlib, urllib.parse
p = dict(a.split("=", 1) for a in sys.argv[1:])
s = "".join("&%s=%s" % (k, v.replace("&", "_").replace("=", "_")) for k, v in sorted(p.items()))
p["sig"] = hmac.new(b"it-vonage-signature-secret", s.encode(), hashlib.sha256).hexdigest()
print(urllib.parse.urlencode(p))' msisdn=15550000003 to=15005550007 messageId=0A1 status=delivered err-code=0 client-ref=$V1 timestamp=1700000000)
post vg-ok 200 "$A/webhooks/vonage/status?$VQ"

# SendGrid event webhook: ECDSA over timestamp + body
sg_post() { # NAME CODE BODY SIGNED-BODY
  local ts=1700000000 sig
  sig=$(printf '%s%s' "$ts" "$4" | openssl dgst -sha256 -sign "$OUT/sg.pem" | base64 -w0)
  post "$1" "$2" -X POST "$A/webhooks/sendgrid/events" -H 'Content-Type: application/json' \
    -H "X-Twilio-Email-Event-Webhook-Signature: $sig" -H "X-Twilio-Email-Event-Webhook-Timestamp: $ts" --data-binary "$3"
}
SGB='[{"email":"a@example.org","timestamp":1700000001,"event":"delivered","sg_event_id":"ev1","sg_message_id":"x.1","tocsin_id":"'$S1'"}]'
sg_post sg-tampered 403 "${SGB/delivered/bounce}" "$SGB"
sg_post sg-ok 200 "$SGB" "$SGB"

# Mailgun: hex HMAC-SHA256(key, timestamp + token) inside the body
mg_body() { python3 -c '
import sys, hmac, hashlib, json
key, mid, event, forge = sys.argv[1:5]
ts, tok = "1700000002", "tok123"
sig = hmac.new(key.encode(), (ts + tok).encode(), hashlib.sha256).hexdigest()
if forge == "1": sig = sig[:-1] + ("0" if sig[-1] != "0" else "1")
print(json.dumps({"signature": {"timestamp": ts, "token": tok, "signature": sig},
  "event-data": {"event": event, "recipient": "b@example.org", "user-variables": {"tocsin_id": mid}}}))' "$@"; }
post mg-forged 403 -X POST "$A/webhooks/mailgun/events" -H 'Content-Type: application/json' --data-binary "$(mg_body it-mailgun-key "$M1" failed 1)"
post mg-ok 200 -X POST "$A/webhooks/mailgun/events" -H 'Content-Type: application/json' --data-binary "$(mg_body it-mailgun-key "$M1" delivered 0)"

want='{"campaign":"wh","total":5,"states":{"accepted":1,"delivered":4},"vendors":{"mailgun":{"delivered":1},"sendgrid":{"delivered":1},"twilio":{"accepted":1,"delivered":1},"vonage":{"delivered":1}}}'
folded() { [ "$("$TOCSIN_BIN" -c "$CFG" status wh --json)" = "$want" ]; }
it_wait_until 20 folded || it_fail "receipts: got $("$TOCSIN_BIN" -c "$CFG" status wh --json)"

# Inbound SMS: STOP -> opt-out + one confirmation; STOP again -> no second reply; HELP -> help text;
# free text -> kept for review.
inbound() { # NAME BODY (each message its own MessageSid, as Twilio sends them)
  local P="/webhooks/twilio/inbound" sig
  sig=$(twilio_sig "$PUB$P" "From=+15550009999" "To=+15005550006" "Body=$2" MessageSid=SMin-$1 AccountSid=ACit)
  post "$1" 200 -X POST "$A$P" -H "X-Twilio-Signature: $sig" --data-urlencode From=+15550009999 --data-urlencode To=+15005550006 --data-urlencode "Body=$2" --data-urlencode MessageSid=SMin-$1 --data-urlencode AccountSid=ACit
}
inbound stop1 " Stop "
grep -q '<Message>You are unsubscribed' "$OUT/stop1.out" || it_fail "STOP confirmation: $(cat "$OUT/stop1.out")"
optout_folded() { curl -sf "$A/metrics" | grep -qx 'tocsin_optouts{channel="sms"} 1'; }
it_wait_until 20 optout_folded || it_fail "opt-out not recorded"
inbound stop2 "STOP"
! grep -q '<Message>' "$OUT/stop2.out" || it_fail "second STOP got a second confirmation"
inbound help "help"
grep -q '<Message>Rally alerts: msg freq varies. Msg&amp;data rates may apply. Reply STOP to stop. help@example.org</Message>' "$OUT/help.out" || it_fail "HELP reply: $(cat "$OUT/help.out")"
inbound free "please stop texting me"
! grep -q '<Message>' "$OUT/free.out" || it_fail "free text got an automatic reply"
# The review list is written after the answer (off the webhook's path) and the API answer is
# cached for up to 250 ms: wait for it rather than read it once.
review_ok() {
  curl -sf "$A/api/inbound" | python3 -c '
import json,sys; i=json.load(sys.stdin)["inbound"]
assert [x["kind"] for x in i]==["other","help","stop","stop"], i
assert i[0]["body"]=="please stop texting me" and i[0]["from"]=="+15550009999", i[0]'
}
it_wait_until 10 review_ok || { review_ok; it_fail "review list"; }

# counters: forbidden webhooks counted per vendor
curl -sf "$A/metrics" > "$OUT/metrics.txt"
for l in 'tocsin_webhooks_total{vendor="twilio",result="forbidden"} 2' 'tocsin_webhooks_total{vendor="sendgrid",result="forbidden"} 1' \
         'tocsin_webhooks_total{vendor="mailgun",result="forbidden"} 1' 'tocsin_webhooks_total{vendor="vonage",result="ok"} 1'; do
  grep -qxF "$l" "$OUT/metrics.txt" || it_fail "metrics: missing $l"
done

# RFC 8058: GET shows a page and does not unsubscribe; POST unsubscribes; a forged token is refused
TOK=$(python3 -c '
import hmac, hashlib, base64
raw = bytes([1, 2]) + b"wh" + b"c@example.org"
raw += hmac.new(b"it-unsubscribe-key-0123456789", raw, hashlib.sha256).digest()
print(base64.urlsafe_b64encode(raw).decode().rstrip("="))')
post u-get 200 "$A/u/$TOK"
grep -q '<form method="post">' "$OUT/u-get.out" || it_fail "landing page"
sleep 1
curl -sf "$A/metrics" | grep -qx 'tocsin_optouts{channel="email"} 1' && it_fail "GET unsubscribed"
post u-forged 400 -X POST "$A/u/${TOK%?}A" -d List-Unsubscribe=One-Click
post u-post 200 -X POST "$A/u/$TOK" -d List-Unsubscribe=One-Click
grep -q 'You are unsubscribed' "$OUT/u-post.out" || it_fail "unsubscribe page"
email_optout() { curl -sf "$A/metrics" | grep -qx 'tocsin_optouts{channel="email"} 1'; }
it_wait_until 20 email_optout || it_fail "one-click opt-out not recorded"
curl -sf "$A/api/campaigns/wh" | grep -q '"optouts":1' || it_fail "campaign opt-out count"
# broker loss: a receipt whose record the broker does not acknowledge within the wait (5 s) is
# answered 503 and nothing of it is kept (its replay key let go of); the vendor's retry once the
# broker is back is taken (200), applied once, and its repeat is then refused as a replay
delivered() { it_status_field wh 'j["states"].get("delivered", 0)'; }
d0=$(delivered)
tw_sm2() { post "$1" "$2" -X POST "$A$P2" -H "X-Twilio-Signature: $sig" --data-urlencode MessageSid=SM2 --data-urlencode MessageStatus=delivered --data-urlencode To=+15550000002 --data-urlencode AccountSid=ACit; }
sig=$(twilio_sig "$PUB$P2" MessageSid=SM2 MessageStatus=delivered To=+15550000002 AccountSid=ACit)
kill -STOP "$PID_broker"
tw_sm2 tw-broker-gone 503
kill -CONT "$PID_broker"
grep -q 'did not acknowledge' "$OUT/tw-broker-gone.out" || it_fail "broker loss: $(cat "$OUT/tw-broker-gone.out")"
grep -q 'event=webhook_unacked' "$OUT/track.log" || it_fail "broker loss not logged"
tw_sm2 tw-broker-back 200
tw_sm2 tw-broker-replay 400
one_more() { [ "$(delivered)" = $((d0 + 1)) ]; }
it_wait_until 20 one_more || it_fail "broker loss: delivered $(delivered), want $((d0 + 1))"
it_stop "$PID_track" || it_fail "track did not stop cleanly"
echo "ok: 0303-track-webhooks"
