#!/usr/bin/env bash
# bench_kill_loop.sh -- issue 13 item 4: two dispatchers, one of them killed (SIGKILL) and
# started again every EVERY s, KILLS times, during a blast of N at RATE/s (the vendor's
# limit). Three runs side by side on the embedded broker: undisturbed; kills with partition
# leases (dispatcher.partition_leases, the default with the embedded broker: the survivor takes
# a dead one's partitions at its next lease tick, a restarted one gets its share back after a
# drain, dispatcher/README.md); kills with the group protocol (partition_leases false:
# session.timeout.ms 10000, heartbeat 1000, eager rebalancing, the range assignor). Set
# KAFKA to add kafka properties to the group run (e.g.
# KAFKA='{"partition.assignment.strategy":"cooperative-sticky"}'). Prints per run the seconds
# from the first to the last acceptance at the emulator, the seconds with zero acceptances
# after the first 10, and the emulator's accepted / distinct counts; then the ratios to the
# undisturbed run. Static membership is not measured: the embedded broker (librdkafka
# 2.0.2's mock) ignores group.instance.id (dispatcher/README.md).
# Env: N (100000), RATE (2500), KILLS (12), EVERY (4), KAFKA ({}), RUNS (the runs to make, of
# "undisturbed kills_leases kills_group", all three by default; the ratios need undisturbed).
# Each run also prints its catch-ups (how long partitions were held, tocsin.status records/s)
# and its acceptances per second.
source "$(dirname "$0")/lib.sh"
N=${N:-100000}
RATE=${RATE:-2500}
KILLS=${KILLS:-12}
EVERY=${EVERY:-4}
cfg() { # SIM KAFKA-JSON DISPATCHER-MEMBERS
  cat > "$CFG" <<EOF
{"var_dir":"$OUT/var","kafka":$2,"quiet_hours":{"sms":{"enabled":false}},
 "vendors":[{"name":"twilio","kind":"twilio","base_url":"http://$1",
   "account":"ACbench000000000000000000000000000","secret_env":"TOCSIN_TWILIO_TOKEN",
   "senders":{"main":{"from":"+15005550006"}},"rate_per_s":$RATE,"max_in_flight":128}],
 "routes":{"sms":{"vendors":["twilio"]}},"dispatcher":{"max_in_flight":256$3}}
EOF
}
export TOCSIN_TWILIO_TOKEN=bench-token
run() { # NAME KILLS KAFKA-JSON DISPATCHER-MEMBERS
  bench_cleanup; BENCH_PIDS=()
  bench_setup "kill_loop_$1"
  cfg 127.0.0.1:9 "$3" "$4"
  bench_start_broker_sim
  cfg "$SIM" "$3" "$4"
  bench_bg d0 dispatch; local pids=($BG_PID)
  bench_bg d1 dispatch; pids+=($BG_PID)
  bench_sms_campaign c "$N"
  sleep 3 # both in the group
  bench_bg launch launch --no-progress "$OUT/c.json"
  for ((k = 0; k < $2; k++)); do
    sleep "$EVERY"
    local i=$((k % 2))
    kill -KILL "${pids[$i]}" 2>/dev/null || true
    bench_bg "d$i-$k" dispatch; pids[$i]=$BG_PID
  done
  local t=0
  until [ "$(bench_sim_accepted twilio)" -ge "$N" ]; do
    sleep 1; t=$((t + 1)); [ $t -lt 900 ] || { echo "$1: not done after 900 s" >&2; exit 1; }
  done
  bench_sim_stats > "$OUT/sim.json"
  python3 - "$1" "$OUT/sim.json" "$OUT" <<'PY' | tee "$OUT/result.txt"
import glob, json, re, sys
name, j = sys.argv[1], json.load(open(sys.argv[2]))
v = j["vendors"]["twilio"]
secs = dict((s, n) for s, n in v["per_second"] if n > 0)
first, last = min(secs), max(secs)
zero = sum(1 for s in range(first + 10, last + 1) if s not in secs)
print("%s: %d s first to last acceptance, %d s with none after the first 10, accepted %d, distinct %d"
      % (name, last - first + 1, zero, v["accepted"], v["unique_ids"]))
# the catch-ups that held partitions (dispatcher/README.md): how long, how many records
cu = []
for f in glob.glob(sys.argv[3] + "/d*.log"):
    for m in re.finditer(r"event=catch_up_done partitions=\d+ ms=(\d+) status_read=(\d+)", open(f).read()):
        cu.append((int(m.group(1)), int(m.group(2))))
cu = [c for c in cu if c[1] > 0]
if cu:
    ms = sorted(c[0] for c in cu)
    print("  %d catch-ups reading tocsin.status: median %d ms, max %d ms; %d records/s overall"
          % (len(ms), ms[len(ms) // 2], ms[-1], sum(c[1] for c in cu) * 1000 // max(1, sum(ms))))
print("  per second: " + " ".join("%d:%d" % (s - first, secs.get(s, 0)) for s in range(first, last + 1)))
PY
}
RUNS=${RUNS:-undisturbed kills_leases kills_group}
for r in $RUNS; do
  case $r in
    undisturbed) run undisturbed 0 '{}' '' ;;
    kills_leases) run kills_leases "$KILLS" '{}' '' ;;
    kills_group) run kills_group "$KILLS" "${KAFKA:-{\}}" ',"partition_leases":false' ;;
    *) echo "RUNS: unknown run $r" >&2; exit 2 ;;
  esac
done
base=$(grep -o '[0-9]* s first' bench/out/kill_loop_undisturbed/result.txt | cut -d' ' -f1)
for r in $RUNS; do
  [ "$r" != undisturbed ] || continue
  s=$(grep -o '[0-9]* s first' "bench/out/kill_loop_$r/result.txt" | cut -d' ' -f1)
  echo "$r: $(python3 -c "print('%.2f' % ($s / $base))") x the undisturbed time (target <= 1.5)"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
