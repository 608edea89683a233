/* dsp_share.c -- rate shares by backlog: the peers' records of tocsin.backlog and the formula. */
#include "dispatcher/dsp_share.h"
#include "core/err.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define DSP_SHARE_ID_MAX 96

typedef struct peer {
	char id[DSP_SHARE_ID_MAX];
	int64_t backlog;
	int64_t seen_ms; /* monotonic ms its last record was read */
	int64_t ts_ms;   /* the record's own time (wall ms; 0 when it says none) */
	int slot;        /* its partition-lease slot, -1 none */
} peer_t;

struct dsp_share {
	msg_channel_t ch;
	int slot; /* this dispatcher's, -1 none */
	char self[DSP_SHARE_ID_MAX];
	peer_t peer[DSP_SHARE_MAX_PEERS];
	size_t npeer;
};

dsp_share_t *dsp_share_new(msg_channel_t ch, const char *self)
{
	dsp_share_t *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->ch = ch;
	s->slot = -1;
	snprintf(s->self, sizeof s->self, "%s", self);
	return s;
}

void dsp_share_free(dsp_share_t *s) { free(s); }

void dsp_share_set_slot(dsp_share_t *s, int slot)
{
	s->slot = slot >= 0 && slot <= DSP_SHARE_MAX_SLOT ? slot : -1;
}

/* Forget peer i (the last one takes its place). */
static void peer_drop(dsp_share_t *s, size_t i) { s->peer[i] = s->peer[--s->npeer]; }

void dsp_share_drop_dead(dsp_share_t *s, dsp_share_alive_fn alive, void *ctx)
{
	for (size_t i = 0; i < s->npeer;)
		if (s->peer[i].slot >= 0 && !alive(ctx, s->peer[i].slot, s->peer[i].id))
			peer_drop(s, i);
		else
			i++;
}

static peer_t *peer_find(dsp_share_t *s, const char *id)
{
	for (size_t i = 0; i < s->npeer; i++)
		if (!strcmp(s->peer[i].id, id))
			return &s->peer[i];
	return NULL;
}

int dsp_share_record(dsp_share_t *s, const void *key, size_t keylen, const void *val, size_t len,
                     int64_t now_ms)
{
	char id[DSP_SHARE_ID_MAX];
	if (!key || !keylen || keylen >= sizeof id)
		return TOCSIN_ERR_INVAL;
	memcpy(id, key, keylen);
	id[keylen] = 0;
	if (!strcmp(id, s->self))
		return 0;
	peer_t *p = peer_find(s, id);
	if (!val) { /* stopped */
		if (p)
			peer_drop(s, (size_t)(p - s->peer));
		return 0;
	}
	json_t *j = json_loadb(val, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *b = json_object_get(j, "backlog"), *ts = json_object_get(j, "ts_ms"),
	       *sl = json_object_get(j, "slot");
	msg_channel_t ch;
	if (!json_is_object(j) || json_integer_value(json_object_get(j, "v")) != 1 ||
	    !json_is_integer(b) || json_integer_value(b) < 0 ||
	    (ts && (!json_is_integer(ts) || json_integer_value(ts) < 0)) ||
	    (sl && (!json_is_integer(sl) || json_integer_value(sl) < 0 ||
	            json_integer_value(sl) > DSP_SHARE_MAX_SLOT)) ||
	    msg_channel_parse(json_string_value(json_object_get(j, "channel")) ?: "", &ch) ||
	    !json_is_string(json_object_get(j, "dispatcher")) ||
	    strcmp(json_string_value(json_object_get(j, "dispatcher")), id)) {
		json_decref(j);
		return TOCSIN_ERR_INVAL;
	}
	int64_t backlog = json_integer_value(b), ts_ms = ts ? json_integer_value(ts) : 0;
	int slot = sl ? (int)json_integer_value(sl) : -1;
	json_decref(j);
	if (ch != s->ch)
		return 0;
	/* one dispatcher a slot: the newer record of a slot wins (its former holder died) */
	for (size_t i = 0; slot >= 0 && i < s->npeer; i++)
		if (s->peer[i].slot == slot && &s->peer[i] != p) {
			if (s->peer[i].ts_ms > ts_ms)
				return 0; /* a dead holder's record read late */
			peer_drop(s, i);
			p = peer_find(s, id); /* the table moved */
			break;
		}
	if (!p) {
		/* forget the stale ones before refusing a newcomer */
		for (size_t i = 0; i < s->npeer;)
			if (now_ms - s->peer[i].seen_ms > DSP_SHARE_STALE_MS)
				peer_drop(s, i);
			else
				i++;
		if (s->npeer == DSP_SHARE_MAX_PEERS)
			return TOCSIN_ERR_TOOBIG;
		p = &s->peer[s->npeer++];
		memcpy(p->id, id, keylen + 1);
	}
	p->backlog = backlog;
	p->seen_ms = now_ms;
	p->ts_ms = ts_ms;
	p->slot = slot;
	return 0;
}

int dsp_share_encode(const dsp_share_t *s, int64_t backlog, int64_t ts_ms, buf_t *b)
{
	buf_reset(b);
	int rc = buf_printf(b,
	                    "{\"v\":1,\"dispatcher\":\"%s\",\"channel\":\"%s\",\"backlog\":%lld,"
	                    "\"ts_ms\":%lld",
	                    s->self, msg_channel_name(s->ch),
	                    (long long)(backlog > 0 ? backlog : 0), (long long)ts_ms);
	if (!rc && s->slot >= 0)
		rc = buf_printf(b, ",\"slot\":%d", s->slot);
	return rc ? rc : buf_printf(b, "}");
}

double dsp_share_of(int64_t own, const int64_t *peer, size_t n, double floor)
{
	if (own <= 0)
		return floor;
	double total = (double)own;
	size_t k = 1;
	for (size_t i = 0; i < n; i++)
		if (peer[i] > 0) {
			total += (double)peer[i];
			k++;
		}
	if (k == 1)
		return 1;
	if (floor > 1.0 / (double)k)
		floor = 1.0 / (double)k;
	return floor + (1 - (double)k * floor) * (double)own / total;
}

double dsp_share_get(dsp_share_t *s, int64_t own, int64_t now_ms, int *fresh)
{
	int64_t b[DSP_SHARE_MAX_PEERS];
	size_t n = 0;
	for (size_t i = 0; i < s->npeer; i++)
		if (now_ms - s->peer[i].seen_ms <= DSP_SHARE_STALE_MS)
			b[n++] = s->peer[i].backlog;
	if (fresh)
		*fresh = (int)n;
	return dsp_share_of(own, b, n, DSP_SHARE_FLOOR);
}

int dsp_share_busy(const dsp_share_t *s, int64_t now_ms)
{
	int n = 0;
	for (size_t i = 0; i < s->npeer; i++)
		n += now_ms - s->peer[i].seen_ms <= DSP_SHARE_STALE_MS && s->peer[i].backlog > 0;
	return n;
}
