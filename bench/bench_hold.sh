#!/usr/bin/env bash
# bench_hold.sh -- issue 16: held messages cost the dispatchers nothing. Side by side in one run,
# one dispatcher, one vendor limited at RATE/s: campaign b1 (N recipients) alone; then HELD
# messages of campaign h held for a send_at an hour ahead (into <var_dir>/hold.db); then campaign
# b2 (N, like b1) while they are held. Prints both rates and their ratio, the dispatcher's RSS,
# the launch time and store size of the held campaign; then starts `tocsin hold` an hour and a
# minute "later" (TOCSIN_NOW_OFFSET_MS) and prints how long until the vendor takes RATE/s of
# the released messages (the first 1-second bucket at >= 95% of RATE), checking SECS seconds of
# them for duplicates.
#   bench/bench_hold.sh [HELD (1000000)] [N (20000)] [RATE (2000)] [SECS (10)]
source "$(dirname "$0")/lib.sh"
HELD=${1:-1000000}; N=${2:-20000}; RATE=${3:-2000}; SECS=${4:-10}
bench_setup bench_hold
export TOCSIN_TWILIO_TOKEN=bench-token
cfg() { bench_twilio_cfg '"main": {"from": "+15005550006"}' "\"rate_per_s\": $RATE, \"burst\": 20" '"quiet_hours": {"sms": {"enabled": false}}'; }
cfg
bench_start_broker_sim --outbox-partitions 12
cfg
bench_start_track
bench_bg dispatch dispatch
DSP=$BG_PID
rss() { awk '/^VmRSS/ {print int($2/1024)}' "/proc/$DSP/status"; }
run_rate() { # CAMPAIGN: launch it, wait for all N accepted, print the rate over first..last
  "$B" -c "$CFG" launch --no-progress "$OUT/$1.json" > "$OUT/launch-$1.out" 2>&1
  for _ in $(seq $((N * 20 / RATE + 600))); do
    read -r n first last < <(bench_accepted "$1"); [ "$n" -ge "$N" ] && break; sleep 0.2
  done
  python3 -c "import sys; n,f,l=map(int,sys.argv[1:]); print('%.1f' % ((n-1)*1000.0/max(1,l-f)))" "$n" "$first" "$last"
}
bench_sms_campaign b1 "$N"
bench_sms_campaign b2 "$N"
python3 - "$OUT/h.csv" "$HELD" <<'PY'
import sys
p, n = sys.argv[1], int(sys.argv[2])
with open(p, "w") as f:
    f.write("first_name,phone\n")
    for i in range(n):
        f.write("H%d,+1%d%03d%04d\n" % (i, [646, 917, 347, 929, 332, 718, 212, 201, 551, 862, 973][i // 100000 % 11], 200 + i // 10000 % 10 * 50, i % 10000))
PY
SEND_AT=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
printf '{"id":"h","audience":{"path":"h.csv"},"sms":{"template":"Hi {{first_name}}, polls open at 7."},"send_at":"%s"}\n' "$SEND_AT" > "$OUT/h.json"
r1=$(run_rate b1); rss1=$(rss)
t0=$(date +%s%3N)
"$B" -c "$CFG" launch --no-progress "$OUT/h.json" > "$OUT/launch-h.out" 2>&1
t1=$(date +%s%3N)
held=$(sqlite3 "$OUT/var/hold.db" "SELECT count(*) FROM held WHERE state=0")
size=$(du -m "$OUT/var/hold.db" | cut -f1)
r2=$(run_rate b2); rss2=$(rss)
hwm=$(awk '/^VmHWM/ {print int($2/1024)}' "/proc/$DSP/status")
echo "held: $held messages in $(( (t1 - t0) / 1000 )).$(( (t1 - t0) % 1000 / 100 )) s of launch, hold.db $size MB"
echo "b1 alone: $r1 msg/s; b2 with $held held: $r2 msg/s; ratio $(python3 -c "print('%.3f' % ($r2/$r1))")"
echo "dispatcher RSS: $rss1 MB after b1, $rss2 MB after b2 (peak $hwm MB)"
# the release, an hour and a minute later
ts=$(date +%s%3N)
TOCSIN_NOW_OFFSET_MS=3660000 bench_bg hold hold
sleep "$SECS"
kill -TERM "$BG_PID"
sleep 3
sqlite3 "file:$OUT/var/tocsin.db?mode=ro" \
  "SELECT ts_ms FROM msgs WHERE campaign='h' AND state=2 ORDER BY ts_ms" > "$OUT/accepted_ts.txt"
bench_sim_stats > "$OUT/stats.json"
python3 - "$OUT/accepted_ts.txt" "$ts" "$RATE" "$OUT/stats.json" "$r1" "$r2" "$hwm" <<'PY'
import json, sys
t = [int(l) for l in open(sys.argv[1]) if l.strip()]
ts, rate = int(sys.argv[2]), int(sys.argv[3])
st = json.load(open(sys.argv[4]))["vendors"]["twilio"]
r1, r2, hwm = float(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7])
def reach(want):
    """the end of the first sliding 1-second window (ending at an acceptance) holding >= want"""
    i = 0
    for j in range(len(t)):
        while t[j] - t[i] >= 1000:
            i += 1
        if j - i + 1 >= want:
            return t[j]
    return None
hit, hit1 = reach(0.95 * rate), reach(0.95 * r1)
per = [sum(1 for x in t if ts + k * 1000 <= x < ts + (k + 1) * 1000) for k in range(10)]
print("release: first accepted +%.2f s after tocsin hold started; a 1-second window at >= 95%% of %d/s ends at +%.2f s"
      % (((t[0] - ts) / 1000.0) if t else -1, rate, ((hit - ts) / 1000.0) if hit else -1))
print("  ... and at >= 95%% of b1's measured rate (%.0f/s) ends at +%.2f s" % (r1, ((hit1 - ts) / 1000.0) if hit1 else -1))
print("accepted per second since the start:", " ".join(map(str, per)))
print("emulator: accepted %d, unique %d, sent twice %d" % (st["accepted"], st["unique_ids"], st["duplicate_count"]))
ok = st["duplicate_count"] == 0 and hit is not None and r2 / r1 >= 0.95 and hwm <= 100
print("bench_hold: %s" % ("ok" if ok else "FAILED"))
sys.exit(0 if ok else 1)
PY
