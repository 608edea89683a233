/* sim_seg.c -- the emulator's own SMS segment count (GSM-7 with escapes, UCS-2 in UTF-16 units), apart from templates/sms.c. */
#include "vendors/sim/sim_int.h"

#include <string.h>

/* GSM 03.38 default alphabet (one septet) outside ASCII, as Unicode code points */
static const unsigned gsm_basic_hi[] = {0xA3,  0xA5,  0xE8,  0xE9,  0xF9,  0xEC,  0xF2,  0xC7,
                                        0xD8,  0xF8,  0xC5,  0xE5,  0x394, 0x3A6, 0x393, 0x39B,
                                        0x3A9, 0x3A0, 0x3A8, 0x3A3, 0x398, 0x39E, 0xC6,  0xE6,
                                        0xDF,  0xC9,  0xA4,  0xA1,  0xC4,  0xD6,  0xD1,  0xDC,
                                        0xA7,  0xBF,  0xE4,  0xF6,  0xF1,  0xFC,  0xE0};

/* septets for code point c in GSM-7: 1, 2 (escape + extension) or 0 (not in GSM-7) */
static int gsm_septets(unsigned c)
{
	if (c == '\n' || c == '\r')
		return 1;
	if (c == '\f' || c == 0x20AC || (c < 0x80 && strchr("^{}\\[~]|", (int)c) && c))
		return 2;
	if (c >= 0x20 && c < 0x7F && c != '`')
		return 1;
	for (size_t i = 0; i < sizeof gsm_basic_hi / sizeof *gsm_basic_hi; i++)
		if (gsm_basic_hi[i] == c)
			return 1;
	return 0;
}

/* the next code point of the UTF-8 text at *p (advanced); a malformed byte counts as itself */
static unsigned next_cp(const unsigned char **p)
{
	const unsigned char *s = *p;
	unsigned c = s[0];
	int n = c >= 0xF0 && c < 0xF8 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
	if (c >= 0xF8)
		n = 0;
	for (int i = 1; i <= n; i++)
		if ((s[i] & 0xC0) != 0x80)
			n = 0;
	if (n) {
		c &= 0x3F >> n;
		for (int i = 1; i <= n; i++)
			c = (c << 6) | (s[i] & 0x3F);
	}
	*p = s + 1 + n;
	return c;
}

/* the width of code point c: septets in GSM-7, else UTF-16 units */
static int width(unsigned c, int gsm) { return gsm ? gsm_septets(c) : c > 0xFFFF ? 2 : 1; }

int sim_segments(const char *text, int force_ucs2, int *ucs2)
{
	const unsigned char *p;
	int gsm = !force_ucs2;
	for (p = (const unsigned char *)text; gsm && *p;)
		gsm = gsm_septets(next_cp(&p)) > 0;
	size_t total = 0, one = gsm ? 160 : 70, part = gsm ? 153 : 67;
	for (p = (const unsigned char *)text; *p;)
		total += (size_t)width(next_cp(&p), gsm);
	if (ucs2)
		*ucs2 = !gsm;
	if (total <= one)
		return 1;
	/* parts of `part` units; an escape pair or a surrogate pair is never split */
	int parts = 1;
	size_t used = 0;
	for (p = (const unsigned char *)text; *p;) {
		size_t w = (size_t)width(next_cp(&p), gsm);
		if (used + w > part) {
			parts++;
			used = 0;
		}
		used += w;
	}
	return parts;
}
