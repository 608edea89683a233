#!/usr/bin/env bash
# 0517-ambiguous: the primary vendor accepts every message but answers after its timeout_ms
# (emulator latency 4,000 ms, timeout_ms 2,000) for 10 s mid-blast, with a secondary vendor on
# the route. Each send that got no answer is ambiguous: held (ambiguous_grace_ms) instead of
# retried, and confirmed by the receipt the tracker puts on tocsin.status (the vendor echoes
# our id in it). Run A, receipts on: 0 recipients messaged twice across both vendors, every
# ambiguous send reconciled, none resent. Run B, the primary's receipts off: nothing can
# confirm, so every ambiguous send is sent again after the grace -- the duplicates are at most
# the ambiguous count, counted in /metrics and listed by `tocsin dead` (ambiguous_resent).
source "$(dirname "$0")/lib.sh"
it_setup 0517-ambiguous
export TOCSIN_VONAGE_SECRET=it-vonage-secret TOCSIN_VONAGE_SIG=it-vonage-signature-secret
cfg() {
  it_write_config "\"vendors\": [
   {\"name\":\"twilio\",\"kind\":\"twilio\",\"base_url\":\"http://${SIM:-127.0.0.1:9}\",
    \"account\":\"ACit00000000000000000000000000000\",\"secret_env\":\"TOCSIN_TWILIO_TOKEN\",
    \"senders\":{\"main\":{\"from\":\"+15005550006\"}}, \"rate_per_s\": 200, \"timeout_ms\": 2000,
    \"sla\": {\"window_s\": 2, \"min_open_s\": 2, \"probe_windows\": 1, \"ramp_s\": 1}},
   {\"name\":\"vonage\",\"kind\":\"vonage\",\"base_url\":\"http://${SIM:-127.0.0.1:9}\",
    \"account\":\"itvonagekey\",\"secret_env\":\"TOCSIN_VONAGE_SECRET\",
    \"signature_secret_env\":\"TOCSIN_VONAGE_SIG\",
    \"senders\":{\"main\":{\"from\":\"15005550007\"}}, \"rate_per_s\": 200, \"timeout_ms\": 2000}],
  \"routes\": {\"sms\": {\"strategy\": \"priority\", \"vendors\": [\"twilio\", \"vonage\"]}},
  \"dispatcher\": {\"max_attempts\": 8, \"retry_base_ms\": 100, \"retry_max_ms\": 1000,
                   \"max_in_flight\": 64, \"retry_budget\": 1.0, \"ambiguous_grace_ms\": 3000,
                   \"metrics_listen\": \"127.0.0.1:0\"},
  \"tracker\": {\"public_url\": \"http://${TRACK:-127.0.0.1:9}\"}"
}
# refusals: one line, exit 1, before anything starts (no broker yet)
for bad in '"ambiguous_grace_ms": -1' '"ambiguous_grace_ms": "10s"' '"static_membership": "yes"'; do
  it_one_sms_vendor '"senders":{"main":{"from":"+15005550006"}}' "\"dispatcher\": {$bad}"
  rc=0; "$TOCSIN_BIN" -c "$CFG" dispatch > "$OUT/refused.out" 2>&1 || rc=$?
  key=$(echo "$bad" | cut -d'"' -f2)
  grep -q "^tocsin dispatch: .*: dispatcher\.$key must be" "$OUT/refused.out" && [ "$rc" = 1 ] &&
    [ "$(wc -l < "$OUT/refused.out")" = 1 ] || it_fail "$bad: exit $rc, $(cat "$OUT/refused.out")"
done
# the tracker's address first: receipts are signed over the public URL it checks them against
TRACK=127.0.0.1:$(it_free_port)
cfg
it_start_broker
it_start_sim
cfg
it_bg track track --listen "$TRACK"
it_wait_file "$VAR/run/track.addr" 20
it_bg dispatch dispatch
it_wait_until 20 bash -c "ls $VAR/run/tocsin-dispatch-sms-*.metrics.addr" || it_fail "no metrics address"
M=http://$(cat "$VAR"/run/tocsin-dispatch-sms-*.metrics.addr)
metric() { curl -sf "$M/metrics" | awk -v k="tocsin_dispatch_$1_total{channel=\"sms\"}" '$1 == k { print $2 }'; }
# distinct ids the emulator accepted, summed over both vendors (a recipient sent once by each
# counts twice), and ids it accepted twice from one vendor
uniq_sum() { it_sim_stats | it_jq 'sum(v["unique_ids"] for v in j["vendors"].values())'; }
dup_sum() { it_sim_stats | it_jq 'sum(v["duplicate_count"] for v in j["vendors"].values())'; }
twilio_accepted() { it_sim_stats | it_jq 'j["vendors"]["twilio"]["accepted"]'; }

# blast ID N OFFSET: launch N recipients; at 300 more twilio acceptances, twilio answers late for 10 s
blast() {
  it_gen_audience "$OUT/$1.csv" "$2" "$3"
  it_campaign "$OUT/$1.json" "$1" "$1.csv"
  local t0; t0=$(twilio_accepted)
  "$TOCSIN_BIN" -c "$CFG" launch "$OUT/$1.json" --no-progress > "$OUT/launch-$1.out" 2>&1 || it_fail "launch $1"
  at_least() { [ "$(twilio_accepted)" -ge $((t0 + 300)) ]; }
  it_wait_until 30 at_least || it_fail "$1: twilio never took 300"
  it_sim_fault '{"vendor":"twilio","latency_ms":4000}'
  sleep 10
  it_sim_fault '{"vendor":"twilio","latency_ms":0}'
  all_final() { [ "$(it_final_count "$1")" -ge "$2" ]; }
  it_wait_until 40 all_final "$1" "$2" || it_fail "$1: only $(it_final_count "$1") of $2 final"
  [ "$(it_status_field "$1" 'j["states"].get("queued",0)+j["states"].get("retrying",0)')" = 0 ] \
    || it_fail "$1: messages left unfinished"
}

# ---- A: receipts on
blast amba 2000 0
sleep 1.5 # the metrics are copied once a second
amb=$(metric ambiguous); rec=$(metric reconciled); res=$(metric resent_after_ambiguity)
u=$(uniq_sum); dd=$(dup_sum)
echo "A (receipts): ambiguous=$amb reconciled=$rec resent_after_ambiguity=$res emulator unique=$u dups=$dd"
[ "$amb" -gt 0 ] || it_fail "A: no send was ambiguous: the fault did not bite"
[ "$rec" = "$amb" ] || it_fail "A: $rec of $amb ambiguous sends reconciled"
[ "$res" = 0 ] || it_fail "A: $res ambiguous sends resent although receipts came"
# a Vonage receipt that overtook its message's accepted record (a message failed over from Twilio
# is stored under Twilio until then) waited for it and was taken, not refused as mismatched
vmis=$(curl -sf "http://$TRACK/api/vendors" | it_jq '[v["webhooks"]["mismatched"] for v in j["vendors"] if v["name"] == "vonage"][0]')
[ "$vmis" = 0 ] || it_fail "A: $vmis Vonage receipts refused as mismatched"
early=$(grep -c 'event=webhook_early_taken' "$OUT/track.log" || true)
echo "A: Vonage receipts refused as mismatched 0, taken after waiting for their accepted record $early"
[ "$u" = 2000 ] || it_fail "A: the emulator has $u distinct ids over both vendors, want 2000 (someone got two)"
[ "$dd" = 0 ] || it_fail "A: the emulator accepted $dd ids twice"

# ---- B: twilio sends no receipts: nothing can confirm
it_sim_fault '{"vendor":"twilio","receipts":{"enabled":false}}'
blast ambb 2000 100000
sleep 1.5
amb2=$(( $(metric ambiguous) - amb )); res2=$(metric resent_after_ambiguity); rec2=$(( $(metric reconciled) - rec ))
u2=$(( $(uniq_sum) - u )); dd2=$(dup_sum)
twice=$(( u2 - 2000 + dd2 ))
echo "B (no receipts): ambiguous=$amb2 reconciled=$rec2 resent_after_ambiguity=$res2 recipients messaged twice=$twice"
[ "$amb2" -gt 0 ] || it_fail "B: no send was ambiguous"
[ "$res2" = "$amb2" ] || it_fail "B: $res2 of $amb2 ambiguous sends resent (nothing could confirm them)"
[ "$twice" -ge 1 ] && [ "$twice" -le "$res2" ] || it_fail "B: $twice messaged twice, want 1..$res2"
"$TOCSIN_BIN" -c "$CFG" dead --campaign ambb > "$OUT/dead.txt" 2>&1 || it_fail "tocsin dead"
grep -q "^$res2 sent again after an ambiguous outcome" "$OUT/dead.txt" || it_fail "tocsin dead: $(tail -2 "$OUT/dead.txt")"
[ "$(grep -c ' ambiguous_resent ' "$OUT/dead.txt")" = "$res2" ] || it_fail "tocsin dead does not list the $res2"
echo "ok: receipts reconciled all $amb ambiguous sends (0 twice); without them $res2 were resent, $twice messaged twice, listed by tocsin dead"
