#!/usr/bin/env bash
# 0201-launch.sh -- tocsin launch / preview: the demo campaign's 10,000 messages exactly once,
# relaunch sends nothing, bad input gives one clear line and the right exit code, the nasty
# CSV corpus adds up (read = queued + rejected + suppressed + duplicates).
source "$(dirname "$0")/lib.sh"
it_setup 0201-launch
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DATA=$ROOT/tests/data/audience
it_write_config '"vendors":[{"name":"twilio","kind":"twilio","channel":"sms","base_url":"http://127.0.0.1:9","account":"AC1","secret_env":"TOCSIN_TWILIO_TOKEN","senders":{"main":{"from":"+15005550006"}},"cost":0.0079},{"name":"vonage","kind":"vonage","channel":"sms","base_url":"http://127.0.0.1:9","senders":{"main":"TOCSIN"},"cost":0.0068}]'
T() { "$TOCSIN_BIN" -c "$CFG" "$@"; }

# --help answers
T launch --help | grep -q -- "--resend-failed" || it_fail "launch --help"
T preview --help | grep -q -- "--n N" || it_fail "preview --help"
set +e
T launch > /dev/null 2>&1; [ $? -eq 2 ] || it_fail "launch without a campaign must exit 2"

# no broker running: kq_bootstrap's message, exit 1
out=$(T launch "$ROOT/examples/campaign.json" 2>&1); rc=$?
[ $rc -eq 1 ] || it_fail "no broker: rc $rc"
echo "$out" | grep -q "no Kafka broker" || it_fail "no broker message: $out"
# missing campaign file: "path: reason"
out=$(T launch "$OUT/nope.json" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "$OUT/nope.json: No such file or directory" || it_fail "missing campaign: $rc $out"
set -e

it_start_broker

# the demo campaign: exactly 10,000 queued, once
cp "$ROOT/examples/campaign.json" "$ROOT/examples/audience.csv" "$OUT/"
T launch "$OUT/campaign.json" --no-progress > "$OUT/launch1.out" 2> "$OUT/launch1.err"
grep -q "read 10000, queued 10000, rejected 0, suppressed 0, duplicates 0" "$OUT/launch1.out" || it_fail "demo summary: $(cat "$OUT/launch1.out")"
grep -q '"queued": 10000' "$VAR/launch/demo/report.json" || it_fail "report.json"
# on the embedded broker the launch bounds its lead over the dispatchers by itself
lag=$(python3 -c "import json; print(json.load(open('$VAR/launch/demo/report.json'))['max_lag'])")
[ "$lag" -gt 1000 ] && [ "$lag" -lt 200000 ] || it_fail "automatic max_lag on the embedded broker: $lag"
T launch "$OUT/campaign.json" --check-outbox | grep -q "campaign demo: 10000 messages, 10000 distinct ids, 0 duplicates" || it_fail "outbox check after launch"
# on a terminal: a progress line (rows, queued, rate); not when output is redirected
grep -q "rows/s  \|ETA" "$OUT/launch1.err" && it_fail "progress line written to a non-terminal"
if command -v script > /dev/null; then
  sed 's/"demo"/"demo-tty"/' "$OUT/campaign.json" > "$OUT/campaign-tty.json"
  script -qec "$TOCSIN_BIN -c $CFG launch $OUT/campaign-tty.json" "$OUT/tty.typescript" > /dev/null 2>&1 || it_fail "launch on a tty"
  tr '\r' '\n' < "$OUT/tty.typescript" | grep -aq "read 10000  queued 10000  rejected 0  suppressed 0  duplicates 0  .* rows/s" || it_fail "no progress line on a terminal"
fi
# relaunch: nothing new
T launch "$OUT/campaign.json" > "$OUT/launch2.out" 2>&1
grep -q "already launched (10000 recipients queued); nothing new" "$OUT/launch2.out" || it_fail "relaunch: $(cat "$OUT/launch2.out")"
T launch "$OUT/campaign.json" --check-outbox | grep -q "campaign demo: 10000 messages, 10000 distinct ids, 0 duplicates" || it_fail "outbox check after relaunch"

# bad input: missing CSV, unknown column, empty file, header only, duplicate columns
mk() { printf '{"id":"%s","audience":"%s","sms":{"template":"%s"}}\n' "$1" "$2" "$3" > "$OUT/$1.json"; }
set +e
mk c-missing "$OUT/missing.csv" "Hi {{first_name}}"
out=$(T launch "$OUT/c-missing.json" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "$OUT/missing.csv: No such file or directory" || it_fail "missing CSV: $rc $out"
mk c-col "$ROOT/examples/audience.csv" "Hi {{frist_name}}"
out=$(T launch "$OUT/c-col.json" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q 'sms.template: 1:6: unknown field "frist_name"' || it_fail "unknown column: $rc $out"
mk c-empty "$DATA/empty.csv" "Hi {{first_name}}"
out=$(T launch "$OUT/c-empty.json" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "empty.csv: empty file (no header row)" || it_fail "empty: $rc $out"
mk c-hdr "$DATA/header_only.csv" "Hi {{first_name}}"
out=$(T launch "$OUT/c-hdr.json" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "nothing queued: the audience has no rows" || it_fail "header only: $rc $out"
mk c-dup "$DATA/dupcols.csv" "Hi {{first_name}}"
out=$(T launch "$OUT/c-dup.json" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q 'dupcols.csv:1: duplicate column name "first_name" (columns 1 and 3)' || it_fail "dup columns: $rc $out"
set -e

# the nasty corpus: exact counts, every bad row in the rejects file with file:line
mk c-nasty "$DATA/nasty.csv" "Hi {{first_name}}"
T launch "$OUT/c-nasty.json" --no-progress > "$OUT/nasty.out" 2>&1
want=$(grep '^read=' "$DATA/nasty.expect")
got=$(python3 -c "
import json; r=json.load(open('$VAR/launch/c-nasty/report.json'))
print('read=%d queued=%d rejected=%d suppressed=%d duplicates=%d' % (r['read'], r['queued'], r['rejected'], r['suppressed'], r['duplicates']))
assert r['read'] == r['queued'] + r['rejected'] + r['suppressed'] + r['duplicates']")
[ "$got" = "$want" ] || it_fail "nasty: got $got want $want"
[ "$(tail -n +2 "$VAR/launch/c-nasty/rejects.csv" | wc -l)" -eq 12 ] || it_fail "nasty rejects lines"
[ "$(stat -c %a "$VAR/launch/c-nasty/rejects.csv")" = 600 ] || it_fail "rejects file mode $(stat -c %a "$VAR/launch/c-nasty/rejects.csv"), want 600 (recipients' rows)"
[ "$(stat -c %a "$VAR/optouts.db")" = 600 ] || it_fail "optouts.db mode $(stat -c %a "$VAR/optouts.db"), want 600 (opted-out addresses)"
grep -q "nasty.csv:22,-,\"\",\"unterminated quoted field\"" "$VAR/launch/c-nasty/rejects.csv" || it_fail "unterminated quote reject"
grep -q "nasty.csv:11,sms,\"102-555-2009\",\"invalid phone: invalid area code\"" "$VAR/launch/c-nasty/rejects.csv" || it_fail "area code reject"
T launch "$OUT/c-nasty.json" --check-outbox | grep -q "campaign c-nasty: 7 messages, 7 distinct ids" || it_fail "nasty outbox"

# a 10 MB field between good rows: that row rejected, the others queued
python3 -c "
import sys
f=open('$OUT/big.csv','w'); f.write('first_name,phone\nAna,202-555-3001\nBig,\"' + 'x'*(10*1024*1024) + '\"\nCy,202-555-3003\n')"
mk c-big "$OUT/big.csv" "Hi {{first_name}}"
T launch "$OUT/c-big.json" --no-progress > "$OUT/big.out" 2>&1
grep -q "read 3, queued 2, rejected 1" "$OUT/big.out" || it_fail "10 MB field: $(cat "$OUT/big.out")"
grep -q "big.csv:3,-,\"\",\"row longer than 1048576 bytes\"" "$VAR/launch/c-big/rejects.csv" || it_fail "10 MB reject line"

# preview: rendered messages, encodings, segments, reasons, cost per vendor
T preview "$OUT/c-nasty.json" --n 2 > "$OUT/preview.out"
grep -q "^Hi Ana$" "$OUT/preview.out" || it_fail "preview render"
grep -q "sms by encoding: gsm7 7, ucs2 0" "$OUT/preview.out" || it_fail "preview encodings"
grep -q "twilio           sms   0.0079 x 7 segments = 0.06" "$OUT/preview.out" || it_fail "preview cost: $(cat "$OUT/preview.out")"
grep -q "vonage           sms   0.0068 x 7 segments = 0.05" "$OUT/preview.out" || it_fail "preview cost vonage"
grep -q "invalid phone: invalid area code" "$OUT/preview.out" || it_fail "preview reasons"
echo "ok 0201-launch"
