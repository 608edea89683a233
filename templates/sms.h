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

/* "gsm7" or "ucs2". */
const char *sms_enc_name(sms_enc_t enc);

/* Analyze UTF-8 text s[0..len): encoding, units and exact segments (GSM-7:
 * 160 / 153 per part, an escape pair never split across parts; UCS-2: 70 / 67
 * per part, astral characters take 2 units and are never split). Allocates
 * nothing. Returns 0, or TOCSIN_ERR_INVAL for invalid UTF-8. Any thread. */
int sms_analyze(const char *s, size_t len, sms_info_t *out);

#endif
