/* dsp_ledger.h -- the ids a vendor took, kept outside Kafka (a file per dispatcher under <var_dir>/ledger) and read before sending. */
#ifndef TOCSIN_DSP_LEDGER_H
#define TOCSIN_DSP_LEDGER_H
#include <stddef.h>

/* Why: when the broker loses everything (the embedded one restarted) the outcomes on
 * tocsin.status are gone with it, and a relaunch re-queues every recipient. The ledger
 * remembers, on this machine, which message ids a vendor took (accepted, or an
 * ambiguous send a receipt confirmed), so no dispatcher sends them again.
 *
 * Files: <dir>/<channel>-<client id>.ids, one id a line, mode 0600, one per dispatcher
 * run (appended with write(2) as each id is noted: a killed process keeps what it
 * wrote; a power cut may lose the page cache's last lines). dsp_ledger_open reads every
 * <channel>-*.ids file of dir younger than DSP_LEDGER_KEEP_S (and deletes the older
 * ones), so a dispatcher knows what every dispatcher of this machine noted before it
 * started; dsp_ledger_refresh reads what the others noted since (when partitions are
 * handed over: a dispatcher killed before its last outcomes reached the broker -- they wait
 * up to the status producer's linger -- is not sent again by the one taking its
 * partitions); otherwise it learns of them through tocsin.status as before. Dispatchers on
 * other machines keep their own ledgers. */
#define DSP_LEDGER_KEEP_S (2 * 24 * 3600)
#define DSP_LEDGER_MAX_IDS (50u * 1000 * 1000) /* ids held in memory at most */

typedef struct dsp_ledger dsp_ledger_t;

/* Create dir (mode 0700) if missing, read the channel's files, open this run's file.
 * NULL with err on an I/O error. Caller owns it (dsp_ledger_free; NULL is a no-op).
 * One thread (the dispatcher's loop). */
dsp_ledger_t *dsp_ledger_open(const char *dir, const char *channel, const char *client_id,
                              char *err, size_t errlen);
void dsp_ledger_free(dsp_ledger_t *l);
/* Note id (up to 64 bytes) as taken by a vendor: in memory at once, and in the file at the
 * next dsp_ledger_flush() (or when a vendor answer's worth, 1000 ids, waits). 0, or
 * TOCSIN_ERR_IO / TOCSIN_ERR_TOOBIG (logged; the id is still known in memory when it fit
 * there). */
int dsp_ledger_add(dsp_ledger_t *l, const char *id);
/* Append the ids noted since the last flush to the file in one write(2): call it once per
 * vendor answer, after noting its accepted ids (one syscall per request, not per id; a
 * process killed in between loses what one answer took, as it could before). 0 or
 * TOCSIN_ERR_IO (logged). dsp_ledger_free() flushes. */
int dsp_ledger_flush(dsp_ledger_t *l);
/* Read what the channel's other files gained since they were last read (new files whole).
 * Returns the ids read (0 when the directory cannot be read). */
size_t dsp_ledger_refresh(dsp_ledger_t *l);
/* 1 when id was read at open or by a refresh, or noted since. */
int dsp_ledger_has(const dsp_ledger_t *l, const char *id);
/* Ids read from the files at open (lines that are not an id are skipped). */
size_t dsp_ledger_loaded(const dsp_ledger_t *l);

#endif
