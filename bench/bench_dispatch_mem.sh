#!/usr/bin/env bash
# bench_dispatch_mem.sh -- a dispatcher's peak memory with N messages waiting in the outbox and
# every vendor down (connections refused): consumption must pause instead of piling messages up.
#   bench/bench_dispatch_mem.sh [N (default 2000000)] [SECONDS (default 30)]
# Prints the dispatcher's peak RSS (VmHWM) and checks that consumption paused, that nothing
# was accepted, that it kept polling (group membership) while paused, and that the peak stays
# within 100 MB.
source "$(dirname "$0")/lib.sh"
N=${1:-2000000}
SECS=${2:-30}
bench_setup bench_dispatch_mem
export TOCSIN_TWILIO_TOKEN=bench-token
cfg() { bench_twilio_cfg '"main": {"from": "+15005550006"}' '"timeout_ms": 2000' '"kafka": {"max.poll.interval.ms": "10000"}'; }
cfg
# 2M messages need more partitions than the default 12 to fit the embedded broker's
# per-partition retention (5 MiB each).
bench_start_broker_sim --outbox-partitions 120
cfg
bench_sim_fault '{"vendor":"twilio","outage":"refuse"}'
bench_sms_campaign mem "$N"
echo "== launching $N messages"
"$B" -c "$CFG" launch --max-lag 0 --no-progress "$OUT/mem.json" > "$OUT/launch.out" 2>&1
tail -2 "$OUT/launch.out"
echo "== one dispatcher, every vendor refusing connections, for $SECS s"
bench_bg dispatch dispatch; DSP=$BG_PID
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
# max.poll.interval.ms is 10 s here: a dispatcher that stopped polling while paused would be
# thrown out of the group within the 30 s
if grep -qi 'maximum poll interval' "$OUT/dispatch.log"; then
  echo "the dispatcher stopped polling its consumer while paused (left the group):" >&2
  grep -i 'maximum poll interval' "$OUT/dispatch.log" | head -2 >&2; exit 1
fi
echo "still a member of the group while paused: yes"
accepted=$(grep -o 'accepted=[0-9]*' <<< "$pending" | cut -d= -f2)
[ "$accepted" = 0 ] || { echo "messages were accepted while every vendor was down?" >&2; exit 1; }
python3 -c "print('dispatcher peak RSS with $N messages waiting and every vendor down: %.1f MB (target <= 100 MB)' % ($peak / 1024))"
[ "$peak" -le $((100 * 1024)) ] || { echo "peak RSS above 100 MB" >&2; exit 1; }
