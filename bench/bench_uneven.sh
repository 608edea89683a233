#!/usr/bin/env bash
# bench_uneven.sh -- issue 13 item 4: two dispatchers, uneven backlog. The audience is drawn
# so that SHARE% (90) of its records land in the outbox partitions one dispatcher owns (the
# producer keys by the recipient's address; librdkafka's default partitioner is CRC-32 of the
# key mod 12): with partition leases (dispatcher.partition_leases, the default on the embedded
# broker) partition p belongs to the dispatcher of rank p mod 2, so the even partitions; with
# LEASES=false the group protocol and the range assignor give partitions 0-5 to one
# dispatcher, 6-11 to the other. Two runs side by side on the embedded broker, one vendor at
# RATE/s: dispatcher.rate_share "backlog" (each dispatcher's share of the rate follows its
# backlog, published on tocsin.backlog) and "partitions" (the old share: the partitions
# owned). Prints the emulator's acceptances per second of both runs beside the limit, then per
# run: seconds from the first to the last acceptance (ideal N / RATE), the seconds below 95% of
# the limit (the first and the last second left out), and the mean rate.
# Env: N (30000), RATE (1000), SHARE (90), LEASES (true).
source "$(dirname "$0")/lib.sh"
N=${N:-30000}
RATE=${RATE:-1000}
SHARE=${SHARE:-90}
LEASES=${LEASES:-true}
cfg() { # SIM RATE-SHARE
  cat > "$CFG" <<EOF
{"var_dir":"$OUT/var","kafka":{"partition.assignment.strategy":"range"},
 "quiet_hours":{"sms":{"enabled":false}},
 "vendors":[{"name":"twilio","kind":"twilio","base_url":"http://$1",
   "account":"ACbench000000000000000000000000000","secret_env":"TOCSIN_TWILIO_TOKEN",
   "senders":{"main":{"from":"+15005550006"}},"rate_per_s":$RATE,"max_in_flight":128}],
 "routes":{"sms":{"vendors":["twilio"]}},"dispatcher":{"max_in_flight":256,"rate_share":"$2","partition_leases":$LEASES}}
EOF
}
export TOCSIN_TWILIO_TOKEN=bench-token
audience() { # FILE: N numbers, SHARE% of them keyed into one dispatcher's partitions
  python3 - "$1" "$N" "$SHARE" "$LEASES" <<'PY'
import sys, zlib
path, n, share = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
mine = (lambda p: p % 2 == 0) if sys.argv[4] == "true" else (lambda p: p < 6)
want_low = n * share // 100
low = high = 0
with open(path, "w") as f:
    f.write("first_name,phone\n")
    i = 0
    while low + high < n:
        num = "+1%d%d%04d" % ((202, 212, 303, 415, 617, 718, 312, 512)[i // 100000], 234 + i // 10000 % 10, i % 10000)
        i += 1
        if mine(zlib.crc32(num.encode()) % 12):
            if low == want_low: continue
            low += 1
        else:
            if high == n - want_low: continue
            high += 1
        f.write("Pat%d,%s\n" % (i, num))
PY
}
run() { # RATE-SHARE
  bench_cleanup; BENCH_PIDS=()
  bench_setup "uneven_$1"
  cfg 127.0.0.1:9 "$1"
  bench_start_broker_sim
  cfg "$SIM" "$1"
  bench_bg d0 dispatch
  bench_bg d1 dispatch
  audience "$OUT/c.csv"
  printf '{"id":"c","audience":{"path":"c.csv","phone":"phone"},"sms":{"sender":"main","template":"Hi {{first_name}}, vote no on the cuts tonight."}}\n' > "$OUT/c.json"
  local t=0
  until grep -q 'event=catch_up_done partitions=12' "$OUT/d0.log" && grep -q 'event=catch_up_done partitions=12' "$OUT/d1.log"; do
    sleep 0.5; t=$((t + 1)); [ $t -lt 120 ] || { echo "$1: the two dispatchers did not split the partitions" >&2; exit 1; }
  done
  bench_bg launch launch --no-progress "$OUT/c.json"
  t=0
  until [ "$(bench_sim_accepted twilio)" -ge "$N" ]; do
    sleep 1; t=$((t + 1)); [ $t -lt 900 ] || { echo "$1: not done after 900 s" >&2; exit 1; }
  done
  bench_sim_stats > "$OUT/sim.json"
}
run backlog
run partitions
python3 - "$N" "$RATE" bench/out/uneven_backlog/sim.json bench/out/uneven_partitions/sim.json <<'PY'
import json, sys
n, rate = int(sys.argv[1]), int(sys.argv[2])
runs = []
for name, p in (("backlog", sys.argv[3]), ("partitions", sys.argv[4])):
    v = json.load(open(p))["vendors"]["twilio"]
    secs = dict((s, c) for s, c in v["per_second"] if c > 0)
    first, last = min(secs), max(secs)
    runs.append((name, [secs.get(s, 0) for s in range(first, last + 1)], v))
print("second  backlog  partitions  limit")
for i in range(max(len(r[1]) for r in runs)):
    cells = ["%7s" % (r[1][i] if i < len(r[1]) else "") for r in runs]
    print("%6d  %s  %10s  %5d" % (i, cells[0], cells[1].strip(), rate))
for name, per, v in runs:
    inner = per[1:-1]
    below = sum(1 for c in inner if c < 0.95 * rate)
    print("%s: %d s first to last acceptance (ideal %.0f), %d of %d inner seconds below 95%% of the limit, mean %.0f/s = %.2f of the limit, accepted %d, distinct %d"
          % (name, len(per), n / rate, below, len(inner), sum(per) / len(per), sum(per) / len(per) / rate, v["accepted"], v["unique_ids"]))
PY
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
