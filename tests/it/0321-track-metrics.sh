#!/usr/bin/env bash
# 0321-track-metrics.sh -- the tracker's /metrics passes `promtool check metrics` (Debian
# package prometheus), has no empty label, reports latency in seconds, and a campaign whose
# last activity is older than an hour has aged out of the per-campaign series (it stays in
# tocsin_messages_all). Status records are replayed with their own timestamps: no waiting.
source "$(dirname "$0")/lib.sh"
it_setup 0321-track-metrics
command -v promtool > /dev/null || it_fail "no promtool: run make deps (Debian package prometheus)"
it_write_config '"vendors":[{"name":"twilio","kind":"twilio","channel":"sms","base_url":"http://127.0.0.1:9","account":"ACit","secret_env":"TOCSIN_TWILIO_TOKEN","senders":{"main":{"from":"+15005550006"}}}]'
it_start_broker
# fresh: 10 delivered through twilio (80 ms), 2 cancelled and 1 expired before any vendor,
# 3 answers of 503 retried; stale: 5 delivered two hours ago
python3 - "$OUT" <<'PY'
import json, sys, time
out = sys.argv[1]; now = int(time.time() * 1000); L = []
def ev(mid, camp, st, ts, **kw):
    L.append(json.dumps(dict({"v":1,"id":"%032x" % mid,"campaign":camp,"channel":"sms","to":"+1555%07d" % mid,
                              "state":st,"latency_ms":-1,"attempt":0,"ts_ms":ts}, **kw)))
for i in range(10):
    if i < 3: ev(i, "fresh", "retrying", now, vendor="twilio", code="http_503", latency_ms=30, attempt=1)
    ev(i, "fresh", "accepted", now, vendor="twilio", latency_ms=80)
    ev(i, "fresh", "delivered", now, vendor="twilio")
for i in range(10, 12): ev(i, "fresh", "cancelled", now, code="cancelled")
ev(12, "fresh", "expired", now, code="expired")
for i in range(20, 25):
    ev(i, "stale", "accepted", now - 7200000, vendor="twilio", latency_ms=80)
    ev(i, "stale", "delivered", now - 7200000, vendor="twilio")
open(out + "/events.jsonl", "w").write("\n".join(L) + "\n")
PY
it_start_track
"$TOCSIN_BIN" -c "$CFG" track --replay "$OUT/events.jsonl" > /dev/null
folded() { curl -sf "http://$TRACK/metrics" | grep -q 'tocsin_messages_all{channel="sms",vendor="twilio",state="delivered"} 15'; }
it_wait_until 30 folded || it_fail "tracker never folded the 15 delivered: $(curl -sf "http://$TRACK/metrics" | grep messages_all)"
curl -sf "http://$TRACK/metrics" > "$OUT/metrics.txt"
promtool check metrics < "$OUT/metrics.txt" > "$OUT/promtool.out" 2>&1 || it_fail "promtool: $(cat "$OUT/promtool.out")"
[ ! -s "$OUT/promtool.out" ] || it_fail "promtool: $(cat "$OUT/promtool.out")"
grep -n '=""' "$OUT/metrics.txt" && it_fail "an empty label"
want() { grep -qxF "$1" "$OUT/metrics.txt" || it_fail "missing: $1"; }
want 'tocsin_messages{campaign="fresh",channel="sms",vendor="twilio",state="delivered"} 10'
want 'tocsin_messages{campaign="fresh",channel="sms",vendor="none",state="cancelled"} 2'
want 'tocsin_messages{campaign="fresh",channel="sms",vendor="none",state="expired"} 1'
want 'tocsin_messages_all{channel="sms",vendor="none",state="cancelled"} 2'
grep -q 'campaign="stale"' "$OUT/metrics.txt" && it_fail "campaign stale (last activity 2 h ago) did not age out"
# latency in seconds: 15 answers of 80 ms (<= 0.1 s) and 3 of 30 ms (<= 0.05 s)
want 'tocsin_vendor_latency_seconds_bucket{vendor="twilio",le="0.05"} 3'
want 'tocsin_vendor_latency_seconds_bucket{vendor="twilio",le="0.1"} 18'
want 'tocsin_vendor_latency_seconds_count{vendor="twilio"} 18'
want 'tocsin_vendor_latency_seconds_sum{vendor="twilio"} 1.290'
grep -q 'latency_ms' "$OUT/metrics.txt" && it_fail "a latency in ms is left"
echo "ok: 0321-track-metrics ($(grep -c '^tocsin_' "$OUT/metrics.txt") samples, promtool clean)"
