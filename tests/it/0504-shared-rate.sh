#!/usr/bin/env bash
# 0504-shared-rate: two dispatchers on one vendor limited to R = 200 messages/s. Each takes
# R x its share, which follows its backlog as the other publishes it on tocsin.backlog
# (dispatcher/README.md): the emulator never sees more than R (+ the burst of 1 each) in any
# wall-clock second.
# it-serial: it counts sends per wall-clock second against the rate limit
source "$(dirname "$0")/lib.sh"
it_setup 0504-shared-rate
R=200
cfg() {
  it_write_config "\"vendors\": [{\"name\":\"twilio\",\"kind\":\"twilio\",\"base_url\":\"http://${SIM:-127.0.0.1:9}\",
    \"account\":\"ACit00000000000000000000000000000\",\"secret_env\":\"TOCSIN_TWILIO_TOKEN\",
    \"senders\":{\"main\":{\"from\":\"+15005550006\"}}, \"rate_per_s\": $R}],
    \"tracker\": {\"public_url\": \"http://${TRACK:-127.0.0.1:9}\"}"
}
cfg
it_start_broker
it_start_sim
it_start_track
cfg
it_bg dispatch1 dispatch
it_bg dispatch2 dispatch
# both members of the group before the blast
it_wait_until 30 grep -Eq 'event=(assigned|lease_acquired|lease_released) partitions=6 of=12' "$OUT/dispatch2.log" || it_fail "second dispatcher never got its half"
it_wait_until 30 grep -Eq 'event=(assigned|lease_acquired|lease_released) partitions=6 of=12' "$OUT/dispatch1.log" || it_fail "first dispatcher never got its half"
it_gen_audience "$OUT/a.csv" 3000 0
it_campaign "$OUT/c.json" rate a.csv
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c.json" > "$OUT/launch.out" 2>&1 || it_fail "launch"
all_final() { [ "$(it_final_count rate)" -ge 3000 ]; }
it_wait_until 60 all_final || it_fail "only $(it_final_count rate) of 3000 final"
it_sim_stats > "$OUT/sim.json"
python3 - "$OUT/sim.json" "$R" <<'PY' || it_fail "rate limit exceeded"
import json, sys
st = json.load(open(sys.argv[1]))["vendors"]["twilio"]
r = int(sys.argv[2])
secs = st["per_second"]
print("per second:", [c for _, c in secs])
full = sorted(c for _, c in secs[1:-1])   # the first and last seconds are partial
assert st["accepted"] == 3000 and st["unique_ids"] == 3000 and st["duplicate_count"] == 0, st
assert max(c for _, c in secs) <= r + 2, "a second above R + burst: %d" % max(c for _, c in secs)
# The median second: the first and last seconds are partial.
rate = full[len(full) // 2]
# How close to R they get is a speed figure (bench/bench_rate.sh measures it on a quiet
# machine); here it is only printed, since a busy machine slows both dispatchers.
print("steady (median) rate %d/s with two dispatchers sharing R = %d" % (rate, r))
PY
echo "ok: two dispatchers shared the vendor's $R/s"
