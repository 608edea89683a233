/* sms.c -- SMS encoding (GSM-7 vs UCS-2), exact segment counting, smart replacement, footer and segment cap. */
#include "templates/sms.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "templates/utf8.h"

/* Septets per ASCII byte: 1 basic table, 2 extension table (ESC + char), 0 not GSM-7. */
static const uint8_t gsm_ascii[128] = {
    /* 0x00-0x1f: only LF, CR (basic) and FF (extension) */
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    1,
    0,
    2,
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    /*  !"#$%&'()*+,-./ */
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    /* 0-9:;<=>? */
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    /* @A-O */
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    /* P-Z [ \ ] ^ _ */
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    2,
    2,
    2,
    2,
    1,
    /* ` a-o : backtick is not GSM-7 */
    0,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    /* p-z { | } ~ DEL */
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    2,
    2,
    2,
    2,
    0,
};

/* Septets for any code point (3GPP TS 23.038 default alphabet + extension table). */
static int gsm_cost(uint32_t cp)
{
	if (cp < 128)
		return gsm_ascii[cp];
	switch (cp) {
	case 0x00A1:
	case 0x00A3:
	case 0x00A4:
	case 0x00A5:
	case 0x00A7:
	case 0x00BF:
	case 0x00C4:
	case 0x00C5:
	case 0x00C6:
	case 0x00C7:
	case 0x00C9:
	case 0x00D1:
	case 0x00D6:
	case 0x00D8:
	case 0x00DC:
	case 0x00DF:
	case 0x00E0:
	case 0x00E4:
	case 0x00E5:
	case 0x00E6:
	case 0x00E8:
	case 0x00E9:
	case 0x00EC:
	case 0x00F1:
	case 0x00F2:
	case 0x00F6:
	case 0x00F8:
	case 0x00F9:
	case 0x00FC:
	case 0x0393:
	case 0x0394:
	case 0x0398:
	case 0x039B:
	case 0x039E:
	case 0x03A0:
	case 0x03A3:
	case 0x03A6:
	case 0x03A8:
	case 0x03A9: return 1;
	case 0x20AC: /* euro sign: extension table */ return 2;
	default: return 0;
	}
}

const char *sms_enc_name(sms_enc_t enc) { return enc == SMS_UCS2 ? "ucs2" : "gsm7"; }

/* Byte classes for the fast path: 0 = GSM-7 basic ASCII (1 septet), else 1. */
static const uint8_t not_plain[256] = {
#define X1 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
    1,  1,  1,  1,  1,  1,  1,  1,  1, 1, 0, 1, 1, 0, 1, 1, /* LF, CR basic; FF extension */
    X1, 0,  0,  0,  0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0,  0,  0,  0,  0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0,  0,  0,  0,  0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, /* [ \ ] ^ extension */
    1,  0,  0,  0,  0,  0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0,                /* ` not GSM-7 */
    0,  0,  0,  0,  0,  0,  0,  0,  0, 0, 0, 1, 1, 1, 1, 1, /* { | } ~ extension, DEL */
    X1, X1, X1, X1, X1, X1, X1, X1,
#undef X1
};

