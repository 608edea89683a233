#!/usr/bin/env bash
# 0302-track-api.sh -- the tracker's JSON API, CSV export, /metrics, dashboard page and the
# controls (HTTP with token, and the `tocsin campaign` / `tocsin vendor` subcommands).
source "$(dirname "$0")/lib.sh"
it_setup 0302-track-api
it_write_config '"vendors":[
  {"name":"twilio","kind":"twilio","channel":"sms","base_url":"http://127.0.0.1:9","account":"ACit","secret_env":"TOCSIN_TWILIO_TOKEN","senders":{"main":{"from":"+15005550006"}},"sla":{"p95_ms":1500,"error_rate":0.25}},
  {"name":"vonage","kind":"vonage","channel":"sms","base_url":"http://127.0.0.1:9","account":"key","secret_env":"TOCSIN_VONAGE_SECRET","senders":{"main":{"from":"15005550007"}}}],
  "routes":{"sms":{"vendors":["twilio","vonage"]}},
  "tracker":{"control_token_env":"TOCSIN_IT_CONTROL_TOKEN"}'
export TOCSIN_IT_CONTROL_TOKEN=it-secret-control-token
it_start_broker

# 600 messages: 400 twilio (300 delivered, 100 undelivered code 30003), 200 vonage (150 delivered, 50 failed)
python3 - "$OUT" <<'PY'
import json, sys, time
out = sys.argv[1]; now = int(time.time() * 1000); L = []
for i in range(600):
    mid = "%032x" % (0xabc000 + i); v = "twilio" if i < 400 else "vonage"
    ev = lambda st, **kw: L.append(json.dumps(dict({"v":1,"id":mid,"campaign":"rally","channel":"sms","to":"+1555%07d" % i,
        "state":st,"vendor":v,"latency_ms":-1,"attempt":0,"ts_ms":now}, **kw)))
    ev("accepted", latency_ms=100 + i % 100)
    if i < 300 or 400 <= i < 550: ev("delivered")
    elif i < 400: ev("undelivered", code="30003", detail="Unreachable handset")
    else: ev("failed", code="21211", detail="=HYPERLINK(\"x\") invalid, number")
open(out + "/events.jsonl", "w").write("\n".join(L) + "\n")
PY
it_bg track track --listen 127.0.0.1:0
it_wait_file "$VAR/run/track.addr" 20
A=http://$(cat "$VAR/run/track.addr")
"$TOCSIN_BIN" -c "$CFG" track --replay "$OUT/events.jsonl" > /dev/null
total_is() { curl -sf "$A/api/campaigns/rally" | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["total"]==600 and True else 1)'; }
settled() { [ "$(curl -sf "$A/api/campaigns/rally" | python3 -c 'import json,sys; print(json.load(sys.stdin)["states"].get("accepted",0))')" = 0 ]; }
it_wait_until 30 total_is || it_fail "tracker never saw 600 messages"
it_wait_until 30 settled || it_fail "accepted never settled"

curl -sf "$A/api/campaigns/rally" > "$OUT/campaign.json"
python3 - "$OUT/campaign.json" <<'PY' || it_fail "campaign breakdown wrong: $(cat "$OUT/campaign.json")"
import json, sys
c = json.load(open(sys.argv[1]))
assert c["total"] == 600, c
assert c["states"] == {"delivered": 450, "failed": 50, "undelivered": 100}, c["states"]
assert c["vendors"] == {"twilio": {"delivered": 300, "undelivered": 100}, "vonage": {"delivered": 150, "failed": 50}}, c["vendors"]
codes = {(x["vendor"], x["code"]): x["n"] for x in c["codes"]}
assert codes == {("twilio", "30003"): 100, ("vonage", "21211"): 50}, codes
assert abs(c["progress"] - 1.0) < 1e-9, c["progress"]
PY
curl -sf "$A/api/campaigns" | python3 -c 'import json,sys; c=json.load(sys.stdin)["campaigns"]; assert [x["id"] for x in c]==["rally"] and c[0]["total"]==600, c' ||
  it_fail "campaign list"

# recipients in a state, paged: 100 undelivered in pages of 40 -> 40, 40, 20, ids distinct
after=""; n=0; pages=0; : > "$OUT/ids.txt"
while :; do
  curl -sf "$A/api/campaigns/rally/recipients?state=undelivered&limit=40${after:+&after=$after}" > "$OUT/page.json"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); [print(i["id"]) for i in d["items"]]; assert all(i["state"]=="undelivered" and i["vendor"]=="twilio" and i["code"]=="30003" for i in d["items"])' "$OUT/page.json" >> "$OUT/ids.txt" || it_fail "page content"
  after=$(python3 -c 'import json,sys; n=json.load(open(sys.argv[1]))["next"]; print(n or "")' "$OUT/page.json")
  pages=$((pages + 1)); [ -n "$after" ] && [ $pages -lt 10 ] || break
done
[ "$(sort -u "$OUT/ids.txt" | wc -l)" = 100 ] && [ $pages = 3 ] || it_fail "paging: pages=$pages ids=$(sort -u "$OUT/ids.txt" | wc -l)"
# CSV export of "who did not get it" (every state but delivered): header + 150 rows, formula defused
curl -sf "$A/api/campaigns/rally/recipients.csv" > "$OUT/notdelivered.csv"
[ "$(wc -l < "$OUT/notdelivered.csv")" = 151 ] || it_fail "csv rows: $(wc -l < "$OUT/notdelivered.csv")"
head -1 "$OUT/notdelivered.csv" | grep -q '^id,to,state,vendor,code,detail,ts_ms' || it_fail "csv header"
grep -q ',"'"'"'=HYPERLINK(""x"") invalid, number",' "$OUT/notdelivered.csv" || it_fail "csv quoting/formula: $(grep 21211 "$OUT/notdelivered.csv" | head -1)"
code=$(curl -s -o /dev/null -w '%{http_code}' "$A/api/campaigns/rally/recipients?state=bogus"); [ "$code" = 400 ] || it_fail "bad state -> $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$A/api/campaigns/nosuch"); [ "$code" = 404 ] || it_fail "unknown campaign -> $code"

