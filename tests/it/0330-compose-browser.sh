#!/usr/bin/env bash
# 0330-compose-browser.sh -- staff send a blast from the page (/send) in headless Chromium:
# upload a messy CSV (BOM, CRLF, odd column names, quoted commas, a short row, bad and
# duplicate numbers), compose an SMS with a curly apostrophe (the page shows UCS-2, names the
# character and offers the replacement), test-send the email version to a typed address (one
# email at the emulator, subject marked TEST), preview, test-send to a number (the emulator gets
# exactly one message, marked TEST, counted in no campaign), launch with launch.approvals 2
# (alice asks, bob approves from his own session) and watch the campaign reach done: the
# page's counts equal the emulator's; then the audience is deleted. Then roles.mjs: a sender cannot approve (403 with the
# message on the page), an approver cannot approve its own launch, a viewer cannot launch.
source "$(dirname "$0")/lib.sh"
it_setup 0330-compose-browser
it_browser_setup
export TOCSIN_TOKEN_ALICE=it-alice-token-1 TOCSIN_TOKEN_BOB=it-bob-token-2 \
  TOCSIN_TOKEN_CAROL=it-carol-token-3 TOCSIN_TOKEN_DAN=it-dan-token-4 \
  TOCSIN_SENDGRID_KEY=it-sendgrid-key TOCSIN_UNSUB_KEY=it-unsubscribe-key-0123456789
TRACK=127.0.0.1:$(it_free_port)   # known before it starts: receipts are signed over public_url
config() {
  it_write_config '"vendors": [{"name":"twilio","kind":"twilio","channel":"sms","base_url":"http://'"${SIM:-127.0.0.1:9}"'",
    "account":"ACit00000000000000000000000000000","secret_env":"TOCSIN_TWILIO_TOKEN","cost":0.0079,
    "senders":{"main":{"from":"+15005550006"}},"rate_per_s":200,"max_in_flight":32},
   {"name":"sendgrid","kind":"sendgrid","channel":"email","base_url":"http://'"${SIM:-127.0.0.1:9}"'",
    "secret_env":"TOCSIN_SENDGRID_KEY","senders":{"main":{"from":"news@example.org"}}}],
  "routes": {"sms": {"vendors": ["twilio"]}, "email": {"vendors": ["sendgrid"]}},
  "tracker": {"public_url": "http://'"$TRACK"'", "control_tokens": [
     {"name":"alice","token_env":"TOCSIN_TOKEN_ALICE","role":"sender"},
     {"name":"bob","token_env":"TOCSIN_TOKEN_BOB","role":"approver"},
     {"name":"dan","token_env":"TOCSIN_TOKEN_DAN","role":"approver"},
     {"name":"carol","token_env":"TOCSIN_TOKEN_CAROL","role":"viewer"}]},
  "launch": {"approvals": 2}'
}
config
it_start_broker
it_start_sim
config
it_bg track track --listen "$TRACK"
it_wait_file "$VAR/run/track.addr" 20
it_bg dispatch dispatch --channel sms
A=http://$TRACK

# the messy audience: BOM, CRLF, spaces and punctuation in column names, quoted commas and
# quotes, a blank line, a short row, invalid numbers, the same number written twice
python3 - "$OUT/messy.csv" <<'PY'
import sys
rows = ['\ufeff"First Name","Mobile Phone (cell)",City']
for i in range(240):
    rows.append('Pat%d,(202) 555-%04d,Springfield' % (i, 1000 + i))
rows += ['"Smith, Jr.",+1 303 555 0100,"Spring ""field"""',
         '', 'Ana,303.555.0101', 'Bo,555-0102,Nowhere', 'Cy,not a number,Here',
         'Dee,+1 (202) 555-1000,Springfield', '"Ed\nward",2025550777,"Two\nlines"']
open(sys.argv[1], 'w', newline='').write('\r\n'.join(rows) + '\r\n')
PY
(cd "$BROWSER_DIR" && timeout 240 node compose.mjs "$A" "http://$SIM" "$OUT/messy.csv" "$OUT/compose.png") ||
  it_fail "browser test failed (see above)"
(cd "$BROWSER_DIR" && timeout 120 node roles.mjs "$A") || it_fail "roles test failed (see above)"
# the actions are on the timeline, with who did them
tl=$(curl -sf "$A/api/timeline?limit=100")
for want in '"actor":"alice"' '"actor":"bob"' 'launch approved: started (by bob)' 'test send to' 'uploaded'; do
  echo "$tl" | grep -q "$want" || it_fail "timeline lacks $want: $tl"
done
echo "ok: 0330-compose-browser"
