/* presence.c -- is anything consuming each channel's outbox? (dispatcher presence, for warnings) */
#include "tracker/presence.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/kq.h"
#include "core/log.h"
#include "core/runfile.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PRES_EVERY_MS 2000
#define PRES_TIMEOUT_MS 2000

typedef struct pres_ch {
	rd_kafka_t *rk; /* consumer handle with group.id = the dispatchers' group; never joins */
	char group[64];
	int64_t committed; /* sum of the group's committed offsets at the last check */
	int64_t moved_ms;  /* when they last moved (or nothing waited) */
} pres_ch_t;

struct trk_presence {
	const cfg_t *cfg;
	pres_ch_t ch[MSG_CH__COUNT];
	int idle_s;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	int started; /* the thread runs: trk_presence_free joins it */
};

/* Members of group, or -1 when the cluster does not say (the embedded broker does not
 * implement ListGroups). */
static int members(rd_kafka_t *rk, const char *group)
{
	const struct rd_kafka_group_list *gl = NULL;
	if (rd_kafka_list_groups(rk, group, &gl, PRES_TIMEOUT_MS) || !gl)
		return -1;
	int n = 0;
	for (int i = 0; i < gl->group_cnt; i++)
		if (!strcmp(gl->groups[i].group, group))
			n += gl->groups[i].member_cnt;
	rd_kafka_group_list_destroy(gl);
	return n;
}

/* Messages on topic past the group's committed offsets (from the log start when none);
 * the sum of committed offsets into *committed. -1 when the cluster does not answer. */
static int64_t waiting(rd_kafka_t *rk, const char *topic, int64_t *committed)
{
	int np = kq_partitions(rk, topic, PRES_TIMEOUT_MS);
	if (np <= 0)
		return -1;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(np);
	for (int i = 0; i < np; i++)
		rd_kafka_topic_partition_list_add(l, topic, i);
	int64_t w = -1;
	if (!rd_kafka_committed(rk, l, PRES_TIMEOUT_MS)) {
		w = 0;
		*committed = 0;
		for (int i = 0; i < np && w >= 0; i++) {
			int64_t lo, hi;
			if (rd_kafka_query_watermark_offsets(rk, topic, i, &lo, &hi, PRES_TIMEOUT_MS)) {
				w = -1;
				break;
			}
			int64_t c = l->elems[i].offset >= lo ? l->elems[i].offset : lo;
			*committed += c;
			w += hi > c ? hi - c : 0;
		}
	}
	rd_kafka_topic_partition_list_destroy(l);
	return w;
}

static int stopping(trk_presence_t *p)
{
	pthread_mutex_lock(&p->mu);
	int s = p->stop;
	pthread_mutex_unlock(&p->mu);
	return s;
}

/* One round: query each channel, write the report (nothing when asked to stop midway: a
 * broker that is gone costs a few seconds of timeouts per channel). */
static void check(trk_presence_t *p)
{
	json_t *doc = json_object(), *chs = json_object(), *warns = json_array();
	int64_t now = clock_mono_ms();
	for (int c = 0; c < MSG_CH__COUNT; c++) {
		pres_ch_t *pc = &p->ch[c];
		if (!pc->rk)
			continue;
		if (stopping(p)) {
			json_decref(doc);
			json_decref(chs);
			json_decref(warns);
			return;
		}
		const char *topic = kq_outbox_topic((msg_channel_t)c),
		           *chn = msg_channel_name((msg_channel_t)c);
		int m = members(pc->rk, pc->group);
		/* both lanes: tocsin.outbox.<ch> and tocsin.outbox.<ch>.urgent */
		int64_t committed = 0, w = 0;
		for (int l = 0; l < KQ_LANE__COUNT && w >= 0; l++) {
			int64_t cl = 0,
			        wl = waiting(pc->rk,
			                     kq_outbox_lane_topic((msg_channel_t)c, (kq_lane_t)l),
			                     &cl);
			w = wl < 0 ? -1 : w + wl;
			committed += cl;
		}
		if (w <= 0 || committed != pc->committed)
			pc->moved_ms = now;
		pc->committed = committed;
		int64_t idle_s = (now - pc->moved_ms) / 1000;
		json_object_set_new(chs, chn,
		                    json_pack("{s:s,s:i,s:I,s:I}", "group", pc->group, "members", m,
		                              "waiting", (json_int_t)w, "idle_s", (json_int_t)idle_s));
		char msg[512];
		if (m == 0 && w > 0)
			snprintf(msg, sizeof msg,
			         "no dispatcher for channel %s: consumer group %s has no member and %lld "
			         "messages wait on %s(.urgent) (start `tocsin dispatch --channel %s`)",
			         chn, pc->group, (long long)w, topic, chn);
		else if (m < 0 && w > 0 && idle_s >= p->idle_s)
			snprintf(msg, sizeof msg,
			         "no dispatcher for channel %s? %lld messages wait on %s(.urgent) and consumer group "
			         "%s has committed nothing for %lld s (start `tocsin dispatch --channel %s`; "
			         "a paused campaign's messages also wait)",
			         chn, (long long)w, topic, pc->group, (long long)idle_s, chn);
		else
			continue;
		json_array_append_new(warns, json_string(msg));
	}
	json_object_set_new(doc, "checked_ms", json_integer(clock_wall_ms()));
	json_object_set_new(doc, "channels", chs);
	json_object_set_new(doc, "warnings", warns);
	char *text = json_dumps(doc, JSON_COMPACT);
	char err[256];
	if (text && runfile_write(p->cfg, TRK_PRESENCE_RUNFILE, text, err, sizeof err))
		log_warn("event=presence_write_failed err=\"%s\"", err);
	free(text);
	json_decref(doc);
}

