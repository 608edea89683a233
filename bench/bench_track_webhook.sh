#!/usr/bin/env bash
# bench_track_webhook.sh -- webhook intake: signed Twilio delivery receipts acknowledged per second
# by `tocsin track` (verify signature, check the carrier, take the replay key once in sqlite, look
# up the campaign, produce a status event to Kafka), measured with wrk, every request a different
# message sid; baseline in the same run: GET /healthz on the same server.
# Since issue 13 a receipt is answered 200 only once the broker acknowledged its status record.
#   bench/bench_track_webhook.sh [SECONDS] [CONNECTIONS...]     (default: 10 s, 64 and 256)
#     one run per connection count, side by side, each with its load average
#   TOCSIN_BIN_BEFORE=/path/to/older/tocsin bench/bench_track_webhook.sh 10 64 256
#     also runs the older binary (e.g. one that answered once queued), interleaved with this one
#     at each connection count, and prints after/before; several: TOCSIN_BIN_BEFORE="queued=PATH
#     main=PATH" (label=path, space-separated; after/before is against the first)
#   TOCSIN_BIN picks the binary; TRK_ONE=1 ... [SECONDS] [CONNECTIONS] is one plain run
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BIN=${TOCSIN_BIN:-$root/tocsin}
DUR=${1:-10}
if [ -z "${TRK_ONE:-}" ]; then
  shift || true
  conns=("$@"); [ ${#conns[@]} -gt 0 ] || conns=(64 256)
  bins=()
  for b in ${TOCSIN_BIN_BEFORE:-}; do [[ $b == *=* ]] && bins+=("$b") || bins+=("before=$b"); done
  bins+=("after=$BIN")
  table=()
  for c in "${conns[@]}"; do
    for b in "${bins[@]}"; do
      load=$(cut -d' ' -f1-3 /proc/loadavg)
      echo "== ${b%%=*} ${b#*=}, $c connections (load average $load)" >&2
      out=$(TRK_ONE=1 TOCSIN_BIN=${b#*=} "$0" "$DUR" "$c" | tee /dev/stderr) || true
      rps=$(echo "$out" | awk '/signed receipts acknowledged/ {print $4}')
      p50=$(echo "$out" | sed -n 's/.*p50_us=\([0-9]*\).*/\1/p')
      ok=$(echo "$out" | tail -1)
      table+=("$(printf '%-6s %5s conns  %9s req/s  p50 %6.1f ms  %s  (load %s)' "${b%%=*}" "$c" "${rps:-?}" \
        "$(python3 -c "print(${p50:-0}/1000)")" "$ok" "$load")")
      [ "$b" = "${bins[0]}" ] && brps=${rps:-}
      [ "${b%%=*}" = after ] && [ ${#bins[@]} -gt 1 ] && [ -n "${rps:-}" ] && [ -n "${brps:-}" ] &&
        table+=("       $c conns  after/${bins[0]%%=*} $(python3 -c "print(f'{$rps/$brps:.2f}')")")
    done
  done
  echo "bench_track_webhook: ${DUR}s per run, $(nproc) cores, target >= 10000 receipts/s at 64 connections"
  printf '  %s\n' "${table[@]}"
  exit 0
fi
CONN=${2:-64}
OUT=$here/out/bench_track_webhook
rm -rf "$OUT"; mkdir -p "$OUT/var/run"
pids=()
cleanup() { for ((k=${#pids[@]}-1; k>=0; k--)); do kill -TERM "${pids[$k]}" 2>/dev/null || true; wait "${pids[$k]}" 2>/dev/null || true; done; }
trap cleanup EXIT
command -v wrk >/dev/null || { echo "bench_track_webhook: wrk is missing (Debian package wrk)" >&2; exit 1; }
export TOCSIN_BENCH_TWILIO=bench-twilio-token
PUB=http://tracker.example.org
cat > "$OUT/tocsin.json" <<JSON
{"var_dir": "$OUT/var",
 "vendors": [{"name": "twilio", "kind": "twilio", "channel": "sms", "base_url": "http://127.0.0.1:9",
   "account": "ACbench", "secret_env": "TOCSIN_BENCH_TWILIO", "senders": {"main": {"from": "+15005550006"}}}],
 "tracker": {"public_url": "$PUB", "conns_per_ip": 1024}}
JSON
T() { "$BIN" -c "$OUT/tocsin.json" "$@"; }
TOCSIN_LOG=warn "$BIN" -c "$OUT/tocsin.json" broker > "$OUT/broker.log" 2>&1 & pids+=($!)
for _ in $(seq 600); do [ -s "$OUT/var/run/broker.bootstrap" ] && break; sleep 0.1; done
TOCSIN_LOG=warn "$BIN" -c "$OUT/tocsin.json" track --listen 127.0.0.1:0 > "$OUT/track.log" 2>&1 & pids+=($!)
for _ in $(seq 600); do [ -s "$OUT/var/run/track.addr" ] && break; sleep 0.1; done
A=http://$(cat "$OUT/var/run/track.addr")
ID=0123456789abcdef0123456789abcdef
echo '{"v":1,"id":"'$ID'","campaign":"bench","channel":"sms","to":"+15551234567","state":"accepted","vendor":"twilio","latency_ms":80,"attempt":0,"ts_ms":1}' > "$OUT/seed.jsonl"
T track --replay "$OUT/seed.jsonl" > /dev/null
export TRK_PATH="/webhooks/twilio/status?mid=$ID"
export TRK_BODY="MessageSid=SM0123456789abcdef0123456789abcdef&MessageStatus=delivered&To=%2B15551234567&From=%2B15005550006&AccountSid=ACbench&ErrorCode="
TRK_SIG=$(PUB=$PUB python3 -c '
import hmac, hashlib, base64, os, urllib.parse
p = sorted(urllib.parse.parse_qsl(os.environ["TRK_BODY"], keep_blank_values=True))
s = os.environ["PUB"] + os.environ["TRK_PATH"] + "".join(k + v for k, v in p)
print(base64.b64encode(hmac.new(b"bench-twilio-token", s.encode(), hashlib.sha1).digest()).decode())')
export TRK_SIG
# one pre-signed request per wrk request, each for its own message (seeded below) with its own
# MessageSid: the tracker takes a signed sid + status once (a repeat is a refused replay) and
# applies a receipt only under the reference the message was carried with
export TRK_REQS=$OUT/reqs.tsv TRK_THREADS=2
NREQ=$((DUR * 40000))
PUB=$PUB N=$NREQ python3 -c '
import hmac, hashlib, base64, json, os
pub, n, out = os.environ["PUB"], int(os.environ["N"]), os.environ["TRK_REQS"]
key = hmac.new(b"bench-twilio-token", digestmod=hashlib.sha1)
with open(out, "w") as f, open(out + ".seed", "w") as seed:
    for i in range(n):
        mid, sid = "%032x" % (0xb000000 + i), "SMb%031d" % i
        path = "/webhooks/twilio/status?mid=" + mid
        seed.write(json.dumps({"v":1,"id":mid,"campaign":"bench2","channel":"sms","to":"+15551234567","state":"accepted",
                               "vendor":"twilio","vendor_ref":sid,"latency_ms":80,"attempt":0,"ts_ms":1}) + "\n")
        # sorted names: AccountSid, ErrorCode, From, MessageSid, MessageStatus, To
        s = pub + path + "AccountSidACbenchErrorCodeFrom+15005550006MessageSid" + sid + "MessageStatusdeliveredTo+15551234567"
        m = key.copy(); m.update(s.encode())
        f.write(base64.b64encode(m.digest()).decode() + "\t" + path + "\tMessageSid=" + sid +
                "&MessageStatus=delivered&To=%2B15551234567&From=%2B15005550006&AccountSid=ACbench&ErrorCode=\n")'
T track --replay "$TRK_REQS.seed" > /dev/null
seeded() { T status bench2 --json 2>/dev/null | grep -q "\"total\":$NREQ,"; }
for _ in $(seq 600); do seeded && break; sleep 0.2; done
seeded || { echo "bench_track_webhook: FAIL the $NREQ seeded messages were not folded" >&2; exit 1; }
# correctness first: signed -> 200 and the receipt folds to delivered; tampered -> 403
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "X-Twilio-Signature: $TRK_SIG" --data "$TRK_BODY" "$A$TRK_PATH")
[ "$code" = 200 ] || { echo "bench_track_webhook: FAIL signed receipt answered $code" >&2; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "X-Twilio-Signature: $TRK_SIG" --data "${TRK_BODY/delivered/failed}" "$A$TRK_PATH")
[ "$code" = 403 ] || { echo "bench_track_webhook: FAIL tampered receipt answered $code" >&2; exit 1; }
for _ in $(seq 100); do T status bench --json 2>/dev/null | grep -q '"delivered":1' && break; sleep 0.1; done
T status bench --json | grep -q '"delivered":1' || { echo "bench_track_webhook: FAIL receipt not folded" >&2; exit 1; }
records() { curl -s "$A/metrics" | awk '/^tocsin_tracker_records_total/ {s += $2} END {print s + 0}'; }
sleep 1.2; r0=$(records)

echo "bench_track_webhook: ${DUR}s, $CONN connections, wrk on 2 threads, tracker unpinned ($(nproc) cores)"
base=$(wrk -t2 -c"$CONN" -d"${DUR}s" "$A/healthz" | awk '/Requests\/sec/ {print $2}')
out=$(wrk -t2 -c"$CONN" -d"${DUR}s" -s "$here/bench_track_webhook.lua" "$A")
echo "$out" > "$OUT/wrk.txt"
line=$(echo "$out" | grep '^requests=')
rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
n=$(echo "$line" | sed 's/.*requests=\([0-9]*\).*/\1/'); bad=$(echo "$line" | sed 's/.*non2xx=\([0-9]*\).*/\1/')
# every acknowledged receipt reached Kafka and was consumed by the tracker
for _ in $(seq 150); do [ "$(( $(records) - r0 ))" -ge "$n" ] && break; sleep 0.2; done
got=$(( $(records) - r0 ))
echo "  baseline GET /healthz       : $base req/s"
echo "  signed receipts acknowledged: $rps req/s ($(python3 -c "print(f'{$rps/$base:.2f}')")x baseline)  target >= 10000"
echo "  $line"
echo "  status events consumed back from Kafka: $got (acknowledged: $n)"
if [ "$bad" != 0 ] || [ "$got" -lt "$n" ]; then echo "bench_track_webhook: FAIL"; exit 1; fi
echo OK
