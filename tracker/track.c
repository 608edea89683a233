/* track.c -- `tocsin track`: fold status, campaign, vendor-health and opt-out records into sqlite. */
#include "core/clock.h"
#include "core/cmd.h"
#include "core/err.h"
#include "core/kq.h"
#include "core/log.h"
#include "core/runfile.h"
#include "tracker/presence.h"
#include "tracker/recon.h"
#include "core/sig.h"
#include "tracker/store.h"
#include "tracker/trk.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TX_MAX_EVENTS 5000
#define TX_MAX_MS 100
#define BATCH 1000
#define MAX_PARTS 64
#define SERIES_KEEP_S (7 * 86400) /* per-second series older than this are dropped */

static const char *const topics[] = {KQ_T_STATUS, KQ_T_CAMPAIGNS, KQ_T_VENDOR_HEALTH, KQ_T_OPTOUTS};
enum { NTOPICS = sizeof topics / sizeof topics[0] };

typedef struct ingest {
	trk_store_t *st;
	rd_kafka_t *rk;
	/* next offset to commit per topic and partition; -1 = nothing new */
	int64_t next[NTOPICS][MAX_PARTS];
	int64_t tx_events;
	int64_t total, applied, bad;
	trk_live_t *live;
} ingest_t;

static void usage(FILE *f)
{
	fprintf(f, "usage: tocsin track [--listen HOST:PORT] [--no-http]\n"
	           "\n"
	           "Consume tocsin.status, tocsin.campaigns, tocsin.vendor-health and tocsin.optouts\n"
	           "(consumer group \"" KQ_G_TRACKER "\") into the sqlite store at tracker.db\n"
	           "(default <var_dir>/tocsin.db), in batched transactions; consumer offsets are\n"
	           "committed only after the transaction holding their records commits.\n"
	           "Serves the dashboard, JSON API, /metrics and vendor webhooks on --listen\n"
	           "(default tracker.listen, 127.0.0.1:8026; port 0 picks a free port) and writes\n"
	           "the address to <var_dir>/run/track.addr. Stops cleanly on SIGTERM.\n"
	           "\n"
	           "  --listen HOST:PORT  HTTP address (127.0.0.1 only)\n"
	           "  --no-http           ingest only, no HTTP server\n"
	           "  --replay FILE       instead: produce each line of FILE (a JSON status record)\n"
	           "                      to tocsin.status, keyed by id, then exit; bad lines are\n"
	           "                      reported as FILE:LINE and skipped\n");
}

/* --replay FILE: produce each JSON line of FILE (a status record) to tocsin.status. */
static int replay(cfg_t *cfg, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "tocsin track: cannot open %s: %s\n", path, strerror(errno));
		return 1;
	}
	char err[1024];
	rd_kafka_conf_t *conf = kq_conf_new(cfg, KQ_PRODUCER, "tocsin-replay", NULL, err, sizeof err);
	rd_kafka_t *rk = conf ? kq_new(conf, KQ_PRODUCER, 10000, err, sizeof err) : NULL;
	if (!rk) {
		fprintf(stderr, "tocsin track: %s\n", err);
		fclose(f);
		return 1;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long lineno = 0, ok = 0, bad = 0;
	while ((n = getline(&line, &cap, f)) > 0) {
		lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = 0;
		if (n == 0)
			continue;
		msg_status_t s;
		json_t *hold = NULL;
		if (msg_status_parse(line, (size_t)n, &s, &hold, err, sizeof err)) {
			fprintf(stderr, "%s:%ld: %s\n", path, lineno, err);
			bad++;
			continue;
		}
		int rc = kq_produce(rk, KQ_T_STATUS, s.id, strlen(s.id), line, (size_t)n, NULL);
		json_decref(hold);
		if (rc) {
			fprintf(stderr, "%s:%ld: produce failed\n", path, lineno);
			bad++;
			continue;
		}
		ok++;
		rd_kafka_poll(rk, 0);
	}
	free(line);
	fclose(f);
	int frc = kq_flush(rk, 30000);
	rd_kafka_destroy(rk);
	printf("replayed %ld status records to %s, rejected %ld\n", ok, KQ_T_STATUS, bad);
	if (frc) {
		fprintf(stderr, "tocsin track: not every record was delivered within 30 s\n");
		return 1;
	}
	return ok > 0 || bad == 0 ? 0 : 1;
}

