#!/usr/bin/env bash
# 0205-launch-resend-twice.sh -- `launch --resend-failed` run twice before the first resend was
# sent re-queues each failed message once: the emulator receives one message per recipient.
# One SMS vendor (the emulator's Twilio) answers 503 and max_attempts is 1, so all 20 messages of
# the campaign fail; the outage ends, the dispatcher is stopped, --resend-failed runs twice (the
# second says the 20 are already re-queued), the dispatcher starts again and drains the outbox:
# the emulator has accepted 20 messages, 20 distinct ids, no duplicate.
source "$(dirname "$0")/lib.sh"
it_setup 0205-launch-resend-twice
N=20
config() {
  it_write_config '"vendors":[{"name":"twilio","kind":"twilio","channel":"sms","base_url":"http://'"$1"'",
    "account":"ACsim0000000000000000000000000000","secret_env":"TOCSIN_TWILIO_TOKEN",
    "senders":{"main":{"from":"+15005550006"}},"sla":{"error_rate":1,"timeout_rate":1}}],
    "routes":{"sms":{"vendors":["twilio"]}},
    "dispatcher":{"max_attempts":1,"retry_base_ms":20,"retry_max_ms":100,"retry_budget":1.0,
                  "metrics_listen":"127.0.0.1:0"}'
}
config 127.0.0.1:9
it_start_broker
it_start_sim
config "$SIM"
it_sim_fault '{"vendor":"twilio","outage":"503"}'
S='channel="sms",vendor="twilio"'
metric() { curl -sf "$M/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
start_dispatch() {
  rm -f "$VAR"/run/tocsin-dispatch-sms-*.metrics.addr
  it_bg "dispatch$1" dispatch --channel sms
  it_wait_until 20 bash -c "ls $VAR/run/tocsin-dispatch-sms-*.metrics.addr" || it_fail "no metrics address"
  M=http://$(cat "$VAR"/run/tocsin-dispatch-sms-*.metrics.addr)
}
start_dispatch 1
it_gen_audience "$OUT/a.csv" "$N" 0
it_campaign "$OUT/c.json" twice a.csv
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c.json" --no-progress > "$OUT/launch.out" 2>&1 || it_fail "launch: $(cat "$OUT/launch.out")"
# a give-up after max_attempts is a deferred answer and a failed message
all_failed() { [ "$(metric "tocsin_dispatch_sends_total{$S,outcome=\"deferred\"}")" = "$N" ]; }
it_wait_until 60 all_failed || it_fail "not all failed: $(curl -sf "$M/metrics" | grep sends_total)"
[ "$(it_sim_stats | it_jq 'j["vendors"]["twilio"]["accepted"]')" = 0 ] || it_fail "the emulator accepted during the outage"
# drained: nothing left to consume, in flight or waiting for the broker
drained() {
  local t; t=$(curl -sf "$M/metrics") || return 1
  for k in 'tocsin_dispatch_consumer_lag{channel="sms"}' 'tocsin_dispatch_in_flight{channel="sms"}' \
           'tocsin_dispatch_pending_messages{channel="sms",where="ready"}' \
           'tocsin_dispatch_pending_messages{channel="sms",where="waiting"}' \
           'tocsin_dispatch_pending_messages{channel="sms",where="awaiting_ack"}'; do
    [ "$(echo "$t" | awk -v k="$k" '$1 == k { print $2 }')" = 0 ] || return 1
  done
}
it_wait_until 30 drained || it_fail "first run never drained"
it_stop "$PID_dispatch1" || it_fail "dispatcher did not stop"
it_sim_fault '{"vendor":"twilio","outage":"none"}'

# two resends before anything is sent
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c.json" --resend-failed --no-progress > "$OUT/resend1.out" 2>&1 || it_fail "resend 1: $(cat "$OUT/resend1.out")"
cat "$OUT/resend1.out"
grep -q "re-queued $N messages" "$OUT/resend1.out" || it_fail "first resend did not re-queue $N"
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/c.json" --resend-failed --no-progress > "$OUT/resend2.out" 2>&1 || it_fail "resend 2: $(cat "$OUT/resend2.out")"
cat "$OUT/resend2.out"

start_dispatch 2
acc() { it_sim_stats | it_jq 'j["vendors"]["twilio"]["accepted"]'; }
accepted_n() { [ "$(acc)" -ge "$N" ]; }
it_wait_until 60 accepted_n || it_fail "resent messages never reached the emulator: $(it_sim_stats)"
it_wait_until 30 drained || it_fail "second run never drained"
sleep 1.5 # one more copy of the loop's numbers
it_wait_until 30 drained || it_fail "second run never drained"
it_sim_stats > "$OUT/sim.json"
echo "emulator after two resends: $(it_jq 'j["vendors"]["twilio"]' "$OUT/sim.json")"
[ "$(it_jq 'j["vendors"]["twilio"]["accepted"]' "$OUT/sim.json")" = "$N" ] || it_fail "the emulator accepted $(it_jq 'j["vendors"]["twilio"]["accepted"]' "$OUT/sim.json") for $N recipients"
[ "$(it_jq 'j["vendors"]["twilio"]["unique_ids"]' "$OUT/sim.json")" = "$N" ] || it_fail "unique ids at the emulator"
[ "$(it_jq 'j["vendors"]["twilio"]["duplicate_count"]' "$OUT/sim.json")" = 0 ] || it_fail "the emulator saw ids twice"
grep -q "re-queued 0 messages" "$OUT/resend2.out" || it_fail "second resend re-queued: $(cat "$OUT/resend2.out")"
grep -q "; $N already re-queued by an earlier --resend-failed" "$OUT/resend2.out" || it_fail "second resend does not say $N already re-queued"
echo "OK"
