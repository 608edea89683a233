#!/usr/bin/env bash
# bench_track_api.sh -- dashboard API latency with 5,000,000 messages stored: every endpoint the
# dashboard polls (plus breakdown, recipients page, /metrics) timed per request by bench_track_http
# (and wrk, for comparison) against `tocsin track`; baseline in the same run: GET /healthz.
#   bench/bench_track_api.sh [MESSAGES] [SECONDS] [API_CACHE_MS] [INGEST_PER_S]   (TOCSIN_BIN picks the binary;
#   the client bench_track_http is taken from $BENCH_BIN_DIR (make bench), else beside the binary
#   in its build dir (build-x/bench/), or TOCSIN_BENCH_HTTP)
# API_CACHE_MS is tracker.api_cache_ms (default 250; 0 = every answer queried from sqlite).
# INGEST_PER_S > 0 keeps a blast's status events flowing into the tracker while it is measured
# (accepted/sent/delivered of new messages of campaign "live", through Kafka, at that rate), so
# reads compete with the ingest transactions as they do during a real blast.
# The store is filled by SQL straight into the tracker's schema (cached in bench/out between runs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BIN=${TOCSIN_BIN:-$root/tocsin}
N=${1:-5000000}
DUR=${2:-5}
CACHE_MS=${3:-250}
INGEST=${4:-0}
OUT=$here/out/bench_track_api
SEED=$here/out/bench_track_api_seed_$N.db
mkdir -p "$OUT"; rm -rf "$OUT/var"; mkdir -p "$OUT/var/run"
pids=()
cleanup() { for ((k=${#pids[@]}-1; k>=0; k--)); do kill -TERM "${pids[$k]}" 2>/dev/null || true; wait "${pids[$k]}" 2>/dev/null || true; done; }
trap cleanup EXIT
HTTPB=${TOCSIN_BENCH_HTTP:-${BENCH_BIN_DIR:-$(dirname "$BIN")/bench}/bench_track_http}
[ -x "$HTTPB" ] || { echo "bench_track_api: $HTTPB is missing (make BUILD=... bench/bench_track_http)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench_track_api: wrk is missing (Debian package wrk)" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "bench_track_api: sqlite3 is missing (Debian package sqlite3)" >&2; exit 1; }
export TOCSIN_BENCH_TWILIO=x TOCSIN_BENCH_VONAGE=x
cat > "$OUT/tocsin.json" <<JSON
{"var_dir": "$OUT/var", "tracker": {"api_cache_ms": $CACHE_MS},
 "vendors": [{"name": "twilio", "kind": "twilio", "channel": "sms", "base_url": "http://127.0.0.1:9",
   "account": "ACbench", "secret_env": "TOCSIN_BENCH_TWILIO", "senders": {"main": {"from": "+15005550006"}}},
   {"name": "vonage", "kind": "vonage", "channel": "sms", "base_url": "http://127.0.0.1:9",
   "account": "key", "secret_env": "TOCSIN_BENCH_VONAGE", "senders": {"main": {"from": "15005550007"}}}]}
JSON
T() { "$BIN" -c "$OUT/tocsin.json" "$@"; }
TOCSIN_LOG=warn "$BIN" -c "$OUT/tocsin.json" broker > "$OUT/broker.log" 2>&1 & pids+=($!)
for _ in $(seq 200); do [ -s "$OUT/var/run/broker.bootstrap" ] && break; sleep 0.1; done

if [ ! -s "$SEED" ]; then
  echo "bench_track_api: building a store of $N messages (once; cached as $SEED)"
  # the tracker creates its schema; then bulk SQL fills it
  TOCSIN_LOG=warn "$BIN" -c "$OUT/tocsin.json" track --no-http > "$OUT/track0.log" 2>&1 & tp=$!
  for _ in $(seq 100); do [ -s "$OUT/var/tocsin.db" ] && break; sleep 0.1; done; sleep 1
  kill -TERM $tp; wait $tp || true
  now=$(date +%s)
  t0=$(date +%s)
  sqlite3 "$OUT/var/tocsin.db" <<SQL
PRAGMA synchronous=OFF;
DROP INDEX msgs_state;
WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < $N - 1)
INSERT INTO msgs(id, campaign, channel, addr, state, vendor, vendor_ref, code, detail, attempt, ts_ms)
SELECT randomblob(16), 'camp' || (x % 5), 0, printf('+1555%07d', x),
       CASE WHEN x % 20 = 0 THEN 8 WHEN x % 20 = 1 THEN 9 WHEN x % 10 = 2 THEN 2 WHEN x % 10 = 3 THEN 3 ELSE 4 END,
       CASE WHEN x % 3 = 0 THEN 'vonage' ELSE 'twilio' END, 'SM' || x,
       CASE WHEN x % 20 = 0 THEN '21211' WHEN x % 20 = 1 THEN '30003' END, NULL, 0, ($now - 600 + x % 600) * 1000
FROM n;
CREATE INDEX msgs_state ON msgs(campaign, state);
INSERT INTO counts SELECT campaign, channel, vendor, state, COUNT(*) FROM msgs GROUP BY 1, 2, 3, 4;
INSERT INTO codes SELECT campaign, vendor, code, COUNT(*) FROM msgs WHERE code IS NOT NULL GROUP BY 1, 2, 3;
INSERT INTO series(sec, campaign, vendor, sends, receipts, failures, lat, lat_sum)
  SELECT ts_ms / 1000, campaign, vendor, COUNT(*), SUM(state >= 3), SUM(state IN (8, 9)), zeroblob(128), 0
  FROM msgs GROUP BY 1, 2, 3;
INSERT INTO campaigns(id, name, state, queued, ts_ms) SELECT 'camp' || x, 'Campaign ' || x, 1, $N / 5, $now * 1000 FROM (SELECT 0 x UNION SELECT 1 UNION SELECT 2 UNION SELECT 3 UNION SELECT 4);
PRAGMA wal_checkpoint(TRUNCATE);
SQL
  echo "  built in $(( $(date +%s) - t0 )) s"
  cp "$OUT/var/tocsin.db" "$SEED"
fi
sqlite3 "$SEED" "DROP INDEX IF EXISTS msgs_addr;" # a seed cached while the tracker had that index
cp "$SEED" "$OUT/var/tocsin.db"; rm -f "$OUT/var/tocsin.db-wal" "$OUT/var/tocsin.db-shm"
TOCSIN_LOG=warn "$BIN" -c "$OUT/tocsin.json" track --listen 127.0.0.1:0 > "$OUT/track.log" 2>&1 & pids+=($!)
for _ in $(seq 300); do [ -s "$OUT/var/run/track.addr" ] && break; sleep 0.1; done
A=http://$(cat "$OUT/var/run/track.addr")

# correctness first: the API's totals are the store's
total=$(curl -sf "$A/api/campaigns" | python3 -c 'import json,sys; print(sum(c["total"] for c in json.load(sys.stdin)["campaigns"]))')
[ "$total" = "$N" ] || { echo "bench_track_api: FAIL campaigns total $total, want $N" >&2; exit 1; }
items=$(curl -sf "$A/api/campaigns/camp0/recipients?state=failed&limit=100" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert all(i["state"]=="failed" for i in d["items"]); print(len(d["items"]))')
[ "$items" = 100 ] || { echo "bench_track_api: FAIL recipients page has $items items" >&2; exit 1; }

applied() { curl -sf "$A/metrics" | awk '/^tocsin_tracker_records_total\{result="applied"\}/ {print $2}'; }
if [ "$INGEST" -gt 0 ]; then
  # bounded: the generator stops after the measurement's duration (9 endpoints + baseline)
  python3 - "$INGEST" $(( DUR * 20 + 15 )) <<'PY' 2>/dev/null | "$BIN" -c "$OUT/tocsin.json" track --replay /dev/stdin > "$OUT/replay.log" 2>&1 & pids+=($!)
import sys, time
rate, secs = int(sys.argv[1]), float(sys.argv[2])
st = ("accepted", "sent", "delivered")
t0 = time.time(); n = 0
while time.time() - t0 < secs:
    due = int((time.time() - t0) * rate); now = int(time.time() * 1000); out = []
    while n < due:
        m = n // 3
        out.append('{"v":1,"id":"%032x","campaign":"live","channel":"sms","to":"+1666%07d","state":"%s",'
                   '"vendor":"twilio","latency_ms":40,"attempt":0,"ts_ms":%d}' % (m + 1, m, st[n % 3], now))
        n += 1
    if out:
        sys.stdout.write("\n".join(out) + "\n"); sys.stdout.flush()
    time.sleep(0.01)
PY
  a0=$(applied); t_in=$(date +%s.%N)
  sleep 3 # the tracker is folding by now
fi
printf 'bench_track_api: %s messages stored, 4 keep-alive connections, %ss per endpoint and client, api_cache_ms=%s, ingest %s events/s, load average %s\n' \
  "$N" "$DUR" "$CACHE_MS" "$INGEST" "$(cut -d' ' -f1-3 /proc/loadavg)"
echo "  timed per request by bench_track_http (closed loop: p50/p99/max ms, requests >= 50 ms); wrk's p99 beside it"
# wrk's latency figures on this machine add up to more waiting than the run had (mean x requests >
# seconds x connections), so the verdict uses bench_track_http, which times each request itself.
wrk_p99() { wrk -t1 -c4 -d"${DUR}s" --latency "$A$1" | awk '/^ +99%/ {print $2}'; }
own() { "$HTTPB" "${A#http://}" "$1" "$DUR" 4; }
worst=0; fail=0
set -- $(own /healthz); base_rps=$2
printf '  %-62s %8s req/s  p50 %6.3f  p99 %7.3f  max %6.1f  >=50ms %-4s  wrk p99 %s\n' "baseline GET /healthz" "$2" "$3" "$4" "$5" "$6" "$(wrk_p99 /healthz)"
for ep in /api/campaigns /api/campaigns/camp1 "/api/series?seconds=120" /api/vendors "/api/timeline?limit=50" \
          "/api/campaigns/camp1/recipients?state=undelivered&limit=100" /metrics /; do
  set -- $(own "$ep")
  printf '  %-62s %8s req/s  p50 %6.3f  p99 %7.3f  max %6.1f  >=50ms %-4s  wrk p99 %-8s (%s of baseline req/s)\n' "GET $ep" "$2" "$3" "$4" "$5" "$6" \
    "$(wrk_p99 "$ep")" "$(python3 -c "print(f'{$2/$base_rps:.2f}')")"
  [ "$7" = 0 ] || { echo "    FAIL: $7 answers other than 200 or broken connections"; fail=1; }
  python3 -c "import sys; sys.exit(0 if $4 < 50 else 1)" || { echo "    over 50 ms at p99"; fail=1; }
done
if [ "$INGEST" -gt 0 ]; then
  a1=$(applied)
  rate=$(python3 -c "import time; print(int(($a1 - $a0) / (time.time() - $t_in)))")
  echo "  status events folded while measuring: $(( a1 - a0 )) ($rate/s)"
  [ $(( a1 - a0 )) -gt 0 ] || { echo "    FAIL: no ingest during the measurement"; fail=1; }
fi
slow=$(grep -c 'event=slow_request' "$OUT/track.log" || true)
echo "  requests the tracker itself took >= 50 ms over (event=slow_request in its log): $slow"
[ $fail = 0 ] && echo OK || { echo "bench_track_api: FAIL"; exit 1; }
