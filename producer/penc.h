/* penc.h -- the outbox record writer of the hot path: byte for byte msg_out_encode() for SMS, with the per-campaign parts escaped once. */
#ifndef TOCSIN_PENC_H
#define TOCSIN_PENC_H
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/hash.h"

typedef struct penc penc_t;

/* Precompute the constant parts of a campaign's SMS records (campaign id,
 * sender pool, priority). Caller owns the result (penc_free). NULL with err. Any thread. */
penc_t *penc_new(const char *campaign, const char *sender, int priority, char *err, size_t errlen);
void penc_free(penc_t *e);

/* Append to b exactly what msg_out_encode() writes for the msg_out_t
 * {id, campaign, MSG_CH_SMS, to, sender, body, enc, segments, priority,
 * created_ms, expires_ms, attempt, not_before_ms = 0} (tests/unit/test_prod_penc.c
 * checks the identity). Returns 0 or TOCSIN_ERR_TOOBIG. Allocates nothing
 * beyond b's growth. Thread: b's owner. */
int penc_sms(const penc_t *e, buf_t *b, const char *id, const char *to, size_t tolen,
             const char *body, size_t bodylen, const char *enc, int segments, int64_t created_ms,
             int64_t expires_ms, int attempt);

#endif
