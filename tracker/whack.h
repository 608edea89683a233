/* whack.h -- webhook acknowledgements: a webhook is answered only once the broker has acknowledged every record it produced. */
#ifndef TOCSIN_WHACK_H
#define TOCSIN_WHACK_H
#include <stddef.h>
#include <stdint.h>

struct MHD_Connection;

/* The waits of the requests whose records are on their way to the broker, and
 * the replay keys those requests hold meanwhile.
 *
 * One request: tok = trk_whack_open(); before each record it produces,
 * trk_whack_add(tok) (and the record's msg_opaque is trk_whack_opaque(tok));
 * trk_whack_unadd(tok) when the produce call itself failed; then
 * trk_whack_arm(tok, c): 0 = every record is acknowledged already, answer now;
 * 1 = the connection was suspended (MHD_ALLOW_SUSPEND_RESUME) and is resumed
 * once the last delivery report came (trk_whack_report, from the producer's
 * poll thread) or the wait passed its timeout (trk_whack_tick); on the handler's
 * next call trk_whack_close(tok) says whether every record was acknowledged and
 * frees the wait. trk_whack_close also ends a wait that was never armed.
 * A delivery report of a closed wait is ignored (its token's generation moved).
 * The mutex inside is never held while calling libmicrohttpd. Any thread. */
typedef struct trk_whack trk_whack_t;

/* slots: waits at once (one per connection: the server's connection limit);
 * timeout_ms: how long a wait may last. Caller owns (trk_whack_free). */
trk_whack_t *trk_whack_new(size_t slots, int timeout_ms);
void trk_whack_free(trk_whack_t *w);

/* A new wait, or 0 when every slot is taken or the server is closing. */
uint64_t trk_whack_open(trk_whack_t *w);
void trk_whack_add(trk_whack_t *w, uint64_t tok);
void trk_whack_unadd(trk_whack_t *w, uint64_t tok);
/* The msg_opaque that carries tok to the delivery report (NULL for tok 0). */
void *trk_whack_opaque(uint64_t tok);
int trk_whack_arm(trk_whack_t *w, uint64_t tok, struct MHD_Connection *c);
/* Suspend c for ms (no records): trk_whack_tick resumes it then (a webhook that
 * waits for a record to arrive before it is looked at again). 1 when suspended,
 * 0 when closing (answer now). trk_whack_close(tok) afterwards says 0. */
int trk_whack_sleep(trk_whack_t *w, uint64_t tok, struct MHD_Connection *c, int ms);
/* 1 when every record of tok was acknowledged in time, else 0; frees the wait. */
int trk_whack_close(trk_whack_t *w, uint64_t tok);
/* A delivery report: opaque as given to the produce call, ok = no error. */
void trk_whack_report(trk_whack_t *w, void *opaque, int ok);
/* Fail and resume the armed waits past their timeout (now: clock_mono_ms()).
 * Returns how many. */
int trk_whack_tick(trk_whack_t *w, int64_t now_ms);
/* Refuse new waits; fail and resume every armed one (before MHD_stop_daemon). */
void trk_whack_shutdown(trk_whack_t *w);

/* Replay keys held by requests in flight (not yet acknowledged, so not yet in
 * the replay memory): 1 when key was free and is now held, 0 when another
 * request holds it, -1 when the table is full. The caller serializes these
 * calls with its replay-memory lookups. */
int trk_whack_key_hold(trk_whack_t *w, const char *key);
int trk_whack_key_held(const trk_whack_t *w, const char *key);
void trk_whack_key_drop(trk_whack_t *w, const char *key);

#endif
