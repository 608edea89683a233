#!/usr/bin/env bash
# bench_hol.sh -- no head-of-line blocking (issue 12): one SMS vendor with a "slow" pool (one
# number at 1 segment/s) and a "fast" pool limited at FAST segments/s. Round 1: a FAST_N
# campaign on the fast pool alone. Round 2, in the same run: a SLOW_N campaign on the slow pool
# launched together with a second FAST_N campaign on the fast pool. Prints the fast campaign's
# rate in each round (first to last acceptance) and their ratio (issue: >= 0.95).
#   bench/bench_hol.sh [FAST (1000)] [FAST_N (20000)] [SLOW_N (300)]
source "$(dirname "$0")/lib.sh"
FAST=${1:-1000}; FAST_N=${2:-20000}; SLOW_N=${3:-300}
bench_setup bench_hol
export TOCSIN_TWILIO_TOKEN=bench-token
cfg() { bench_twilio_cfg "\"slow\": {\"from\": \"+15005550007\", \"rate_per_number\": 1}, \"fast\": {\"from\": \"+15005550006\", \"rate_per_number\": $FAST}" '"burst": 10'; }
cfg
bench_start_broker_sim
cfg
bench_start_track
bench_sms_campaign alone "$FAST_N" fast
bench_sms_campaign slow "$SLOW_N" slow
bench_sms_campaign together "$FAST_N" fast
bench_bg dispatch dispatch
# rate CAMPAIGN: wait until all FAST_N are accepted, print msg/s from first to last
rate() {
  for _ in $(seq $((FAST_N * 20 / FAST + 600))); do
    read -r n first last < <(bench_accepted "$1")
    [ "$n" -ge "$FAST_N" ] && break; sleep 0.25
  done
  python3 -c 'import sys; n,a,b=map(int,sys.argv[1:]); print("%.1f" % ((n - 1) * 1000.0 / max(1, b - a)))' "$n" "$first" "$last"
}
"$B" -c "$CFG" launch --max-lag 0 --no-progress "$OUT/alone.json" > "$OUT/launch-alone.out" 2>&1
r1=$(rate alone)
"$B" -c "$CFG" launch --max-lag 0 --no-progress "$OUT/slow.json" > "$OUT/launch-slow.out" 2>&1
"$B" -c "$CFG" launch --max-lag 0 --no-progress "$OUT/together.json" > "$OUT/launch-together.out" 2>&1
r2=$(rate together)
read -r slow_n _ _ < <(bench_accepted slow)
bench_sim_stats > "$OUT/stats.json"
python3 - "$OUT/stats.json" "$r1" "$r2" "$slow_n" "$FAST" <<'PY'
import json, sys
st = json.load(open(sys.argv[1]))["vendors"]["twilio"]
r1, r2, slow, fast = float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
print("fast pool alone %.1f msg/s; beside the slow pool %.1f msg/s; ratio %.3f (slow pool meanwhile: %d accepted at 1/s)"
      % (r1, r2, r2 / r1, slow))
ok = st["duplicate_count"] == 0 and r2 / r1 >= 0.95 and r1 <= fast * 1.01 + 1
print("check:", "OK" if ok else "WRONG")
sys.exit(0 if ok else 1)
PY
