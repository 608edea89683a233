#!/usr/bin/env bash
# 0325-dispatch-metrics.sh -- a dispatcher with dispatcher.metrics_listen serves /metrics that
# `promtool check metrics` passes, and its numbers are the emulator's: messages accepted, the
# vendor errors and throttles it was answered with (defers by reason, retries), the permanent
# failures sent to tocsin.dead; nothing left in flight, held or unconsumed at the end.
source "$(dirname "$0")/lib.sh"
it_setup 0325-dispatch-metrics
command -v promtool > /dev/null || it_fail "no promtool: run make deps (Debian package prometheus)"
config() {
  it_write_config '"vendors":[{"name":"twilio","kind":"twilio","channel":"sms","base_url":"http://'"$1"'",
    "account":"ACsim0000000000000000000000000000","secret_env":"TOCSIN_TWILIO_TOKEN",
    "senders":{"main":{"from":"+15005550006"}},"rate_per_s":400,
    "sla":{"error_rate":1,"timeout_rate":1}}],
    "routes":{"sms":{"vendors":["twilio"]}},
    "dispatcher":{"max_attempts":20,"retry_base_ms":20,"retry_max_ms":100,"retry_budget":1.0,
                  "metrics_listen":"127.0.0.1:0"}'
}
config 127.0.0.1:9
it_start_broker
it_start_sim
config "$SIM"
it_sim_fault '{"vendor":"twilio","error_rate":0.2,"throttle_rate":0.1,"retry_after_s":0}'
it_bg dispatch dispatch --channel sms
it_wait_until 20 bash -c "ls $VAR/run/tocsin-dispatch-sms-*.metrics.addr" || it_fail "no metrics address: $(tail -3 "$OUT/dispatch.log")"
M=http://$(cat "$VAR"/run/tocsin-dispatch-sms-*.metrics.addr)
it_gen_audience "$OUT/a.csv" 300 0
printf 'Inv,+15005550001,X\nCap,+15005550009,X\n' >> "$OUT/a.csv"
it_campaign "$OUT/c.json" dm a.csv
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c.json" --no-progress > "$OUT/launch.out" 2>&1 || it_fail "launch: $(cat "$OUT/launch.out")"
metric() { curl -sf "$M/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
S='channel="sms",vendor="twilio"'
done_all() { [ "$(metric "tocsin_dispatch_sends_total{$S,outcome=\"accepted\"}")" = 300 ] &&
             [ "$(metric "tocsin_dispatch_sends_total{$S,outcome=\"failed\"}")" = 2 ]; }
it_wait_until 60 done_all || it_fail "sends: $(curl -sf "$M/metrics" | grep sends_total)"
sleep 1.5 # one more copy of the loop's numbers
curl -sf "$M/metrics" > "$OUT/metrics.txt"
promtool check metrics < "$OUT/metrics.txt" > "$OUT/promtool.out" 2>&1 || it_fail "promtool: $(cat "$OUT/promtool.out")"
[ ! -s "$OUT/promtool.out" ] || it_fail "promtool: $(cat "$OUT/promtool.out")"
it_sim_stats > "$OUT/sim.json"
acc=$(it_jq 'j["vendors"]["twilio"]["accepted"]' "$OUT/sim.json")
req=$(it_jq 'j["vendors"]["twilio"]["requests"]' "$OUT/sim.json")
[ "$acc" = 300 ] || it_fail "emulator accepted $acc"
m() { awk -v k="$1" '$1 == k { print $2 }' "$OUT/metrics.txt"; }
err=$(m "tocsin_dispatch_defers_total{$S,reason=\"error\"}")
thr=$(m "tocsin_dispatch_defers_total{$S,reason=\"throttled\"}")
def=$(m "tocsin_dispatch_sends_total{$S,outcome=\"deferred\"}")
ret=$(m 'tocsin_dispatch_retries_total{channel="sms"}')
echo "emulator: $req requests, $acc accepted; dispatcher: errors $err, throttled $thr, deferred $def, retries $ret"
# every request got one answer: accepted + failed + deferred = the emulator's requests
[ $((300 + 2 + def)) = "$req" ] || it_fail "300 + 2 + $def deferred != $req requests at the emulator"
[ $((err + thr)) = "$def" ] || it_fail "defers by reason $err + $thr != $def deferred"
[ "$err" -gt 0 ] && [ "$thr" -gt 0 ] || it_fail "no errors or throttles counted"
[ "$ret" = "$def" ] || it_fail "retries $ret != deferred $def"
[ "$(m 'tocsin_dispatch_dead_letters_total{channel="sms"}')" = 2 ] || it_fail "dead letters: $(grep dead_letters "$OUT/metrics.txt")"
for k in 'tocsin_dispatch_in_flight{channel="sms"}' 'tocsin_dispatch_held_messages{channel="sms"}' \
         'tocsin_dispatch_consumer_lag{channel="sms"}'; do
  [ "$(m "$k")" = 0 ] || it_fail "$k = $(m "$k")"
done
grep -q '^tocsin_dispatch_rate_limit_waits_total{channel="sms",vendor="twilio"} [1-9]' "$OUT/metrics.txt" ||
  it_fail "no rate-limit wait at 400/s: $(grep rate_limit "$OUT/metrics.txt")"
echo "ok: 0325-dispatch-metrics"
