#!/usr/bin/env bash
# 0110-config-strict: a typo in tocsin.json, the campaign file or a template is one line naming
# the key (its full path) and the closest valid one, exit 2, and nothing starts: no broker run
# file, no process left. An email launch without tracker.public_url is refused, nothing queued.
source "$(dirname "$0")/lib.sh"
it_setup 0110-config-strict
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T() { "$TOCSIN_BIN" -c "$CFG" "$@"; }
TW='"name":"twilio","kind":"twilio","base_url":"http://127.0.0.1:9","secret_env":"TOCSIN_TWILIO_TOKEN","senders":{"main":{"from":"+15005550006"}}'

# typo_case JSON-FRAGMENT EXPECTED-LINE COMMAND...: the command refuses with exactly that line
typo_case() {
  local frag=$1 want=$2; shift 2
  it_write_config "$frag"
  set +e; out=$(T "$@" 2>&1); rc=$?; set -e
  [ "$rc" = 2 ] || it_fail "$*: exit $rc for $frag ($out)"
  [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] || it_fail "$*: more than one line: $out"
  [ "$out" = "tocsin $1: $CFG: $want" ] || it_fail "$*: got \"$out\", want \"$want\""
  [ ! -e "$VAR/run/broker.bootstrap" ] || it_fail "$*: a broker started with a bad config"
  echo "ok: $1 refuses: $want"
}
# the four typos of issue 14, each through a command that would otherwise start something
typo_case "\"vendors\":[{$TW,\"rate_per_sec\":100}]" \
  'unknown field vendors[0].rate_per_sec (did you mean rate_per_s?)' broker
typo_case '"dispatcher":{"max_attempt":3}' \
  'unknown field dispatcher.max_attempt (did you mean max_attempts?)' dispatch
typo_case '"tracker":{"pubic_url":"https://t.example.org"}' \
  'unknown field tracker.pubic_url (did you mean public_url?)' track
typo_case "\"vendors\":[{$TW}],\"routes\":{\"sms\":{\"stratgy\":\"cheapest\"}}" \
  'unknown field routes.sms.stratgy (did you mean strategy?)' vendor-sim
typo_case "\"vendors\":[{$TW,\"sla\":{\"eror_rate\":0.5}}]" \
  'unknown field vendors[0].sla.eror_rate (did you mean error_rate?)' dispatch --channel sms
typo_case "\"vendors\":[{$TW,\"rate_per_sec\":100}]" \
  'unknown field vendors[0].rate_per_sec (did you mean rate_per_s?)' up
[ ! -e "$VAR/run/up.pid" ] || it_fail "tocsin up started with a bad config"
typo_case "\"vendors\":[{$TW,\"webhook_key_env\":\"X\"}]" \
  'unknown field vendors[0].webhook_key_env (only mailgun vendors have it)' launch "$ROOT/examples/campaign.json"
pgrep -f "$CFG" > /dev/null && it_fail "a process of this test's config is still running"

# the campaign file and its templates: did you mean, one line
it_write_config "\"vendors\":[{$TW}]"
cp "$ROOT/examples/audience.csv" "$OUT/"
camp() { printf '%s\n' "$2" > "$OUT/$1.json"; }
camp_case() {
  set +e; out=$(T launch "$OUT/$1.json" 2>&1); rc=$?; set -e
  [ "$rc" != 0 ] || it_fail "campaign $1 accepted"
  [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] || it_fail "campaign $1: more than one line: $out"
  case "$out" in *"$2"*) echo "ok: campaign $1: $out" ;; *) it_fail "campaign $1: got \"$out\", want \"$2\"" ;; esac
}
camp c1 '{"id":"c1","audience":"audience.csv","sms":{"template":"Hi"},"expires_in":60}'
camp_case c1 "$OUT/c1.json: unknown field expires_in (did you mean expires_in_s?)"
camp c2 '{"id":"c2","audience":"audience.csv","sms":{"tempalte":"Hi"}}'
camp_case c2 "$OUT/c2.json: unknown field sms.tempalte (did you mean template?)"
camp c3 '{"id":"c3","audience":{"path":"audience.csv","phnoe":"phone"},"sms":{"template":"Hi"}}'
camp_case c3 "$OUT/c3.json: unknown field audience.phnoe (did you mean phone?)"
camp c4 '{"id":"c4","audience":"audience.csv","sms":{"template":"Hi {{frist_name}}"}}'
camp_case c4 'sms.template: 1:6: unknown field "frist_name" (did you mean first_name?)'

# an email launch without tracker.public_url: refused before anything is queued
printf 'first_name,email\nPat,pat@example.org\n' > "$OUT/e.csv"
camp e1 '{"id":"e1","audience":"e.csv","email":{"subject":"Hi","text":"Hi {{first_name}} {{unsubscribe_url}}"}}'
set +e; out=$(T launch "$OUT/e1.json" 2>&1); rc=$?; set -e
[ "$rc" = 2 ] || it_fail "email launch without public_url: exit $rc ($out)"
[ "$out" = "tocsin launch: $OUT/e1.json: campaign e1 has an email version but tracker.public_url is not set in $CFG (unsubscribe links and receipts need it); nothing queued" ] \
  || it_fail "email launch without public_url: $out"
[ ! -d "$VAR/launch/e1" ] || it_fail "the refused launch left state in $VAR/launch/e1"
echo "ok 0110-config-strict"
