#!/usr/bin/env bash
# 0307-track-reply-limits.sh -- automatic SMS replies are capped: 2,000 signed HELPs from one number
# get tracker.reply_per_number_hour replies; many numbers together get at most
# tracker.reply_per_minute; numbers outside the vendor's reply_countries (+44, +882) get none,
# unless they text a sender pool whose own reply_countries take them (the "intl" pool: +44 yes,
# +1 no); an opt-out over the limit is still recorded. Replies are counted at the emulator (/_sim/stats).
source "$(dirname "$0")/lib.sh"
it_setup 0307-track-reply-limits
export TOCSIN_VONAGE_SECRET=it-vonage-secret TOCSIN_VONAGE_SIG=it-vonage-signature-secret
config() {
  it_write_config '"vendors":[
  {"name":"vonage","kind":"vonage","base_url":"http://'"${SIM:-127.0.0.1:9}"'","account":"itvonagekey","secret_env":"TOCSIN_VONAGE_SECRET","signature_secret_env":"TOCSIN_VONAGE_SIG","signature_method":"sha256","senders":{"main":{"from":"15005550007"},"intl":{"from":"15005550008","reply_countries":["+44"]}}}],
  "routes":{"sms":{"vendors":["vonage"]}},
  "tracker":{"reply_per_number_hour":3,"reply_per_minute":8}'
}
config
it_start_broker
it_start_sim
config
export TOCSIN_TEST_NOW_S=1700000000   # the limits' minute and hour do not pass during the test
it_start_track
A=http://$TRACK
accepted() { it_sim_stats | it_jq 'j["vendors"]["vonage"]["accepted"]'; }
replies() { curl -sf "$A/metrics" | sed -n 's/^tocsin_replies_total{result="'"$1"'"} //p'; }

# flood FROM COUNT TEXT: COUNT signed inbound texts (distinct message ids) over one connection;
# prints how many were answered 200.
flood() {
  python3 - "$TRACK" "$TOCSIN_VONAGE_SIG" "$@" "$TOCSIN_TEST_NOW_S" <<'PY'
import hashlib, hmac, http.client, os, sys, urllib.parse
addr, secret, frm, n, text = sys.argv[1], sys.argv[2].encode(), sys.argv[3], int(sys.argv[4]), sys.argv[5]
# sys.argv[6]: the signed timestamp (the tracker's test clock)
c = http.client.HTTPConnection(*addr.split(":"))
ok = 0
for i in range(n):
    p = {"msisdn": frm, "to": os.environ.get("FLOOD_TO", "15005550007"), "messageId": "0F%s%06d" % (frm[-4:], i), "type": "text",
         "text": text, "timestamp": sys.argv[6]}
    s = "".join("&%s=%s" % (k, v.replace("&", "_").replace("=", "_")) for k, v in sorted(p.items()))
    p["sig"] = hmac.new(secret, s.encode(), hashlib.sha256).hexdigest()
    c.request("POST", "/webhooks/vonage/inbound", urllib.parse.urlencode(p),
              {"Content-Type": "application/x-www-form-urlencoded"})
    r = c.getresponse(); r.read()
    ok += r.status == 200
print(ok)
PY
}

# 2,000 HELPs from one number: all acknowledged, 3 replies
[ "$(flood 15550002001 2000 HELP)" = 2000 ] || it_fail "HELP flood not all acknowledged"
is_acc() { [ "$(accepted)" = "$1" ]; }
it_wait_until 30 is_acc 3 || it_fail "replies to the flood: emulator accepted $(accepted), want 3"
[ "$(replies limited)" = 1997 ] || it_fail "limited replies: $(replies limited), want 1997"

# +44 and +882 (international networks): no reply at all
[ "$(flood 447700900123 3 HELP)" = 3 ] || it_fail "+44 HELPs not acknowledged"
[ "$(flood 88299000123 2 HELP)" = 2 ] || it_fail "+882 HELPs not acknowledged"
[ "$(replies refused_country)" = 5 ] || it_fail "country refusals: $(replies refused_country), want 5"

# the "intl" pool's own reply_countries (+44 only) win over the vendor's (+1): the +44 number
# texting it gets a reply, a +1 number texting it gets none
[ "$(FLOOD_TO=15005550008 flood 447700900124 1 HELP)" = 1 ] || it_fail "+44 HELP to intl not acknowledged"
it_wait_until 30 is_acc 4 || it_fail "no reply from the intl pool to +44: emulator accepted $(accepted), want 4"
[ "$(FLOOD_TO=15005550008 flood 15550004001 1 HELP)" = 1 ] || it_fail "+1 HELP to intl not acknowledged"
[ "$(replies refused_country)" = 6 ] || it_fail "country refusals: $(replies refused_country), want 6"

# ten more US numbers, one HELP each: the per-minute cap (8) leaves 4 replies
for i in 0 1 2 3 4 5 6 7 8 9; do [ "$(flood 155500030$i 1 HELP)" = 1 ] || it_fail "HELP $i"; done
it_wait_until 30 is_acc 8 || it_fail "per-minute cap: emulator accepted $(accepted), want 8"
[ "$(replies limited)" = 2003 ] || it_fail "limited replies: $(replies limited), want 2003"

# a STOP from the flooded number: no confirmation (over its limit) but the opt-out is recorded
[ "$(flood 15550002001 1 STOP)" = 1 ] || it_fail "STOP not acknowledged"
optout() { curl -sf "$A/metrics" | grep -qx 'tocsin_optouts{channel="sms"} 1'; }
it_wait_until 20 optout || it_fail "the opt-out over the reply limit was not recorded"
sleep 1
[ "$(accepted)" = 8 ] || it_fail "emulator accepted $(accepted) replies, want 8"
grep -q 'event=reply_refused reason=rate_limit vendor=vonage' "$OUT/track.log" || it_fail "no log of the limit"
[ "$(grep -c 'event=reply_refused reason=rate_limit' "$OUT/track.log")" -le 25 ] || it_fail "the limit's log is not bounded"
it_stop "$PID_track" || it_fail "track did not stop cleanly"
echo "ok: 0307-track-reply-limits (2,000 HELPs from one number: 3 replies)"
