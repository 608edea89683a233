/* route.c -- vendor choice per message: priority/weights/cheapest, health fractions, sender-pool ownership. */
#include "dispatcher/route.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXC                                                                                       \
	64 /* candidates per route considered at once (stack arrays, no per-message allocation) */

struct route {
	const cfg_t *cfg;
	size_t n;
	int idx[MAXC];        /* cfg vendor index, in candidate order */
	double weight[MAXC];  /* 0 = standby / plain priority */
	double credit[MAXC];  /* fraction gate accumulator */
	double cur[MAXC + 1]; /* smooth weighted round robin state; [MAXC] = the remainder */
	double cur2[MAXC];    /* round robin among full-traffic weighted vendors */
};

route_t *route_new(const cfg_t *cfg, msg_channel_t ch, char *err, size_t errlen)
{
	if ((unsigned)ch >= MSG_CH__COUNT) {
		snprintf(err, errlen, "route: unknown channel %d", (int)ch);
		return NULL;
	}
	const cfg_route_t *cr = &cfg->routes[ch];
	if (cr->nvendors > MAXC) {
		snprintf(err, errlen, "%s: route %s: %zu vendors, at most %d",
		         cfg->path ? cfg->path : "config", msg_channel_name(ch), cr->nvendors, MAXC);
		return NULL;
	}
	route_t *r = calloc(1, sizeof *r);
	if (!r) {
		snprintf(err, errlen, "route: out of memory");
		return NULL;
	}
	r->cfg = cfg;
	for (size_t i = 0; i < cr->nvendors; i++) {
		const cfg_vendor_t *v = cfg_vendor(cfg, cr->vendors[i]);
		if (!v) {
			snprintf(err, errlen, "%s: route %s: unknown vendor \"%s\"",
			         cfg->path ? cfg->path : "config", msg_channel_name(ch),
			         cr->vendors[i]);
			free(r);
			return NULL;
		}
		json_t *w = v->raw ? json_object_get(v->raw, "weight") : NULL;
		double wv = 0;
		if (w) {
			if (!json_is_number(w) || json_number_value(w) < 0 ||
			    json_number_value(w) > 1e6) {
				snprintf(err, errlen,
				         "%s: vendor %s: \"weight\" must be a number in [0, 1000000]",
				         cfg->path ? cfg->path : "config", v->name);
				free(r);
				return NULL;
			}
			wv = json_number_value(w);
		}
		r->idx[r->n] = (int)(v - cfg->vendors);
		r->weight[r->n] = wv;
		r->n++;
	}
	if (cr->strategy && strcmp(cr->strategy, "cheapest") == 0) {
		/* stable insertion sort by cost */
		for (size_t i = 1; i < r->n; i++) {
			int id = r->idx[i];
			double w = r->weight[i];
			size_t j = i;
			while (j > 0 && cfg->vendors[r->idx[j - 1]].cost > cfg->vendors[id].cost) {
				r->idx[j] = r->idx[j - 1];
				r->weight[j] = r->weight[j - 1];
				j--;
			}
			r->idx[j] = id;
			r->weight[j] = w;
		}
	}
	return r;
}

void route_free(route_t *r) { free(r); }
size_t route_count(const route_t *r) { return r->n; }
int route_vendor(const route_t *r, size_t i) { return i < r->n ? r->idx[i] : -1; }

static int gate(route_t *r, size_t c, double frac)
{
	if (frac >= 1)
		return 1;
	r->credit[c] += frac;
	if (r->credit[c] >= 1 - 1e-9) {
		r->credit[c] -= 1;
		if (r->credit[c] < 0)
			r->credit[c] = 0;
		return 1;
	}
	return 0;
}

int route_pick(route_t *r, const msg_out_t *m, sla_t *const *sla, int64_t now_ms, int exclude,
               int *vendor)
{
	double frac[MAXC];
	msg_vh_state_t st[MAXC];
	unsigned char cand[MAXC]; /* 1 = eligible, not excluded, not yet declined */
	size_t owners = 0, nweighted = 0;
	int excl = -1; /* candidate position of the excluded vendor, if eligible */
	const char *pool = m && m->sender && *m->sender ? m->sender : NULL;
	for (size_t c = 0; c < r->n; c++) {
		const cfg_vendor_t *v = &r->cfg->vendors[r->idx[c]];
		cand[c] = 0;
		if (pool && !cfg_sender(v, pool))
			continue;
		owners++;
		const sla_t *s = sla ? sla[r->idx[c]] : NULL;
		st[c] = s ? sla_state(s) : MSG_VH_HEALTHY;
		frac[c] = s ? sla_fraction(s, now_ms) : 1;
		if (st[c] == MSG_VH_OPEN || st[c] == MSG_VH_DRAINED || frac[c] <= 0)
			continue;
		if (r->idx[c] == exclude) {
			excl = (int)c;
			continue;
		}
		cand[c] = 1;
		if (r->weight[c] > 0)
			nweighted++;
	}
	if (!owners)
		return TOCSIN_ERR_NOTFOUND;
	/* Weighted vendors first: smooth weighted round robin over weight x
	 * fraction, plus a "remainder" slot holding what partial vendors give up;
	 * the remainder goes to the weighted vendors at full traffic, else on. */
	if (nweighted > 0) {
		double total = 0, rest = 0;
		size_t best = MAXC;
		for (size_t c = 0; c < r->n; c++) {
			if (cand[c] != 1 || r->weight[c] <= 0)
				continue;
			double f = frac[c] < 1 ? frac[c] : 1;
			r->cur[c] += r->weight[c] * f;
			total += r->weight[c] * f;
			rest += r->weight[c] * (1 - f);
			if (best == MAXC || r->cur[c] > r->cur[best])
				best = c;
		}
		r->cur[MAXC] += rest;
		total += rest;
		if (rest > 0 && (best == MAXC || r->cur[MAXC] > r->cur[best]))
			best = MAXC;
		r->cur[best] -= total;
		if (best != MAXC) {
			*vendor = r->idx[best];
			return 0;
		}
		total = 0;
		best = MAXC;
		for (size_t c = 0; c < r->n; c++) {
			if (cand[c] != 1 || r->weight[c] <= 0 || frac[c] < 1)
				continue;
			r->cur2[c] += r->weight[c];
			total += r->weight[c];
			if (best == MAXC || r->cur2[c] > r->cur2[best])
				best = c;
		}
		if (best != MAXC) {
			r->cur2[best] -= total;
			*vendor = r->idx[best];
			return 0;
		}
		for (size_t c = 0; c < r->n; c++)
			if (cand[c] == 1 && r->weight[c] > 0)
				cand[c] = 2; /* declined: the last resort may still take a ramping one */
	}
	/* Then in order (plain priority, or the standbys of a weighted route). */
	for (size_t c = 0; c < r->n; c++) {
		if (cand[c] != 1 || r->weight[c] > 0)
			continue;
		if (gate(r, c, frac[c])) {
			*vendor = r->idx[c];
			return 0;
		}
		cand[c] = 2;
	}
	/* Last resort: a vendor ramping back up is healthy; never leave a message waiting on it. */
	for (size_t c = 0; c < r->n; c++) {
		if (cand[c] && st[c] == MSG_VH_HEALTHY) {
			*vendor = r->idx[c];
			return 0;
		}
	}
	/* Then the excluded vendor, as any other. */
	if (excl >= 0 && (st[excl] == MSG_VH_HEALTHY || gate(r, (size_t)excl, frac[excl]))) {
		*vendor = r->idx[excl];
		return 0;
	}
	return TOCSIN_ERR_AGAIN;
}
