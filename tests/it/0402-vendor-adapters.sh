#!/usr/bin/env bash
# 0402-vendor-adapters.sh -- every adapter against the running emulator through `tocsin vendor-send`:
# accepted sends and counts, batches, duplicates, wrong credentials, and each fault classified.
source "$(dirname "$0")/lib.sh"
it_setup 0402-vendor-adapters
export TOCSIN_VG_SECRET=it-vg-secret TOCSIN_SG_KEY=SG.it-key TOCSIN_MG_KEY=key-it-mg
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
B=http://127.0.0.1:$PORT
it_write_config '"vendors":[
 {"name":"tw","kind":"twilio","base_url":"'$B'","account":"ACit","secret_env":"TOCSIN_TWILIO_TOKEN","timeout_ms":1500,"senders":{"main":"+15005550006"}},
 {"name":"vg","kind":"vonage","base_url":"'$B'","account":"vgkey","secret_env":"TOCSIN_VG_SECRET","senders":{"main":"+15005550007"}},
 {"name":"sg","kind":"sendgrid","base_url":"'$B'","account":"-","secret_env":"TOCSIN_SG_KEY","senders":{"main":"news@example.org"}},
 {"name":"mg","kind":"mailgun","base_url":"'$B'","account":"mg.example.org","secret_env":"TOCSIN_MG_KEY","timeout_ms":3000,"senders":{"main":"news@mg.example.org"}}]'
it_bg sim vendor-sim --listen 127.0.0.1:$PORT
it_wait_file "$VAR/run/vendor-sim.addr"

send() { "$TOCSIN_BIN" -c "$CFG" vendor-send "$@"; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" | head -1; }
simcfg() { curl -s -o /dev/null -w '%{http_code}' -X POST -d "$1" "$B/_sim/config" | grep -q 200 || it_fail "config $1"; }
stat() { curl -s "$B/_sim/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["vendors"][sys.argv[1]][sys.argv[2]])' "$1" "$2"; }

# accepted: one SMS per SMS vendor, a batch of 5 per email vendor
for v in tw vg; do
  out=$(send $v --to +15551230001) || it_fail "$v send: $out"
  [ "$(echo "$out" | field outcome)" = accepted ] || it_fail "$v: $out"
  [ "$(echo "$out" | field ref)" != - ] || it_fail "$v: no vendor reference: $out"
done
for v in sg mg; do
  out=$(send $v --to reader@example.org --count 5) || it_fail "$v batch: $out"
  [ "$(echo "$out" | grep -c 'outcome=accepted')" = 5 ] || it_fail "$v batch: $out"
done
[ "$(stat tw accepted)" = 1 ] && [ "$(stat vg accepted)" = 1 ] || it_fail "sms accepted counts"
[ "$(stat sg accepted)" = 5 ] && [ "$(stat sg requests)" = 1 ] && [ "$(stat sg unique_ids)" = 5 ] || it_fail "sendgrid counts"
[ "$(stat mg accepted)" = 5 ] && [ "$(stat mg unique_ids)" = 5 ] || it_fail "mailgun counts"

# the same message twice is reported by id
send tw --to +15551230001 > /dev/null
[ "$(stat tw duplicate_count)" = 1 ] || it_fail "duplicate not counted"
id=$(send vg --to +15551230001 | field id)
[ "$(stat vg duplicate_ids)" = "['$id']" ] || it_fail "vonage duplicate ids: $(stat vg duplicate_ids)"

# wrong credentials -> config, for every vendor; the secret never printed
for v in tw vg sg mg; do
  out=$(TOCSIN_TWILIO_TOKEN=bad TOCSIN_VG_SECRET=bad TOCSIN_SG_KEY=bad TOCSIN_MG_KEY=bad \
        send $v --to $([ $v = tw ] || [ $v = vg ] && echo +15551230002 || echo x@example.org)) && it_fail "$v accepted bad credentials"
  [ "$(echo "$out" | field outcome)" = config ] || it_fail "$v bad credentials: $out"
done
set +e; out=$(TOCSIN_VG_SECRET= send vg --to +15551230002 2>&1); rc=$?; set -e
[ $rc = 1 ] && echo "$out" | grep -q 'TOCSIN_VG_SECRET is unset' || it_fail "unset secret: rc=$rc $out"
set +e; out=$(send tw --to +15551230002 --sender nopool 2>&1); rc=$?; set -e
[ $rc = 1 ] && echo "$out" | grep -q 'no number for sender pool "nopool"' || it_fail "unknown pool: $out"

# a number the emulator's account does not own (a sender pool bound to the wrong vendor) -> config
sed 's/"+15005550006"/"+15009999999"/' "$CFG" > "$OUT/other.json"
out=$("$TOCSIN_BIN" -c "$OUT/other.json" vendor-send tw --to +15551230002) && it_fail "unowned From accepted"
[ "$(echo "$out" | field outcome)" = config ] && [ "$(echo "$out" | field code)" = 21606 ] || it_fail "unowned From: $out"

# faults, each classified as the dispatcher will see it
expect() { # vendor to outcome code [extra-field=value]
  local out; out=$(send "$1" --to "$2" || true)
  [ "$(echo "$out" | field outcome)" = "$3" ] || it_fail "$1 want $3: $out"
  [[ "$(echo "$out" | field code)" == $4 ]] || it_fail "$1 want code $4: $out"
  if [ -n "${5:-}" ]; then [ "$(echo "$out" | field "${5%%=*}")" = "${5#*=}" ] || it_fail "$1 want $5: $out"; fi
}
simcfg '{"vendor":"tw","throttle_rate":1,"retry_after_s":2}'
expect tw +15551230003 defer 20429 retry_after_ms=2000
simcfg '{"vendor":"vg","throttle_rate":1}'
expect vg +15551230003 defer 1 throttled=1
simcfg '{"vendor":"sg","outage":"503"}'
expect sg a@example.org defer http_503
simcfg '{"vendor":"mg","outage":"reset"}'
expect mg a@example.org defer 'curl_*'
simcfg '{"vendor":"tw","throttle_rate":0,"outage":"hang"}'
start=$(date +%s%N)
expect tw +15551230004 defer curl_28
el=$(( ($(date +%s%N) - start) / 1000000 ))
[ $el -ge 1400 ] && [ $el -lt 10000 ] || it_fail "hang: the client should give up after its 1500 ms timeout, took $el ms"
simcfg '{"vendor":"vg","throttle_rate":0,"permanent_rate":1}'
expect vg +15551230005 permanent 3
simcfg '{"vendor":"tw","outage":"none","optout_rate":1}'
expect tw +15551230006 optout 21610
simcfg '{"vendor":"sg","outage":"none","error_rate":1}'
expect sg a@example.org defer http_500
simcfg '{"vendor":"mg","outage":"none","latency_ms":{"median":400,"tail":500}}'
out=$(send mg --to lat@example.org) || it_fail "latency send: $out"
[ "$(echo "$out" | field latency_ms)" -ge 190 ] || it_fail "latency not applied: $out"
simcfg '{"reset":true}'
for v in tw vg; do expect $v +15551230009 accepted '*'; done

it_stop "$PID_sim" || it_fail "vendor-sim did not stop cleanly"
! grep -q "it-vg-secret\|SG.it-key\|key-it-mg\|$TOCSIN_TWILIO_TOKEN" "$OUT/sim.log" || it_fail "a secret reached the log"
echo "0402-vendor-adapters: ok"
