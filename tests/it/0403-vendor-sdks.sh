#!/usr/bin/env bash
# 0403-vendor-sdks.sh -- the vendors' official Node SDKs (twilio, @vonage/sms, @sendgrid/mail +
# @sendgrid/client + @sendgrid/eventwebhook, mailgun.js + form-data; exact versions in
# tests/sdk/package-lock.json, installed here with npm ci) pointed at vendor-sim by base URL:
# a send, an auth failure, an invalid number and throttling for each; Twilio list (To, DateSent,
# paging) and fetch; the emulator's signed webhooks pass each SDK's own verifier (Twilio
# validateRequest, Vonage verifySignature md5hash and sha256, SendGrid EventWebhook).
source "$(dirname "$0")/lib.sh"
it_setup 0403-vendor-sdks
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SDK_DIR=$ROOT/tests/sdk
command -v node > /dev/null || it_fail "no node: run make deps (Debian package nodejs)"
node -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)' || it_fail "node $(node --version): 18 or newer needed"
if [ ! -d "$SDK_DIR/node_modules/twilio" ] || [ ! -d "$SDK_DIR/node_modules/@vonage/sms" ]; then
  (cd "$SDK_DIR" && npm ci --no-audit --no-fund > "$OUT/npm.log" 2>&1) || it_fail "npm ci failed: $(tail -5 "$OUT/npm.log")"
fi
export TOCSIN_VG_SECRET=it-vg-secret TOCSIN_VG_SIG=it-vg-signature-secret TOCSIN_VG_SIG2=it-vg-hmac-secret
export TOCSIN_SG_KEY=SG.it-sdk-key TOCSIN_MG_KEY=key-it-sdk-mg
export SDK_TW_ACCOUNT=ACsdk0000000000000000000000000000 SDK_VG_KEY=sdkkey SDK_VG2_KEY=sdkkey2 SDK_MG_DOMAIN=mg.example.org
it_write_config '"vendors":[
 {"name":"twilio","kind":"twilio","base_url":"http://127.0.0.1:1","account":"'$SDK_TW_ACCOUNT'","secret_env":"TOCSIN_TWILIO_TOKEN","senders":{"main":"+15005550006"}},
 {"name":"vonage","kind":"vonage","base_url":"http://127.0.0.1:1","account":"sdkkey","secret_env":"TOCSIN_VG_SECRET","signature_secret_env":"TOCSIN_VG_SIG","senders":{"main":"+15005550007"}},
 {"name":"vonage-hmac","kind":"vonage","base_url":"http://127.0.0.1:1","account":"sdkkey2","secret_env":"TOCSIN_VG_SECRET","signature_secret_env":"TOCSIN_VG_SIG2","signature_method":"sha256","senders":{"main":"+15005550008"}},
 {"name":"sendgrid","kind":"sendgrid","base_url":"http://127.0.0.1:1","account":"-","secret_env":"TOCSIN_SG_KEY","senders":{"main":"news@example.org"}},
 {"name":"mailgun","kind":"mailgun","base_url":"http://127.0.0.1:1","account":"mg.example.org","secret_env":"TOCSIN_MG_KEY","senders":{"main":"news@mg.example.org"}}]'
it_bg sim vendor-sim --listen 127.0.0.1:0
it_wait_file "$VAR/run/vendor-sim.addr"
A=http://$(cat "$VAR/run/vendor-sim.addr")
(cd "$SDK_DIR" && timeout 120 node sdk.mjs "$A") > "$OUT/sdk.log" 2>&1 || it_fail "SDK checks: $(tail -4 "$OUT/sdk.log")"
cat "$OUT/sdk.log"
grep -q '^ok: twilio' "$OUT/sdk.log" && grep -q '^ok: vonage' "$OUT/sdk.log" && grep -q '^ok: sendgrid' "$OUT/sdk.log" &&
  grep -q '^ok: mailgun' "$OUT/sdk.log" || it_fail "a vendor's checks did not run"
# what the emulator counted: exactly the sends the SDKs made, refusals included in requests only
curl -sf "$A/_sim/stats" > "$OUT/stats.json"
it_jq 'all([j["vendors"]["twilio"]["accepted"] == 3, j["vendors"]["vonage"]["accepted"] == 1,
            j["vendors"]["sendgrid"]["accepted"] == 2, j["vendors"]["mailgun"]["accepted"] == 2,
            j["vendors"]["vonage-hmac"]["accepted"] == 0])' "$OUT/stats.json" | grep -qx True ||
  it_fail "emulator counts: $(cat "$OUT/stats.json")"
it_stop "$PID_sim" || it_fail "vendor-sim did not exit 0"
! grep -q "$TOCSIN_VG_SIG\|$TOCSIN_VG_SIG2\|$TOCSIN_MG_KEY\|$TOCSIN_SG_KEY" "$OUT/sim.log" || it_fail "a secret reached the log"
echo "ok: 0403-vendor-sdks"
