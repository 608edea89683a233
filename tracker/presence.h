/* presence.h -- is anything consuming each channel's outbox? (dispatcher presence, for warnings) */
#ifndef TOCSIN_TRK_PRESENCE_H
#define TOCSIN_TRK_PRESENCE_H
#include <stddef.h>

#include "core/buf.h"
#include "core/cfg.h"

/* Where the tracker writes what it found, relative to var_dir: one JSON object
 * {"checked_ms","channels":{"<ch>":{"group","members","waiting","idle_s"}},"warnings":[..]}
 * (members -1: the cluster does not list groups, e.g. the embedded broker). */
#define TRK_PRESENCE_RUNFILE "run/dispatchers.json"
/* Older than this, the file is stale (the tracker is not running). */
#define TRK_PRESENCE_STALE_MS 30000

/* A thread that checks, every 2 s, for each channel with vendors: the members of
 * the consumer group tocsin-dispatch-<channel> (when the cluster lists groups),
 * the messages waiting on tocsin.outbox.<channel> and its .urgent lane past the group's committed
 * offsets, and how long those offsets have not moved; it writes the result to
 * TRK_PRESENCE_RUNFILE. A warning is raised for a channel whose group has no
 * member while messages wait, or (the group membership unknown) whose waiting
 * messages have not moved for tracker.dispatcher_idle_s (default 15). cfg is
 * borrowed and must outlive it. NULL + err on failure. Main thread. */
typedef struct trk_presence trk_presence_t;
trk_presence_t *trk_presence_new(const cfg_t *cfg, char *err, size_t errlen);
/* Stop the thread, remove the run file; NULL is a no-op. Main thread. */
void trk_presence_free(trk_presence_t *p);

/* Append the tracker's latest presence report to b; when it is missing or stale,
 * {"checked_ms":null,"channels":{},"warnings":["dispatcher presence unknown: ..."]}.
 * 0 or TOCSIN_ERR_TOOBIG. Any thread. */
int trk_presence_report(const cfg_t *cfg, buf_t *b);

#endif
