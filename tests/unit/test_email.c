/* test_email.c -- unit tests for templates/email: parts, unsubscribe tokens (HMAC-SHA256), RFC 8058 headers, refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/err.h"
#include "templates/email.h"
#include "tests/unit/email_subst.h"

static const char KEY[] = "0123456789abcdef-test-key";

static email_unsub_t *mk(const char *key, const char *base)
{
	char err[256];
	email_unsub_t *u = email_unsub_new(key, strlen(key), base, err, sizeof err);
	if (!u)
		fail_msg("%s", err);
	return u;
}

/* Decode base64url (test-side, independent of email.c) */
static int b64u_dec(const char *s, unsigned char *out)
{
	char tmp[2048];
	size_t n = strlen(s), i;
	for (i = 0; i < n; i++)
		tmp[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
	while (i % 4)
		tmp[i++] = '=';
	tmp[i] = 0;
	int r = EVP_DecodeBlock(out, (unsigned char *)tmp, (int)i);
	return r - (n % 4 == 2 ? 2 : n % 4 == 3 ? 1 : 0);
}

static void test_token_roundtrip_and_mac(void **state)
{
	(void)state;
	email_unsub_t *u = mk(KEY, "https://t.example.org/");
	char tok[EMAIL_TOKEN_MAX], url[EMAIL_URL_MAX], c[300], a[400];
	size_t tl, ul;
	const char *addr = "ana@example.org";
	assert_int_equal(email_unsub_token(u, "camp-42", addr, strlen(addr), tok, sizeof tok, &tl), 0);
	assert_int_equal(tl, strlen(tok));
	/* the token contains no readable address and is URL-safe */
	assert_null(strstr(tok, "example"));
	assert_int_equal(strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
	                 tl);
	/* the MAC is HMAC-SHA256(key, version|len|campaign|address), checked with OpenSSL's HMAC() */
	unsigned char raw[1024];
	int n = b64u_dec(tok, raw);
	assert_int_equal(n, 2 + 7 + 15 + 32);
	assert_int_equal(raw[0], 1);
	assert_int_equal(raw[1], 7);
	unsigned char mac[32];
	unsigned int ml = 0;
	HMAC(EVP_sha256(), KEY, (int)strlen(KEY), raw, (size_t)n - 32, mac, &ml);
	assert_int_equal(ml, 32);
	assert_memory_equal(mac, raw + n - 32, 32);

	assert_int_equal(email_unsub_verify(u, tok, tl, c, sizeof c, a, sizeof a), 0);
	assert_string_equal(c, "camp-42");
	assert_string_equal(a, addr);

	assert_int_equal(email_unsub_url(u, "camp-42", addr, strlen(addr), url, sizeof url, &ul), 0);
	assert_int_equal(strncmp(url, "https://t.example.org/u/", 24), 0);
	assert_string_equal(url + 24, tok);

	/* every single-character alteration is refused */
	for (size_t i = 0; i < tl; i++) {
		char bad[EMAIL_TOKEN_MAX];
		memcpy(bad, tok, tl + 1);
		bad[i] = bad[i] == 'A' ? 'B' : 'A';
		assert_int_equal(email_unsub_verify(u, bad, tl, c, sizeof c, a, sizeof a),
		                 TOCSIN_ERR_INVAL);
	}
	/* truncated, extended, empty, garbage */
	assert_int_equal(email_unsub_verify(u, tok, tl - 1, c, sizeof c, a, sizeof a),
	                 TOCSIN_ERR_INVAL);
	assert_int_equal(email_unsub_verify(u, "", 0, c, sizeof c, a, sizeof a), TOCSIN_ERR_INVAL);
	assert_int_equal(email_unsub_verify(u, "%%%%", 4, c, sizeof c, a, sizeof a), TOCSIN_ERR_INVAL);
	char ext[EMAIL_TOKEN_MAX + 8];
	snprintf(ext, sizeof ext, "%sAA", tok);
	assert_int_equal(email_unsub_verify(u, ext, tl + 2, c, sizeof c, a, sizeof a),
	                 TOCSIN_ERR_INVAL);
	/* another key cannot verify it */
	email_unsub_t *other = mk("another-key-of-enough-length", NULL);
	assert_int_equal(email_unsub_verify(other, tok, tl, c, sizeof c, a, sizeof a),
	                 TOCSIN_ERR_INVAL);
	assert_int_equal(email_unsub_url(other, "c", "a", 1, url, sizeof url, &ul), TOCSIN_ERR_CONFIG);
	/* outputs too small */
	assert_int_equal(email_unsub_verify(u, tok, tl, c, 4, a, sizeof a), TOCSIN_ERR_TOOBIG);
	/* bad inputs */
	assert_int_equal(email_unsub_token(u, "", addr, strlen(addr), tok, sizeof tok, &tl),
	                 TOCSIN_ERR_INVAL);
	assert_int_equal(email_unsub_token(u, "c", addr, 0, tok, sizeof tok, &tl), TOCSIN_ERR_INVAL);
	assert_int_equal(email_unsub_token(u, "c", addr, strlen(addr), tok, 10, &tl),
	                 TOCSIN_ERR_TOOBIG);
	email_unsub_free(other);
	email_unsub_free(u);
	email_unsub_free(NULL);
	char err[128];
	assert_null(email_unsub_new("short", 5, NULL, err, sizeof err));
	assert_string_equal(err, "unsubscribe key is 5 bytes, at least 16 needed");
}

static void test_headers(void **state)
{
	(void)state;
	char h[256];
	size_t n;
	const char *url = "https://t.example.org/u/abc";
	assert_int_equal(email_unsub_headers(url, strlen(url), h, sizeof h, &n), 0);
	assert_string_equal(h, "{\"List-Unsubscribe\":\"<https://t.example.org/u/abc>\","
	                       "\"List-Unsubscribe-Post\":\"List-Unsubscribe=One-Click\"}");
	assert_int_equal(n, strlen(h));
	assert_int_equal(email_unsub_headers("a\"b", 3, h, sizeof h, &n), TOCSIN_ERR_INVAL);
	assert_int_equal(email_unsub_headers(url, strlen(url), h, 20, &n), TOCSIN_ERR_TOOBIG);
}

static void test_cfg_key(void **state)
{
	(void)state;
	char err[256];
	cfg_t cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.path = "t.json";
	cfg.public_url = "https://t.example.org";
	cfg.root = json_pack("{s:{s:s}}", "email", "unsubscribe_key_env", "TEST_UNSUB_K");
	unsetenv("TEST_UNSUB_K");
	assert_null(email_unsub_from_cfg(&cfg, err, sizeof err));
	assert_string_equal(err, "unsubscribe key: environment variable TEST_UNSUB_K is not set "
	                         "(config email.unsubscribe_key_env)");
	setenv("TEST_UNSUB_K", KEY, 1);
	email_unsub_t *u = email_unsub_from_cfg(&cfg, err, sizeof err);
	assert_non_null(u);
	assert_null(strstr(err, KEY));
	/* same key -> same token as a direct signer */
	email_unsub_t *d = mk(KEY, NULL);
	char t1[EMAIL_TOKEN_MAX], t2[EMAIL_TOKEN_MAX];
	assert_int_equal(email_unsub_token(u, "c1", "x@y.z", 5, t1, sizeof t1, NULL), 0);
	assert_int_equal(email_unsub_token(d, "c1", "x@y.z", 5, t2, sizeof t2, NULL), 0);
	assert_string_equal(t1, t2);
	email_unsub_free(u);
	email_unsub_free(d);
	json_decref(cfg.root);
	/* no public URL: links point at the tracker's listen address */
	setenv("TEST_UNSUB_K", KEY, 1);
	cfg.root = json_pack("{s:{s:s}}", "email", "unsubscribe_key_env", "TEST_UNSUB_K");
	cfg.public_url = NULL;
	cfg.track_listen = "127.0.0.1:8026";
	u = email_unsub_from_cfg(&cfg, err, sizeof err);
	assert_non_null(u);
	char url[EMAIL_URL_MAX];
	assert_int_equal(email_unsub_url(u, "c1", "x@y.z", 5, url, sizeof url, NULL), 0);
	assert_int_equal(strncmp(url, "http://127.0.0.1:8026/u/", 24), 0);
	email_unsub_free(u);
	json_decref(cfg.root);
	/* a non-string key variable name */
	cfg.root = json_pack("{s:{s:i}}", "email", "unsubscribe_key_env", 5);
	assert_null(email_unsub_from_cfg(&cfg, err, sizeof err));
	assert_string_equal(err, "t.json: email.unsubscribe_key_env must be a non-empty string");
	json_decref(cfg.root);
	/* default variable name */
	cfg.root = json_object();
	unsetenv("TOCSIN_UNSUB_KEY");
	assert_null(email_unsub_from_cfg(&cfg, err, sizeof err));
	assert_non_null(strstr(err, "TOCSIN_UNSUB_KEY is not set"));
	json_decref(cfg.root);
}

static const char *const F[] = {"first_name", "city"};

static void test_compile_refusals(void **state)
{
	(void)state;
	char err[512];
	const char *s = "News for {{city}}";
	const char *t_ok = "Hi {{first_name}}\nStop: {{unsubscribe_url}}";
	const char *t_no = "Hi {{first_name}}";
	const char *h_ok = "<p>Hi {{first_name}}</p><a href=\"{{unsubscribe_url}}\">unsubscribe</a>";
	const char *h_sec = "<p>{{#unsubscribe_url}}x{{/unsubscribe_url}}</p>";
	email_tmpl_t *e;
	assert_null(email_compile(s, strlen(s), t_no, strlen(t_no), NULL, 0, F, 2, 0, err, sizeof err));
	assert_string_equal(err,
	                    "text: no unsubscribe link: the text part must contain {{unsubscribe_url}}");
	assert_null(email_compile(s, strlen(s), t_ok, strlen(t_ok), h_sec, strlen(h_sec), F, 2, 0,
	                          err, sizeof err));
	assert_string_equal(err,
	                    "html: no unsubscribe link: the HTML part must contain {{unsubscribe_url}}");
	assert_null(email_compile(s, strlen(s), NULL, 0, NULL, 0, F, 2, 0, err, sizeof err));
	assert_string_equal(err, "body: the email has neither a text nor an HTML part");
	assert_null(email_compile("", 0, t_ok, strlen(t_ok), NULL, 0, F, 2, 0, err, sizeof err));
	assert_string_equal(err, "subject: the email has no subject");
	assert_null(email_compile("a\nb", 3, t_ok, strlen(t_ok), NULL, 0, F, 2, 0, err, sizeof err));
	assert_string_equal(err, "subject: a line break at byte 2; a subject is one line");
	const char *h_bad = "<p>\n{{frist}}</p>";
	assert_null(email_compile(s, strlen(s), t_ok, strlen(t_ok), h_bad, strlen(h_bad), F, 2, 0,
	                          err, sizeof err));
	assert_string_equal(
	    err, "html:2:3: unknown field \"frist\" (fields: first_name, city, unsubscribe_url)");
	e = email_compile(s, strlen(s), t_ok, strlen(t_ok), h_ok, strlen(h_ok), F, 2, 0, err,
	                  sizeof err);
	assert_non_null(e);
	email_free(e);
	email_free(NULL);
}

static void test_render(void **state)
{
	(void)state;
	char err[512];
	const char *s = "News for {{city}}";
	const char *t = "Hi {{first_name|default:\"friend\"}}\nStop: {{unsubscribe_url}}";
	const char *h = "<p>Hi {{first_name|default:\"friend\"}} &amp; {{{city}}}</p><a href=\"{{unsubscribe_url}}\">unsubscribe</a>";
	email_tmpl_t *e = email_compile(s, strlen(s), t, strlen(t), h, strlen(h), F, 2, 0, err,
	                                sizeof err);
	assert_non_null(e);
	email_unsub_t *u = mk(KEY, "https://t.example.org");
	const char *vals[2] = {"<Bo & \"Al\">", "<b>Reno</b>"};
	size_t lens[2] = {strlen(vals[0]), strlen(vals[1])};
	char buf[4096];
	email_parts_t p;
	tmpl_why_t why;
	assert_int_equal(email_render(e, u, "c9", "bo@example.org", 14, vals, lens, buf, sizeof buf,
	                              &p, &why),
	                 0);
	char tok[EMAIL_TOKEN_MAX];
	assert_int_equal(email_unsub_token(u, "c9", "bo@example.org", 14, tok, sizeof tok, NULL), 0);
	char want[2048];
	snprintf(want, sizeof want, "https://t.example.org/u/%s", tok);
	assert_string_equal(p.unsub_url, want);
	assert_string_equal(p.subject, "News for <b>Reno</b>");
	snprintf(want, sizeof want, "Hi <Bo & \"Al\">\nStop: https://t.example.org/u/%s", tok);
	assert_string_equal(p.text, want);
	snprintf(want, sizeof want,
	         "<p>Hi &lt;Bo &amp; &quot;Al&quot;&gt; &amp; <b>Reno</b></p><a href=\"https://t.example.org/u/%s\">unsubscribe</a>",
	         tok);
	assert_string_equal(p.html, want);
	assert_int_equal(p.html_len, strlen(want));
	snprintf(want, sizeof want,
	         "{\"List-Unsubscribe\":\"<https://t.example.org/u/%s>\",\"List-Unsubscribe-Post\":\"List-Unsubscribe=One-Click\"}",
	         tok);
	assert_string_equal(p.headers, want);
	/* missing city (no default) -> rejected with the reason */
	lens[1] = 0;
	assert_int_equal(email_render(e, u, "c9", "bo@example.org", 14, vals, lens, buf, sizeof buf,
	                              &p, &why),
	                 TOCSIN_ERR_INVAL);
	assert_string_equal(why.reason, "missing field city");
	/* line break in the subject from a value */
	vals[1] = "Reno\r\nBcc: x@y.z";
	lens[1] = strlen(vals[1]);
	assert_int_equal(email_render(e, u, "c9", "bo@example.org", 14, vals, lens, buf, sizeof buf,
	                              &p, &why),
	                 TOCSIN_ERR_INVAL);
	assert_string_equal(why.reason, "line break in subject");
	/* buffer too small: an error, never a truncated part */
	vals[1] = "Reno";
	lens[1] = 4;
	for (size_t cap = 1; cap < 400; cap += 7)
		assert_int_equal(email_render(e, u, "c9", "bo@example.org", 14, vals, lens, buf,
		                              cap, &p, &why),
		                 TOCSIN_ERR_TOOBIG);
	email_unsub_free(u);
	email_free(e);
}

/* one recipient through both vendors' substitution: each part equals the inline render */
static void same_as_inline(const email_parts_t *p, const email_parts_t *q)
{
	json_error_t je;
	json_t *subs = json_loads(p->subs, 0, &je);
	assert_true(json_is_object(subs));
	es_str_t o = {0};
	const char *sp[3] = {p->subject, p->text, p->html}, *qp[3] = {q->subject, q->text, q->html};
	size_t sl[3] = {p->subject_len, p->text_len, p->html_len},
	       ql[3] = {q->subject_len, q->text_len, q->html_len};
	for (int k = 0; k < 3; k++) {
		assert_int_equal(sp[k] == NULL, qp[k] == NULL);
		if (!sp[k])
			continue;
		es_sendgrid(sp[k], sl[k], subs, &o);
		assert_int_equal(o.n, ql[k]);
		assert_memory_equal(o.p, qp[k], ql[k]);
		es_mailgun(sp[k], sl[k], subs, &o);
		assert_int_equal(o.n, ql[k]);
		assert_memory_equal(o.p, qp[k], ql[k]);
	}
	free(o.p);
	json_decref(subs);
}

/* email_render_subs: one set of shared parts with a placeholder for every
 * per-recipient piece, the pieces in subs, and after either vendor's
 * substitution byte for byte what email_render writes, over a corpus of
 * tricky values; inline fallbacks for what substitution cannot carry. */
static void test_render_subs(void **state)
{
	(void)state;
	char err[512];
	const char *s = "News for {{city}}, {{first_name|title|default:\"friend\"}}";
	const char *t =
	    "Hi {{first_name|default:\"friend\"}}{{#city}} from {{city}} ({{city|upper}}){{/city}}"
	    "{{^city}} from nowhere{{/city}}.\nStop: {{unsubscribe_url}} ({{unsubscribe_url|trim}})";
	const char *h =
	    "<p>Hi {{first_name|default:\"friend & co\"}} {{{first_name}}}</p>{{#city}}<b>{{city}}</b>{{/city}}"
	    "<style>p { color: red }</style><a href=\"{{unsubscribe_url}}\">{{{unsubscribe_url}}}</a>";
	email_tmpl_t *e = email_compile(s, strlen(s), t, strlen(t), h, strlen(h), F, 2,
	                                TMPL_F_MISSING_EMPTY, err, sizeof err);
	assert_non_null(e);
	assert_true(email_subs_possible(e));
	email_unsub_t *u = mk(KEY, "https://t.example.org");
	static char big[9999 + 1], buf[1 << 16], buf2[1 << 16];
	memset(big, 'x', 9999);
	const char *corpus[] = {"",
	                        "Bo",
	                        "<Bo & \"Al\" 'x'>",
	                        "%recipient.city%",
	                        "%recipient.tocsin_id%",
	                        "-first_name-",
	                        "{{{tocsin:unsubscribe_url}}}",
	                        "{{{tocsin:city}}",
	                        "}}}",
	                        "Zoë 😀 €",
	                        "  spaced  ",
	                        "a\\b\"c",
	                        "new\nline",
	                        big};
	const size_t nc = sizeof corpus / sizeof *corpus;
	const char *shared_text = NULL;
	int forms[EMAIL_INLINE_NREASONS] = {0};
	for (size_t i = 0; i < nc; i++)
		for (size_t j = 0; j < nc; j++) {
			const char *vals[2] = {corpus[i], corpus[j]};
			size_t lens[2] = {strlen(corpus[i]), strlen(corpus[j])};
			email_parts_t p, q;
			tmpl_why_t why, why2;
			int rc = email_render_subs(e, u, "c9", "bo@example.org", 14, vals, lens,
			                           buf, sizeof buf, &p, &why);
			int rc2 = email_render(e, u, "c9", "bo@example.org", 14, vals, lens, buf2,
			                       sizeof buf2, &q, &why2);
			assert_int_equal(rc, rc2);
			if (rc) { /* the same rejection, worded the same */
				assert_string_equal(why.reason, why2.reason);
				continue;
			}
			assert_string_equal(p.headers, q.headers); /* List-Unsubscribe stays per recipient */
			forms[p.inline_why]++;
			int risky = strchr(corpus[i], '{') || strchr(corpus[j], '{') ||
			            strstr(corpus[i], "%recipient") ||
			            strstr(corpus[j], "%recipient");
			if (p.inline_why == EMAIL_INLINE_NONE) {
				assert_non_null(p.subs);
				assert_false(risky);
				assert_true(p.subs_len + 13 * 8 < EMAIL_SUBS_MAX);
				same_as_inline(&p, &q);
				/* every batched recipient gets the very same parts */
				if (!shared_text)
					shared_text = p.text;
				assert_ptr_equal(p.text, shared_text);
				assert_null(strstr(p.text, "https://"));
			} else {
				assert_null(p.subs);
				assert_string_equal(p.subject, q.subject);
				assert_string_equal(p.text, q.text);
				assert_string_equal(p.html, q.html);
				assert_true(p.inline_why ==
				            (risky ? EMAIL_INLINE_VALUE : EMAIL_INLINE_SIZE));
				if (p.inline_why == EMAIL_INLINE_SIZE)
					assert_true(lens[0] == 9999 || lens[1] == 9999);
			}
		}
	assert_true(forms[EMAIL_INLINE_NONE] > 0 && forms[EMAIL_INLINE_VALUE] > 0 &&
	            forms[EMAIL_INLINE_SIZE] > 0);
	/* the names and placeholders, pinned: one per distinct piece */
	const char *vals[2] = {"Al", "Reno"};
	size_t lens[2] = {2, 4};
	email_parts_t p, q;
	tmpl_why_t why;
	assert_int_equal(email_render_subs(e, u, "c9", "bo@example.org", 14, vals, lens, buf,
	                                   sizeof buf, &p, &why),
	                 0);
	assert_int_equal(email_render(e, u, "c9", "bo@example.org", 14, vals, lens, buf2,
	                              sizeof buf2, &q, &why),
	                 0);
	assert_string_equal(p.subject, "News for {{{tocsin:city}}}, {{{tocsin:first_name}}}");
	assert_string_equal(p.text,
	                    "Hi {{{tocsin:first_name_2}}}{{{tocsin:sec_city}}}{{{tocsin:sec_city_2}}}.\n"
	                    "Stop: {{{tocsin:unsubscribe_url}}} ({{{tocsin:unsubscribe_url}}})");
	char want[1024];
	snprintf(want, sizeof want,
	         "{\"city\":\"Reno\",\"first_name\":\"Al\",\"first_name_2\":\"Al\",\"sec_city\":\" from Reno (RENO)\","
	         "\"sec_city_2\":\"\",\"unsubscribe_url\":\"%s\",\"first_name_3\":\"Al\",\"first_name_4\":\"Al\","
	         "\"sec_city_3\":\"<b>Reno</b>\"}",
	         q.unsub_url);
	assert_string_equal(p.subs, want);
	same_as_inline(&p, &q);
	/* errors are the same as email_render's */
	email_free(e);
	e = email_compile(s, strlen(s), t, strlen(t), h, strlen(h), F, 2, 0, err, sizeof err);
	lens[1] = 0;
	assert_int_equal(email_render_subs(e, u, "c9", "bo@example.org", 14, vals, lens, buf,
	                                   sizeof buf, &p, &why),
	                 TOCSIN_ERR_INVAL);
	assert_string_equal(why.reason, "missing field city");
	lens[1] = 4;
	for (size_t cap = 1; cap < 300; cap += 7)
		assert_int_equal(email_render_subs(e, u, "c9", "bo@example.org", 14, vals, lens,
		                                   buf, cap, &p, &why),
		                 TOCSIN_ERR_TOOBIG);
	email_free(e);
	/* a case filter on the link is one more piece now */
	const char *t_up = "Stop: {{unsubscribe_url|upper}}";
	e = email_compile(s, strlen(s), t_up, strlen(t_up), NULL, 0, F, 2, 0, err, sizeof err);
	assert_non_null(e);
	assert_true(email_subs_possible(e));
	assert_int_equal(email_render_subs(e, u, "c9", "bo@example.org", 14, vals, lens, buf,
	                                   sizeof buf, &p, &why),
	                 0);
	assert_int_equal(email_render(e, u, "c9", "bo@example.org", 14, vals, lens, buf2,
	                              sizeof buf2, &q, &why),
	                 0);
	assert_string_equal(p.text, "Stop: {{{tocsin:unsubscribe_url_2}}}");
	same_as_inline(&p, &q);
	email_free(e);
	/* the template's own text spelling Mailgun's syntax: every recipient inline */
	const char *t_mg = "Reply %recipient.x% to stop {{unsubscribe_url}}";
	e = email_compile(s, strlen(s), t_mg, strlen(t_mg), NULL, 0, F, 2, 0, err, sizeof err);
	assert_non_null(e);
	assert_false(email_subs_possible(e));
	assert_int_equal(email_render_subs(e, u, "c9", "bo@example.org", 14, vals, lens, buf,
	                                   sizeof buf, &p, &why),
	                 0);
	assert_null(p.subs);
	assert_int_equal(p.inline_why, EMAIL_INLINE_TEMPLATE);
	email_free(e);
	/* "tocsin:" in the template's text is harmless now (it can never form "{{{tocsin:") */
	const char *t_sp = "TOCSIN: stop {{unsubscribe_url}}";
	e = email_compile(s, strlen(s), t_sp, strlen(t_sp), NULL, 0, F, 2, 0, err, sizeof err);
	assert_non_null(e);
	assert_true(email_subs_possible(e));
	email_free(e);
	/* a URL the HTML part would escape: inline */
	email_unsub_t *u2 = mk(KEY, "https://t.example.org/a&b");
	e = email_compile(s, strlen(s), t, strlen(t), h, strlen(h), F, 2, 0, err, sizeof err);
	assert_int_equal(email_render_subs(e, u2, "c9", "bo@example.org", 14, vals, lens, buf,
	                                   sizeof buf, &p, &why),
	                 0);
	assert_null(p.subs);
	assert_int_equal(p.inline_why, EMAIL_INLINE_URL);
	email_free(e);
	email_unsub_free(u2);
	email_unsub_free(u);
}

/* email_digest: presence, lengths and bytes all count */
static void test_digest(void **state)
{
	(void)state;
	char a[EMAIL_DIGEST_HEX], b[EMAIL_DIGEST_HEX];
	email_digest("s", 1, "t", 1, NULL, 0, a);
	assert_int_equal(strlen(a), 64);
	email_digest("s", 1, "t", 1, "", 0, b);
	assert_string_not_equal(a, b); /* an empty html part is not no html part */
	email_digest("s", 1, NULL, 0, "t", 1, b);
	assert_string_not_equal(a, b);
	email_digest("st", 2, "", 0, NULL, 0, b);
	assert_string_not_equal(a, b);
	email_digest("s", 1, "t", 1, NULL, 0, b);
	assert_string_equal(a, b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_token_roundtrip_and_mac),
	    cmocka_unit_test(test_headers),
	    cmocka_unit_test(test_cfg_key),
	    cmocka_unit_test(test_compile_refusals),
	    cmocka_unit_test(test_render),
	    cmocka_unit_test(test_render_subs),
	    cmocka_unit_test(test_digest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
