#!/usr/bin/env bash
# 0507-email-batch: personalized emails really batch. Two campaigns of 2,500 recipients each
# (every email has its own unsubscribe link in the body and its own List-Unsubscribe header),
# one through SendGrid and one through Mailgun, one `tocsin dispatch --channel email`.
# Asserts: every recipient accepted exactly once; requests far below recipients (batches of up to
# 1000); and at the emulator every recipient's substituted body and List-Unsubscribe carry
# the same, intact link naming that recipient (subs_applied / unsub_ok in /_sim/email).
source "$(dirname "$0")/lib.sh"
it_setup 0507-email-batch
N=2500
it_two_email_vendors
it_start_broker
it_start_sim
it_two_email_vendors
it_sim_fault '{"receipts":{"enabled":false}}'

python3 - "$OUT/a.csv" "$N" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    f.write("first_name,email\n")
    for i in range(2 * n):
        f.write("Pat%d,supporter%d@example.org\n" % (i % 7, i))
PY
head -1 "$OUT/a.csv" > "$OUT/sg.csv"; sed -n "2,$((N + 1))p" "$OUT/a.csv" >> "$OUT/sg.csv"
head -1 "$OUT/a.csv" > "$OUT/mg.csv"; sed -n "$((N + 2)),$((2 * N + 1))p" "$OUT/a.csv" >> "$OUT/mg.csv"
for c in sg mg; do
  printf '{"id":"eb-%s","audience":{"path":"%s.csv","email":"email"},
 "email":{"sender":"%s","subject":"Tonight: the vote on the cuts",
  "text":"Friends, call your council member tonight.\\nUnsubscribe: {{unsubscribe_url}}",
  "html":"<p>Friends, call your council member tonight.</p><p><a href=\\"{{unsubscribe_url}}\\">Unsubscribe</a></p>"},
 "expires_in_s":3600}\n' "$c" "$c" "$c" > "$OUT/$c.json"
  "$TOCSIN_BIN" -c "$CFG" launch "$OUT/$c.json" > "$OUT/launch-$c.out" 2>&1 \
    || it_fail "launch $c: $(tail -3 "$OUT/launch-$c.out")"
done

# every recipient once in the outbox
"$TOCSIN_BIN" -c "$CFG" launch "$OUT/sg.json" --check-outbox > "$OUT/check.out" 2>&1 || it_fail "check-outbox: $(tail -3 "$OUT/check.out")"

it_bg dispatch dispatch --channel email
done_all() { [ "$(it_sim_stats | it_jq 'sum(v["accepted"] for v in j["vendors"].values())')" -ge $((2 * N)) ]; }
it_wait_until 50 done_all || it_fail "only $(it_sim_stats) accepted"
sleep 1
it_sim_stats > "$OUT/stats.json"
curl -sf "http://$SIM/_sim/email" > "$OUT/email.json" || it_fail "GET /_sim/email"
it_stop "$PID_dispatch" || true
python3 - "$OUT/stats.json" "$OUT/email.json" "$N" <<'PY' || it_fail "emulator stats wrong (see above)"
import json, sys
st, em, n = json.load(open(sys.argv[1]))["vendors"], json.load(open(sys.argv[2]))["vendors"], int(sys.argv[3])
bad = []
for name in ("sendgrid", "mailgun"):
    v = dict(st[name], **em[name])
    print("%s: requests %d, accepted %d, distinct ids %d, sent twice %d, substituted %d, "
          "unsubscribe links checked %d, intact %d, placeholders left %d"
          % (name, v["requests"], v["accepted"], v["unique_ids"], v["duplicate_count"],
             v["subs_applied"], v["unsub_checked"], v["unsub_ok"], v["unreplaced"]))
    for k, want in (("accepted", n), ("unique_ids", n), ("duplicate_count", 0),
                    ("subs_applied", n), ("unsub_checked", n), ("unsub_ok", n), ("unreplaced", 0)):
        if v[k] != want:
            bad.append("%s %s = %d, want %d" % (name, k, v[k], want))
    # batches of up to 1000: 3 requests are the least for 2,500; allow slack for partial batches
    if v["requests"] > n // 100:
        bad.append("%s: %d requests for %d recipients: not batched" % (name, v["requests"], n))
for b in bad:
    print("FAIL:", b)
sys.exit(1 if bad else 0)
PY

echo "ok: $N + $N personalized emails in batches, every unsubscribe link intact at the vendor"
