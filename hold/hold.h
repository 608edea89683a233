/* hold.h -- the holding store: rendered outbox records waiting for send_at or a recipient's quiet hours. */
#ifndef TOCSIN_HOLD_H
#define TOCSIN_HOLD_H
#include <stddef.h>
#include <stdint.h>

#include "core/cfg.h"

/* One sqlite file, <var_dir>/hold.db (WAL): a row per held message with the instant it is
 * due, its outbox topic and key, and the record as the launch rendered it. The launch puts
 * rows (hold_put, idempotent on the message id); `tocsin hold` (hold_run) moves the due
 * ones to the outbox. A held message costs no dispatcher anything until it is due.
 * Row states: 0 held, 1 releasing (produced, acknowledgement not yet recorded), 2
 * released, 3 cancelled, 4 expired. Rows are kept after release (without their record)
 * so a resumed launch never holds a released message again. */
typedef struct hold hold_t;

enum { HOLD_HELD = 0, HOLD_RELEASING, HOLD_RELEASED, HOLD_CANCELLED, HOLD_EXPIRED };

/* Open (create) the store at <var_dir>/hold.db. NULL with "path: reason". One thread. */
hold_t *hold_open(const cfg_t *cfg, char *err, size_t errlen);
void hold_close(hold_t *h);

/* Hold one message until due_ms: rec (reclen bytes) goes to topic with key addr then.
 * zones: the recipient's zone set ("" for send_at alone), for reports. A message id
 * already in the store (held or released before) is left as it is, except with rearm
 * (launch --resend-failed: a new attempt) when its row is done (released, cancelled,
 * expired) by an earlier launch run: gen (the run's start, ms) greater than the row's
 * holds it again. Rows are written in one transaction until hold_commit. 0 or
 * TOCSIN_ERR_IO. One thread. */
int hold_put(hold_t *h, const char *id, const char *campaign, const char *topic, const char *addr,
             int64_t due_ms, int64_t expires_ms, const char *zones, const void *rec, size_t reclen,
             int64_t gen, int rearm);
/* Make every hold_put so far durable. 0 or TOCSIN_ERR_IO. */
int hold_commit(hold_t *h);

/* `tocsin hold`: release due messages until tocsin_stop (cmd.h). */
int cmd_hold(cfg_t *cfg, int argc, char **argv);

#endif
