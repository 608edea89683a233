/* store_int.h -- what the tracker store's files share (tracker/store*.c): the handle, its statements and aggregation; not a public interface. */
#ifndef TOCSIN_TRK_STORE_INT_H
#define TOCSIN_TRK_STORE_INT_H
#include "tracker/store.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* ---- per-transaction aggregation: counters merged into sqlite at commit ---- */

enum { AGG_COUNT = 0, AGG_CODE = 1, AGG_SERIES = 2, AGG_LAT = 3 };
#define AGG_SLOTS 8192
#define AGG_KEY 200

typedef struct agg {
	uint64_t h;
	int used;
	int kind;
	int state;         /* AGG_COUNT */
	int64_t sec;       /* AGG_SERIES */
	char key[AGG_KEY]; /* campaign \0 vendor \0 [code \0] */
	size_t klen;
	int64_t n; /* count delta, or code count */
	int64_t sends, receipts, failures, lat_sum;
	int64_t ans[TRK_ANS__COUNT]; /* AGG_SERIES: vendor answers by kind */
	int64_t lat[TRK_LAT_BUCKETS];
} agg_t;

enum {
	Q_GET,
	Q_INS,
	Q_UPD,
	Q_REOPEN,
	Q_MSG,
	Q_HIST,
	Q_OLDREF,
	Q_COUNT,
	Q_CODE,
	Q_SERIES,
	Q_CAMP,
	Q_FIXCAMP,
	Q_SETREF,
	Q_VH,
	Q_OPT,
	Q_EVENT,
	Q_INBOUND,
	Q_LAT,
	Q_BEGIN,
	Q_COMMIT,
	Q_ROLLBACK,
	Q__COUNT
};

/* A direct-mapped cache of recently seen messages (id -> row, state,
 * campaign, vendor), so the receipts that follow an accepted event skip the
 * id index. Names are interned (at most CACHE_NAMES campaigns and vendors;
 * beyond that messages are simply not cached). Cleared on any rollback. */
#define CACHE_SLOTS (1u << 20)
#define CACHE_NAMES 255
#define TRK_LAST_CAMPAIGNS 5000 /* campaigns tried by trk_store_last_campaign */
typedef struct cent {
	unsigned char id[16];
	int64_t rid;
	uint8_t used, state, camp, vendor;
	uint8_t channel, attempt, reopened; /* attempt capped at 255; reopened: gen > 0 */
} cent_t;

struct trk_store {
	cent_t *cache;
	char *names[CACHE_NAMES + 1]; /* index 0 unused */
	int nnames;
	sqlite3 *db;
	char *path;
	int readonly;
	int in_tx;
	sqlite3_stmt *q[Q__COUNT];
	agg_t *agg;
	size_t nagg;
	/* trk_store_open_seen: keys taken and not yet written (one transaction per
	 * SEEN_BATCH keys, or per trk_store_seen_flush), statements, keys written */
	struct seen_pend {
		char key[160];
		int64_t exp_s;
	} * pend;
	size_t npend;
	int64_t seen_n, seen_now; /* keys written; the caller's clock at the last take */
	sqlite3_stmt *seen_q[4];  /* write, forget, prune, look up */
};

/* store.c: one statement stepped, reset and unbound (0, or TOCSIN_ERR_IO logged) */
int store_step_done(trk_store_t *s, sqlite3_stmt *st);
/* Find or add the aggregation slot for (kind, campaign, vendor, extra); inside a
 * transaction only. NULL when flushing the full table failed. */
agg_t *store_agg_slot(trk_store_t *s, int kind, const char *campaign, const char *vendor,
                      const char *extra, int state, int64_t sec);
/* The index of a campaign or vendor name in s->names (0: the table is full). */
int store_intern(trk_store_t *s, const char *name);
/* Bind v, or NULL when v is. */
void store_bind_opt(sqlite3_stmt *q, int i, const char *v);
/* Bind an id: our 32-hex-digit ids as their 16 bytes (raw; returns 1), others as text (0). */
int store_bind_id(sqlite3_stmt *q, int i, const char *id, unsigned char raw[16]);

#endif
