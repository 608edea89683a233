#!/usr/bin/env bash
# 0401-vendor-sim.sh -- the emulator binary: run files, the four APIs' exact answers, auth errors,
# stats/reset/config control API, bad options, clean stop on SIGTERM.
source "$(dirname "$0")/lib.sh"
it_setup 0401-vendor-sim
export TOCSIN_VG_SECRET=it-vg-secret TOCSIN_SG_KEY=SG.it-key TOCSIN_MG_KEY=key-it-mg
it_write_config '"vendors":[
 {"name":"twilio","kind":"twilio","base_url":"http://127.0.0.1:1","account":"ACit","secret_env":"TOCSIN_TWILIO_TOKEN","senders":{"main":"+15005550006"}},
 {"name":"twilio-b","kind":"twilio","base_url":"http://127.0.0.1:1","account":"ACitb","secret_env":"TOCSIN_TWILIO_TOKEN","senders":{"main":"+15005550008"}},
 {"name":"vonage","kind":"vonage","base_url":"http://127.0.0.1:1","account":"vgkey","secret_env":"TOCSIN_VG_SECRET","senders":{"main":"+15005550007"}},
 {"name":"sendgrid","kind":"sendgrid","base_url":"http://127.0.0.1:1","account":"-","secret_env":"TOCSIN_SG_KEY","senders":{"main":"news@example.org"}},
 {"name":"mailgun","kind":"mailgun","base_url":"http://127.0.0.1:1","account":"mg.example.org","secret_env":"TOCSIN_MG_KEY","senders":{"main":"news@mg.example.org"}}]'

# --help answers; bad options are usage errors with one clear line
"$TOCSIN_BIN" -c "$CFG" vendor-sim --help | grep -q '/_sim/stats' || it_fail "--help lacks the control API"
set +e
msg=$("$TOCSIN_BIN" -c "$CFG" vendor-sim --listen 0.0.0.0:80 2>&1); rc=$?
set -e
[ $rc -eq 2 ] || it_fail "--listen 0.0.0.0 exited $rc, want 2"
echo "$msg" | grep -q '127.0.0.1 only' || it_fail "no clear error for a public address: $msg"
set +e; "$TOCSIN_BIN" -c "$CFG" vendor-sim --listen nonsense > /dev/null 2>&1; rc=$?; set -e
[ $rc -eq 2 ] || it_fail "--listen nonsense exited $rc, want 2"

it_bg sim vendor-sim --listen 127.0.0.1:0
it_wait_file "$VAR/run/vendor-sim.addr"
A=$(cat "$VAR/run/vendor-sim.addr")
[[ $A =~ ^127\.0\.0\.1:[0-9]+$ ]] || it_fail "addr file holds '$A'"
[ "$(cat "$VAR/run/vendor-sim.pid")" = "$PID_sim" ] || it_fail "pid file does not hold the emulator's pid"
grep -q "event=vendor_sim_started addr=$A" "$OUT/sim.log" || it_fail "address not logged"

TW=http://$A/2010-04-01/Accounts/ACit/Messages.json
MID=0123456789abcdef0123456789abcdef
tw() { curl -s -u "ACit:$TOCSIN_TWILIO_TOKEN" "$@" -w '\n%{http_code}' "$TW"; }
out=$(tw --data-urlencode To=+15551234567 --data-urlencode From=+15005550006 --data-urlencode "Body=Rally at 7" \
      --data-urlencode "StatusCallback=http://127.0.0.1:9/webhooks/twilio/status?mid=$MID")
[ "$(echo "$out" | tail -1)" = 201 ] || it_fail "Twilio send: $out"
echo "$out" | head -1 | python3 -c '
import json,sys; d=json.load(sys.stdin)
assert d["sid"].startswith("SM") and len(d["sid"]) == 34, d
assert d["status"] == "queued" and d["to"] == "+15551234567" and d["from"] == "+15005550006", d
assert d["body"] == "Rally at 7" and d["num_segments"] == "1" and d["error_code"] is None, d
assert d["account_sid"] == "ACit" and d["uri"] == "/2010-04-01/Accounts/ACit/Messages/%s.json" % d["sid"], d
' || it_fail "Twilio 201 body shape"
tw --data-urlencode To=+15551234567 --data-urlencode From=+15005550006 -d Body=again \
   --data-urlencode "StatusCallback=http://127.0.0.1:9/webhooks/twilio/status?mid=$MID" > /dev/null

