#!/usr/bin/env bash
# 0506-cancel-pause: campaign controls mid-blast. Pause: nothing of the campaign reaches the
# emulator while paused, and resume finishes it. Cancel: within about a second every
# dispatcher has seen it, no message of that campaign reaches the emulator afterwards, and
# the rest become "cancelled" without being sent.
source "$(dirname "$0")/lib.sh"
it_setup 0506-cancel-pause
V='"rate_per_s": 300, "burst": 10'
it_two_sms_vendors "$V"
it_start_broker
it_start_sim
it_start_track
IT_EXTRA_TOP="\"tracker\": {\"public_url\": \"http://$TRACK\"}" it_two_sms_vendors "$V"
it_bg dispatch dispatch
sim_total() { it_sim_stats | it_jq 'sum(v["accepted"] for v in j["vendors"].values())'; }
at_least() { [ "$(sim_total)" -ge "$1" ]; }
all_final() { [ "$(it_final_count "$1")" -ge "$2" ]; }
# campaign controls name a campaign the tracker knows: a dispatcher that starts sending at once
# (partition leases) reaches 300 before the tracker has applied anything
known() { "$TOCSIN_BIN" -c "$CFG" status "$1" > /dev/null 2>&1; }
PN=3000 # the pause campaign: large enough not to finish before the pause on a busy machine

# --- pause / resume
it_gen_audience "$OUT/p.csv" $PN 0
it_campaign "$OUT/p.json" pau1 p.csv
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/p.json" > "$OUT/launch-p.out" 2>&1 || it_fail "launch p"
it_wait_until 40 at_least 300 || it_fail "pause blast did not start"
it_wait_until 20 known pau1 || it_fail "the tracker does not know pau1"
"$TOCSIN_BIN" -c "$CFG" campaign pause pau1 > "$OUT/pause.out" 2>&1 || it_fail "pause: $(cat "$OUT/pause.out")"
it_wait_until 10 grep -q 'event=campaign_state campaign=pau1 state=paused' "$OUT/dispatch.log" || it_fail "pause not seen"
sleep 0.5
p1=$(sim_total); sleep 2; p2=$(sim_total)
echo "paused at $p1, two seconds later $p2"
[ "$p1" = "$p2" ] || it_fail "messages reached the emulator while paused ($p1 -> $p2)"
[ "$p1" -lt $PN ] || it_fail "the blast finished before the pause could be tested"
# A dispatcher holding a paused campaign's messages still stops promptly on SIGTERM (they
# stay in Kafka, uncommitted), and its replacement picks them up.
t0=$(date +%s%3N)
it_stop "$PID_dispatch" || it_fail "dispatcher holding paused messages did not stop on SIGTERM"
echo "dispatcher with paused messages stopped in $(( $(date +%s%3N) - t0 )) ms"
[ $(( $(date +%s%3N) - t0 )) -le 10000 ] || it_fail "SIGTERM took more than 10 s"
mv "$OUT/dispatch.log" "$OUT/dispatch-1.log"
it_bg dispatch dispatch
"$TOCSIN_BIN" -c "$CFG" campaign resume pau1 > "$OUT/resume.out" 2>&1 || it_fail "resume: $(cat "$OUT/resume.out")"
it_wait_until 60 all_final pau1 $PN || it_fail "pau1: only $(it_final_count pau1) final after resume"
[ "$(it_status_field pau1 'j["states"].get("accepted",0)')" = $PN ] || it_fail "pau1: not all accepted"

# --- cancel
base=$(sim_total)
it_gen_audience "$OUT/c.csv" 4000 $PN
it_campaign "$OUT/c.json" can1 c.csv
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c.json" > "$OUT/launch-c.out" 2>&1 || it_fail "launch c"
it_wait_until 40 at_least $((base + 500)) || it_fail "cancel blast did not start"
it_wait_until 20 known can1 || it_fail "the tracker does not know can1"
t0=$(date +%s%3N)
"$TOCSIN_BIN" -c "$CFG" campaign cancel can1 > "$OUT/cancel.out" 2>&1 || it_fail "cancel: $(cat "$OUT/cancel.out")"
it_wait_until 10 grep -q 'event=campaign_state campaign=can1 state=cancelled' "$OUT/dispatch.log" || it_fail "cancel not seen"
seen=$(date +%s%3N)
sleep 0.3   # the requests already on the wire at that instant land
c1=$(sim_total); sleep 3; c2=$(sim_total)
echo "cancel seen by the dispatcher $((seen - t0)) ms after the command; emulator at $c1, 3 s later $c2"
[ "$c1" = "$c2" ] || it_fail "messages of a cancelled campaign reached the emulator ($c1 -> $c2)"
[ $((seen - t0)) -le 2000 ] || it_fail "cancel took $((seen - t0)) ms to reach the dispatcher"
it_wait_until 30 all_final can1 4000 || it_fail "can1: only $(it_final_count can1) final"
"$TOCSIN_BIN" -c "$CFG" status can1 --json > "$OUT/can1.json"; cat "$OUT/can1.json"
acc=$(it_jq 'j["states"].get("accepted",0)' "$OUT/can1.json")
can=$(it_jq 'j["states"].get("cancelled",0)' "$OUT/can1.json")
[ $((acc + can)) = 4000 ] || it_fail "accepted $acc + cancelled $can != 4000"
[ "$can" -gt 1000 ] || it_fail "only $can cancelled"
[ "$acc" = $((c2 - base)) ] || it_fail "tracker accepted $acc but the emulator got $((c2 - base))"
echo "ok: pause held, resume finished; cancel: $acc sent, $can cancelled, none after the cancel"
