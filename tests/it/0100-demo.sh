#!/usr/bin/env bash
# 0100-demo: the spine end to end, twice -- `tocsin demo` starts broker, emulator, tracker and a
# dispatcher, launches the 10,000-recipient example campaign and must see every recipient
# accepted exactly once (tracker counts and the emulator's per-id counts), then leave no
# process running. The second run proves no stale state gets in the way.
source "$(dirname "$0")/lib.sh"
it_setup 0100-demo
it_write_config
cd "$(dirname "$0")/../.."

for run in 1 2; do
  echo "== demo run $run"
  if ! "$TOCSIN_BIN" -c "$CFG" demo --timeout 240 > "$OUT/demo-$run.out" 2>&1; then
    cat "$OUT/demo-$run.out"; it_fail "demo run $run exited non-zero"
  fi
  cat "$OUT/demo-$run.out"
  grep -Eq '^accepted +10000$' "$OUT/demo-$run.out" || it_fail "tracker did not count 10000 accepted"
  grep -Eq '^total +10000$' "$OUT/demo-$run.out" || it_fail "tracker total is not 10000"
  grep -q 'emulator: 10000 messages accepted, 10000 distinct ids, 0 sent twice' "$OUT/demo-$run.out" \
    || it_fail "emulator did not see each of the 10000 ids exactly once"
  grep -q 'result: OK' "$OUT/demo-$run.out" || it_fail "demo did not report OK"
  # Nothing it started may still run.
  sleep 0.5
  if pgrep -f -- "$VAR/demo/tocsin.json" > /dev/null; then
    pgrep -af -- "$VAR/demo/tocsin.json"; it_fail "processes left running after demo run $run"
  fi
done
echo "demo ran twice: 10000 accepted exactly once each time, nothing left running"