# wrong auth -> Twilio's own 401; a missing field -> its 400
out=$(curl -s -u ACit:wrong -d To=x -w '\n%{http_code}' "$TW")
[ "$out" = '{"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}
401' ] || it_fail "wrong auth answer: $out"
out=$(tw --data-urlencode From=+15005550006 -d Body=x)
[ "$out" = '{"code":21604,"message":"A '"'"'To'"'"' phone number is required.","more_info":"https://www.twilio.com/docs/errors/21604","status":400}
400' ] || it_fail "missing To answer: $out"
out=$(tw --data-urlencode To=+15005550004 --data-urlencode From=+15005550006 -d Body=x | head -1)
echo "$out" | grep -q '"code":21610' || it_fail "opted-out magic number: $out"

# a sender the account does not own: Twilio 21606, Vonage status 15, SendGrid 403
out=$(tw --data-urlencode To=+15551234567 --data-urlencode From=+15009999999 -d Body=x | head -1)
echo "$out" | grep -q '"code":21606' || it_fail "unowned From: $out"
out=$(curl -s -d api_key=vgkey -d api_secret=$TOCSIN_VG_SECRET -d from=15009999999 -d to=15551234567 -d text=hi "http://$A/sms/json")
[ "$out" = '{"message-count":"1","messages":[{"status":"15","error-text":"Illegal Sender Address - rejected"}]}' ] || it_fail "Vonage unowned from: $out"
code=$(curl -s -o "$OUT/sg403.body" -w '%{http_code}' -H "Authorization: Bearer $TOCSIN_SG_KEY" -H 'Content-Type: application/json' \
  -d '{"personalizations":[{"to":[{"email":"a@example.org"}]}],"from":{"email":"other@example.org"},"subject":"s","content":[{"type":"text/plain","value":"v"}]}' "http://$A/v3/mail/send")
[ "$code" = 403 ] && grep -q 'verified Sender Identity' "$OUT/sg403.body" || it_fail "SendGrid unverified sender: $code"

# Vonage: always 200 with a status per part
out=$(curl -s -d api_key=vgkey -d api_secret=$TOCSIN_VG_SECRET -d from=15005550007 -d to=15551234567 \
      -d text=hi -d client-ref=$MID "http://$A/sms/json")
echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); m=d["messages"][0]; assert d["message-count"]=="1" and m["status"]=="0" and m["client-ref"]=="'$MID'" and m["message-id"], d' \
  || it_fail "Vonage send: $out"
out=$(curl -s -G -d api_key=vgkey -d api_secret=$TOCSIN_VG_SECRET -d from=15005550007 -d to=15551234568 -d text=hi "http://$A/sms/json")
echo "$out" | grep -q '"status":"0"' || it_fail "Vonage GET send: $out"
out=$(curl -s -d api_key=vgkey -d api_secret=nope -d from=1 -d to=15551234567 -d text=hi "http://$A/sms/json")
[ "$out" = '{"message-count":"1","messages":[{"status":"4","error-text":"Bad Credentials"}]}' ] || it_fail "Vonage bad creds: $out"

# SendGrid: 202, empty body, X-Message-Id
hdrs=$(curl -s -D - -o "$OUT/sg.body" -H "Authorization: Bearer $TOCSIN_SG_KEY" -H 'Content-Type: application/json' \
  -d '{"personalizations":[{"to":[{"email":"a@example.org"}],"custom_args":{"tocsin_id":"'$MID'"}},{"to":[{"email":"b@example.org"}],"custom_args":{"tocsin_id":"fedcba9876543210fedcba9876543210"}}],"from":{"email":"news@example.org"},"subject":"s","content":[{"type":"text/plain","value":"v"}]}' \
  "http://$A/v3/mail/send")
echo "$hdrs" | head -1 | grep -q ' 202' || it_fail "SendGrid status: $hdrs"
echo "$hdrs" | grep -qi '^X-Message-Id: ' || it_fail "SendGrid X-Message-Id missing"
[ ! -s "$OUT/sg.body" ] || it_fail "SendGrid 202 body not empty"
code=$(curl -s -o "$OUT/sg401.body" -w '%{http_code}' -H 'Authorization: Bearer nope' -d '{}' "http://$A/v3/mail/send")
[ "$code" = 401 ] && grep -q 'authorization grant is invalid' "$OUT/sg401.body" || it_fail "SendGrid bad key: $code"

# Mailgun: multipart batch with recipient-variables
out=$(curl -s -u "api:$TOCSIN_MG_KEY" -F from=news@mg.example.org -F to=a@example.org -F to=b@example.org \
  -F subject=s -F text=t -F 'v:tocsin_id=%recipient.tocsin_id%' \
  -F 'recipient-variables={"a@example.org":{"tocsin_id":"11111111111111111111111111111111"},"b@example.org":{"tocsin_id":"22222222222222222222222222222222"}}' \
  -w '\n%{http_code}' "http://$A/v3/mg.example.org/messages")
[ "$(echo "$out" | tail -1)" = 200 ] || it_fail "Mailgun send: $out"
echo "$out" | head -1 | grep -Eq '^\{"id":"<[0-9]{14}\.1\.[0-9a-f]+@mg\.example\.org>","message":"Queued\. Thank you\."\}$' || it_fail "Mailgun answer: $out"
out=$(curl -s -u api:wrong -F from=x -w ' %{http_code}' "http://$A/v3/mg.example.org/messages")
[ "$out" = "Forbidden 401" ] || it_fail "Mailgun bad key: $out"

# stats: exact shape, duplicates listed, one entry per configured vendor
curl -s "http://$A/_sim/stats" > "$OUT/stats.json"
python3 - "$OUT/stats.json" <<'PY' || it_fail "stats: $(cat "$OUT/stats.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert list(d) == ["vendors"] and list(d["vendors"]) == ["twilio", "twilio-b", "vonage", "sendgrid", "mailgun"], d
keys = ["requests", "accepted", "unique_ids", "duplicate_count", "duplicate_ids", "per_second"]
for v in d["vendors"].values():
    assert list(v) == keys, v
    # per_second: [unix second, accepted] pairs, ascending, adding up to accepted
    ps = v.pop("per_second")
    assert sum(c for _, c in ps) == v["accepted"] and [s for s, _ in ps] == sorted(s for s, _ in ps), ps
t = d["vendors"]["twilio"]
assert t == {"requests": 6, "accepted": 2, "unique_ids": 1, "duplicate_count": 1,
             "duplicate_ids": ["0123456789abcdef0123456789abcdef"]}, t
assert d["vendors"]["twilio-b"]["requests"] == 0
assert d["vendors"]["vonage"] == {"requests": 4, "accepted": 2, "unique_ids": 2, "duplicate_count": 0, "duplicate_ids": []}, d
assert d["vendors"]["sendgrid"]["accepted"] == 2 and d["vendors"]["sendgrid"]["unique_ids"] == 2, d
assert d["vendors"]["mailgun"]["accepted"] == 2 and d["vendors"]["mailgun"]["unique_ids"] == 2, d
PY

# faults at run time: 503 outage on one vendor only, then back
curl -s -X POST -d '{"vendor":"twilio","outage":"503"}' "http://$A/_sim/config" > /dev/null
code=$(tw --data-urlencode To=+15551234567 --data-urlencode From=+15005550006 -d Body=x | tail -1)
[ "$code" = 503 ] || it_fail "outage 503 gave $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -u ACit:wrong -d To=x "$TW")
[ "$code" = 503 ] || it_fail "an outage answers before credentials are checked, got $code"
out=$(curl -s -d api_key=vgkey -d api_secret=$TOCSIN_VG_SECRET -d from=15005550007 -d to=15551234567 -d text=hi "http://$A/sms/json")
echo "$out" | grep -q '"status":"0"' || it_fail "the outage leaked to vonage: $out"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{"vendor":"twilio","outage":"sideways"}' "http://$A/_sim/config")
[ "$code" = 400 ] || it_fail "bad outage name gave $code"
curl -s -X POST -d '{"vendor":"twilio","outage":"none"}' "http://$A/_sim/config" > /dev/null
code=$(tw --data-urlencode To=+15551234567 --data-urlencode From=+15005550006 -d Body=x | tail -1)
[ "$code" = 201 ] || it_fail "after the outage: $code"

# reset zeroes everything
curl -s -X POST "http://$A/_sim/reset" > /dev/null
[ "$(curl -s "http://$A/_sim/stats" | python3 -c 'import json,sys; print(sum(v["requests"]+v["accepted"]+v["unique_ids"] for v in json.load(sys.stdin)["vendors"].values()))')" = 0 ] \
  || it_fail "reset left counts"

# without a StatusCallback (no public_url) a message is counted by recipient + content
for i in 1 2; do tw --data-urlencode To=+15557654321 --data-urlencode From=+15005550006 -d Body=same > /dev/null; done
tw --data-urlencode To=+15557654321 --data-urlencode From=+15005550006 -d Body=other > /dev/null
curl -s "http://$A/_sim/stats" | python3 -c '
import json,sys; t=json.load(sys.stdin)["vendors"]["twilio"]
assert t["accepted"] == 3 and t["unique_ids"] == 2 and t["duplicate_count"] == 1, t
assert len(t["duplicate_ids"]) == 1 and t["duplicate_ids"][0].startswith("to:+15557654321#"), t
' || it_fail "counting without ids"

# SIGTERM: exit 0, run files removed
it_stop "$PID_sim" || it_fail "vendor-sim did not exit 0 on SIGTERM"
[ ! -e "$VAR/run/vendor-sim.addr" ] || it_fail "addr file left behind"
grep -q event=vendor_sim_stopped "$OUT/sim.log" || it_fail "no stop line"
! grep -q "$TOCSIN_TWILIO_TOKEN\|$TOCSIN_VG_SECRET\|$TOCSIN_SG_KEY\|$TOCSIN_MG_KEY" "$OUT/sim.log" || it_fail "a secret reached the log"
echo "0401-vendor-sim: ok"
