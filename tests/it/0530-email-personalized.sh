#!/usr/bin/env bash
# 0530-email-personalized: every per-recipient value rides the vendors' substitutions, and what
# each recipient reads is byte for byte the inline render. Two campaigns (one through SendGrid,
# one through Mailgun) personalized with {{first_name}}, {{city}}, a section, a default, an upper
# filter and a raw {{{bio}}}, over an audience of tricky values (HTML specials, %recipient.x%,
# -name-, {{{tocsin:...}}}, 9,999-byte values, UTF-8, empty) plus ordinary rows.
# Asserts: the emulator's digest of each recipient's message (subject, text, html after the
# vendor's substitution, GET /_sim/email/digests) equals the digest of the inline render
# (tocsin preview --digests) for every recipient of both vendors, each accepted once; the
# ordinary rows went out batched (requests far below recipients); the launch report counts
# the recipients rendered inline, by reason.
source "$(dirname "$0")/lib.sh"
it_setup 0530-email-personalized
N=600   # ordinary rows per campaign
it_two_email_vendors
it_start_broker
it_start_sim
it_two_email_vendors
it_sim_fault '{"receipts":{"enabled":false},"email_digests":true}'

# the corpus: (first_name, city, bio); the expected form of each row's email in the outbox
python3 - "$OUT" "$N" <<'PY'
import csv, json, sys
out, n = sys.argv[1], int(sys.argv[2])
big = "y" * 9999
corpus = [
    ("<Al & \"Bo\">", "Reno 'NV'", "<i>raw & bold</i>", "batched"),
    ("%recipient.city%", "Paris", "b", "inline"),
    ("Ann", "%recipient.tocsin_id%", "", "inline"),
    ("-first_name-", "-city-", "-bio-", "batched"),
    ("{{{tocsin:unsubscribe_url}}}", "Oslo", "x", "inline"),
    ("Zed", "{{{tocsin:city}}}", "x", "inline"),
    ("}}}", "{", "x", "inline"),
    ("Zoë 😀", "São Paulo €", "ñ <é>", "batched"),
    ("", "", "", "batched"),
    ("", "Lyon", "", "batched"),
    (big, "Rome", "", "inline"),
    ("Eve", "Nice", big, "inline"),
    ("Max", "x" * 2500, "", "batched"),
    ("  padded  ", "\ttabbed", "a\\b", "batched"),
]
for c in ("sg", "mg"):
    want = {"batched": 0, "inline": 0}
    with open("%s/%s.csv" % (out, c), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["first_name", "city", "email", "bio"])
        for i, (fn, city, bio, form) in enumerate(corpus):
            w.writerow([fn, city, "tricky%d@%s.example.org" % (i, c), bio])
            want[form] += 1
        for i in range(n):
            w.writerow(["Pat%d" % (i % 50), "City %d" % (i % 9), "p%d@%s.example.org" % (i, c), "<b>%d</b>" % i])
            want["batched"] += 1
    json.dump(want, open("%s/want-%s.json" % (out, c), "w"))
PY
for c in sg mg; do
  printf '{"id":"ep-%s","audience":{"path":"%s.csv","email":"email"},"on_missing_field":"empty",
 "email":{"sender":"%s","subject":"News for {{city|default:\\"you\\"}}",
  "text":"Hi {{first_name|default:\\"friend\\"}}{{#city}} from {{city}}{{/city}}{{^city}} from nowhere{{/city}}.\\nUnsubscribe: {{unsubscribe_url}}",
  "html":"<p>Hi {{first_name|default:\\"friend & co\\"}}, {{{bio}}}</p>{{#city}}<b>{{city|upper}}</b>{{/city}}<a href=\\"{{unsubscribe_url}}\\">Unsubscribe</a>"},
 "expires_in_s":3600}\n' "$c" "$c" "$c" > "$OUT/$c.json"
  "$TOCSIN_BIN" -c "$CFG" launch "$OUT/$c.json" > "$OUT/launch-$c.out" 2>&1 \
    || it_fail "launch $c: $(tail -3 "$OUT/launch-$c.out")"
  "$TOCSIN_BIN" -c "$CFG" preview --n 0 --digests "$OUT/inline-$c.txt" "$OUT/$c.json" > "$OUT/preview-$c.out" 2>&1 \
    || it_fail "preview $c: $(tail -3 "$OUT/preview-$c.out")"
