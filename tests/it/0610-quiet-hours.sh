#!/usr/bin/env bash
# 0610-quiet-hours: scheduled sends and quiet hours by each recipient's local time, with "now"
# shifted by TOCSIN_NOW_OFFSET_MS (no sleeping for hours). A launch at 22:30 New York time sends
# at once to Los Angeles (19:30 there) and holds New York until 08:00 and Tennessee (Eastern or
# Central: the intersection) until 08:00 Central; `tocsin hold` restarted at later "nows"
# releases each group then, exactly once. Then send_at one hour ahead sends nothing until then
# and everything after; a campaign cancelled before its send_at sends nothing; bad input
# (unknown zone, malformed or past send_at, 25:00) is one line naming the field, nothing queued.
# The tracker keeps a scheduled campaign's send_at and an urgent override (API, tocsin status).
source "$(dirname "$0")/lib.sh"
it_setup 0610-quiet-hours
QH='"quiet_hours": {"sms": {"start": "08:00", "end": "20:00"}}'
# "now" = 2026-12-03 22:30 in New York, for every process started from here
shift_to() { echo $(( $(date -d "$1" +%s%3N) - $(date +%s%3N) )); }
export TOCSIN_NOW_OFFSET_MS=$(shift_to "2026-12-03T22:30:00-05:00")
it_one_sms_vendor '"senders": {"main": {"from": "+15005550006"}}, "rate_per_s": 200' "$QH"
it_start_broker
it_start_sim
it_start_track
it_one_sms_vendor '"senders": {"main": {"from": "+15005550006"}}, "rate_per_s": 200' "$QH"
it_bg dispatch dispatch
python3 - "$OUT/a1.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("first_name,phone,city,state\n")
    for i in range(20): f.write("La%d,+1310555%04d,Los Angeles,\n" % (i, i))
    for i in range(20): f.write("Ny%d,+1212555%04d,New York,\n" % (i, i))
    for i in range(10): f.write("Tn%d,+1615555%04d,Nashville,TN\n" % (i, i))
PY
printf '{"id":"qh1","audience":{"path":"a1.csv","state":"state"},"sms":{"template":"Hi {{first_name}}"},"expires_in_s":86400}\n' > "$OUT/c1.json"
"$TOCSIN_BIN" -c "$CFG" preview "$OUT/c1.json" --n 0 > "$OUT/preview.out" 2>&1 || it_fail "preview: $(cat "$OUT/preview.out")"
cat "$OUT/preview.out"
grep -q "when: 20 go now, 30 held" "$OUT/preview.out" || it_fail "preview: not 20 now / 30 held"
grep -q "America/Chicago&America/New_York *(uncertain) now 0, held 10 until 2026-12-04 08:00-06:00" "$OUT/preview.out" \
  || it_fail "preview: Tennessee not held until 08:00 Central"
grep -q "America/New_York *now 0, held 20 until 2026-12-04 08:00-05:00" "$OUT/preview.out" || it_fail "preview: New York not held until 08:00"
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c1.json" --no-progress > "$OUT/launch1.out" 2>&1 || it_fail "launch: $(cat "$OUT/launch1.out")"
cat "$OUT/launch1.out"
grep -q "held 30 for send_at or quiet hours" "$OUT/launch1.out" || it_fail "launch did not hold 30"
it_bg hold hold
sim_count() { it_sim_stats | it_jq 'j["vendors"]["twilio"]["unique_ids"]'; }
sim_is() { test "$(sim_count)" = "$1"; }
status_is() { test "$(it_status_field "$1" "$2")" = "$3"; }
it_wait_until 30 sim_is 20 || it_fail "Los Angeles not sent at once: $(sim_count)"
sleep 2
[ "$(sim_count)" = 20 ] || it_fail "sent $(sim_count) at 22:30 New York time, want 20 (Los Angeles only)"
# 08:01 in New York: New York goes, Tennessee (08:00 Central = 09:00 Eastern) still waits
it_stop "$PID_hold"
TOCSIN_NOW_OFFSET_MS=$(shift_to "2026-12-04T08:01:00-05:00") it_bg hold hold
it_wait_until 30 sim_is 40 || it_fail "New York not released at 08:01: $(sim_count)"
sleep 2
[ "$(sim_count)" = 40 ] || it_fail "Tennessee went before 08:00 Central: $(sim_count)"
it_stop "$PID_hold"
TOCSIN_NOW_OFFSET_MS=$(shift_to "2026-12-04T09:01:00-05:00") it_bg hold hold
it_wait_until 30 sim_is 50 || it_fail "Tennessee not released at 08:01 Central: $(sim_count)"
it_sim_stats > "$OUT/sim1.json"
[ "$(it_jq 'j["vendors"]["twilio"]["duplicate_count"]' "$OUT/sim1.json")" = 0 ] || it_fail "a message was sent twice"

