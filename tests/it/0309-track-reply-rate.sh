#!/usr/bin/env bash
# 0309-track-reply-rate.sh -- the tracker's SMS replies go through vendors/vsend: a burst of 12 HELPs
# (12 numbers, within the reply limits) gets its 12 replies at the vendor's rate_per_s (2, burst 0),
# counted per second at the emulator (/_sim/stats per_second), not all at once; while the vendor is
# drained (tocsin.vendor-health) a reply is not sent (counted failed), and once undrained it is.
source "$(dirname "$0")/lib.sh"
it_setup 0309-track-reply-rate
export TOCSIN_VONAGE_SECRET=it-vonage-secret TOCSIN_VONAGE_SIG=it-vonage-signature-secret
RATE=2
config() {
  it_write_config '"vendors":[
  {"name":"vonage","kind":"vonage","base_url":"http://'"${SIM:-127.0.0.1:9}"'","account":"itvonagekey","secret_env":"TOCSIN_VONAGE_SECRET","signature_secret_env":"TOCSIN_VONAGE_SIG","rate_per_s":'"$RATE"',"burst":0,"senders":{"main":{"from":"15005550007"}}}],
  "routes":{"sms":{"vendors":["vonage"]}}'
}
config
it_start_broker
it_start_sim
config
it_start_track
A=http://$TRACK
accepted() { it_sim_stats | it_jq 'j["vendors"]["vonage"]["accepted"]'; }
replies() { curl -sf "$A/metrics" | sed -n 's/^tocsin_replies_total{result="'"$1"'"} //p'; }
help_from() { # FROM: a signed inbound HELP as Vonage posts it; prints the HTTP status
  curl -s -o /dev/null -w '%{http_code}' -X POST "$A/webhooks/vonage/inbound" \
    --data "$(it_vonage_form "msisdn=$1" to=15005550007 "messageId=0C$1" type=text text=HELP)"
}

# 12 HELPs at once from 12 numbers: every one acknowledged, every reply reaches the emulator
N=12
for i in $(seq 10 $((9 + N))); do
  [ "$(help_from 155500030$i)" = 200 ] || it_fail "HELP from 155500030$i not acknowledged"
done
is_acc() { [ "$(accepted)" = "$1" ]; }
it_wait_until 60 is_acc $N || it_fail "replies accepted by the emulator: $(accepted), want $N"
# ... at most rate_per_s in any second the emulator counted (+1: a wall-clock second at the
# emulator is not the limiter's window, and one request may cross a boundary), over >= 5 seconds
# (12 replies at 2/s span 5.5 s); without the limit the 12 come in the same second or two.
stats=$(it_sim_stats)
most=$(echo "$stats" | it_jq 'max(n for s, n in j["vendors"]["vonage"]["per_second"])')
secs=$(echo "$stats" | it_jq 'len(j["vendors"]["vonage"]["per_second"])')
echo "replies per second at the emulator: $(echo "$stats" | it_jq 'j["vendors"]["vonage"]["per_second"]')"
[ "$most" -le $((RATE + 1)) ] || it_fail "$most replies in one second at the emulator, vendor rate_per_s $RATE"
[ "$secs" -ge 5 ] || it_fail "the $N replies came within $secs seconds: not paced at $RATE/s"
[ "$(replies sent)" = $N ] || it_fail "tocsin_replies_total{result=\"sent\"} $(replies sent), want $N"

# the vendor drained (tocsin.vendor-health): a HELP is acknowledged, its reply is not sent
"$TOCSIN_BIN" -c "$CFG" vendor drain vonage --as it > /dev/null || it_fail "vendor drain failed"
vstate() { curl -sf "$A/api/vendors" | it_jq '[v["state"] for v in j["vendors"] if v["name"]=="vonage"][0]'; }
is_state() { [ "$(vstate)" = "$1" ]; }
it_wait_until 20 is_state drained || it_fail "the tracker did not fold the drain (state $(vstate))"
[ "$(help_from 15550004001)" = 200 ] || it_fail "HELP while drained not acknowledged"
failed1() { [ "$(replies failed)" = 1 ]; }
it_wait_until 30 failed1 || it_fail "reply while drained: failed=$(replies failed), want 1"
[ "$(accepted)" = $N ] || it_fail "a reply reached the drained vendor (accepted $(accepted))"
grep -q 'event=reply_failed vendor=vonage outcome=defer code=vendor_unavailable' "$OUT/track.log" ||
  it_fail "no log of the reply held back by the drain"

# undrained: the next HELP gets its reply
"$TOCSIN_BIN" -c "$CFG" vendor undrain vonage --as it > /dev/null || it_fail "vendor undrain failed"
it_wait_until 20 is_state healthy || it_fail "the tracker did not fold the undrain (state $(vstate))"
[ "$(help_from 15550004002)" = 200 ] || it_fail "HELP after undrain not acknowledged"
it_wait_until 30 is_acc $((N + 1)) || it_fail "no reply after the undrain (accepted $(accepted))"
it_stop "$PID_track" || it_fail "track did not stop cleanly"
echo "ok: 0309-track-reply-rate ($N replies at most $most a second over $secs seconds; none while drained)"
