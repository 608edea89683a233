/* test_prod_penc.c -- producer/penc writes exactly the bytes of msg_out_encode() for SMS records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/msg.h"
#include "producer/aud.h"
#include "producer/penc.h"

static void check(const char *campaign, const char *sender, int prio, const char *to,
                  const char *body, size_t bodylen, const char *enc, int segs, int64_t created,
                  int64_t expires, int attempt)
{
	char err[100], id[MSG_ID_LEN + 1];
	msg_make_id(campaign, "sms", to, id);
	penc_t *e = penc_new(campaign, sender, prio, err, sizeof err);
	assert_non_null(e);
	buf_t a, b;
	buf_init(&a, 1 << 20);
	buf_init(&b, 1 << 20);
	char *bz = malloc(bodylen + 1);
	memcpy(bz, body, bodylen);
	bz[bodylen] = 0;
	msg_out_t m = {.id = id,
	               .campaign = campaign,
	               .channel = MSG_CH_SMS,
	               .to = to,
	               .sender = sender,
	               .body = bz,
	               .enc = enc,
	               .segments = segs,
	               .priority = prio,
	               .created_ms = created,
	               .expires_ms = expires,
	               .attempt = attempt};
	assert_int_equal(msg_out_encode(&m, &a), 0);
	assert_int_equal(penc_sms(e, &b, id, to, strlen(to), bz, strlen(bz), enc, segs, created,
	                          expires, attempt),
	                 0);
	if (a.len != b.len || memcmp(a.p, b.p, a.len))
		fail_msg("differ:\n%s\n%s", a.p, b.p);
	/* and it parses back (when the body is UTF-8, as rendered bodies always are) */
	if (aud_utf8_ok(bz, strlen(bz))) {
		msg_out_t o;
		json_t *hold;
		if (msg_out_parse(b.p, b.len, &o, &hold, err, sizeof err))
			fail_msg("%s: %s", err, b.p);
		assert_string_equal(o.body, bz);
		json_decref(hold);
	}
	free(bz);
	buf_free(&a);
	buf_free(&b);
	penc_free(e);
}

static void test_identity(void **state)
{
	(void)state;
	check("demo", "main", 0, "+12025552001", "Hi Ana", 6, "gsm7", 1, 1795300000000,
	      1795386400000, 0);
	check("c\"q\\x", "pool \"a\"", -3, "+442079460958", "line1\nline2\r\t\"q\" \\ \x01\x1f end",
	      25, "ucs2", 3, 0, 0, 1);
	check("x", "m", 7, "+1", "h\xc3\xa9llo \xf0\x9f\x98\x80", 11, "ucs2", 1, -5, INT64_MAX, 2);
	/* every byte value in the body */
	char all[255];
	for (int i = 0; i < 255; i++)
		all[i] = (char)(i + 1);
	check("all", "main", 0, "+12025550000", all, sizeof all, "gsm7", 2, 1, 2, 0);
	/* random bodies */
	unsigned seed = 7;
	for (int r = 0; r < 2000; r++) {
		char body[300];
		size_t n = (size_t)(rand_r(&seed) % 299);
		for (size_t i = 0; i < n; i++)
			body[i] = (char)(rand_r(&seed) % 255 + 1);
		check("rnd", "main", r % 5, "+12025550001", body, n, "gsm7", r % 7, r, r * 3, r % 2);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_identity)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
