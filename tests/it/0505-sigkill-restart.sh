#!/usr/bin/env bash
# 0505-sigkill-restart: a dispatcher killed with SIGKILL mid-blast and restarted. Every
# recipient ends accepted; the only messages sent twice are those in flight at the instant of
# the kill (sent, but their outcome not yet on tocsin.status): at most the in-flight cap. The
# restarted dispatcher skips those whose outcome was published but whose offset was not yet
# committed. The test prints how many were sent twice.
source "$(dirname "$0")/lib.sh"
it_setup 0505-sigkill-restart
V='"rate_per_s": 500, "burst": 20'
it_two_sms_vendors "$V"
it_start_broker
it_start_sim
it_start_track
IT_EXTRA_TOP="\"tracker\": {\"public_url\": \"http://$TRACK\"}" it_two_sms_vendors "$V"
it_bg dispatch dispatch
first=$PID_dispatch
it_gen_audience "$OUT/a.csv" 5000 0
it_campaign "$OUT/c.json" kill9 a.csv
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c.json" > "$OUT/launch.out" 2>&1 || it_fail "launch"
accepted_at_least() { [ "$(it_sim_stats | it_jq 'sum(v["accepted"] for v in j["vendors"].values())')" -ge "$1" ]; }
it_wait_until 60 accepted_at_least 1500 || it_fail "the blast did not get going"
kill -KILL "$first"
at_kill=$(it_sim_stats | it_jq 'sum(v["accepted"] for v in j["vendors"].values())')
echo "killed the dispatcher (SIGKILL) after $at_kill accepted"
mv "$OUT/dispatch.log" "$OUT/dispatch-1.log"
it_bg dispatch dispatch
all_final() { [ "$(it_final_count kill9)" -ge 5000 ]; }
it_wait_until 90 all_final || it_fail "only $(it_final_count kill9) of 5000 final after restart"
"$TOCSIN_BIN" -c "$CFG" status kill9 --json > "$OUT/st.json"; cat "$OUT/st.json"
it_sim_stats > "$OUT/sim.json"
[ "$(it_jq 'j["states"].get("accepted",0)' "$OUT/st.json")" = 5000 ] || it_fail "not all 5000 accepted"
[ "$(it_jq 'j["total"]' "$OUT/st.json")" = 5000 ] || it_fail "tracker counts more than 5000 messages"
uniq=$(it_jq 'sum(v["unique_ids"] for v in j["vendors"].values())' "$OUT/sim.json")
# every acceptance beyond the 5000 recipients is a second send, on the same vendor or (the
# route spreads the load) on the other one
dups=$(( $(it_jq 'sum(v["accepted"] for v in j["vendors"].values())' "$OUT/sim.json") - 5000 ))
[ "$uniq" -ge 5000 ] || it_fail "emulator accepted $uniq distinct ids, want 5000"
# In flight at most 64 (dispatcher.max_in_flight).
bound=64
echo "sent twice after SIGKILL: $dups (bound $bound)"
[ "$dups" -le "$bound" ] || it_fail "$dups duplicates exceeds the in-flight bound $bound"
grep -q 'already_done=[1-9]' "$OUT/dispatch.log" || echo "note: nothing was found already done after the restart"
echo "ok: all 5000 accepted after kill -9 and restart; $dups sent twice"
