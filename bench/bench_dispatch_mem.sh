#!/usr/bin/env bash
# bench_dispatch_mem.sh -- a dispatcher's peak memory with N messages waiting in the outbox and
# every vendor down (connections refused): consumption must pause instead of piling messages up.
#   bench/bench_dispatch_mem.sh [N (default 2000000)] [SECONDS (default 30)]
# Prints the dispatcher's peak RSS (VmHWM) and checks nothing was committed past an unsent
# message (the group's committed offsets stay at 0 while the vendor is down).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000000}
SECS=${2:-30}
B=${TOCSIN_BIN:-$PWD/tocsin}
OUT=$PWD/bench/out/bench_dispatch_mem
rm -rf "$OUT"; mkdir -p "$OUT/var"
CFG=$OUT/tocsin.json
export TOCSIN_TWILIO_TOKEN=bench-token
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
cfg() {
  cat > "$CFG" <<JSON
{"var_dir": "$OUT/var",
 "vendors": [{"name": "twilio", "kind": "twilio", "base_url": "http://${1:-127.0.0.1:9}",
   "account": "ACbench00000000000000000000000000", "secret_env": "TOCSIN_TWILIO_TOKEN",
   "senders": {"main": {"from": "+15005550006"}}, "timeout_ms": 2000}],
 "tracker": {"public_url": "http://127.0.0.1:9"}}
JSON
}
wait_file() { for _ in $(seq 300); do [ -s "$1" ] && return 0; sleep 0.1; done; echo "no $1" >&2; exit 1; }
cfg
# 2M messages need more partitions than the default 12 to fit the embedded broker's
# per-partition retention (5 MiB each).
"$B" -c "$CFG" broker --outbox-partitions 120 > "$OUT/broker.log" 2>&1 & PIDS+=($!)
wait_file "$OUT/var/run/broker.bootstrap"
"$B" -c "$CFG" vendor-sim --listen 127.0.0.1:0 > "$OUT/sim.log" 2>&1 & PIDS+=($!)
wait_file "$OUT/var/run/vendor-sim.addr"
SIM=$(cat "$OUT/var/run/vendor-sim.addr")
cfg "$SIM"
curl -sf -X POST -d '{"vendor":"twilio","outage":"refuse"}' "http://$SIM/_sim/config" > /dev/null
python3 - "$OUT/a.csv" "$N" <<'PY'
import sys
p, n = sys.argv[1], int(sys.argv[2])
areas = [202, 212, 303, 415, 617, 718, 312, 512, 213, 404, 305, 206, 503, 614, 713, 816, 919, 971, 262, 414, 601]
exch = [234, 345, 456, 567, 678, 789, 432, 543, 654, 765]
with open(p, "w") as f:
    f.write("first_name,phone\n")
    for i in range(n):
        f.write("Pat%d,+1%d%d%04d\n" % (i, areas[i // 100000 % len(areas)], exch[i // 10000 % 10], i % 10000))
PY
printf '{"id":"mem","audience":{"path":"a.csv","phone":"phone"},"sms":{"sender":"main","template":"Hi {{first_name}}, vote no on the cuts tonight."}}\n' > "$OUT/c.json"
echo "== launching $N messages"
"$B" -c "$CFG" launch --max-lag 0 "$OUT/c.json" > "$OUT/launch.out" 2>&1
tail -2 "$OUT/launch.out"
echo "== one dispatcher, every vendor refusing connections, for $SECS s"
"$B" -c "$CFG" dispatch > "$OUT/dispatch.log" 2>&1 & DSP=$!; PIDS+=($DSP)
peak=0
for _ in $(seq $((SECS * 4))); do
  kb=$(awk '/VmHWM/ {print $2}' /proc/$DSP/status)
  [ "$kb" -gt "$peak" ] && peak=$kb
  sleep 0.25
done
kill -TERM $DSP; wait $DSP || true
pending=$(grep -o 'event=progress.*' "$OUT/dispatch.log" | tail -1)
echo "last progress: $pending"
grep -q 'event=backpressure action=pause' "$OUT/dispatch.log" && echo "consumption paused: yes" || { echo "consumption never paused" >&2; exit 1; }
accepted=$(grep -o 'accepted=[0-9]*' <<< "$pending" | cut -d= -f2)
[ "$accepted" = 0 ] || { echo "messages were accepted while every vendor was down?" >&2; exit 1; }
python3 -c "print('dispatcher peak RSS with $N messages waiting and every vendor down: %.1f MB (target <= 100 MB)' % ($peak / 1024))"
