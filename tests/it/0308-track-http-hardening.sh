#!/usr/bin/env bash
# 0308-track-http-hardening.sh -- the tracker's HTTP side under hostile input: 1,000 connections
# sending headers slowly (from 127.0.0.2) do not stop /healthz answering (from 127.0.0.1); the API,
# dashboard and metrics answer only allowed Host names (webhooks, /u/ and /healthz any); integer
# arguments are parsed strictly (limit=4294967297 -> 400, not 1); CSV export defuses = + - @ TAB CR;
# a control's 404 does not show the config file's path.
source "$(dirname "$0")/lib.sh"
it_setup 0308-track-http-hardening
export TOCSIN_CONTROL_TOKEN=it-control-token-0123
it_write_config '"vendors":[
  {"name":"twilio","kind":"twilio","base_url":"http://127.0.0.1:9","account":"ACit","secret_env":"TOCSIN_TWILIO_TOKEN","senders":{"main":{"from":"+15005550006"}}}],
  "tracker":{"public_url":"https://tocsin.example.org/t","control_token_env":"TOCSIN_CONTROL_TOKEN","conns_per_ip":32}'
it_start_broker
it_start_track
A=http://$TRACK
PORT=${TRACK##*:}

# CSV: fields a spreadsheet would run as formulas get a leading '
python3 - "$OUT" <<'PY'
import json, sys
D = ["=1+1", "+HYPERLINK(\"http://x\")", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd", "plain"]
L = [json.dumps({"v":1,"id":"%032x" % (0x900 + i),"campaign":"hx","channel":"sms","to":"+1555000%04d" % i,
                 "state":"failed","vendor":"twilio","code":"21211","detail":d,"latency_ms":5,"attempt":0,"ts_ms":1})
     for i, d in enumerate(D)]
open(sys.argv[1] + "/events.jsonl", "w").write("\n".join(L) + "\n")
PY
"$TOCSIN_BIN" -c "$CFG" track --replay "$OUT/events.jsonl" > /dev/null
has7() { "$TOCSIN_BIN" -c "$CFG" status hx --json | grep -q '"total":7'; }
it_wait_until 20 has7 || it_fail "events not folded"
curl -sf "$A/api/campaigns/hx/recipients.csv" > "$OUT/hx.csv"
python3 - "$OUT/hx.csv" <<'PY' || it_fail "csv: $(cat "$OUT/hx.csv")"
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
assert rows[0][:7] == ["id","to","state","vendor","code","detail","ts_ms"], rows[0]
det = sorted(r[5] for r in rows[1:])
want = sorted(["'=1+1", "'+HYPERLINK(\"http://x\")", "'-2+3", "'@SUM(A1)", "'\tcmd", "'\rcmd", "plain"])
assert det == want, det
assert all(r[1].startswith("'+1555") for r in rows[1:]), [r[1] for r in rows[1:]]
PY

# strict integers: out of range or malformed -> 400, never wrapped
code() { curl -s -o "$OUT/last.out" -w '%{http_code}' "$@"; }
for q in "recipients?limit=4294967297" "recipients?limit=1x" "recipients?limit=%2B5" "recipients?limit=0" \
         "recipients?after=%201:2" "recipients?after=1:99999999999999999999" "recipients?after=4294967297:1"; do
  [ "$(code "$A/api/campaigns/hx/$q")" = 400 ] || it_fail "$q: $(cat "$OUT/last.out")"
done
[ "$(code "$A/api/series?seconds=4294967297")" = 400 ] || it_fail "series seconds"
[ "$(code "$A/api/timeline?limit=-1")" = 400 ] || it_fail "timeline limit"
[ "$(code "$A/api/campaigns/hx/recipients?limit=2")" = 200 ] || it_fail "limit=2"
it_jq 'len(j["items"])' "$OUT/last.out" | grep -qx 2 || it_fail "limit=2 gave $(cat "$OUT/last.out")"

# a control's 404 does not reveal the config path
[ "$(code -X POST -H "Authorization: Bearer $TOCSIN_CONTROL_TOKEN" "$A/api/vendors/nosuch/drain")" = 404 ] || it_fail "unknown vendor"
grep -q "$OUT" "$OUT/last.out" && it_fail "404 shows the config path: $(cat "$OUT/last.out")"
grep -q 'not in the configuration' "$OUT/last.out" || it_fail "404 text: $(cat "$OUT/last.out")"

# Host header: loopback names and public_url's host answer; another name (DNS rebinding) does not
for h in "127.0.0.1:$PORT" "localhost:$PORT" "tocsin.example.org"; do
  [ "$(code -H "Host: $h" "$A/api/campaigns")" = 200 ] || it_fail "Host $h refused"
done
for p in /api/campaigns /api/campaigns/hx/recipients.csv / /metrics; do
  [ "$(code -H "Host: evil.example.com:$PORT" "$A$p")" = 403 ] || it_fail "Host evil.example.com answered $p"
done
grep -q 'allowed_hosts' "$OUT/last.out" || it_fail "403 text: $(cat "$OUT/last.out")"
[ "$(code -X POST -H "Host: evil.example.com" -H "Authorization: Bearer $TOCSIN_CONTROL_TOKEN" "$A/api/campaigns/hx/pause")" = 403 ] || it_fail "control with a foreign Host"
[ "$(code -H "Host: evil.example.com" "$A/healthz")" = 200 ] || it_fail "/healthz refused a Host"
# read the whole page first: grep -q stops at the match, and curl's write into the closed
# pipe then fails the pipeline under pipefail although the count was right
curl -sf "$A/metrics" > "$OUT/metrics.txt" || it_fail "GET /metrics"
grep -qx 'tocsin_http_host_refused_total 5' "$OUT/metrics.txt" ||
  it_fail "host refusals not counted: $(grep host_refused "$OUT/metrics.txt")"
[ "$(code -H "Host: evil.example.com" -X POST "$A/webhooks/twilio/status" -d x=1)" = 403 ] || it_fail "webhook not exempt (want the signature's 403)"
grep -q 'X-Twilio-Signature' "$OUT/last.out" || it_fail "webhook refused for its Host, not its signature: $(cat "$OUT/last.out")"

# 1,000 slow clients (headers a byte every 0.5 s, from 127.0.0.2): /healthz from 127.0.0.1 still
# answers; the per-address cap (conns_per_ip 32) keeps the rest from holding connections
python3 - "$PORT" "$OUT/slow.json" <<'PY' || it_fail "slow clients: $(cat "$OUT/slow.json" 2>/dev/null)"
import json, socket, sys, time
port, out = int(sys.argv[1]), sys.argv[2]
def healthz():
    t = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        d = s.recv(4096)
        if not d: break
        data += d
    s.close()
    assert data.startswith(b"HTTP/1.1 200"), data[:40]
    return (time.monotonic() - t) * 1000
before = sorted(healthz() for _ in range(5))
socks, refused = [], 0
for i in range(1000):
    s = socket.socket()
    s.setblocking(False)
    s.bind(("127.0.0.2", 0))
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    socks.append(s)
time.sleep(0.5)
for rnd in range(3):           # a header byte from every client, slowly
    for s in socks:
        try: s.send(b"GET /healthz HTTP/1.1\r\nX-Slow: "[rnd:rnd + 1] if rnd < 2 else b"a")
        except OSError: refused += 1
    time.sleep(0.5)
during = sorted(healthz() for _ in range(5))
for s in socks: s.close()
json.dump({"before_ms": before, "during_ms": during, "send_errors": refused}, open(out, "w"))
print("healthz ms before: %s during 1000 slow clients: %s" % (["%.1f" % x for x in before], ["%.1f" % x for x in during]))
assert during[2] < 100, during   # the median of five answers
PY
cat "$OUT/slow.json"; echo
curl -sf "$A/healthz" > /dev/null || it_fail "tracker not answering after the slow clients"
it_stop "$PID_track" || it_fail "track did not stop cleanly"
echo "ok: 0308-track-http-hardening"
