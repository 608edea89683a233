#!/usr/bin/env bash
# 0125-up-restart: `tocsin up` on its own ports (emulator port from the vendors' base_url, the
# tracker on port 0) starts broker, emulator, tracker and one dispatcher per channel; a
# dispatcher killed with SIGKILL is started again after 1 s, then 2 s (crash-loop backoff),
# and the campaign still reaches everyone exactly once; SIGTERM stops every process, exit 0.
source "$(dirname "$0")/lib.sh"
it_setup 0125-up-restart
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
P=$(it_free_port)
export TOCSIN_SENDGRID_KEY=it-sendgrid-key TOCSIN_UNSUB_KEY=it-unsubscribe-key-0125
it_write_config '"vendors":[
  {"name":"twilio","kind":"twilio","base_url":"http://127.0.0.1:'"$P"'","account":"ACit00000000000000000000000000000","secret_env":"TOCSIN_TWILIO_TOKEN","senders":{"main":{"from":"+15005550006"}}},
  {"name":"sendgrid","kind":"sendgrid","base_url":"http://127.0.0.1:'"$P"'","account":"-","secret_env":"TOCSIN_SENDGRID_KEY","senders":{"main":{"from":"news@example.org"}}}],
  "tracker":{"listen":"127.0.0.1:0","public_url":"http://127.0.0.1:9"}'
it_bg up up
it_wait_until 60 grep -q '^dashboard: http://127.0.0.1:[0-9]*/$' "$OUT/up.log" || it_fail "up did not start: $(cat "$OUT/up.log")"
cat "$OUT/up.log"
SIM=127.0.0.1:$P
[ "$(cat "$VAR/run/vendor-sim.addr")" = "$SIM" ] || it_fail "the emulator is not on the vendors' port $P"
for ch in sms email; do grep -q "dispatcher  up  ($ch: consumer group tocsin-dispatch-$ch)" "$OUT/up.log" || it_fail "no $ch dispatcher"; done
dpid() { pgrep -f "^$TOCSIN_BIN -c $CFG dispatch --channel sms$"; }
# up prints its line once it has forked; the child's command line is the dispatcher's once it execs
one_dispatcher() { [ "$(dpid | wc -l)" = 1 ]; }
it_wait_until 10 one_dispatcher || it_fail "not one sms dispatcher: $(dpid)"

# crash twice: restarted after 1 s, then after 2 s
for delay in 1 2; do
  old=$(dpid); kill -KILL "$old"
  it_wait_until 10 grep -q "dispatch-sms exited with status 137; starting it again in $delay s" "$OUT/up.log" \
    || it_fail "no restart notice with a $delay s delay: $(tail -3 "$OUT/up.log")"
  restarted() { [ -n "$(dpid)" ] && [ "$(dpid)" != "$old" ]; }
  it_wait_until 10 restarted || it_fail "the sms dispatcher was not started again"
done

cp "$ROOT/examples/rally.json" "$ROOT/examples/supporters.csv" "$OUT/"
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/rally.json" > "$OUT/launch.out" 2>&1 || it_fail "launch: $(cat "$OUT/launch.out")"
all_done() { [ "$(it_final_count rally)" = 400 ]; }
it_wait_until 60 all_done || it_fail "only $(it_final_count rally) of 400 final"
it_sim_stats | it_jq '[(k, v["accepted"], v["duplicate_count"]) for k, v in j["vendors"].items()]' | tee "$OUT/sim.txt"
grep -q '\["twilio", 200, 0\]' "$OUT/sim.txt" && grep -q '\["sendgrid", 200, 0\]' "$OUT/sim.txt" || it_fail "emulator counts"

kill -TERM "$PID_up"
it_wait_until 60 bash -c "! kill -0 $PID_up" || it_fail "up did not stop"
wait "$PID_up" || it_fail "up exited with status $?"
grep -q "^tocsin up: stopped everything it started$" "$OUT/up.log" || it_fail "no stop line"
pgrep -f "^$TOCSIN_BIN -c $CFG " && it_fail "processes left running"
[ ! -e "$VAR/run/up.pid" ] || it_fail "run/up.pid left behind"
echo "ok 0125-up-restart"