int sms_analyze(const char *s, size_t len, sms_info_t *out)
{
	/* Fast path: plain GSM-7 basic ASCII only (the common case) costs one septet a byte. */
	if (s && len <= 0x7fffffff) {
		const unsigned char *u = (const unsigned char *)s;
		unsigned acc = 0;
		size_t i = 0;
		/* 8 bytes at a time: a word of plain bytes (0x20..0x7e minus [\]^`{|}~) passes
		 * without lookups; any other word goes through the table. */
		const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
		for (; i + 8 <= len; i += 8) {
			uint64_t x;
			memcpy(&x, u + i, 8);
			uint64_t lo7 = x & ~high;
			uint64_t bad = x & high;              /* non-ASCII */
			bad |= (x - ones * 0x20) & ~x & high; /* < 0x20 */
			bad |= (ones * (127 + 0x5F) - lo7) & ~x & (lo7 + ones * (127 - 0x5A)) &
			       high; /* 5b..5e */
			bad |= (ones * (127 + 0x80) - lo7) & ~x & (lo7 + ones * (127 - 0x7A)) &
			       high; /* 7b..7f */
			uint64_t y = x ^ (ones * 0x60);
			bad |= (y - ones) & ~y & high; /* == 0x60 */
			if (bad) {
				for (int k = 0; k < 8; k++)
					acc |= not_plain[u[i + k]];
				if (acc)
					break;
			}
		}
		for (; i < len && !acc; i++)
			acc |= not_plain[u[i]];
		if (acc == 0) {
			if (out) {
				out->enc = SMS_GSM7;
				out->units = (int)len;
				out->segments = len <= 160 ? 1 : (int)((len + 152) / 153);
			}
			return 0;
		}
	}
	const unsigned char *p = (const unsigned char *)s;
	/* Track both encodings in one pass: GSM-7 until a non-GSM character is seen. */
	int gsm = 1;
	long g_units = 0, g_parts = 1, g_fill = 0; /* septets; parts of 153 */
	long u_units = 0, u_parts = 1, u_fill = 0; /* UTF-16 units; parts of 67 */
	size_t i = 0;
	if (!s && len)
		return TOCSIN_ERR_INVAL;
	while (i < len) {
		uint32_t cp;
		size_t n;
		int gc, uc;
		if (p[i] < 0x80) {
			cp = p[i];
			n = 1;
			gc = gsm_ascii[cp];
			uc = 1;
		} else {
			n = utf8_decode(p + i, len - i, &cp);
			if (n == 0)
				return TOCSIN_ERR_INVAL;
			gc = gsm ? gsm_cost(cp) : 0;
			uc = cp >= 0x10000 ? 2 : 1;
		}
		i += n;
		if (gsm) {
			if (gc == 0) {
				gsm = 0;
			} else {
				g_units += gc;
				if (g_fill + gc > 153) { /* an escape pair never straddles two parts */
					g_parts++;
					g_fill = 0;
				}
				g_fill += gc;
			}
		}
		u_units += uc;
		if (u_fill + uc > 67) { /* a surrogate pair never straddles two parts */
			u_parts++;
			u_fill = 0;
		}
		u_fill += uc;
	}
	if (out) {
		if (gsm) {
			out->enc = SMS_GSM7;
			out->units = (int)g_units;
			out->segments = g_units <= 160 ? 1 : (int)g_parts;
		} else {
			out->enc = SMS_UCS2;
			out->units = (int)u_units;
			out->segments = u_units <= 70 ? 1 : (int)u_parts;
		}
	}
	return 0;
}

/* ---- smart replacement ---- */

typedef struct smart {
	uint32_t cp;
	const char *from; /* UTF-8 of cp */
	const char *to;
} smart_t;

static const smart_t smart_tab[] = {
    {0x00A0, "\xC2\xA0", " "},       /* no-break space */
    {0x00AB, "\xC2\xAB", "\""},      /* « */
    {0x00AD, "\xC2\xAD", ""},        /* soft hyphen */
    {0x00BB, "\xC2\xBB", "\""},      /* » */
    {0x02BC, "\xCA\xBC", "'"},       /* modifier apostrophe */
    {0x02C6, "\xCB\x86", "^"},       /* modifier circumflex */
    {0x02DC, "\xCB\x9C", "~"},       /* small tilde */
    {0x2000, "\xE2\x80\x80", " "},   /* en quad */
    {0x2001, "\xE2\x80\x81", " "},   /* em quad */
    {0x2002, "\xE2\x80\x82", " "},   /* en space */
    {0x2003, "\xE2\x80\x83", " "},   /* em space */
    {0x2004, "\xE2\x80\x84", " "},   /* three-per-em space */
    {0x2005, "\xE2\x80\x85", " "},   /* four-per-em space */
    {0x2006, "\xE2\x80\x86", " "},   /* six-per-em space */
    {0x2007, "\xE2\x80\x87", " "},   /* figure space */
    {0x2008, "\xE2\x80\x88", " "},   /* punctuation space */
    {0x2009, "\xE2\x80\x89", " "},   /* thin space */
    {0x200A, "\xE2\x80\x8A", " "},   /* hair space */
    {0x200B, "\xE2\x80\x8B", ""},    /* zero width space */
    {0x2010, "\xE2\x80\x90", "-"},   /* hyphen */
    {0x2011, "\xE2\x80\x91", "-"},   /* non-breaking hyphen */
    {0x2012, "\xE2\x80\x92", "-"},   /* figure dash */
    {0x2013, "\xE2\x80\x93", "-"},   /* en dash */
    {0x2014, "\xE2\x80\x94", "-"},   /* em dash */
    {0x2015, "\xE2\x80\x95", "-"},   /* horizontal bar */
    {0x2018, "\xE2\x80\x98", "'"},   /* left single quote */
    {0x2019, "\xE2\x80\x99", "'"},   /* right single quote / apostrophe */
    {0x201A, "\xE2\x80\x9A", "'"},   /* low single quote */
    {0x201B, "\xE2\x80\x9B", "'"},   /* reversed single quote */
    {0x201C, "\xE2\x80\x9C", "\""},  /* left double quote */
    {0x201D, "\xE2\x80\x9D", "\""},  /* right double quote */
    {0x201E, "\xE2\x80\x9E", "\""},  /* low double quote */
    {0x201F, "\xE2\x80\x9F", "\""},  /* reversed double quote */
    {0x2026, "\xE2\x80\xA6", "..."}, /* ellipsis */
    {0x202F, "\xE2\x80\xAF", " "},   /* narrow no-break space */
    {0x2032, "\xE2\x80\xB2", "'"},   /* prime */
    {0x2033, "\xE2\x80\xB3", "\""},  /* double prime */
    {0x2039, "\xE2\x80\xB9", "<"},   /* single left angle quote */
    {0x203A, "\xE2\x80\xBA", ">"},   /* single right angle quote */
    {0xFEFF, "\xEF\xBB\xBF", ""},    /* zero width no-break space / BOM */
};
_Static_assert(sizeof smart_tab / sizeof smart_tab[0] == SMS_SMART_NKINDS, "SMS_SMART_NKINDS");

