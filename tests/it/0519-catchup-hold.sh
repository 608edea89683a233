#!/usr/bin/env bash
# 0519-catchup-hold: a dispatcher killed (SIGKILL) mid-blast is replaced by one whose catch-up
# of tocsin.status is slow (TOCSIN_DSP_STATE_READ_PER_S caps its state reader, as a long status
# topic on a busy machine does: issue 13, the drill's kill scenario at load 20). The killed one's
# ledger is removed, as if the new one ran on another machine, so only tocsin.status says who was
# sent. A vendor that fails 10% of requests keeps partition heads retrying, so many outcomes are
# published while their offsets are not yet committed. The new dispatcher must not send any of
# its partitions' records before it has read tocsin.status up to where it ended at the
# assignment, however long that takes: recipients messaged twice (the emulator's duplicate
# counter) stay within dispatcher.max_in_flight, the sends in flight at the kill. A dispatcher
# waiting so still stops within 5 s of SIGTERM.
source "$(dirname "$0")/lib.sh"
it_setup 0519-catchup-hold
N=5000
MIF=32
cfg() {
  it_one_sms_vendor '"senders":{"main":{"from":"+15005550006"}}, "rate_per_s": 500' \
    "\"dispatcher\": {\"max_in_flight\": $MIF, \"retry_base_ms\": 3000, \"retry_max_ms\": 6000, \"retry_budget\": 1.0}"
}
cfg
it_start_broker
it_start_sim
it_start_track
cfg
it_sim_fault '{"vendor":"twilio","error_rate":0.1}'
it_bg dispatch1 dispatch
it_gen_audience "$OUT/a.csv" $N 0
it_campaign "$OUT/c.json" hold a.csv
"$TOCSIN_BIN" -c "$CFG" launch --no-progress "$OUT/c.json" > "$OUT/launch.out" 2>&1 || it_fail "launch"
sim_accepted() { it_sim_stats | it_jq 'j["vendors"]["twilio"]["accepted"]'; }
at_least() { [ "$(sim_accepted)" -ge "$1" ]; }
it_wait_until 60 at_least 2000 || it_fail "the blast did not get going"
kill -KILL "$PID_dispatch1"
echo "killed the dispatcher (SIGKILL) at $(sim_accepted) accepted"
rm -f "$VAR"/ledger/*.ids
TOCSIN_DSP_STATE_READ_PER_S=100 it_bg dispatch2 dispatch
all_final() { [ "$(it_final_count hold)" -ge $N ]; }
it_wait_until 150 all_final || it_fail "only $(it_final_count hold) of $N final after the restart"
sleep 1 # nothing more may come
it_sim_stats > "$OUT/sim.json"
uniq=$(it_jq 'j["vendors"]["twilio"]["unique_ids"]' "$OUT/sim.json")
dups=$(it_jq 'j["vendors"]["twilio"]["duplicate_count"]' "$OUT/sim.json")
grep -q 'event=state_read_capped' "$OUT/dispatch2.log" || it_fail "the restarted dispatcher's reader was not slowed"
grep 'event=catch_up' "$OUT/dispatch2.log" | head -3 || true
echo "emulator: $uniq distinct, $dups sent twice (bound $MIF)"
[ "$uniq" = $N ] || it_fail "emulator accepted $uniq distinct ids, want $N"
[ "$dups" -le $MIF ] || it_fail "$dups recipients messaged twice, bound $MIF (max_in_flight)"
grep -q 'already_done=[1-9]' "$OUT/dispatch2.log" || it_fail "the restarted dispatcher found nothing already done: the test did not exercise the catch-up"
# SIGTERM is honoured while a catch-up holds sends: a third dispatcher with a reader slower
# still joins, waits (logged with its progress), and stops within 5 s of SIGTERM.
TOCSIN_DSP_STATE_READ_PER_S=20 it_bg dispatch3 dispatch
it_wait_until 60 grep -q 'event=catch_up_waiting' "$OUT/dispatch3.log" || it_fail "the third dispatcher did not say it was waiting for its catch-up"
grep -q 'of [0-9]* records read' "$OUT/dispatch3.log" || it_fail "the wait line has no progress"
t0=$(date +%s%N)
it_stop "$PID_dispatch3" || it_fail "the dispatcher waiting for its catch-up ignored SIGTERM"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "stopped $ms ms after SIGTERM while catching up"
[ "$ms" -le 5000 ] || it_fail "stopped $ms ms after SIGTERM, want <= 5000"
echo "ok: restarted under a slow catch-up, $dups of $N sent twice (bound $MIF)"