static int topic_index(const char *name)
{
	for (int i = 0; i < NTOPICS; i++)
		if (!strcmp(topics[i], name))
			return i;
	return -1;
}

/* Commit offsets of everything applied in the transaction that just committed. */
static void commit_offsets(ingest_t *g, int async)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
	for (int t = 0; t < NTOPICS; t++)
		for (int p = 0; p < MAX_PARTS; p++)
			if (g->next[t][p] >= 0) {
				rd_kafka_topic_partition_list_add(l, topics[t], p)->offset =
				    g->next[t][p];
				g->next[t][p] = -1;
			}
	if (l->cnt > 0) {
		rd_kafka_resp_err_t e = rd_kafka_commit(g->rk, l, async);
		if (e)
			log_warn("event=offset_commit_failed err=\"%s\"", rd_kafka_err2str(e));
	}
	rd_kafka_topic_partition_list_destroy(l);
}

static int tx_commit(ingest_t *g, int async)
{
	if (!trk_store_in_tx(g->st))
		return 0;
	if (trk_store_commit(g->st)) {
		/* Nothing committed: the records will be read again after a
		 * restart; do not move the offsets past them. */
		for (int t = 0; t < NTOPICS; t++)
			for (int p = 0; p < MAX_PARTS; p++)
				g->next[t][p] = -1;
		return TOCSIN_ERR_IO;
	}
	commit_offsets(g, async);
	g->tx_events = 0;
	return 0;
}

static void apply(ingest_t *g, rd_kafka_message_t *m)
{
	const char *tn = rd_kafka_topic_name(m->rkt);
	int t = topic_index(tn);
	char err[256] = "";
	json_t *hold = NULL;
	int rc = 0;
	if (t == 0) {
		msg_status_t s;
		rc = msg_status_parse(m->payload, m->len, &s, &hold, err, sizeof err);
		if (!rc) {
			int r = trk_store_status(g->st, &s);
			if (r > 0)
				g->applied++;
			if (r < 0)
				rc = r;
		}
	} else if (t == 1) {
		msg_campaign_t c;
		rc = msg_campaign_parse(m->payload, m->len, &c, &hold, err, sizeof err);
		if (!rc)
			rc = trk_store_campaign(g->st, &c);
	} else if (t == 2) {
		msg_vhealth_t h;
		rc = msg_vhealth_parse(m->payload, m->len, &h, &hold, err, sizeof err);
		if (!rc)
			rc = trk_store_vhealth(g->st, &h);
	} else if (t == 3) {
		msg_optout_t o;
		rc = msg_optout_parse(m->payload, m->len, &o, &hold, err, sizeof err);
		if (!rc)
			rc = trk_store_optout(g->st, &o);
	}
	if (hold)
		json_decref(hold);
	if (rc == TOCSIN_ERR_INVAL) {
		g->bad++;
		if (g->bad <= 20 || g->bad % 1000 == 0)
			log_warn("event=bad_record topic=%s partition=%d offset=%lld err=\"%s\" bad_total=%lld",
			         tn, (int)m->partition, (long long)m->offset, err, (long long)g->bad);
	} else if (rc) {
		log_error("event=store_failed topic=%s partition=%d offset=%lld err=\"%s\"", tn,
		          (int)m->partition, (long long)m->offset, tocsin_strerror(rc));
	}
	if (t >= 0 && m->partition >= 0 && m->partition < MAX_PARTS)
		g->next[t][m->partition] = m->offset + 1;
	g->tx_events++;
	g->total++;
}

/* Is the broker reachable? One metadata request (at most 500 ms when it is
 * not); the dashboard's banner reads the answer (trk_live_broker). */
static void broker_check(ingest_t *g, int64_t *down_since)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t e = rd_kafka_metadata(g->rk, 0, NULL, &md, 500);
	if (md)
		rd_kafka_metadata_destroy(md);
	if (e && !*down_since) {
		*down_since = clock_wall_ms();
		log_error("event=broker_unreachable err=\"%s\"", rd_kafka_err2str(e));
	} else if (!e && *down_since) {
		log_info("event=broker_reachable down_s=%lld",
		         (long long)((clock_wall_ms() - *down_since) / 1000));
		*down_since = 0;
	}
	trk_live_broker(g->live, *down_since);
}