static int smart_find(uint32_t cp)
{
	int lo = 0, hi = (int)(sizeof smart_tab / sizeof smart_tab[0]) - 1;
	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		if (smart_tab[mid].cp == cp)
			return mid;
		if (smart_tab[mid].cp < cp)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

const char *sms_smart_from(int k, const char **to)
{
	if (k < 0 || k >= SMS_SMART_NKINDS)
		return NULL;
	if (to)
		*to = smart_tab[k].to;
	return smart_tab[k].from;
}

int sms_smart_replace(char *s, size_t *len, unsigned *counts)
{
	unsigned char *p = (unsigned char *)s;
	size_t n = *len, r = 0, w;
	int replaced = 0;
	while (r < n && p[r] < 0x80) /* ASCII prefix: nothing to replace or move */
		r++;
	w = r;
	while (r < n) {
		if (p[r] < 0x80) {
			p[w++] = p[r++];
			continue;
		}
		uint32_t cp;
		size_t k = utf8_decode(p + r, n - r, &cp);
		if (k == 0) { /* invalid: copy the byte as it is; sms_analyze will reject it */
			p[w++] = p[r++];
			continue;
		}
		int idx = (cp >= 0xA0 && cp <= 0xFEFF) ? smart_find(cp) : -1;
		if (idx < 0) {
			memmove(p + w, p + r, k);
			w += k;
		} else {
			size_t tl = strlen(smart_tab[idx].to);
			memcpy(p + w, smart_tab[idx].to, tl); /* tl <= k: never overtakes the reader */
			w += tl;
			replaced++;
			if (counts)
				counts[idx]++;
		}
		r += k;
	}
	*len = w;
	if (w < n)
		p[w] = 0;
	return replaced;
}

/* Does h[0..hl) contain n[0..nl)? (short needle, short haystack: memchr + memcmp beats memmem) */
static int contains(const char *h, size_t hl, const char *n, size_t nl)
{
	if (nl == 0)
		return 1;
	const char *p = h, *end = h + hl;
	while ((size_t)(end - p) >= nl && (p = memchr(p, n[0], (size_t)(end - p) - nl + 1))) {
		if (memcmp(p, n, nl) == 0)
			return 1;
		p++;
	}
	return 0;
}

int sms_finish(char *body, size_t *len, size_t cap, const sms_opts_t *o, sms_info_t *info,
               int *nreplaced, unsigned *counts, char *reason, size_t reasonlen)
{
	sms_info_t tmp;
	if (!info)
		info = &tmp;
	if (nreplaced)
		*nreplaced = 0;
	if (reason && reasonlen)
		reason[0] = 0;
	if (!body || !len || *len >= cap) {
		if (reason)
			snprintf(reason, reasonlen, "invalid SMS buffer");
		return TOCSIN_ERR_INVAL;
	}
	if (o && o->footer && o->footer[0]) {
		size_t fl = strlen(o->footer);
		if (!contains(body, *len, o->footer, fl)) {
			size_t sep = *len > 0 && body[*len - 1] != '\n' ? 1 : 0;
			if (*len + sep + fl + 1 > cap) {
				if (reason)
					snprintf(reason, reasonlen,
					         "no room for the footer (%zu bytes max)", cap - 1);
				return TOCSIN_ERR_TOOBIG;
			}
			if (sep)
				body[(*len)++] = '\n';
			memcpy(body + *len, o->footer, fl);
			*len += fl;
		}
	}
	if (o && o->smart) { /* after the footer: a typographic quote in it is replaced too */
		int n = sms_smart_replace(body, len, counts);
		if (nreplaced)
			*nreplaced = n;
	}
	body[*len] = 0;
	if (sms_analyze(body, *len, info) != 0) {
		if (reason)
			snprintf(reason, reasonlen, "invalid UTF-8 in message");
		return TOCSIN_ERR_INVAL;
	}
	int cap_seg = o && o->max_segments > 0 ? o->max_segments : SMS_MAX_SEGMENTS_DEFAULT;
	if (info->segments > cap_seg) {
		if (reason)
			snprintf(reason, reasonlen, "message is %d segments (%s), cap is %d",
			         info->segments, sms_enc_name(info->enc), cap_seg);
		return TOCSIN_ERR_TOOBIG;
	}
	return 0;
}
