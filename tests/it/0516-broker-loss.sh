#!/usr/bin/env bash
# 0516-broker-loss: the embedded broker is killed (SIGKILL) mid-blast. The dispatcher cannot get
# its outcomes acknowledged any more: it says so in one line (event=broker_unreachable ...
# "sending paused"), sends nothing more to the vendor beyond what was already in flight, and
# still stops on SIGTERM without needing SIGKILL (it_stop allows 15 s; the time it took is
# printed). Nothing is committed past an unacknowledged outcome. The launch, still queueing
# (held back by --max-lag), logs the loss at once (event=broker_unreachable) and gives up with
# one line and exit status 1 within 30 s.
source "$(dirname "$0")/lib.sh"
it_setup 0516-broker-loss
cfg() { it_one_sms_vendor '"senders":{"main":{"from":"+15005550006"}}, "rate_per_s": 500' '"dispatcher": {"max_in_flight": 32}'; }
cfg
it_start_broker
it_start_sim
cfg
it_bg dispatch dispatch
it_gen_audience "$OUT/a.csv" 20000 0
it_campaign "$OUT/c.json" loss a.csv
it_bg launch launch --max-lag 2000 --no-progress "$OUT/c.json"
sim_accepted() { it_sim_stats | it_jq 'j["vendors"]["twilio"]["accepted"]'; }
at_least() { [ "$(sim_accepted)" -ge "$1" ]; }
it_wait_until 40 at_least 1000 || it_fail "the blast did not start"
kill -0 "$PID_launch" 2>/dev/null || it_fail "the launch ended before the broker was killed: $(tail -3 "$OUT/launch.log")"
kill -KILL "$PID_broker"
tk=$(date +%s%N)
echo "broker killed at $(sim_accepted) accepted"
it_wait_until 3 grep -q 'event=broker_unreachable .*the launch gives up after 20 s' "$OUT/launch.log" \
  || it_fail "the launch did not log the loss within 3 s: $(tail -3 "$OUT/launch.log")"
it_wait_until 20 grep -q 'event=broker_unreachable .*outcomes held, sending paused' "$OUT/dispatch.log" \
  || it_fail "no broker_unreachable line"
grep 'event=broker_unreachable' "$OUT/dispatch.log" | sed 's/^.*event=/event=/'
a1=$(sim_accepted)
sleep 2
a2=$(sim_accepted)
echo "emulator: $a1 accepted when the dispatcher paused, $a2 two seconds later"
# only requests already in flight may still land (dispatcher.max_in_flight = 32)
[ $((a2 - a1)) -le 32 ] || it_fail "$((a2 - a1)) more sends after sending was paused"
[ "$a2" -lt 20000 ] || it_fail "the blast finished: the broker loss was not noticed"
launch_gone() { ! kill -0 "$PID_launch" 2>/dev/null; }
it_wait_until 30 launch_gone || it_fail "the launch still runs 30 s after the broker loss"
rc=0; wait "$PID_launch" || rc=$?
echo "the launch exited $rc, $(( ($(date +%s%N) - tk) / 1000000 )) ms after the broker loss: $(grep 'tocsin launch:' "$OUT/launch.log")"
[ "$rc" = 1 ] || it_fail "launch exit status $rc, want 1"
[ "$(grep -c 'the Kafka broker has been unreachable since .*run the same command again once it is back' "$OUT/launch.log")" = 1 ] \
  || it_fail "no single clear line from the launch: $(tail -3 "$OUT/launch.log")"
t0=$(date +%s%N)
it_stop "$PID_dispatch" || it_fail "the dispatcher ignored SIGTERM (needed SIGKILL)"
echo "the dispatcher stopped $(( ($(date +%s%N) - t0) / 1000000 )) ms after SIGTERM"
grep -q 'event=stop_unacknowledged' "$OUT/dispatch.log" || it_fail "no stop_unacknowledged line"
grep -q 'event=dispatch_stopped' "$OUT/dispatch.log" || it_fail "the dispatcher did not finish its shutdown"
echo "ok: broker loss paused sending ($a1 -> $a2) and SIGTERM was honoured"
