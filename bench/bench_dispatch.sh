#!/usr/bin/env bash
# bench_dispatch.sh -- one dispatcher's end-to-end throughput (outbox -> HTTP -> status event
# acknowledged) against the emulator, side by side with a bare curl-multi loop (bench_curl)
# sending the same Twilio-shaped requests to the same emulator: ROUNDS rounds, each measuring
# the baseline and then the dispatcher, so load from elsewhere hits both alike. Prints each
# round, the median rates and the median ratio, and checks the emulator accepted every message
# exactly once.
#   bench/bench_dispatch.sh [N (100000)] [ROUNDS (3)] [CONCURRENCY (128)]
# HTTP_THREADS="0 2" measures each dispatcher.http_threads value in every round, after the
# same baseline (default: 2, the default config); DISPATCH_ARGS adds `tocsin dispatch` options.
source "$(dirname "$0")/lib.sh"
N=${1:-100000}; ROUNDS=${2:-3}; C=${3:-128}
bench_setup bench_dispatch
export TOCSIN_TWILIO_TOKEN=bench-token
SID=ACbench00000000000000000000000000
cfg() {
  cat > "$CFG" <<JSON
{"var_dir": "$OUT/var", "quiet_hours": {"sms": {"enabled": false}},
 "vendors": [{"name": "twilio", "kind": "twilio", "base_url": "http://${SIM:-127.0.0.1:9}",
   "account": "$SID", "secret_env": "TOCSIN_TWILIO_TOKEN",
   "senders": {"main": {"from": "+15005550006"}}, "max_in_flight": $C, "timeout_ms": 10000}],
 "dispatcher": {"max_in_flight": $C, "http_threads": ${T:-2}},
 "tracker": {"public_url": "http://127.0.0.1:9"}}
JSON
}
cfg
bench_start_broker_sim
cfg
: > "$OUT/rounds.txt"
for r in $(seq "$ROUNDS"); do
  curl -sf -X POST "http://$SIM/_sim/reset" > /dev/null
  "$BB/bench_curl" "$SIM" "$SID" "$TOCSIN_TWILIO_TOKEN" "$N" "$C" > "$OUT/curl-$r.out"
  for T in ${HTTP_THREADS:-2}; do
  cfg
  curl -sf -X POST "http://$SIM/_sim/reset" > /dev/null
  bench_sms_campaign "r${r}t$T" "$N"
  "$B" -c "$CFG" launch --max-lag 0 --no-progress "$OUT/r${r}t$T.json" > "$OUT/launch-$r-$T.out" 2>&1
  bench_bg "dispatch-$r-$T" dispatch ${DISPATCH_ARGS:-}
  for _ in $(seq 2400); do [ "$(bench_sim_accepted twilio)" -ge "$N" ] && break; sleep 0.25; done
  sleep 1
  kill -TERM "$BG_PID"; wait "$BG_PID" || true
  python3 - "$(bench_sim_stats)" "$N" "$OUT/curl-$r.out" "$OUT/dispatch-$r-$T.log" "$r" "$T" >> "$OUT/rounds.txt" <<'PY'
import json, re, sys
st, n, r, t = json.loads(sys.argv[1])["vendors"]["twilio"], int(sys.argv[2]), sys.argv[5], sys.argv[6]
curl = float(re.search(r"= ([0-9.]+) requests/s", open(sys.argv[3]).read()).group(1))
d = re.search(r"finals=(\d+) seconds=([0-9.]+) per_second=(\d+)", open(sys.argv[4]).read())
finals, rate = int(d.group(1)), float(d.group(3))
ok = st["accepted"] == n and st["unique_ids"] == n and st["duplicate_count"] == 0 and finals == n
print("round %s http_threads=%s: dispatcher %.0f msg/s, bare curl multi %.0f req/s, ratio %.2f, %s"
      % (r, t, rate, curl, rate / curl, "exactly once" if ok else "WRONG: %s finals=%d" % (st, finals)))
PY
  tail -1 "$OUT/rounds.txt"
  done
done
python3 - "$OUT/rounds.txt" <<'PY'
import re, statistics, sys
rows = [l for l in open(sys.argv[1]) if l.startswith("round")]
for t in sorted(set(re.search(r"http_threads=(\d+)", l).group(1) for l in rows)):
    rs = [l for l in rows if "http_threads=%s:" % t in l]
    d = [float(re.search(r"dispatcher (\d+)", l).group(1)) for l in rs]
    c = [float(re.search(r"multi (\d+)", l).group(1)) for l in rs]
    q = [float(re.search(r"ratio ([0-9.]+)", l).group(1)) for l in rs]
    print("http_threads=%s, median of %d rounds: dispatcher %.0f messages/s end to end; bare curl multi %.0f requests/s; ratio %.2f"
          % (t, len(rs), statistics.median(d), statistics.median(c), statistics.median(q)))
sys.exit(0 if rows and all("exactly once" in l for l in rows) else 1)
PY
