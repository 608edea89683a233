/* fuzz_aud.c -- libFuzzer target: the audience readers (CSV, JSON Lines) on arbitrary bytes, then address normalization of every field. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/err.h"
#include "producer/addr.h"
#include "producer/aud.h"

static void check(int cond)
{
	if (!cond)
		abort();
}

/* Input: byte 0 = format (even: CSV, odd: JSON Lines) and row cap; the rest is the file. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int fd = memfd_create("aud", 0);
	if (fd < 0)
		return 0;
	if (size > 1 && write(fd, data + 1, size - 1) != (ssize_t)(size - 1)) {
		close(fd);
		return 0;
	}
	char path[64], err[512];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	aud_spec_t sp = {.fmt = (data[0] & 1) ? AUD_JSONL : AUD_CSV,
	                 .path = path,
	                 .max_record = (data[0] & 2) ? 64 : 0,
	                 .max_cols = (data[0] & 4) ? 3 : 0};
	aud_t *a = aud_open(&sp, err, sizeof err);
	if (!a) {
		check(err[0] != 0);
		close(fd);
		return 0;
	}
	size_t nc = aud_ncols(a);
	check(nc >= 1);
	aud_row_t r;
	int rc, rows = 0;
	int64_t last_line = 0;
	while ((rc = aud_next(a, &r)) != 0) {
		check(rc == 1 || rc == TOCSIN_ERR_INVAL || rc == TOCSIN_ERR_IO);
		if (rc == TOCSIN_ERR_IO)
			break;
		check(r.line >= 1);
		check(++rows <= (int)size + 2); /* always ends */
		if (rc == 1) {
			check(r.n == nc);
			for (size_t i = 0; i < r.n; i++) {
				if (!r.vals[i])
					continue;
				check(aud_utf8_ok(r.vals[i], r.lens[i]));
				check(!memchr(r.vals[i], 0, r.lens[i]));
				char out[ADDR_MAX];
				const char *why = NULL;
				if (addr_phone_norm(r.vals[i], r.lens[i], out, &why) == 0)
					check(out[0] == '+' && strlen(out) >= 9 && strlen(out) <= 16);
				else
					check(why != NULL);
				if (addr_email_norm(r.vals[i], r.lens[i], out, &why) == 0)
					check(strchr(out, '@') && strlen(out) <= 254);
				else
					check(why != NULL);
			}
		} else {
			check(r.why[0] != 0);
		}
		last_line = r.line;
	}
	(void)last_line;
	aud_free(a);
	close(fd);
	return 0;
}
