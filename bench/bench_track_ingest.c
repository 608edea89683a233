/* bench_track_ingest.c -- status ingest into sqlite: parse + forward-only fold, events/s on one core. */
#include "core/clock.h"
#include "core/hash.h"
#include "core/msg.h"
#include "tracker/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/num.h"

/* Usage: bench_track_ingest [messages] [random] (default 200000; 3 events each:
 * accepted, sent, delivered as one dispatcher at full speed produces them).
 * "random": recipients' numbers in no order (a real audience; the address
 * index then takes random inserts) instead of ascending. */
int main(int argc, char **argv)
{
	int64_t v = 200000;
	long nmsg = argc > 1 && num_i64(argv[1], 1, 10000000, &v) ? -1 : (long)v;
	if (nmsg <= 0 || nmsg > 10000000) {
		fprintf(stderr, "bench_track_ingest: messages must be 1..10000000\n");
		return 2;
	}
	int shuffled = argc > 2 && !strcmp(argv[2], "random");
	long nev = nmsg * 3;
	/* Pre-encode every record as the dispatcher would put it on Kafka. */
	char **rec = malloc(sizeof *rec * (size_t)nev);
	size_t *len = malloc(sizeof *len * (size_t)nev);
	static const msg_state_t seq[3] = {MSG_ST_ACCEPTED, MSG_ST_SENT, MSG_ST_DELIVERED};
	buf_t b;
	buf_init(&b, 1 << 16);
	long k = 0;
	/* Interleave like a live stream: accepted for a window of messages, then
	 * their receipts. */
	const long win = 5000;
	for (long base = 0; base < nmsg; base += win)
		for (int s = 0; s < 3; s++)
			for (long i = base; i < base + win && i < nmsg; i++) {
				char to[32], id[MSG_ID_LEN + 1];
				if (shuffled) /* a permutation of 0..10^7-1: distinct, in no order */
					snprintf(to, sizeof to, "+1555%07lld",
					         (long long)(((long long)i * 4194301LL + 1234567LL) %
					                     10000000LL));
				else
					snprintf(to, sizeof to, "+1555%07ld", i);
				msg_make_id("bench", "sms", to, id);
				msg_status_t st = {.id = id,
				                   .campaign = "bench",
				                   .channel = MSG_CH_SMS,
				                   .to = to,
				                   .state = seq[s],
				                   .vendor = i % 2 ? "twilio" : "vonage",
				                   .vendor_ref = "SM0123456789abcdef0123456789abcdef",
				                   .latency_ms = s == 0 ? 40 + i % 200 : -1,
				                   .attempt = 0,
				                   .ts_ms = 1700000000000 + i / 50};
				buf_reset(&b);
				msg_status_encode(&st, &b);
				rec[k] = strdup(b.p);
				len[k] = b.len;
				k++;
			}
	buf_free(&b);
	char path[128], err[512];
	const int tx_events = 5000;

	/* Baseline: append each raw event to an sqlite table (same batching, no
	 * parsing, no folding). */
	snprintf(path, sizeof path, "/tmp/bench_track_base.%d.db", (int)getpid());
	unlink(path);
	sqlite3 *db;
	sqlite3_open(path, &db);
	sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE TABLE log(v TEXT)",
	             NULL, NULL, NULL);
	sqlite3_stmt *ins;
	sqlite3_prepare_v2(db, "INSERT INTO log VALUES(?1)", -1, &ins, NULL);
	int64_t t0 = clock_mono_ns();
	for (long i = 0; i < nev; i++) {
		if (i % tx_events == 0)
			sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
		sqlite3_bind_text(ins, 1, rec[i], (int)len[i], SQLITE_STATIC);
		sqlite3_step(ins);
		sqlite3_reset(ins);
		if (i % tx_events == tx_events - 1 || i == nev - 1)
			sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	}
	double base_s = (double)(clock_mono_ns() - t0) / 1e9;
	sqlite3_finalize(ins);
	sqlite3_close(db);
	unlink(path);

	/* Measured: msg_status_parse + trk_store_status, 5,000 events a transaction. */
	snprintf(path, sizeof path, "/tmp/bench_track_ingest.%d.db", (int)getpid());
	unlink(path);
	trk_store_t *s = trk_store_open(path, 0, err, sizeof err);
	if (!s) {
		fprintf(stderr, "bench_track_ingest: %s\n", err);
		return 1;
	}
	t0 = clock_mono_ns();
	for (long i = 0; i < nev; i++) {
		if (i % tx_events == 0)
			trk_store_begin(s);
		msg_status_t st;
		json_t *hold;
		if (msg_status_parse(rec[i], len[i], &st, &hold, err, sizeof err) ||
		    trk_store_status(s, &st) < 0) {
			fprintf(stderr, "bench_track_ingest: event %ld failed\n", i);
			return 1;
		}
		json_decref(hold);
		if (i % tx_events == tx_events - 1 || i == nev - 1)
			trk_store_commit(s);
	}
	double s_s = (double)(clock_mono_ns() - t0) / 1e9;
	trk_counts_t c;
	int ok = trk_store_counts(s, "bench", &c) == 0 && c.total == nmsg &&
	         c.states[MSG_ST_DELIVERED] == nmsg;
	trk_store_free(s);
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -f %s %s-wal %s-shm", path, path, path);
	if (system(cmd)) {
	}
	for (long i = 0; i < nev; i++)
		free(rec[i]);
	free(rec);
	free(len);
	printf("bench_track_ingest: %ld events (%ld messages x accepted/sent/delivered), 5000/tx, %s addresses\n",
	       nev, nmsg, shuffled ? "random" : "ascending");
	printf("  baseline raw sqlite append: %.0f events/s\n", nev / base_s);
	printf("  parse + forward-only fold : %.0f events/s (%.2fx baseline)  target >= 60000\n",
	       nev / s_s, (nev / s_s) / (nev / base_s));
	printf("  check: %s (delivered=%lld of %ld)\n", ok ? "ok" : "WRONG",
	       (long long)c.states[MSG_ST_DELIVERED], nmsg);
	return ok ? 0 : 1;
}
