#!/usr/bin/env bash
# 0604-sim-auth-ticks.sh -- the emulator's two pieces `tocsin drill` needs: outage "auth" answers
# every request as the vendor answers a wrong secret, with the right credentials (Twilio 401 code
# 20003 with WWW-Authenticate, Vonage 200 status 4, SendGrid 401, Mailgun 401 "Forbidden"), and
# "none" takes them again; GET /_sim/ticks counts requests and acceptances per 50 ms tick, and
# /_sim/reset empties it. A bad outage name is refused naming the choices.
source "$(dirname "$0")/lib.sh"
it_setup 0604-sim-auth-ticks
export TOCSIN_VG_SECRET=it-vg-secret TOCSIN_SG_KEY=SG.it-key TOCSIN_MG_KEY=key-it-mg
it_write_config '"vendors":[
 {"name":"twilio","kind":"twilio","base_url":"http://127.0.0.1:1","account":"ACit","secret_env":"TOCSIN_TWILIO_TOKEN","senders":{"main":"+15005550006"}},
 {"name":"vonage","kind":"vonage","base_url":"http://127.0.0.1:1","account":"vgkey","secret_env":"TOCSIN_VG_SECRET","senders":{"main":"+15005550007"}},
 {"name":"sendgrid","kind":"sendgrid","base_url":"http://127.0.0.1:1","account":"-","secret_env":"TOCSIN_SG_KEY","senders":{"main":"news@example.org"}},
 {"name":"mailgun","kind":"mailgun","base_url":"http://127.0.0.1:1","account":"mg.example.org","secret_env":"TOCSIN_MG_KEY","senders":{"main":"news@mg.example.org"}}]'
it_start_sim
send() { # VENDOR: one send with the right credentials; prints "<status> <body>" and headers to $OUT/h
  case $1 in
    twilio) curl -s -D "$OUT/h" -o "$OUT/b" -w '%{http_code}' -u "ACit:$TOCSIN_TWILIO_TOKEN" --data-urlencode To=+15551234567 \
              --data-urlencode From=+15005550006 --data-urlencode Body=hi "http://$SIM/2010-04-01/Accounts/ACit/Messages.json" ;;
    vonage) curl -s -D "$OUT/h" -o "$OUT/b" -w '%{http_code}' --data-urlencode api_key=vgkey --data-urlencode "api_secret=$TOCSIN_VG_SECRET" \
              --data-urlencode to=15551234567 --data-urlencode from=15005550007 --data-urlencode text=hi "http://$SIM/sms/json" ;;
    sendgrid) curl -s -D "$OUT/h" -o "$OUT/b" -w '%{http_code}' -H "Authorization: Bearer $TOCSIN_SG_KEY" -H 'Content-Type: application/json' \
              -d '{"personalizations":[{"to":[{"email":"a@example.org"}]}],"from":{"email":"news@example.org"},"subject":"s","content":[{"type":"text/plain","value":"v"}]}' \
              "http://$SIM/v3/mail/send" ;;
    mailgun) curl -s -D "$OUT/h" -o "$OUT/b" -w '%{http_code}' -u "api:$TOCSIN_MG_KEY" -F from=news@mg.example.org -F to=a@example.org \
              -F subject=s -F text=v "http://$SIM/v3/mg.example.org/messages" ;;
  esac
  echo " $(cat "$OUT/b")"
}
for v in twilio vonage sendgrid mailgun; do it_sim_fault "{\"vendor\":\"$v\",\"outage\":\"auth\"}"; done
[ "$(send twilio)" = '401 {"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}' ] || it_fail "twilio: $(send twilio)"
grep -qi '^WWW-Authenticate: Basic realm="Twilio API"' "$OUT/h" || it_fail "twilio: no WWW-Authenticate"
[ "$(send vonage)" = '200 {"message-count":"1","messages":[{"status":"4","error-text":"Bad Credentials"}]}' ] || it_fail "vonage: $(send vonage)"
[ "$(send sendgrid)" = '401 {"errors":[{"field":null,"message":"The provided authorization grant is invalid, expired, or revoked","help":null}]}' ] || it_fail "sendgrid: $(send sendgrid)"
[ "$(send mailgun)" = '401 Forbidden' ] || it_fail "mailgun: $(send mailgun)"
curl -sf "http://$SIM/_sim/config" | it_jq 'j["vendors"]["twilio"]["outage"]' | grep -qx auth || it_fail "config does not show auth"

# taken again: one accepted each; ticks: requests 2 (the refused and the accepted), accepted 1
for v in twilio vonage sendgrid mailgun; do it_sim_fault "{\"vendor\":\"$v\",\"outage\":\"none\"}"; done
[[ "$(send twilio)" == 201* ]] && [[ "$(send vonage)" == *'"status":"0"'* ]] || it_fail "not taken again: $(send twilio) $(send vonage)"
[[ "$(send sendgrid)" == 202* ]] && [[ "$(send mailgun)" == 200* ]] || it_fail "email not taken again"
curl -sf "http://$SIM/_sim/ticks" > "$OUT/ticks.json"
python3 - "$OUT/ticks.json" <<'PY' || it_fail "ticks: $(cat "$OUT/ticks.json")"
import json, sys, time
t = json.load(open(sys.argv[1]))
assert t["tick_ms"] == 50, t
now = time.time() * 1000 // 50
for v in ("twilio", "vonage", "sendgrid", "mailgun"):
    rows = t["vendors"][v]
    assert all(now - 20 * 60 <= r[0] <= now + 1 for r in rows), (v, rows)
    # refused once, then accepted once: two requests, one acceptance
    assert (sum(r[1] for r in rows), sum(r[2] for r in rows)) == (2, 1), (v, rows)
print("ticks: per vendor requests and acceptances at 50 ms, as sent")
PY
curl -sf -X POST "http://$SIM/_sim/reset" > /dev/null
[ "$(curl -sf "http://$SIM/_sim/ticks")" = '{"tick_ms":50,"vendors":{"twilio":[],"vonage":[],"sendgrid":[],"mailgun":[]}}' ] || it_fail "reset left ticks"
out=$(curl -s -X POST -H 'Content-Type: application/json' -d '{"outage":"revoked"}' "http://$SIM/_sim/config")
echo "$out" | grep -qF 'outage\" must be one of none, refuse, reset, 503, hang, auth' || it_fail "bad outage: $out"
echo "ok: 0604-sim-auth-ticks"