# send_at one hour ahead (at 10:00 New York time), and one cancelled before its send_at
export TOCSIN_NOW_OFFSET_MS=$(shift_to "2026-12-04T10:00:00-05:00")
python3 - "$OUT/a2.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("first_name,phone,tz\n")
    for i in range(15): f.write("Sa%d,+1212666%04d,America/New_York\n" % (i, i))
PY
printf '{"id":"qh2","audience":{"path":"a2.csv","timezone":"tz"},"sms":{"template":"At 11 {{first_name}}"},"send_at":"2026-12-04T11:00:00-05:00"}\n' > "$OUT/c2.json"
printf '{"id":"qh3","audience":{"path":"a2.csv","timezone":"tz"},"sms":{"template":"Never {{first_name}}"},"send_at":"2026-12-04T11:00:00-05:00"}\n' > "$OUT/c3.json"
it_stop "$PID_hold"
it_bg hold hold
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c2.json" --no-progress > "$OUT/launch2.out" 2>&1 || it_fail "launch 2: $(cat "$OUT/launch2.out")"
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c3.json" --no-progress > "$OUT/launch3.out" 2>&1 || it_fail "launch 3: $(cat "$OUT/launch3.out")"
grep -q "held 15" "$OUT/launch2.out" || it_fail "send_at: not 15 held"
shown_scheduled() { "$TOCSIN_BIN" -c "$CFG" status "$1" 2>/dev/null | grep -q "campaign $1: scheduled"; }
it_wait_until 20 shown_scheduled qh2 || it_fail "qh2 not shown scheduled: $("$TOCSIN_BIN" -c "$CFG" status qh2 2>&1)"
# with its time: in `tocsin status` (UTC) and, exact to the millisecond, in the API
SEND_AT_MS=$(date -d "2026-12-04T11:00:00-05:00" +%s%3N)
status_line() { "$TOCSIN_BIN" -c "$CFG" status "$1" 2>&1 | grep -q "^campaign $1: $2"; }
it_wait_until 20 status_line qh2 "scheduled for 2026-12-04T16:00:00Z, [0-9]* messages" \
  || it_fail "status: no send_at: $("$TOCSIN_BIN" -c "$CFG" status qh2 2>&1)"
api_field() { curl -sf "http://$TRACK/api/campaigns/$1" | it_jq "$2"; }
[ "$(api_field qh2 'j["state"], j["send_at_ms"], j["quiet_hours_override"]')" = "('scheduled', $SEND_AT_MS, None)" ] \
  || it_fail "API qh2: $(curl -sf "http://$TRACK/api/campaigns/qh2")"
it_wait_until 20 shown_scheduled qh3 || it_fail "qh3 not shown scheduled"
"$TOCSIN_BIN" -c "$CFG" campaign cancel qh3 --as it > "$OUT/cancel.out" 2>&1 || it_fail "cancel: $(cat "$OUT/cancel.out")"
sleep 3
[ "$(sim_count)" = 50 ] || it_fail "sent before send_at: $(sim_count)"
# a relaunch does not duplicate
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c2.json" --no-progress > "$OUT/launch2b.out" 2>&1 || it_fail "relaunch: $(cat "$OUT/launch2b.out")"
it_stop "$PID_hold"
TOCSIN_NOW_OFFSET_MS=$(shift_to "2026-12-04T11:00:30-05:00") it_bg hold hold
it_wait_until 30 sim_is 65 || it_fail "send_at: not all 15 sent after 11:00: $(sim_count)"
it_wait_until 20 status_is qh3 'j["states"].get("cancelled",0)' 15 || it_fail "qh3: not 15 cancelled"
# the operator's cancel record carries send_at on (the store keeps it, the compacted topic too)
[ "$(api_field qh3 'j["state"], j["send_at_ms"]')" = "('cancelled', $SEND_AT_MS)" ] \
  || it_fail "API qh3: $(curl -sf "http://$TRACK/api/campaigns/qh3")"
sleep 2
it_sim_stats > "$OUT/sim2.json"
[ "$(it_jq 'j["vendors"]["twilio"]["unique_ids"]' "$OUT/sim2.json")" = 65 ] || it_fail "the cancelled campaign sent something"
[ "$(it_jq 'j["vendors"]["twilio"]["duplicate_count"]' "$OUT/sim2.json")" = 0 ] || it_fail "a message was sent twice"

# a window that closes before the dispatcher gets to the message: launched at 19:59 in Los
# Angeles with no dispatcher running, the messages expire at 20:00 instead of going late
it_stop "$PID_dispatch"
export TOCSIN_NOW_OFFSET_MS=$(shift_to "2026-12-04T19:59:00-08:00")
python3 - "$OUT/a4.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("first_name,phone\n")
    for i in range(12): f.write("Late%d,+1310777%04d\n" % (i, i))
