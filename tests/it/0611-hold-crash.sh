#!/usr/bin/env bash
# 0611-hold-crash: 6000 messages held for a send_at one hour ahead ("now" shifted by
# TOCSIN_NOW_OFFSET_MS). A dispatcher killed -9 while they are held loses nothing (they are not
# in Kafka yet). `tocsin hold` killed -9 right after its first round of 5000 was acknowledged by
# Kafka, before it recorded it, is started again: it finds those 5000 in the outbox (in doubt ->
# released, not produced again) and releases the other 1000. The emulator gets every message
# exactly once and the outbox holds each once.
source "$(dirname "$0")/lib.sh"
it_setup 0611-hold-crash
it_one_sms_stack '"senders": {"main": {"from": "+15005550006"}}, "rate_per_s": 2000'
it_gen_audience "$OUT/a.csv" 6000 0
SEND_AT=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
printf '{"id":"hc1","audience":"a.csv","sms":{"template":"Hi {{first_name}}"},"send_at":"%s"}\n' "$SEND_AT" > "$OUT/c.json"
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c.json" --no-progress > "$OUT/launch.out" 2>&1 || it_fail "launch: $(cat "$OUT/launch.out")"
grep -q "held 6000" "$OUT/launch.out" || it_fail "not 6000 held: $(cat "$OUT/launch.out")"
# the dispatcher dies while they are held, and comes back
kill -9 "$PID_dispatch"; wait "$PID_dispatch" 2> /dev/null || true
it_bg dispatch dispatch
sim_count() { it_sim_stats | it_jq 'j["vendors"]["twilio"]["unique_ids"]'; }
sim_is() { test "$(sim_count)" = "$1"; }
[ "$(sim_count)" = 0 ] || it_fail "sent before send_at"
# one hour and a minute later: the releaser dies after its first round reached Kafka
LATER=$(( 3660 * 1000 ))
TOCSIN_NOW_OFFSET_MS=$LATER TOCSIN_HOLD_CRASH_AFTER_FLUSH=1 it_bg hold1 hold
for _ in $(seq 1 150); do kill -0 "$PID_hold1" 2> /dev/null || break; sleep 0.2; done
kill -0 "$PID_hold1" 2> /dev/null && it_fail "the releaser did not crash on purpose"
grep -q "event=hold_crash_on_purpose n=5000" "$OUT/hold1.log" || it_fail "no crash after the first round: $(tail -3 "$OUT/hold1.log")"
TOCSIN_NOW_OFFSET_MS=$LATER it_bg hold2 hold
# a second releaser on the same store is refused (it would take the first one's round for in doubt)
sleep 1
if "$TOCSIN_BIN" -c "$CFG" hold > "$OUT/hold3.out" 2>&1; then it_fail "a second tocsin hold ran"; fi
grep -q "another tocsin hold is releasing this store" "$OUT/hold3.out" || it_fail "second hold: $(cat "$OUT/hold3.out")"
[ "$(stat -c %a "$VAR/hold.db")" = 600 ] || it_fail "hold.db is not owner-only"
it_wait_until 60 sim_is 6000 || it_fail "not all 6000 sent after the restart: $(sim_count)"
grep -q "event=hold_recovered in_doubt=5000 rc=0" "$OUT/hold2.log" || it_fail "no in-doubt check: $(head -5 "$OUT/hold2.log")"
sleep 2
it_sim_stats > "$OUT/sim.json"
[ "$(it_jq 'j["vendors"]["twilio"]["unique_ids"]' "$OUT/sim.json")" = 6000 ] || it_fail "not 6000 distinct"
[ "$(it_jq 'j["vendors"]["twilio"]["duplicate_count"]' "$OUT/sim.json")" = 0 ] || it_fail "a message was sent twice"
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c.json" --check-outbox > "$OUT/check.out" 2>&1 || it_fail "outbox: $(cat "$OUT/check.out")"
grep -q "campaign hc1: 6000 messages, 6000 distinct ids, 0 duplicates" "$OUT/check.out" || it_fail "outbox: $(cat "$OUT/check.out")"
# three days later the done rows (a day past their expiry) are pruned from the store
it_stop "$PID_hold2"
TOCSIN_NOW_OFFSET_MS=$(( LATER + 3 * 86400000 )) it_bg hold4 hold
it_wait_until 20 grep -q "event=hold_pruned rows=6000" "$OUT/hold4.log" || it_fail "not pruned: $(tail -2 "$OUT/hold4.log")"
[ "$(sqlite3 "$VAR/hold.db" "SELECT count(*) FROM held")" = 0 ] || it_fail "rows left in hold.db"
echo "ok: 6000 held through a dispatcher kill -9 and a releaser kill -9 mid-release: each sent once"
