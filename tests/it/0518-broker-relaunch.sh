#!/usr/bin/env bash
# 0518-broker-relaunch: the embedded broker is killed (SIGKILL) mid-blast with two dispatchers,
# then RUNBOOK.md §5 is followed as written: stop what runs (SIGTERM, nobody needs SIGKILL),
# start the broker again, then the tracker and the dispatchers, and relaunch with the same
# command (event=outbox_reset: everyone queued again). The dispatchers' ledgers
# (var/ledger/) keep whoever a vendor already took from being sent again: every recipient
# reaches the emulator, and those reached twice are at most dispatcher.max_in_flight x 2.
source "$(dirname "$0")/lib.sh"
it_setup 0518-broker-relaunch
N=8000
MIF=32
cfg() { it_one_sms_vendor '"senders":{"main":{"from":"+15005550006"}}, "rate_per_s": 800' "\"dispatcher\": {\"max_in_flight\": $MIF}"; }
cfg
it_start_broker
it_start_sim
it_start_track
cfg
it_bg dispatch1 dispatch
it_bg dispatch2 dispatch
it_gen_audience "$OUT/a.csv" $N 0
it_campaign "$OUT/c.json" relaunch a.csv
it_bg launch launch --max-lag 1000 --no-progress "$OUT/c.json"
sim_accepted() { it_sim_stats | it_jq 'j["vendors"]["twilio"]["accepted"]'; }
at_least() { [ "$(sim_accepted)" -ge "$1" ]; }
it_wait_until 40 at_least 2500 || it_fail "the blast did not start"
kill -KILL "$PID_broker"
echo "broker killed at $(sim_accepted) accepted"
for d in dispatch1 dispatch2; do
  it_wait_until 5 grep -q 'event=broker_unreachable' "$OUT/$d.log" || it_fail "$d did not notice the loss"
done
# RUNBOOK §5: stop what still runs; each honours SIGTERM
for p in "$PID_dispatch1" "$PID_dispatch2" "$PID_track"; do
  it_stop "$p" || it_fail "pid $p needed SIGKILL"
done
launch_gone() { ! kill -0 "$PID_launch" 2>/dev/null; }
it_wait_until 30 launch_gone || it_fail "the launch still runs 30 s after the broker loss"
before=$(sim_accepted)
echo "the emulator had $before accepted when everything stopped"
# ... start it all again: the broker, the tracker, every dispatcher; relaunch the same command
rm -f "$VAR/run/broker.bootstrap" "$VAR/run/track.addr"
it_start_broker
it_start_track
cfg
it_bg dispatch3 dispatch
it_bg dispatch4 dispatch
"$TOCSIN_BIN" -c "$CFG" launch --no-progress "$OUT/c.json" > "$OUT/relaunch.out" 2>&1 || it_fail "relaunch: $(tail -3 "$OUT/relaunch.out")"
grep -q 'event=outbox_reset' "$OUT/relaunch.out" || it_fail "the relaunch did not start over: $(tail -3 "$OUT/relaunch.out")"
uniq() { it_sim_stats | it_jq 'j["vendors"]["twilio"]["unique_ids"]'; }
all_there() { [ "$(uniq)" -ge $N ]; }
it_wait_until 40 all_there || it_fail "only $(uniq) of $N recipients reached the emulator"
all_final() { [ "$(it_final_count relaunch)" -ge $N ]; }
it_wait_until 20 all_final || it_fail "only $(it_final_count relaunch) of $N final in the tracker"
sleep 1 # nothing more may come
it_sim_stats > "$OUT/sim.json"
acc=$(it_jq 'j["vendors"]["twilio"]["accepted"]' "$OUT/sim.json")
dups=$(it_jq 'j["vendors"]["twilio"]["duplicate_count"]' "$OUT/sim.json")
led=$(grep -ho 'ledger_ids=[0-9]*' "$OUT/dispatch3.log" | cut -d= -f2)
echo "emulator: $acc accepted, $(it_jq 'j["vendors"]["twilio"]["unique_ids"]' "$OUT/sim.json") distinct, $dups twice; ledgers read at restart: $led ids"
[ "$led" -ge 1 ] || it_fail "the restarted dispatcher read no ledger"
[ "$dups" -le $((MIF * 2)) ] || it_fail "$dups recipients messaged twice, bound $((MIF * 2))"
[ "$acc" = $((N + dups)) ] || it_fail "accepted $acc != $N + $dups"
echo "ok: broker lost at $before accepted, relaunched: $N reached, $dups twice (bound $((MIF * 2)))"
