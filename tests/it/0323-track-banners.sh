#!/usr/bin/env bash
# 0323-track-banners.sh -- /api/alerts (the dashboard's banners) says when a running campaign
# cannot progress: every vendor of its channel drained or open (and not once one is back), and
# the Kafka broker unreachable. A campaign that is done or cancelled raises nothing.
source "$(dirname "$0")/lib.sh"
it_setup 0323-track-banners
it_write_config '"vendors":[{"name":"twilio","kind":"twilio","channel":"sms","base_url":"http://127.0.0.1:9","account":"ACit","secret_env":"TOCSIN_TWILIO_TOKEN","senders":{"main":{"from":"+15005550006"}}},
  {"name":"vonage","kind":"vonage","channel":"sms","base_url":"http://127.0.0.1:9","account":"k","secret_env":"TOCSIN_TWILIO_TOKEN","senders":{"main":{"from":"15005550007"}}},
  {"name":"sendgrid","kind":"sendgrid","channel":"email","base_url":"http://127.0.0.1:9","secret_env":"TOCSIN_TWILIO_TOKEN","senders":{"main":{"from":"n@example.org"}}}]'
it_start_broker
# "stuck": 5 SMS queued; "over": delivered; both running
python3 -c '
import json, time
now = int(time.time() * 1000)
for i in range(6):
    print(json.dumps({"v":1,"id":"%032x" % i,"campaign":"stuck" if i < 5 else "over","channel":"sms","to":"+1555000%04d" % i,
                      "state":"queued" if i < 5 else "delivered","vendor":None if i < 5 else "twilio","latency_ms":-1,"attempt":0,"ts_ms":now}))' > "$OUT/events.jsonl"
it_start_track
A=http://$TRACK
"$TOCSIN_BIN" -c "$CFG" track --replay "$OUT/events.jsonl" > /dev/null
known() { curl -sf "$A/api/campaigns/over" > /dev/null && curl -sf "$A/api/campaigns/stuck" > /dev/null; }
it_wait_until 20 known || it_fail "campaigns never folded"
for c in stuck over; do "$TOCSIN_BIN" -c "$CFG" campaign resume $c --as it > /dev/null || it_fail "resume $c"; done
alerts() { curl -sf "$A/api/alerts"; }
none() { [ "$(alerts | it_jq 'len(j["alerts"])')" = 0 ]; }
it_wait_until 10 none || it_fail "alerts with every vendor healthy: $(alerts)"
"$TOCSIN_BIN" -c "$CFG" vendor drain twilio --as it > /dev/null
sleep 1
none || it_fail "an alert while vonage still carries SMS: $(alerts)"
"$TOCSIN_BIN" -c "$CFG" vendor drain vonage --as it > /dev/null
no_sms() { alerts | it_jq 'j["alerts"][0]' | python3 -c '
import json, sys; a = json.load(sys.stdin)
sys.exit(0 if a["kind"] == "no_vendor" and a["channel"] == "sms" and a["campaigns"] == ["stuck"]
         and a["vendors"] == "twilio drained, vonage drained" else 1)'; }
it_wait_until 10 no_sms || it_fail "no banner with every SMS vendor drained: $(alerts)"
alerts | it_jq 'j["alerts"][0]["text"]'
[ "$(alerts | it_jq 'len(j["alerts"])')" = 1 ] || it_fail "email raised an alert with no email campaign: $(alerts)"
"$TOCSIN_BIN" -c "$CFG" vendor undrain vonage --as it > /dev/null
it_wait_until 10 none || it_fail "the banner stayed after vonage came back: $(alerts)"
# the broker goes away
it_stop "$PID_broker" || true
broker_down() { alerts | it_jq '[a["kind"] for a in j["alerts"]]' | grep -q broker; }
it_wait_until 20 broker_down || it_fail "no broker banner: $(alerts)"
alerts | it_jq 'j["alerts"][0]["text"]'
echo "ok: 0323-track-banners"
