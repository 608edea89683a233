/* sms.h -- SMS encoding detection and exact segment counting (GSM-7 vs UCS-2). */
#ifndef TOCSIN_SMS_H
#define TOCSIN_SMS_H
#include <stddef.h>

typedef enum sms_enc { SMS_GSM7 = 0, SMS_UCS2 = 1 } sms_enc_t;

typedef struct sms_info {
	sms_enc_t enc;
	int units;    /* septets for GSM-7 (extension chars count 2), UTF-16 units for UCS-2 */
	int segments; /* 1 if it fits one SMS, else the number of concatenated parts */
} sms_info_t;

/* "gsm7" or "ucs2" (static strings). Any thread. */
const char *sms_enc_name(sms_enc_t enc);

/* Analyze UTF-8 text s[0..len): encoding, units and exact segments (GSM-7:
 * 160 / 153 per part, an escape pair never split across parts; UCS-2: 70 / 67
 * per part, astral characters take 2 units and are never split). Allocates
 * nothing. Returns 0, or TOCSIN_ERR_INVAL for invalid UTF-8. Any thread. */
int sms_analyze(const char *s, size_t len, sms_info_t *out);

/* ---- additions (templates owner): smart replacement, footer, segment cap ---- */

#define SMS_MAX_SEGMENTS_DEFAULT 6
#define SMS_SMART_NKINDS 40 /* size of a counts[] array for sms_smart_replace() */

/* GSM "smart replacement": replace look-alike characters (curly quotes,
 * dashes, ellipsis, non-breaking and other spaces, zero-width characters)
 * with their GSM-7 equivalents, in place: s[0..*len) is rewritten and *len
 * updated (a replacement is never longer than what it replaces). Returns the
 * number of characters replaced; when counts is non-NULL, counts[k] is
 * incremented for each replacement of kind k (0 <= k < SMS_SMART_NKINDS).
 * Invalid UTF-8 is left as it is. Allocates nothing. Any thread. */
int sms_smart_replace(char *s, size_t *len, unsigned *counts);

/* Kind k of sms_smart_replace(): the replaced character as UTF-8 and its
 * replacement (static strings), or NULL when k is not a kind. Any thread. */
const char *sms_smart_from(int k, const char **to);

typedef struct sms_opts {
	int smart;          /* apply sms_smart_replace() */
	int max_segments;   /* reject longer messages; 0 = SMS_MAX_SEGMENTS_DEFAULT */
	const char *footer; /* compliance footer ("Reply STOP to opt out"), or NULL/"" for none */
} sms_opts_t;

/* Finish a rendered SMS body in place (buffer body of cap bytes holding
 * *len bytes): the footer appended on a new line (unless the body already
 * contains it), then smart replacement of the whole when asked, then the analysis into
 * *info and the segment cap. Returns 0; TOCSIN_ERR_INVAL (invalid UTF-8)
 * or TOCSIN_ERR_TOOBIG (over the segment cap, or no room for the footer)
 * with a one-line reason in reason[reasonlen] (e.g. "message is 7 segments,
 * cap is 6"); the recipient is then rejected, never sent truncated.
 * nreplaced (may be NULL) receives the replacement count, counts as in
 * sms_smart_replace(). Allocates nothing. Any thread. */
int sms_finish(char *body, size_t *len, size_t cap, const sms_opts_t *o, sms_info_t *info,
               int *nreplaced, unsigned *counts, char *reason, size_t reasonlen);

/* The cost of one message: segments * price per segment. Any thread. */
static inline double sms_cost(const sms_info_t *info, double per_segment)
{
	return (double)info->segments * per_segment;
}

#endif
