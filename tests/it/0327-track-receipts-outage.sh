#!/usr/bin/env bash
# 0327-track-receipts-outage.sh -- receipts survive a tracker outage. Three SMS accounts on the
# emulator, receipts on (2 s after each send, 90% delivered): "twilio" (the tracker can ask Twilio's
# Fetch Message), "vonage" (the emulator retries its webhooks as Vonage does, the schedule scaled by
# 0.01: 50 ms doubling up to 9 s) and "vonage2" (a Vonage account whose retries are switched off:
# its lost receipts never come back). Three campaigns of 300, one per account, at 30/s each; the
# tracker is SIGKILLed once 150 are sent and started again 30 s later on the same address. With
# tracker.reconcile_after_s 8 and unknown_receipt_after_s 45, after it returns no message stays
# accepted or sent: Twilio's are settled by asking the vendor (none unknown), Vonage's by the
# retried webhooks (none unknown: a webhook is answered only once the broker acknowledged its
# status, so one the SIGKILL caught is retried), and vonage2's lost receipts become unknown_receipt.
source "$(dirname "$0")/lib.sh"
it_setup 0327-track-receipts-outage
export TOCSIN_VONAGE_SECRET=it-vonage-secret TOCSIN_VONAGE_SIG=it-vonage-signature-secret
export TOCSIN_VONAGE2_SECRET=it-vonage2-secret TOCSIN_VONAGE2_SIG=it-vonage2-signature-secret
TRACK=127.0.0.1:$(it_free_port)
N=300
config() {
  it_write_config '"vendors":[
   {"name":"twilio","kind":"twilio","base_url":"http://'"$1"'","account":"ACit00000000000000000000000000000",
    "secret_env":"TOCSIN_TWILIO_TOKEN","senders":{"tw":{"from":"+15005550006"}},"rate_per_s":30},
   {"name":"vonage","kind":"vonage","base_url":"http://'"$1"'","account":"itvonagekey",
    "secret_env":"TOCSIN_VONAGE_SECRET","signature_secret_env":"TOCSIN_VONAGE_SIG",
    "senders":{"vg":{"from":"15005550007"}},"rate_per_s":30},
   {"name":"vonage2","kind":"vonage","base_url":"http://'"$1"'","account":"itvonagekey2",
    "secret_env":"TOCSIN_VONAGE2_SECRET","signature_secret_env":"TOCSIN_VONAGE2_SIG",
    "senders":{"nr":{"from":"15005550008"}},"rate_per_s":30}],
  "routes":{"sms":{"vendors":["twilio","vonage","vonage2"]}},
  "tracker":{"listen":"'"$TRACK"'","public_url":"http://'"$TRACK"'",
             "reconcile_after_s":8,"unknown_receipt_after_s":45}'
}
config 127.0.0.1:9
it_start_broker
it_start_sim
config "$SIM"
it_sim_fault '{"receipts":{"enabled":true,"delay_ms":2000,"delivered_rate":0.9,"retry_scale":0.01}}'
it_sim_fault '{"vendor":"vonage2","receipts":{"retries":false}}'
it_bg track track
it_wait_file "$VAR/run/track.addr" 20
A=http://$TRACK
it_bg dispatch dispatch --channel sms

k=0
for c in tw vg nr; do
  it_gen_audience "$OUT/$c.csv" $N $((k * 10000)); k=$((k + 1))
  it_campaign_as "$OUT/$c.json" "$c" "$OUT/$c.csv" "$c" 0
  "$TOCSIN_BIN" -c "$CFG" launch "$OUT/$c.json" > "$OUT/launch-$c.out" 2>&1 || it_fail "launch $c"
done

# once a sixth of the blast is out (receipts for it coming in), the tracker dies; its receipts
# fail for the next 30 s
sent_total() { it_sim_stats | it_jq 'sum(v["accepted"] for v in j["vendors"].values())'; }
sent_some() { [ "$(sent_total)" -ge $((N / 2)) ]; }
it_wait_until 60 sent_some || it_fail "the blast did not start (emulator accepted $(sent_total))"
kill -KILL "$PID_track"
wait "$PID_track" 2>/dev/null || true
sent_at_kill=$(sent_total)
sleep 30
failed_webhooks=$(curl -sf "http://$SIM/_sim/receipts" | it_jq 'j["failed"] + j["retried"]')
[ "$failed_webhooks" -gt 0 ] || it_fail "no webhook failed during the outage"
it_bg track2 track
healthy() { curl -sf "$A/healthz"; }
it_wait_until 20 healthy || it_fail "the tracker did not come back on $TRACK"
echo "tracker killed after $sent_at_kill sends, back 30 s later; $failed_webhooks webhook deliveries had failed"

