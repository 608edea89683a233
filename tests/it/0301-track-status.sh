#!/usr/bin/env bash
# 0301-track-status.sh -- tocsin track folds out-of-order, duplicated status events into sqlite;
# tocsin status prints exact counts; offsets are committed (a restart re-reads nothing).
source "$(dirname "$0")/lib.sh"
it_setup 0301-track-status
it_write_config
it_start_broker

# 1000 messages of campaign "demo", 3 vendors' worth of outcomes, each message's events
# shuffled (a late "sent" must not overwrite "delivered") and 10% of events duplicated.
python3 - "$OUT" <<'PY'
import json, random, sys
out = sys.argv[1]
random.seed(7)
lines, exp = [], {"campaign": "demo", "total": 0, "states": {}, "vendors": {}}
order = ["queued","retrying","accepted","sent","delivered","suppressed","cancelled","expired","failed","undelivered","bounced"]
for i in range(1000):
    mid = "%032x" % (i + 1)
    vendor = "twilio" if i < 700 else "vonage"
    k = i % 10
    if k <= 6:   evs, final = ["accepted", "sent", "delivered"], "delivered"
    elif k == 7: evs, final = ["accepted", "undelivered"], "undelivered"
    elif k == 8: evs, final = ["retrying", "failed"], "failed"
    else:        evs, final = ["accepted"], "accepted"
    random.shuffle(evs)
    evs += [e for e in evs if random.random() < 0.1]
    for e in evs:
        lines.append(json.dumps({"v": 1, "id": mid, "campaign": "demo", "channel": "sms",
            "to": "+1555%07d" % i, "state": e, "vendor": vendor, "latency_ms": 40 + i % 50,
            "attempt": 0, "ts_ms": 1700000000000 + i}))
    exp["total"] += 1
    exp["states"][final] = exp["states"].get(final, 0) + 1
    v = exp["vendors"].setdefault(vendor, {})
    v[final] = v.get(final, 0) + 1
lines.insert(5, '{"v":1,"id":"broken"')          # a bad record: reported with its line, skipped
def ordered(d): return {s: d[s] for s in order if s in d}
exp["states"] = ordered(exp["states"])
exp["vendors"] = {k: ordered(v) for k, v in sorted(exp["vendors"].items())}
open(out + "/events.jsonl", "w").write("\n".join(lines) + "\n")
open(out + "/expected.json", "w").write(json.dumps(exp, separators=(",", ":")) + "\n")
print(len(lines), "events")
PY

it_bg track track --listen 127.0.0.1:0
it_wait_file "$VAR/run/track.addr" 20

# missing database and unknown campaign give one clear line and exit 1
rc=0; "$TOCSIN_BIN" -c "$CFG" status demo > "$OUT/st0.out" 2>&1 || rc=$?
if [ ! -e "$VAR/tocsin.db" ]; then [ $rc = 1 ] && grep -q "no tracker database at $VAR/tocsin.db" "$OUT/st0.out" || it_fail "missing db: rc=$rc $(cat "$OUT/st0.out")"; fi

rc=0; "$TOCSIN_BIN" -c "$CFG" track --replay "$OUT/events.jsonl" > "$OUT/replay.out" 2> "$OUT/replay.err" || rc=$?
[ $rc = 0 ] || it_fail "replay exited $rc"
grep -q "events.jsonl:6: " "$OUT/replay.err" || it_fail "bad line not reported with file:line: $(cat "$OUT/replay.err")"
grep -q "rejected 1" "$OUT/replay.out" || it_fail "replay summary: $(cat "$OUT/replay.out")"

done_counting() { [ "$("$TOCSIN_BIN" -c "$CFG" status demo --json 2>/dev/null)" = "$(cat "$OUT/expected.json")" ]; }
it_wait_until 30 done_counting || {
  echo "got:      $("$TOCSIN_BIN" -c "$CFG" status demo --json 2>&1)"; echo "expected: $(cat "$OUT/expected.json")"; it_fail "counts differ"; }

"$TOCSIN_BIN" -c "$CFG" status demo > "$OUT/st.txt"
grep -Eq '^  delivered +700$' "$OUT/st.txt" || it_fail "text status: $(cat "$OUT/st.txt")"
grep -q '^vendor vonage: accepted=30 delivered=210 failed=30 undelivered=30$' "$OUT/st.txt" ||
  it_fail "vendor line: $(cat "$OUT/st.txt")"

rc=0; "$TOCSIN_BIN" -c "$CFG" status nosuch > "$OUT/st1.out" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q 'unknown campaign "nosuch"' "$OUT/st1.out" || it_fail "unknown campaign: rc=$rc $(cat "$OUT/st1.out")"
rc=0; "$TOCSIN_BIN" -c "$CFG" status > /dev/null 2>&1 || rc=$?
[ $rc = 2 ] || it_fail "status without campaign should exit 2, got $rc"

# SIGTERM: clean exit; the restart finds its offsets committed and re-reads nothing.
it_stop "$PID_track" || it_fail "track did not stop cleanly"
grep -q 'event=stop total=2880 ' "$OUT/track.log" || it_fail "first run stop line: $(grep event=stop "$OUT/track.log")"
mv "$OUT/track.log" "$OUT/track1.log"
it_bg track track --no-http
sleep 4
it_stop "$PID_track" || it_fail "second track did not stop cleanly"
grep -q 'event=stop total=0 ' "$OUT/track.log" || it_fail "restart re-read records: $(grep event=stop "$OUT/track.log")"
[ "$("$TOCSIN_BIN" -c "$CFG" status demo --json)" = "$(cat "$OUT/expected.json")" ] || it_fail "counts changed after restart"
echo "ok: 0301-track-status"