done
cat "$OUT/launch-sg.out"
# a --digests file that cannot be written: one clear line, exit 1
if "$TOCSIN_BIN" -c "$CFG" preview --n 0 --digests "$OUT/no/such/dir/d.txt" "$OUT/sg.json" > "$OUT/preview-bad.out" 2>&1; then
  it_fail "preview --digests into a missing directory succeeded"
fi
grep -q "tocsin preview: --digests $OUT/no/such/dir/d.txt: No such file or directory" "$OUT/preview-bad.out" \
  || it_fail "preview --digests refusal: $(cat "$OUT/preview-bad.out")"
TOTAL=$(cat "$OUT/inline-sg.txt" "$OUT/inline-mg.txt" | wc -l)
[ "$TOTAL" -eq $((2 * (N + 14))) ] || it_fail "preview --digests listed $TOTAL emails, want $((2 * (N + 14)))"

it_bg dispatch dispatch --channel email
done_all() { [ "$(it_sim_stats | it_jq 'sum(v["accepted"] for v in j["vendors"].values())')" -ge "$TOTAL" ]; }
it_wait_until 60 done_all || it_fail "only $(it_sim_stats) accepted"
sleep 1
it_sim_stats > "$OUT/stats.json"
curl -sf "http://$SIM/_sim/email/digests" > "$OUT/digests.json" || it_fail "GET /_sim/email/digests"
it_stop "$PID_dispatch" || true
python3 - "$OUT" <<'PY' || it_fail "reconstruction differs from the inline render (see above)"
import json, sys
out = sys.argv[1]
st = json.load(open(out + "/stats.json"))["vendors"]
dg = json.load(open(out + "/digests.json"))["vendors"]
bad = []
for c, vendor in (("sg", "sendgrid"), ("mg", "mailgun")):
    inline = dict(l.split() for l in open("%s/inline-%s.txt" % (out, c)))
    got = dg[vendor]["recipients"]
    same = sum(1 for a, h in inline.items() if got.get(a) == h)
    diff = [a for a, h in inline.items() if a in got and got[a] != h]
    missing = [a for a in inline if a not in got]
    extra = [a for a in got if a not in inline]
    v = st[vendor]
    print("%s: recipients %d, reconstruction = inline render for %d, differ %d, missing %d, extra %d, "
          "repeats %d; accepted %d, distinct ids %d, sent twice %d, requests %d"
          % (vendor, len(inline), same, len(diff), len(missing), len(extra), dg[vendor]["repeats"],
             v["accepted"], v["unique_ids"], v["duplicate_count"], v["requests"]))
    for a in diff[:5]:
        print("  differs:", a[:60])
    if same != len(inline) or diff or missing or extra or dg[vendor]["repeats"] or dg[vendor]["dropped"]:
        bad.append(vendor + ": digests")
    if v["accepted"] != len(inline) or v["unique_ids"] != len(inline) or v["duplicate_count"]:
        bad.append(vendor + ": accepted/ids")
    want = json.load(open("%s/want-%s.json" % (out, c)))
    rep = json.load(open("%s/var/launch/ep-%s/report.json" % (out, c)))
    forms = rep["email_forms"]
    inl = sum(n for k, n in forms.items() if k != "batched")
    print("  launch report email_forms %s; want batched %d, inline %d" % (forms, want["batched"], want["inline"]))
    if forms["batched"] != want["batched"] or inl != want["inline"]:
        bad.append(vendor + ": forms")
    # the batched ones share one set of parts: a few dozen requests at most (each inline one
    # goes alone and ends the batch it interrupts), never one each
    if v["requests"] > len(inline) // 10:
        bad.append("%s: %d requests for %d recipients: not batched" % (vendor, v["requests"], len(inline)))
for b in bad:
    print("FAIL:", b)
sys.exit(1 if bad else 0)
PY
for f in launch-sg preview-sg launch-mg preview-mg; do # preview counts what a launch queues
  grep -q "email: $((N + 7)) batched (shared parts + substitutions), 7 inline (value holds { or %recipient 5, substitutions over 10,000 bytes 2)" "$OUT/$f.out" \
    || it_fail "$f summary does not count the inline emails: $(grep 'email:' "$OUT/$f.out")"
done
echo "ok: $TOTAL personalized emails through SendGrid and Mailgun, each recipient's message = its inline render"
