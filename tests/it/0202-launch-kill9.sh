#!/usr/bin/env bash
# 0202-launch-kill9.sh -- kill -9 a launch halfway through a 400,000-row audience, run the same
# command again: it continues from its checkpoint, and the outbox holds every recipient
# exactly once (no duplicates, none missing).
source "$(dirname "$0")/lib.sh"
it_setup 0202-launch-kill9
it_write_config
it_start_broker
N=400000
python3 - "$OUT/aud.csv" $N <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    f.write("name,phone\n")
    for i in range(n):
        f.write("N%d,+1 303 %03d %04d\n" % (i, 220 + (i // 10000) % 7 * 100 + (i // 70000), i % 10000))
PY
printf '{"id":"k9","audience":"aud.csv","sms":{"template":"Go {{name}}"}}\n' > "$OUT/k9.json"
T() { "$TOCSIN_BIN" -c "$CFG" "$@"; }
ck=$VAR/launch/k9/checkpoint.json
rows() { python3 -c "import json,sys; print(json.load(open('$ck'))['rows'])" 2>/dev/null || echo 0; }

# run 1: killed once its checkpoint has moved past 50,000 rows
TOCSIN_LAUNCH_CHECKPOINT_MS=100 "$TOCSIN_BIN" -c "$CFG" launch "$OUT/k9.json" --max-lag 0 --no-progress > "$OUT/run1.log" 2>&1 &
pid=$!
it_wait_until 60 bash -c "[ \$(python3 -c \"import json; print(json.load(open('$ck'))['rows'])\" 2>/dev/null || echo 0) -gt 50000 ]"
kill -9 $pid
wait $pid 2>/dev/null || true
r1=$(rows)
done1=$(python3 -c "import json; print(json.load(open('$ck'))['done'])")
echo "killed with the checkpoint at row $r1 (done=$done1)"
[ "$done1" = "False" ] || it_fail "run 1 finished before the kill; make the audience bigger"
[ "$r1" -gt 50000 ] && [ "$r1" -lt $N ] || it_fail "checkpoint rows $r1"

# run 2: the same command continues
TOCSIN_LAUNCH_CHECKPOINT_MS=100 T launch "$OUT/k9.json" --max-lag 0 --no-progress > "$OUT/run2.log" 2>&1 || it_fail "run 2: $(cat "$OUT/run2.log")"
grep -q "read $N, queued $N, rejected 0, suppressed 0, duplicates 0" "$OUT/run2.log" || it_fail "run 2 summary: $(cat "$OUT/run2.log")"
grep -q "resumed after row $r1" "$OUT/run2.log" || it_fail "run 2 did not resume from $r1"
produced=$(python3 -c "import json; print(json.load(open('$VAR/launch/k9/report.json'))['produced'])")
echo "run 2 produced $produced messages; $(grep -o '[0-9]* messages were already in the outbox' "$OUT/run2.log")"
[ "$produced" -lt $((N - r1 + 1)) ] || it_fail "run 2 produced $produced, more than the $((N - r1)) rows after the checkpoint"

# the outbox: every recipient exactly once
T launch "$OUT/k9.json" --check-outbox > "$OUT/check.log" 2>&1 || it_fail "check: $(cat "$OUT/check.log")"
grep -q "campaign k9: $N messages, $N distinct ids, 0 duplicates" "$OUT/check.log" || it_fail "outbox: $(cat "$OUT/check.log")"
grep -q "log start moved" "$OUT/check.log" && it_fail "the broker dropped messages: the check cannot prove anything"
# and a third run sends nothing
T launch "$OUT/k9.json" > "$OUT/run3.log" 2>&1
grep -q "already launched ($N recipients queued)" "$OUT/run3.log" || it_fail "run 3: $(cat "$OUT/run3.log")"
echo "ok 0202-launch-kill9"