PY
printf '{"id":"qh4","audience":"a4.csv","sms":{"template":"Late {{first_name}}"}}\n' > "$OUT/c4.json"
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c4.json" --no-progress > "$OUT/launch4.out" 2>&1 || it_fail "launch 4: $(cat "$OUT/launch4.out")"
grep -q "held 15\|held 12" "$OUT/launch4.out" && it_fail "qh4 held at 19:59: $(cat "$OUT/launch4.out")"
TOCSIN_NOW_OFFSET_MS=$(shift_to "2026-12-04T20:00:30-08:00") it_bg dispatch dispatch
it_wait_until 30 status_is qh4 'j["states"].get("expired",0)' 12 || it_fail "qh4: not 12 expired at 20:00"
[ "$(sim_count)" = 65 ] || it_fail "sent after the window closed: $(sim_count)"

# bad input: one line naming the field, nothing queued
bad() { # FILE WANT
  if "$TOCSIN_BIN" -c "$CFG" launch "$1" --no-progress > "$OUT/bad.out" 2>&1; then it_fail "accepted $1"; fi
  grep -q "$2" "$OUT/bad.out" || it_fail "$1: $(cat "$OUT/bad.out")"
}
printf '{"id":"b1","audience":"a2.csv","sms":{"template":"x"},"send_at":"tomorrow 7am"}\n' > "$OUT/b1.json"
bad "$OUT/b1.json" "send_at: \"tomorrow 7am\" is not"
printf '{"id":"b2","audience":"a2.csv","sms":{"template":"x"},"send_at":"2026-12-03T07:00:00-05:00"}\n' > "$OUT/b2.json"
bad "$OUT/b2.json" "send_at: it is in the past"
printf '{"id":"b3","audience":"a2.csv","sms":{"template":"x"},"quiet_hours":{"start":"07:00","end":"25:00"}}\n' > "$OUT/b3.json"
bad "$OUT/b3.json" "quiet_hours.end must be"
printf '{"id":"b4","audience":"a2.csv","sms":{"template":"x"},"quiet_hours":{"start":"07:00","end":"20:00"}}\n' > "$OUT/b4.json"
bad "$OUT/b4.json" "quiet_hours: 07:00-20:00 is not inside"
printf 'first_name,phone,tz\nA,+12125550000,Mars/Base\n' > "$OUT/a5.csv"
printf '{"id":"b5","audience":{"path":"a5.csv","timezone":"tz"},"sms":{"template":"x"}}\n' > "$OUT/b5.json"
bad "$OUT/b5.json" "nothing queued"
grep -q 'invalid timezone: unknown time zone ""Mars/Base""' "$VAR/launch/b5/rejects.csv" || it_fail "b5: rejects: $(cat "$VAR/launch/b5/rejects.csv")"
# the urgent override is explicit and preview says so; everyone goes now
printf '{"id":"qh5","audience":{"path":"a1.csv","state":"state"},"sms":{"template":"x"},"quiet_hours":{"override":"urgent"}}\n' > "$OUT/c5.json"
"$TOCSIN_BIN" -c "$CFG" preview "$OUT/c5.json" --n 0 > "$OUT/preview5.out" 2>&1 || it_fail "preview 5: $(cat "$OUT/preview5.out")"
grep -q "quiet hours: OFF -- urgent override named in" "$OUT/preview5.out" || it_fail "preview does not show the override"
grep -q "when: 50 go now, 0 held" "$OUT/preview5.out" || it_fail "urgent: not all 50 now"
# launched, the override shows in the API and `tocsin status` (the dashboard flags it from the API)
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c5.json" --no-progress > "$OUT/launch5.out" 2>&1 || it_fail "launch 5: $(cat "$OUT/launch5.out")"
urgent_shown() { [ "$(api_field qh5 'j["quiet_hours_override"], j["send_at_ms"]')" = "('urgent', 0)" ]; }
it_wait_until 20 urgent_shown || it_fail "API qh5: $(curl -sf "http://$TRACK/api/campaigns/qh5")"
[ "$(api_field qh2 'j["quiet_hours_override"]')" = None ] || it_fail "qh2 shown urgent"
it_wait_until 20 status_line qh5 "[a-z]*, quiet hours OFF (urgent override), [0-9]* messages" \
  || it_fail "status qh5: $("$TOCSIN_BIN" -c "$CFG" status qh5 2>&1)"
printf '{"id":"b6","audience":"a2.csv","sms":{"template":"x"},"quiet_hours":{"override":"yes"}}\n' > "$OUT/b6.json"
bad "$OUT/b6.json" "quiet_hours.override: the only override is"
it_write_config '"quiet_hours": {"sms": {"start": "08:00", "end": "25:00"}}'
if "$TOCSIN_BIN" -c "$CFG" preview "$OUT/c1.json" > "$OUT/bad.out" 2>&1; then it_fail "accepted 25:00 in tocsin.json"; fi
grep -q "quiet_hours.sms.end must be" "$OUT/bad.out" || it_fail "25:00: $(cat "$OUT/bad.out")"
echo "ok: quiet hours by zone (20 now, 20 at 08:00 Eastern, 10 at 08:00 Central), send_at, cancel, refusals"
