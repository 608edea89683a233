#!/usr/bin/env bash
# 0520-partition-leases: with the embedded broker the dispatchers of a channel share the outbox
# partitions by leases on this machine (dispatcher.partition_leases "auto"), not by the group
# protocol. Two dispatchers split the 12 partitions of each lane (slot 0 the even ones, slot 1
# the odd ones); the second is killed (SIGKILL) mid-blast: the survivor takes exactly its
# partitions (lease_acquired ... live=1), and once it is started again the survivor hands them
# back (lease_released) and the restarted one takes them (lease_acquired) and sends. Every
# recipient ends accepted at the emulator; recipients messaged twice are at most the sends in
# flight at the kill (dispatcher.max_in_flight x dispatchers). A third dispatcher started after
# the blast takes partitions read to their end and counts no backlog for them. A bad
# partition_leases value is refused with one line before anything starts (no slot taken, no ledger).
source "$(dirname "$0")/lib.sh"
it_setup 0520-partition-leases
N=6000
MIF=32
cfg() {
  it_one_sms_vendor '"senders":{"main":{"from":"+15005550006"}}, "rate_per_s": 400' \
    "\"dispatcher\": {\"max_in_flight\": $MIF${1:-}}"
}
for bad in '"yes"' '1' 'null' '"on"'; do
  cfg ", \"partition_leases\": $bad"
  rc=0; "$TOCSIN_BIN" -c "$CFG" dispatch > "$OUT/refused.out" 2>&1 || rc=$?
  grep -q '^tocsin dispatch: .*: dispatcher\.partition_leases must be "auto", true or false$' "$OUT/refused.out" &&
    [ "$rc" = 1 ] && [ "$(wc -l < "$OUT/refused.out")" = 1 ] || it_fail "partition_leases $bad: exit $rc, $(cat "$OUT/refused.out")"
done
[ -z "$(ls "$VAR/run")" ] && [ ! -e "$VAR/ledger" ] || it_fail "a refused start left files: $(ls -R "$VAR")"
cfg
it_start_broker
it_start_sim
it_start_track
cfg
it_sim_fault '{"vendor":"twilio","latency_ms":{"median":20,"tail":40}}'
it_bg dispatch1 dispatch
it_wait_until 30 grep -q 'event=dispatch_started .*partitions_by=leases slot=0' "$OUT/dispatch1.log" ||
  it_fail "the first dispatcher did not start with leases in slot 0"
it_bg dispatch2 dispatch
ODD='bulk=1,3,5,7,9,11 urgent=1,3,5,7,9,11'
it_wait_until 30 grep -q "event=lease_acquired partitions=6 of=12 .* acquired=$ODD live=2 rank=1" "$OUT/dispatch2.log" ||
  it_fail "the second dispatcher did not get the odd partitions"
grep -q "event=lease_released partitions=6 of=12 .* released=$ODD live=2 rank=0" "$OUT/dispatch1.log" ||
  it_fail "the first dispatcher did not say it let the odd partitions go"
it_gen_audience "$OUT/a.csv" $N 0
it_campaign "$OUT/c.json" leases a.csv
"$TOCSIN_BIN" -c "$CFG" launch --no-progress "$OUT/c.json" > "$OUT/launch.out" 2>&1 || it_fail "launch"
sim_accepted() { it_sim_stats | it_jq 'j["vendors"]["twilio"]["accepted"]'; }
at_least() { [ "$(sim_accepted)" -ge "$1" ]; }
it_wait_until 60 at_least 1500 || it_fail "the blast did not get going"
kill -KILL "$PID_dispatch2"
echo "killed the second dispatcher (SIGKILL) at $(sim_accepted) accepted"
it_wait_until 20 grep -q "event=lease_acquired partitions=12 of=12 .* acquired=$ODD live=1 rank=0" "$OUT/dispatch1.log" ||
  it_fail "the survivor did not take the dead dispatcher's partitions"
echo "the survivor took them at $(sim_accepted) accepted"
mv "$OUT/dispatch2.log" "$OUT/dispatch2-killed.log"
it_bg dispatch2 dispatch
it_wait_until 30 grep -q "event=lease_acquired partitions=6 of=12 .* acquired=$ODD live=2 rank=1" "$OUT/dispatch2.log" ||
  it_fail "the restarted dispatcher did not get its partitions back"
