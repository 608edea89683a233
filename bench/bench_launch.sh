#!/usr/bin/env bash
# bench_launch.sh -- the producer benches: bench_launch (1,000,000 rows -> outbox next to bare
# librdkafka produce, same run), then the peak RSS of `tocsin launch` for a 5,000,000-row
# audience against `tocsin broker` (separate processes, so the broker's memory is not counted).
#   bench/bench_launch.sh BUILD_DIR   (e.g. build-prod; needs BUILD_DIR/tocsin and BUILD_DIR/bench/bench_launch)
set -euo pipefail
B=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
TOCSIN=${TOCSIN_BIN:-$ROOT/$B/tocsin}
"$ROOT/$B/bench/bench_launch" 1000000

N=${BENCH_RSS_ROWS:-5000000}
OUT=$ROOT/bench/out/launch-rss
rm -rf "$OUT"; mkdir -p "$OUT/var"
printf '{"var_dir":"%s/var","quiet_hours":{"sms":{"enabled":false}}}\n' "$OUT" > "$OUT/tocsin.json"
awk -v n="$N" 'BEGIN { print "first_name,phone,city";
  split("202 212 303 415 512 617 702 808 907 971", a, " ");
  for (i = 0; i < n; i++) { r = int(i / 10);
    printf "P%d,(%s) %03d-%04d,Denver\n", i % 1000, a[i % 10 + 1], 220 + (int(r / 10000) % 70) * 10, r % 10000 } }' > "$OUT/aud.csv"
printf '{"id":"rss","audience":"aud.csv","sms":{"template":"Hi {{first_name}}, the {{city}} council votes tonight. Reply STOP to opt out"}}\n' > "$OUT/rss.json"
"$TOCSIN" -c "$OUT/tocsin.json" broker > "$OUT/broker.log" 2>&1 &
bpid=$!
trap 'kill $bpid 2>/dev/null; wait $bpid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$OUT/var/run/broker.bootstrap" ] && break; sleep 0.1; done
/usr/bin/time -f "%M %e" -o "$OUT/time.txt" "$TOCSIN" -c "$OUT/tocsin.json" launch "$OUT/rss.json" --max-lag 0 --no-progress > "$OUT/launch.out" 2> "$OUT/launch.err"
read -r rss_kb secs < "$OUT/time.txt"
grep -q "read $N, queued $N, rejected 0, suppressed 0, duplicates 0" "$OUT/launch.out" || { echo "FAILED: $(cat "$OUT/launch.out")"; exit 1; }
echo "bench_launch rss: $N-row CSV, tocsin launch peak RSS $((rss_kb / 1024)) MB ($((rss_kb * 1024 / N)) bytes/recipient) in ${secs} s = $(awk -v n=$N -v s=$secs 'BEGIN{printf "%.0f", n/s}') recipients/s"
[ $((rss_kb / 1024)) -le 200 ] && echo OK || { echo "FAILED: peak RSS above 200 MB"; exit 1; }
