#!/usr/bin/env bash
# 0510-rebalance: dispatchers join and leave mid-blast. Each rebalance makes the old owner
# finish its in-flight sends and commit before handing partitions over, so nobody is messaged
# twice and nobody is lost: the emulator sees every id exactly once.
source "$(dirname "$0")/lib.sh"
it_setup 0510-rebalance
cfg() {
  it_write_config "\"vendors\": [{\"name\":\"twilio\",\"kind\":\"twilio\",\"base_url\":\"http://${SIM:-127.0.0.1:9}\",
    \"account\":\"ACit00000000000000000000000000000\",\"secret_env\":\"TOCSIN_TWILIO_TOKEN\",
    \"senders\":{\"main\":{\"from\":\"+15005550006\"}}, \"rate_per_s\": 400}],
    \"tracker\": {\"public_url\": \"http://${TRACK:-127.0.0.1:9}\"}"
}
cfg
it_start_broker
it_start_sim
it_start_track
cfg
it_sim_fault '{"vendor":"twilio","latency_ms":{"median":30,"tail":60}}'
it_bg dispatch1 dispatch
it_gen_audience "$OUT/a.csv" 6000 0
it_campaign "$OUT/c.json" reb a.csv
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c.json" > "$OUT/launch.out" 2>&1 || it_fail "launch"
sim_total() { it_sim_stats | it_jq 'j["vendors"]["twilio"]["accepted"]'; }
at_least() { [ "$(sim_total)" -ge "$1" ]; }
it_wait_until 40 at_least 800 || it_fail "the blast did not start"
it_bg dispatch2 dispatch          # joins: partitions move mid-blast
it_wait_until 30 grep -Eq 'event=(assigned|lease_acquired|lease_released) partitions=6 of=12' "$OUT/dispatch2.log" || it_fail "the second dispatcher got no partitions"
echo "second dispatcher joined at $(sim_total) accepted"
it_wait_until 40 at_least 3000 || it_fail "the blast stalled after the first rebalance"
it_stop "$PID_dispatch1" || it_fail "first dispatcher did not stop cleanly"   # leaves: its partitions move again
echo "first dispatcher left at $(sim_total) accepted"
all_final() { [ "$(it_final_count reb)" -ge 6000 ]; }
it_wait_until 90 all_final || it_fail "only $(it_final_count reb) of 6000 final"
it_sim_stats > "$OUT/sim.json"
"$TOCSIN_BIN" -c "$CFG" status reb --json > "$OUT/st.json"; cat "$OUT/st.json"
[ "$(it_jq 'j["total"]' "$OUT/st.json")" = 6000 ] || it_fail "tracker total"
[ "$(it_jq 'j["vendors"]["twilio"]["unique_ids"]' "$OUT/sim.json")" = 6000 ] || it_fail "not every id reached the emulator"
dups=$(it_jq 'j["vendors"]["twilio"]["duplicate_count"]' "$OUT/sim.json")
[ "$dups" = 0 ] || it_fail "$dups messages sent twice across the rebalances"
grep -Eq 'event=(revoked|lease_released)' "$OUT/dispatch1.log" || it_fail "no rebalance seen"
echo "ok: two rebalances mid-blast, 6000 recipients, each sent exactly once"