static void *run(void *arg)
{
	trk_presence_t *p = arg;
	pthread_mutex_lock(&p->mu);
	while (!p->stop) {
		pthread_mutex_unlock(&p->mu);
		check(p);
		pthread_mutex_lock(&p->mu);
		int64_t until = clock_wall_ms() + PRES_EVERY_MS;
		struct timespec ts = {.tv_sec = until / 1000, .tv_nsec = (until % 1000) * 1000000};
		while (!p->stop && pthread_cond_timedwait(&p->cv, &p->mu, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

trk_presence_t *trk_presence_new(const cfg_t *cfg, char *err, size_t errlen)
{
	json_t *t = json_object_get(cfg->root, "tracker");
	json_t *is = json_object_get(t, "dispatcher_idle_s");
	if (is &&
	    (!json_is_integer(is) || json_integer_value(is) < 1 || json_integer_value(is) > 86400)) {
		snprintf(err, errlen, "%s: tracker.dispatcher_idle_s must be an integer 1..86400",
		         cfg->path);
		return NULL;
	}
	trk_presence_t *p = calloc(1, sizeof *p);
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->cfg = cfg;
	p->idle_s = is ? (int)json_integer_value(is) : 15;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	int64_t now = clock_mono_ms();
	for (int c = 0; c < MSG_CH__COUNT; c++) {
		if (!cfg->routes[c].nvendors)
			continue;
		pres_ch_t *pc = &p->ch[c];
		kq_dispatch_group((msg_channel_t)c, pc->group, sizeof pc->group);
		pc->moved_ms = now;
		pc->committed = -1;
		rd_kafka_conf_t *conf = kq_conf_new(cfg, KQ_CONSUMER, "tocsin-tracker-presence",
		                                    pc->group, err, errlen);
		pc->rk = conf ? kq_new(conf, KQ_CONSUMER, 10000, err, errlen) : NULL;
		if (!pc->rk) {
			trk_presence_free(p);
			return NULL;
		}
	}
	if (pthread_create(&p->th, NULL, run, p)) {
		snprintf(err, errlen, "cannot start the presence thread");
		trk_presence_free(p);
		return NULL;
	}
	p->started = 1;
	return p;
}

void trk_presence_free(trk_presence_t *p)
{
	if (!p)
		return;
	if (p->started) {
		pthread_mutex_lock(&p->mu);
		p->stop = 1;
		pthread_cond_signal(&p->cv);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->th, NULL);
		runfile_remove(p->cfg, TRK_PRESENCE_RUNFILE);
	}
	for (int c = 0; c < MSG_CH__COUNT; c++)
		if (p->ch[c].rk)
			rd_kafka_destroy(p->ch[c].rk);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

int trk_presence_report(const cfg_t *cfg, buf_t *b)
{
	char text[16384];
	int n = runfile_read(cfg, TRK_PRESENCE_RUNFILE, text, sizeof text);
	json_t *doc = n > 0 ? json_loads(text, 0, NULL) : NULL;
	json_t *ck = json_object_get(doc, "checked_ms");
	if (json_is_integer(ck) && clock_wall_ms() - json_integer_value(ck) <= TRK_PRESENCE_STALE_MS) {
		json_decref(doc);
		buf_append(b, text, (size_t)n);
		return buf_putc(b, '\n');
	}
	json_decref(doc);
	return buf_puts(b, "{\"checked_ms\":null,\"channels\":{},\"warnings\":[\"dispatcher presence "
	                   "unknown: the tracker has not checked in the last 30 s (is `tocsin track` "
	                   "running?)\"]}\n");
}
