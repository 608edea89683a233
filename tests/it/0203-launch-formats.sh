#!/usr/bin/env bash
# 0203-launch-formats.sh -- JSON Lines and SQLite audiences, and a campaign with an SMS and an
# email version: each recipient gets each channel they have a valid address for.
source "$(dirname "$0")/lib.sh"
it_setup 0203-launch-formats
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DATA=$ROOT/tests/data/audience
it_write_config '"tracker":{"public_url":"https://t.example.org"}'
export TOCSIN_UNSUB_KEY=it-unsubscribe-key-0123456789
it_start_broker
T() { "$TOCSIN_BIN" -c "$CFG" "$@"; }
report() { python3 -c "
import json; r=json.load(open('$VAR/launch/$1/report.json'))
c=r['channels']
print('read=%d queued=%d rejected=%d suppressed=%d duplicates=%d' % (r['read'], r['queued'], r['rejected'], r['suppressed'], r['duplicates']),
      ' '.join('%s=%d/%d/%d' % (k, v['queued'], v['rejected'], v['duplicates']) for k, v in sorted(c.items())))
assert r['read'] == r['queued'] + r['rejected'] + r['suppressed'] + r['duplicates']"; }

# JSON Lines
printf '{"id":"jl","audience":"%s","sms":{"template":"Hi {{first_name}}"}}\n' "$DATA/people.jsonl" > "$OUT/jl.json"
T launch "$OUT/jl.json" --no-progress > "$OUT/jl.out" 2>&1 || it_fail "jsonl: $(cat "$OUT/jl.out")"
got=$(report jl)
[ "$got" = "read=7 queued=3 rejected=3 suppressed=0 duplicates=1 sms=3/1/1" ] || it_fail "jsonl: $got"
grep -q 'people.jsonl:3,-,"","invalid JSON at column' "$VAR/launch/jl/rejects.csv" || it_fail "jsonl reject line 3"
grep -q 'people.jsonl:5,sms,"202-555-2105","missing field first_name"' "$VAR/launch/jl/rejects.csv" || it_fail "jsonl missing field"
T launch "$OUT/jl.json" --check-outbox | grep -q "campaign jl: 3 messages, 3 distinct ids, 0 duplicates" || it_fail "jsonl outbox"

# SQLite, SMS + email
cat > "$OUT/sq.json" <<EOT
{"id": "sq", "audience": {"path": "$DATA/people.db", "table": "people"},
 "sms": {"template": "Hi {{first_name}}"},
 "email": {"subject": "For {{first_name}}", "text": "Hello {{first_name}}. Unsubscribe: {{unsubscribe_url}}"}}
EOT
T launch "$OUT/sq.json" --no-progress > "$OUT/sq.out" 2>&1 || it_fail "sqlite: $(cat "$OUT/sq.out")"
got=$(report sq)
[ "$got" = "read=5 queued=4 rejected=1 suppressed=0 duplicates=0 email=3/1/0 sms=3/0/1" ] || it_fail "sqlite: $got"
grep -q 'people.db:4,email,"dev@example","invalid email: domain has no' "$VAR/launch/sq/rejects.csv" || it_fail "sqlite email reject"
T launch "$OUT/sq.json" --check-outbox > "$OUT/sq.check"
grep -q "tocsin.outbox.sms: campaign sq: 3 messages, 3 distinct ids" "$OUT/sq.check" || it_fail "sq sms outbox"
grep -q "tocsin.outbox.email: campaign sq: 3 messages, 3 distinct ids" "$OUT/sq.check" || it_fail "sq email outbox"

# an email campaign without an unsubscribe link is refused
cat > "$OUT/nounsub.json" <<EOT
{"id": "nu", "audience": {"path": "$DATA/people.db", "table": "people"},
 "email": {"subject": "Hi", "text": "Hello {{first_name}}"}}
EOT
set +e
out=$(T launch "$OUT/nounsub.json" 2>&1); rc=$?
set -e
[ $rc -eq 1 ] && echo "$out" | grep -qi "unsubscribe" || it_fail "no unsubscribe link: $rc $out"
echo "ok 0203-launch-formats"
