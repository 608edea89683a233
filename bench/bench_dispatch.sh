#!/usr/bin/env bash
# bench_dispatch.sh -- one dispatcher's end-to-end throughput (outbox -> HTTP -> status event
# acknowledged) against the emulator, side by side with a bare curl-multi loop sending the same
# Twilio-shaped requests to the same emulator in the same run (the ceiling).
#   bench/bench_dispatch.sh [N (default 100000)] [CONCURRENCY (default 128)]
# Needs `make` and the bench binaries (make bench builds them). Prints both rates and the ratio,
# and checks the emulator accepted every message exactly once.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
C=${2:-128}
B=${TOCSIN_BIN:-$PWD/tocsin}
BB=${BENCH_BIN_DIR:-$PWD/build/bench}
OUT=$PWD/bench/out/bench_dispatch
rm -rf "$OUT"; mkdir -p "$OUT/var"
CFG=$OUT/tocsin.json
export TOCSIN_TWILIO_TOKEN=bench-token
SID=ACbench00000000000000000000000000
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
cfg() {
  cat > "$CFG" <<JSON
{"var_dir": "$OUT/var",
 "vendors": [{"name": "twilio", "kind": "twilio", "base_url": "http://${1:-127.0.0.1:9}",
   "account": "$SID", "secret_env": "TOCSIN_TWILIO_TOKEN",
   "senders": {"main": {"from": "+15005550006"}}, "max_in_flight": $C, "timeout_ms": 10000}],
 "dispatcher": {"max_in_flight": $C},
 "tracker": {"public_url": "http://127.0.0.1:9"}}
JSON
}
wait_file() { for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.1; done; echo "no $1" >&2; exit 1; }
cfg
"$B" -c "$CFG" broker > "$OUT/broker.log" 2>&1 & PIDS+=($!)
wait_file "$OUT/var/run/broker.bootstrap"
"$B" -c "$CFG" vendor-sim --listen 127.0.0.1:0 > "$OUT/sim.log" 2>&1 & PIDS+=($!)
wait_file "$OUT/var/run/vendor-sim.addr"
SIM=$(cat "$OUT/var/run/vendor-sim.addr")
cfg "$SIM"
curl -sf -X POST -d '{"vendor":"twilio","receipts":{"enabled":false}}' "http://$SIM/_sim/config" > /dev/null

echo "== baseline: bare curl multi, $N requests, $C concurrent"
"$BB/bench_curl" "$SIM" "$SID" "$TOCSIN_TWILIO_TOKEN" "$N" "$C" | tee "$OUT/curl.out"
curl -sf -X POST "http://$SIM/_sim/reset" > /dev/null

echo "== tocsin dispatch: $N messages queued first, then one dispatcher"
python3 - "$OUT/a.csv" "$N" <<'PY'
import sys
p, n = sys.argv[1], int(sys.argv[2])
areas = [202, 212, 303, 415, 617, 718, 312, 512, 213, 404]
exch = [234, 345, 456, 567, 678, 789, 432, 543, 654, 765]
with open(p, "w") as f:
    f.write("first_name,phone\n")
    for i in range(n):
        f.write("Pat%d,+1%d%d%04d\n" % (i, areas[i // 100000 % 10], exch[i // 10000 % 10], i % 10000))
PY
printf '{"id":"bench","audience":{"path":"a.csv","phone":"phone"},"sms":{"sender":"main","template":"Hi {{first_name}}, vote no on the cuts tonight."}}\n' > "$OUT/c.json"
"$B" -c "$CFG" launch --max-lag 0 "$OUT/c.json" > "$OUT/launch.out" 2>&1
${DSP_WRAP:-} "$B" -c "$CFG" dispatch > "$OUT/dispatch.log" 2>&1 & DSP=$!; PIDS+=($DSP)
for _ in $(seq 1200); do
  acc=$(curl -sf "http://$SIM/_sim/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["vendors"]["twilio"]["accepted"])')
  [ "$acc" -ge "$N" ] && break
  sleep 0.25
done
sleep 1
kill -TERM $DSP; wait $DSP || true
grep -o 'event=dispatch_summary.*per_second=[0-9]*' "$OUT/dispatch.log" | tee "$OUT/dispatch.out"
stats=$(curl -sf "http://$SIM/_sim/stats")
python3 - "$stats" "$N" "$OUT/curl.out" "$OUT/dispatch.out" <<'PY'
import json, re, sys
st, n = json.loads(sys.argv[1])["vendors"]["twilio"], int(sys.argv[2])
curl = float(re.search(r"= ([0-9.]+) requests/s", open(sys.argv[3]).read()).group(1))
d = re.search(r"finals=(\d+) seconds=([0-9.]+) per_second=(\d+)", open(sys.argv[4]).read())
finals, rate = int(d.group(1)), float(d.group(3))
ok = st["accepted"] == n and st["unique_ids"] == n and st["duplicate_count"] == 0 and finals == n
print("check: emulator accepted %d, distinct ids %d, sent twice %d; finals acknowledged %d -> %s"
      % (st["accepted"], st["unique_ids"], st["duplicate_count"], finals, "OK" if ok else "WRONG"))
print("dispatcher %.0f messages/s end to end; bare curl multi %.0f requests/s; ratio %.2f"
      % (rate, curl, rate / curl))
sys.exit(0 if ok else 1)
PY
