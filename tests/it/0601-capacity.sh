#!/usr/bin/env bash
# 0601-capacity.sh -- `tocsin capacity` from the configuration alone: the figures for
# examples/tocsin.json and for a rate-limited config (which limit binds, how long 20,000 take,
# the what-ifs), --json equal to the table, and every refusal in one line with exit 2 and
# nothing started.
source "$(dirname "$0")/lib.sh"
it_setup 0601-capacity
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

"$TOCSIN_BIN" -c "$ROOT/examples/tocsin.json" capacity --audience 20000 > "$OUT/ex.out" || it_fail "capacity on the example"
cat "$OUT/ex.out"
# two SMS vendors, no rate limits: 64 in flight / 100 ms each = 640/s, 1,280/s together
grep -q '^  twilio .* 640/s .* 640/s  max_in_flight$' "$OUT/ex.out" || it_fail "twilio row"
grep -q '^  route: 1280 segments/s = 1280 messages/s; 20000 recipients take 15.6 s$' "$OUT/ex.out" || it_fail "sms route line"

it_write_config '"vendors":[
  {"name":"tw","kind":"twilio","base_url":"https://api.twilio.com","rate_per_s":100,
   "senders":{"main":{"from":"+15005550006","rate_per_number":10}}},
  {"name":"vo","kind":"vonage","base_url":"https://rest.nexmo.com","rate_per_s":30,
   "senders":{"main":{"from":"15005550007"}}}],
 "routes":{"sms":{"vendors":["tw","vo"]}}'
"$TOCSIN_BIN" -c "$CFG" capacity --audience 20000 --segments 2 > "$OUT/rl.out" || it_fail "capacity"
cat "$OUT/rl.out"
# tw: 10 segments/s for its one number; vo: its 30/s account -> 40 segments/s = 20 messages/s
grep -q '^  tw .*10/s  rate_per_number$' "$OUT/rl.out" || it_fail "tw binds on its number"
grep -q '^  vo .*30/s  rate_per_s$' "$OUT/rl.out" || it_fail "vo binds on its account rate"
grep -q '^  route: 40 segments/s = 20 messages/s; 20000 recipients take 16 min 40 s$' "$OUT/rl.out" || it_fail "route"
grep -q '^  +1 sender number on tw  *25 messages/s, 13 min 20 s$' "$OUT/rl.out" || it_fail "what-if number"
grep -q '^  +1 dispatcher  *20 messages/s' "$OUT/rl.out" || it_fail "a dispatcher buys nothing here"
"$TOCSIN_BIN" -c "$CFG" capacity --audience 20000 --segments 2 --json > "$OUT/rl.json" || it_fail "--json"
it_jq() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }
[ "$(it_jq 'j["channels"][0]["messages_per_s"]' < "$OUT/rl.json")" = 20.0 ] || it_fail "--json messages_per_s"
[ "$(it_jq 'j["channels"][0]["seconds"]' < "$OUT/rl.json")" = 1000.0 ] || it_fail "--json seconds"

# refusals: one line, exit 2
refused() { # EXPECTED-LINE ARGS...
  local want=$1; shift
  set +e; "$TOCSIN_BIN" "$@" > "$OUT/r.out" 2> "$OUT/r.err"; local rc=$?; set -e
  [ $rc -eq 2 ] || it_fail "$* exited $rc, not 2"
  [ "$(wc -l < "$OUT/r.err")" -eq 1 ] || { cat "$OUT/r.err"; it_fail "$*: not one line"; }
  grep -qF -- "$want" "$OUT/r.err" || { cat "$OUT/r.err"; it_fail "$*: not '$want'"; }
  [ ! -s "$OUT/r.out" ] || it_fail "$*: printed a table"
}
refused "--audience must be 1..100000000" -c "$CFG" capacity --audience 0
refused "--audience must be 1..100000000" -c "$CFG" capacity --audience 1e6
refused "--segments must be 1..10" -c "$CFG" capacity --segments 11
refused "--latency-ms must be 1..60000" -c "$CFG" capacity --latency-ms -5
refused 'no vendor has sender pool "vip"' -c "$CFG" capacity --pool vip
printf '{"vendors":[{"name":"tw","kind":"twilio","base_url":"http://127.0.0.1:9","rate_per_sec":5}]}\n' > "$OUT/bad.json"
refused "unknown field vendors[0].rate_per_sec (did you mean rate_per_s?)" -c "$OUT/bad.json" capacity
printf '{"vendors":[{"name":"tw","kind":"twilio","base_url":"http://127.0.0.1:9","rate_per_s":-1}]}\n' > "$OUT/bad.json"
refused '"rate_per_s" must be a number >= 0' -c "$OUT/bad.json" capacity
echo "ok: 0601-capacity"