/* The ingest's store and consumer, subscribed to the tracker's topics: 0, or 1
 * with err (nothing left open). */
static int ingest_open(cfg_t *cfg, ingest_t *g, char *err, size_t errlen)
{
	memset(g, 0, sizeof *g);
	memset(g->next, 0xff, sizeof g->next);
	rd_kafka_conf_t *conf = kq_conf_new(cfg, KQ_CONSUMER, KQ_G_TRACKER, KQ_G_TRACKER, err, errlen);
	if (!conf)
		return 1;
	/* The tracker reads far behind the head after a restart or during a
	 * blast: prefetch big batches (the config's kafka properties still win,
	 * they are set on top of these only when not given). */
	static const char *const fetch[][2] = {{"queued.max.messages.kbytes", "65536"},
	                                       {"fetch.message.max.bytes", "4194304"},
	                                       {"fetch.wait.max.ms", "50"}};
	for (size_t i = 0; i < sizeof fetch / sizeof fetch[0]; i++)
		if (!json_object_get(cfg->kafka, fetch[i][0]))
			rd_kafka_conf_set(conf, fetch[i][0], fetch[i][1], NULL, 0);
	g->st = trk_store_open(cfg->db_path, 0, err, errlen);
	if (!g->st) {
		rd_kafka_conf_destroy(conf);
		return 1;
	}
	g->rk = kq_new(conf, KQ_CONSUMER, 10000, err, errlen);
	if (!g->rk) {
		trk_store_free(g->st);
		return 1;
	}
	rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(NTOPICS);
	for (int t = 0; t < NTOPICS; t++)
		rd_kafka_topic_partition_list_add(sub, topics[t], RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t se = rd_kafka_subscribe(g->rk, sub);
	rd_kafka_topic_partition_list_destroy(sub);
	if (se) {
		snprintf(err, errlen, "subscribe: %s", rd_kafka_err2str(se));
		rd_kafka_destroy(g->rk);
		trk_store_free(g->st);
		return 1;
	}
	return 0;
}

/* Close what ingest_open opened (and the live counters). */
static void ingest_close(ingest_t *g)
{
	rd_kafka_consumer_close(g->rk);
	rd_kafka_destroy(g->rk);
	trk_store_free(g->st);
	trk_live_free(g->live);
}

/* Fold records into the store until stopped, in transactions of TX_MAX_EVENTS
 * or TX_MAX_MS (offsets committed after each), pruning series, updating the live
 * counters, a progress line every 10 s; the last transaction committed at the end.
 * 0, or 1 when the store failed. */
static int ingest_loop(cfg_t *cfg, ingest_t *g)
{
	rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(g->rk);
	rd_kafka_message_t *msgs[BATCH];
	int64_t tx_start = clock_mono_ms(), last_log = tx_start, last_total = 0, last_live = 0,
	        last_prune = 0, broker_down = 0;
	int rc = 0;
	while (!tocsin_stop) {
		int64_t now = clock_mono_ms();
		int wait = trk_store_in_tx(g->st) ? (int)(tx_start + TX_MAX_MS - now) : 200;
		if (wait < 0)
			wait = 0;
		ssize_t n = rd_kafka_consume_batch_queue(q, wait, msgs, BATCH);
		for (ssize_t i = 0; i < n; i++) {
			rd_kafka_message_t *m = msgs[i];
			if (m->err) {
				if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
					log_error("event=consumer_error err=\"%s\" detail=\"%s\"",
					          rd_kafka_err2str(m->err),
					          rd_kafka_message_errstr(m));
			} else {
				if (!trk_store_in_tx(g->st)) {
					if (trk_store_begin(g->st)) {
						rc = 1;
						tocsin_stop = 1;
					}
					tx_start = clock_mono_ms();
				}
				if (trk_store_in_tx(g->st))
					apply(g, m);
			}
			rd_kafka_message_destroy(m);
		}
		now = clock_mono_ms();
		if (trk_store_in_tx(g->st) &&
		    (g->tx_events >= TX_MAX_EVENTS || now - tx_start >= TX_MAX_MS))
			if (tx_commit(g, 1)) {
				log_error("event=db_commit_failed db=%s action=stop", cfg->db_path);
				rc = 1;
				break;
			}
		if (!trk_store_in_tx(g->st) && now - last_prune >= 600000) {
			int n = trk_store_prune(g->st, clock_wall_ms() / 1000 - SERIES_KEEP_S);
			if (n > 0)
				log_info("event=series_pruned rows=%d", n);
			last_prune = now;
		}
		if (g->live && now - last_live >= 1000) {
			trk_live_ingest(g->live, g->total, g->applied, g->bad);
			trk_live_lag(g->live, kq_consumer_lag(g->rk));
			broker_check(g, &broker_down);
			last_live = now;
		}
		if (now - last_log >= 10000) {
			log_info("event=ingest total=%lld applied=%lld bad=%lld rate_per_s=%lld",
			         (long long)g->total, (long long)g->applied, (long long)g->bad,
			         (long long)((g->total - last_total) * 1000 / (now - last_log)));
			last_log = now;
			last_total = g->total;
		}
	}
	if (tx_commit(g, 0))
		rc = 1;
	rd_kafka_queue_destroy(q);
	return rc;
}

int cmd_track(cfg_t *cfg, int argc, char **argv)
{
	static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
	                                     {"no-http", no_argument, NULL, 'n'},
	                                     {"replay", required_argument, NULL, 'r'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0}};
	const char *listen = cfg->track_listen;
	const char *replay_file = NULL;
	int http = 1, o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "l:nr:h", opts, NULL)) != -1) {
		switch (o) {
		case 'l': listen = optarg; break;
		case 'n': http = 0; break;
		case 'r': replay_file = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tocsin track: unexpected argument \"%s\"\n", argv[optind]);
		return 2;
	}
	if (replay_file)
		return replay(cfg, replay_file);
	char err[1024];
	if (runfile_mkdir(cfg, err, sizeof err)) {
		fprintf(stderr, "tocsin track: %s\n", err);
		return 1;
	}
	if (http && trk_listen_check(listen, err, sizeof err)) {
		fprintf(stderr, "tocsin track: %s\n", err);
		return 2;
	}
	ingest_t g;
	if (ingest_open(cfg, &g, err, sizeof err)) {
		fprintf(stderr, "tocsin track: %s\n", err);
		return 1;
	}
	trk_http_t *srv = NULL;
	if (http) {
		g.live = trk_live_new();
		srv = trk_http_new(cfg, listen, g.live, err, sizeof err);
		if (!srv) {
			fprintf(stderr, "tocsin track: %s\n", err);
			ingest_close(&g);
			return 1;
		}
	}
	/* dispatcher presence: run/dispatchers.json, served as /api/health */
	trk_presence_t *pres = trk_presence_new(cfg, err, sizeof err);
	if (!pres) {
		fprintf(stderr, "tocsin track: %s\n", err);
		trk_http_free(srv);
		ingest_close(&g);
		return 1;
	}
	/* receipts that never came (tracker/recon.h): only when receipts are asked for */
	trk_recon_t *recon = NULL;
	if (cfg->reconcile_after_s > 0 && cfg->public_url && *cfg->public_url) {
		recon = trk_recon_new(cfg, NULL, err, sizeof err);
		if (!recon || trk_recon_start(recon, err, sizeof err))
			log_error("event=reconcile_disabled reason=\"%s\"", err);
		else
			log_info("event=reconcile after_s=%d unknown_receipt_after_s=%d",
			         cfg->reconcile_after_s, cfg->unknown_receipt_after_s);
	}
	char pid[32];
	snprintf(pid, sizeof pid, "%d\n", (int)getpid());
	runfile_write(cfg, "run/track.pid", pid, err, sizeof err);
	log_info("event=start db=%s group=" KQ_G_TRACKER " http=%s", cfg->db_path,
	         srv ? trk_http_addr(srv) : "off");

	int rc = ingest_loop(cfg, &g); /* commits what it holds when stopped */
	trk_recon_free(recon);
	trk_presence_free(pres);
	trk_http_free(srv);
	ingest_close(&g);
	runfile_remove(cfg, "run/track.pid");
	runfile_remove(cfg, "run/track.addr");
	log_info("event=stop total=%lld applied=%lld bad=%lld", (long long)g.total,
	         (long long)g.applied, (long long)g.bad);
	return rc;
}