[ "$(grep -c "event=lease_released partitions=6 of=12 .* released=$ODD live=2 rank=0" "$OUT/dispatch1.log")" = 2 ] ||
  it_fail "the survivor did not hand the partitions back"
echo "the restarted dispatcher got them back at $(sim_accepted) accepted"
all_final() { [ "$(it_final_count leases)" -ge $N ]; }
it_wait_until 120 all_final || it_fail "only $(it_final_count leases) of $N final"
sleep 1 # nothing more may come
# A third dispatcher started now takes partitions read to their end (2,5,8,11; the first one
# takes 3 and 9 from the second): what it publishes as its backlog, and the progress line's
# backlog=, is 0 -- not the records the previous owners consumed (rd_kafka_position() is not
# known before a record is consumed, and the log start was taken for it: a dispatcher with
# nothing left kept most of the rate at the end of the kill loop, issue 13).
it_bg dispatch3 dispatch
# the last progress line of $1 once it follows its lease line $2 and its last catch-up
settled() {
  awk -v pat="$2" '$0 ~ pat {l = NR} /event=catch_up_done/ {c = NR}
    /event=progress/ {p = NR; line = $0}
    END {if (l && c && p > l && p > c) print line; else exit 1}' "$OUT/$1.log"
}
D3='event=lease_acquired partitions=4 of=12 .* live=3 rank=2'
D1='event=lease_(acquired|released) partitions=4 of=12 .* live=3 rank=0'
it_wait_until 30 grep -qE "$D3" "$OUT/dispatch3.log" || it_fail "the third dispatcher did not get 4 partitions"
grep -qE 'acquired=.*bulk=[0-9,]*' "$OUT/dispatch3.log" &&
  [ "$(grep -oE 'acquired=bulk=[0-9,]*' "$OUT/dispatch3.log" | cut -d= -f3 | tr ',' '\n' | sort -n | tr '\n' ' ')" = "2 5 8 11 " ] ||
  it_fail "the third dispatcher took other partitions than 2,5,8,11: $(grep lease_acquired "$OUT/dispatch3.log")"
it_wait_until 30 grep -qE "$D1" "$OUT/dispatch1.log" || it_fail "the first dispatcher did not settle on 4 partitions"
it_wait_until 15 settled dispatch3 "$D3" > /dev/null || it_fail "no progress line of the third dispatcher after its catch-up"
it_wait_until 15 settled dispatch1 "$D1" > /dev/null || it_fail "no progress line of the first dispatcher after its catch-up"
for d in "dispatch3 $D3" "dispatch1 $D1"; do
  line=$(settled "${d%% *}" "${d#* }")
  echo "${d%% *}: ${line##*ledgered=}"
  grep -q ' backlog=0 ' <<<"$line" || it_fail "${d%% *} counts a backlog with nothing left to send: $line"
done
it_stop "$PID_dispatch3" || it_fail "the third dispatcher did not stop cleanly"
it_stop "$PID_dispatch2" || it_fail "the restarted dispatcher did not stop cleanly"
it_stop "$PID_dispatch1" || it_fail "the first dispatcher did not stop cleanly"
it_sim_stats > "$OUT/sim.json"
uniq=$(it_jq 'j["vendors"]["twilio"]["unique_ids"]' "$OUT/sim.json")
dups=$(it_jq 'j["vendors"]["twilio"]["duplicate_count"]' "$OUT/sim.json")
bound=$((MIF * 2))
echo "emulator: $uniq distinct, $dups sent twice (bound $bound)"
[ "$uniq" = $N ] || it_fail "emulator accepted $uniq distinct ids, want $N"
[ "$dups" -le $bound ] || it_fail "$dups recipients messaged twice, bound $bound"
[ "$(it_status_field leases 'j["states"].get("accepted",0)')" = $N ] || it_fail "tracker: not all $N accepted"
grep -q 'event=progress .* accepted=[1-9]' "$OUT/dispatch2.log" || it_fail "the restarted dispatcher sent nothing"
! grep -q 'event=commit_\|event=reassign_failed\|event=drain_timeout' "$OUT"/dispatch*.log ||
  it_fail "a commit or an assignment failed: $(grep -h 'event=commit_\|event=reassign_failed\|event=drain_timeout' "$OUT"/dispatch*.log | head -3)"
echo "ok: partitions moved by leases at a kill and a restart; $N accepted, $dups sent twice (<= $bound)"
