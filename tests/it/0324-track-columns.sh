#!/usr/bin/env bash
# 0324-track-columns.sh -- the campaign columns a staffer reads (/api/campaigns "summary", per
# channel when both are used), the plain-language failure reasons with their codes, the
# recipients list filtered by those codes (and its refusals), and receipts that match no
# campaign counted apart; a running campaign's rate and ETA. Status records replayed with
# known outcomes.
source "$(dirname "$0")/lib.sh"
it_setup 0324-track-columns
it_write_config '"vendors":[{"name":"twilio","kind":"twilio","channel":"sms","base_url":"http://127.0.0.1:9","account":"ACit","secret_env":"TOCSIN_TWILIO_TOKEN","senders":{"main":{"from":"+15005550006"}}},
  {"name":"sendgrid","kind":"sendgrid","channel":"email","base_url":"http://127.0.0.1:9","secret_env":"TOCSIN_TWILIO_TOKEN","senders":{"main":{"from":"n@example.org"}}}]'
it_start_broker
python3 - "$OUT" <<'PY'
import json, sys, time
out = sys.argv[1]; now = int(time.time() * 1000); L = []
def ev(i, camp, ch, st, **kw):
    L.append(json.dumps(dict({"v":1,"id":"%032x" % i,"campaign":camp,"channel":ch,"to":"r%d" % i,
                              "state":st,"latency_ms":-1,"attempt":0,"ts_ms":now}, **kw)))
ev(1, "mix", "sms", "delivered", vendor="twilio")
ev(2, "mix", "sms", "failed", vendor="twilio", code="21211", detail="invalid To", latency_ms=40)
ev(3, "mix", "sms", "retrying", vendor="twilio", code="http_503", latency_ms=40, attempt=1)
ev(4, "mix", "sms", "cancelled", code="cancelled")
ev(5, "mix", "email", "delivered", vendor="sendgrid")
ev(6, "mix", "email", "bounced", vendor="sendgrid")
ev(7, "mix", "email", "suppressed", code="opted_out")
ev(8, "", "sms", "delivered", vendor="twilio")   # a receipt that matches no campaign
open(out + "/events.jsonl", "w").write("\n".join(L) + "\n")
PY
it_start_track
A=http://$TRACK
"$TOCSIN_BIN" -c "$CFG" track --replay "$OUT/events.jsonl" > /dev/null
folded() { [ "$(curl -sf "$A/api/campaigns/mix" | it_jq 'j["total"]')" = 7 ]; }
it_wait_until 20 folded || it_fail "mix never folded"
curl -sf "$A/api/campaigns/mix" > "$OUT/mix.json"
python3 - "$OUT/mix.json" <<'PY' || it_fail "columns: $(cat "$OUT/mix.json")"
import json, sys
c = json.load(open(sys.argv[1]))
z = dict(audience=0, sent=0, delivered=0, awaiting_receipt=0, unknown_receipt=0, failed=0, in_progress=0, retrying=0,
         cancelled=0, expired=0, suppressed=0)
assert c["summary"] == dict(z, audience=7, sent=3, delivered=2, failed=2, in_progress=1, retrying=1,
                            cancelled=1, suppressed=1), c["summary"]
assert c["channels"]["sms"] == dict(z, audience=4, sent=1, delivered=1, failed=1, in_progress=1,
                                    retrying=1, cancelled=1), c["channels"]["sms"]
assert c["channels"]["email"] == dict(z, audience=3, sent=2, delivered=1, failed=1, suppressed=1), c["channels"]["email"]
r = {x["reason"]: (x["n"], x["permanent"], x["codes"]) for x in c["reasons"]}
assert r == {"invalid number": (1, True, "21211"), "bounced": (1, False, "bounced"),
             "opted out": (1, True, "opted_out")}, r
assert c["eta_s"] is None
PY
items() { curl -sf "$A/api/campaigns/mix/recipients?$1" | it_jq '[i["to"] for i in j["items"]]'; }
[ "$(items 'code=21211')" = '["r2"]' ] || it_fail "code=21211: $(items 'code=21211')"
[ "$(items 'code=bounced,opted_out')" = '["r7", "r6"]' ] || it_fail "two codes: $(items 'code=bounced,opted_out')"
[ "$(items 'state=failed&code=bounced')" = '[]' ] || it_fail "state and code together"
curl -sf "$A/api/campaigns/mix/recipients.csv?code=21211" | grep -q '^0*2,r2,failed,twilio,21211,invalid To,[0-9]*,0' ||
  it_fail "CSV by code: $(curl -sf "$A/api/campaigns/mix/recipients.csv?code=21211")"
# refusals: one line, 400
for bad in 'code=a,,b' "code=$(head -c 600 /dev/zero | tr '\0' x)" 'code=,a' 'state=nosuch'; do
  code=$(curl -s -o "$OUT/bad.txt" -w '%{http_code}' "$A/api/campaigns/mix/recipients?$bad")
  [ "$code" = 400 ] || it_fail "$bad -> $code $(cat "$OUT/bad.txt")"
done
# a running campaign's rate (accepted per second over 20 s) and ETA (in progress / rate):
# "run" (running) gets 10 queued, then 40 accepted just now
run_events() { # FIRST LAST STATE
  python3 -c '
import json, sys, time
now = int(time.time() * 1000); a, b, st = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
for i in range(a, b):
    print(json.dumps({"v":1,"id":"%032x" % i,"campaign":"run","channel":"sms","to":"r%d" % i,"state":st,
                      "vendor":"twilio" if st == "accepted" else None,
                      "latency_ms":30 if st == "accepted" else -1,"attempt":0,"ts_ms":now}))' "$@" > "$OUT/run.jsonl"
  "$TOCSIN_BIN" -c "$CFG" track --replay "$OUT/run.jsonl" > /dev/null
}
run_events 140 150 queued
run_known() { curl -sf "$A/api/campaigns/run" > /dev/null; }
it_wait_until 10 run_known || it_fail "run never folded"
"$TOCSIN_BIN" -c "$CFG" campaign resume run --as it > /dev/null || it_fail "resume run"
run_running() { curl -sf "$A/api/campaigns/run" | it_jq 'j["state"]' | grep -qx running; }
it_wait_until 20 run_running || it_fail "run not running"
run_events 100 140 accepted
eta() { curl -sf "$A/api/campaigns/run" | it_jq '[j["state"], j["rate_per_s"], j["eta_s"], j["summary"]["in_progress"]]'; }
rated() { [ "$(eta)" = '["running", 2.0, 5, 10]' ]; }
it_wait_until 10 rated || it_fail "rate and ETA: $(eta)"
# the receipt without a campaign is apart, never a campaign row
curl -sf "$A/api/campaigns" > "$OUT/list.json"
[ "$(it_jq 'sorted(c["id"] for c in j["campaigns"])' "$OUT/list.json")" = '["mix", "run"]' ] || it_fail "campaign rows: $(cat "$OUT/list.json")"
[ "$(it_jq 'j["unattributed"]' "$OUT/list.json")" = '{"total": 1, "states": {"delivered": 1}}' ] || it_fail "unattributed: $(it_jq 'j["unattributed"]' "$OUT/list.json")"
echo "ok: 0324-track-columns"