# vendors: SLA thresholds from config; metrics exposition
curl -sf "$A/api/vendors" | python3 -c '
import json,sys; v={x["name"]:x for x in json.load(sys.stdin)["vendors"]}
assert v["twilio"]["sla"]=={"p95_ms":1500,"error_rate":0.25,"timeout_rate":0.1}, v["twilio"]["sla"]
assert v["twilio"]["state"]=="healthy" and v["twilio"]["recent"]["sends"]==400, v["twilio"]
assert v["vonage"]["states"]=={"delivered":150,"failed":50}, v["vonage"]' || it_fail "vendors api"
curl -sf "$A/metrics" > "$OUT/metrics.txt"
grep -qx 'tocsin_messages{campaign="rally",channel="sms",vendor="twilio",state="delivered"} 300' "$OUT/metrics.txt" || it_fail "metrics counts"
grep -qx 'tocsin_vendor_latency_seconds_count{vendor="twilio"} 400' "$OUT/metrics.txt" || it_fail "metrics latency: $(grep latency_seconds_count "$OUT/metrics.txt")"
grep -qx 'tocsin_vendor_latency_seconds_bucket{vendor="twilio",le="+Inf"} 400' "$OUT/metrics.txt" || it_fail "metrics histogram"
grep -q '^tocsin_tracker_consumer_lag 0$' "$OUT/metrics.txt" || it_fail "lag: $(grep lag "$OUT/metrics.txt")"
curl -sf "$A/" > "$OUT/page.html" || it_fail "GET /"
grep -q '<canvas id="throughput"' "$OUT/page.html" || it_fail "dashboard page"
! curl -sf "$A/" | grep -Eq 'src="https?:|href="https?:' || it_fail "dashboard loads external resources"

# controls: no token -> 401, wrong token -> 401, right token -> published and folded back
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$A/api/campaigns/rally/pause"); [ "$code" = 401 ] || it_fail "no token -> $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer wrong' "$A/api/campaigns/rally/pause"); [ "$code" = 401 ] || it_fail "wrong token -> $code"
T="Authorization: Bearer $TOCSIN_IT_CONTROL_TOKEN"
curl -sf -X POST -H "$T" "$A/api/campaigns/rally/pause" | grep -q '"ok":true' || it_fail "pause"
camp_state() { [ "$(curl -sf "$A/api/campaigns/rally" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')" = "$1" ]; }
it_wait_until 10 camp_state paused || it_fail "campaign not paused"
"$TOCSIN_BIN" -c "$CFG" campaign resume rally | grep -q 'rally: running' || it_fail "cli resume"
it_wait_until 10 camp_state running || it_fail "campaign not running after cli resume"
"$TOCSIN_BIN" -c "$CFG" campaign cancel rally > /dev/null || it_fail "cli cancel"
it_wait_until 10 camp_state cancelled || it_fail "campaign not cancelled"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "$T" "$A/api/campaigns/rally/resume"); [ "$code" = 409 ] || it_fail "resume after cancel -> $code"
rc=0; "$TOCSIN_BIN" -c "$CFG" campaign resume rally 2> "$OUT/cli.err" || rc=$?
[ $rc = 1 ] && grep -q 'cancelled; it cannot be resumed' "$OUT/cli.err" || it_fail "cli resume after cancel: rc=$rc $(cat "$OUT/cli.err")"
rc=0; "$TOCSIN_BIN" -c "$CFG" campaign frobnicate rally 2>/dev/null || rc=$?; [ $rc = 2 ] || it_fail "bad action exit $rc"
"$TOCSIN_BIN" -c "$CFG" vendor drain twilio | grep -q 'twilio: drained' || it_fail "cli drain"
vend_state() { curl -sf "$A/api/vendors" | python3 -c 'import json,sys; v={x["name"]:x for x in json.load(sys.stdin)["vendors"]}["twilio"]; sys.exit(0 if v["state"]==sys.argv[1] and v["by"]=="operator" else 1)' "$1"; }
it_wait_until 10 vend_state drained || it_fail "vendor not drained"
curl -sf -X POST -H "$T" "$A/api/vendors/twilio/undrain" > /dev/null || it_fail "http undrain"
it_wait_until 10 vend_state healthy || it_fail "vendor not undrained"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "$T" "$A/api/vendors/nosuch/drain"); [ "$code" = 404 ] || it_fail "unknown vendor -> $code"
rc=0; "$TOCSIN_BIN" -c "$CFG" vendor drain nosuch 2> "$OUT/cli.err" || rc=$?
[ $rc = 1 ] && grep -q 'unknown vendor "nosuch"' "$OUT/cli.err" || it_fail "cli unknown vendor"
# the timeline shows each operator action in order
# (who: "operator" for the shared token over HTTP, the OS user on the CLI)
curl -sf "$A/api/timeline?limit=10" | python3 -c '
import json,sys; e=[x["subject"]+" "+x["detail"] for x in reversed(json.load(sys.stdin)["events"])]; me=sys.argv[1]
want=["rally campaign paused by operator","rally campaign running by %s" % me,"rally campaign cancelled by %s" % me,"twilio new -> drained by operator (%s): operator drain" % me,"twilio drained -> healthy by operator (operator): operator undrain"]
assert e==want, e' "$(id -un)" || it_fail "timeline"
it_stop "$PID_track" || it_fail "track did not stop cleanly"
echo "ok: 0302-track-api"