# after it returns, nothing stays accepted or sent (bounded: the deadline is 45 s after the last
# status), and every Vonage receipt comes back (a retry later than the deadline still moves an
# unknown_receipt on: it is not final)
# (one /api/campaigns read per check, bounded by wall time: `tocsin status` per field is slow under load)
snap() { CAMPS=$(curl -sf --max-time 5 "$A/api/campaigns") || CAMPS='{"campaigns":[]}'; }
st() { echo "$CAMPS" | it_jq "sum(c['states'].get('$2', 0) for c in j['campaigns'] if c['id'] == '$1')"; }
settled() {
  snap
  [ "$(echo "$CAMPS" | it_jq "len([c for c in j['campaigns'] if c['id'] in ('tw', 'vg', 'nr')
    and c['total'] == $N and c['states'].get('accepted', 0) + c['states'].get('sent', 0) == 0
    and (c['id'] != 'vg' or c['states'].get('unknown_receipt', 0) <= $VG_LOST_MAX)]) == 3")" = True ]
}
# A Vonage receipt in flight at the SIGKILL was not answered 200 (the tracker answers only once the
# broker acknowledged its status) and its replay key was not kept, so the emulator's retry brings
# it: none is lost (before issue 13's fix, one was in 2 of 9 runs).
VG_LOST_MAX=0
end=$((SECONDS + 150))
until settled; do
  [ $SECONDS -lt $end ] || it_fail "messages left awaiting a receipt: $(for c in tw vg nr; do echo -n "$c accepted=$(st $c accepted) sent=$(st $c sent) unknown_receipt=$(st $c unknown_receipt) "; done)"
  sleep 1
done
for c in tw vg nr; do
  echo "$c: delivered=$(st $c delivered) undelivered=$(st $c undelivered) unknown_receipt=$(st $c unknown_receipt)"
done
# Twilio: every lost receipt settled by asking the vendor
[ "$(st tw unknown_receipt)" = 0 ] || it_fail "twilio: $(st tw unknown_receipt) unknown_receipt, want 0 (the vendor was asked)"
[ $(($(st tw delivered) + $(st tw undelivered))) = $N ] || it_fail "twilio: not every message final"
reconciled=$(sed -n 's/.*event=reconcile_pass.* reconciled=\([0-9]*\).*/\1/p' "$OUT/track2.log" | awk '{s+=$1} END {print s+0}')
[ "$reconciled" -gt 0 ] || it_fail "no message was reconciled by asking Twilio"
# Vonage: the emulator's retries brought every receipt
vg_lost=$(st vg unknown_receipt)
[ "$vg_lost" -le $VG_LOST_MAX ] || it_fail "vonage: $vg_lost unknown_receipt, want at most $VG_LOST_MAX (its webhooks are retried)"
[ $(($(st vg delivered) + $(st vg undelivered) + vg_lost)) = $N ] || it_fail "vonage: not every message final"
retried=$(curl -sf "http://$SIM/_sim/receipts" | it_jq 'j["retried"]')
[ "$retried" -gt 0 ] || it_fail "the emulator retried no webhook"
# vonage2 (no retries, no lookup API): the receipts lost in the outage are unknown_receipt, not pending
lost=$(st nr unknown_receipt)
[ "$lost" -gt 0 ] || it_fail "vonage2: no unknown_receipt although its receipts were lost"
[ $(($(st nr delivered) + $(st nr undelivered) + lost)) = $N ] || it_fail "vonage2: counts do not add up"
summary=$(curl -sf "$A/api/campaigns/nr" | it_jq 'j["summary"]["unknown_receipt"]')
[ "$summary" = "$lost" ] || it_fail "summary.unknown_receipt $summary, store $lost"
it_stop "$PID_track2" || it_fail "track did not stop cleanly"
echo "ok: 0327-track-receipts-outage (twilio reconciled $reconciled, vonage retried $retried webhooks, vonage2 $lost unknown_receipt)"
