/* dsp_queue.c -- per-destination ready lists by priority and campaign, in-flight windows, timers, and the checked message lifecycle. */
#include "dispatcher/dsp_queue.h"
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One campaign's ready messages in one destination, FIFO. Linked into its
 * destination's turn order only while it holds a message. */
struct dq_camp {
	dsp_msg_t *head, *tail;
	size_t n;
	int prio;
	int spare; /* the destination's fallback list: never freed */
	dq_camp_t *next, *prev;
};

struct dq_dest {
	int vi, slot;
	dq_camp_t *first, *last; /* turn order: the first of the top priority goes next */
	size_t nready;
	int inflight;
	int64_t wait_until;
	dq_camp_t spare;
};

struct dq {
	dq_dest_t *dests;
	size_t ndests;
	size_t nvendors;
	size_t *vbase;    /* dests[vbase[vi] + slot + 1] */
	size_t *vnum;     /* nsenders of vendor vi, + 1 */
	dsp_msg_t *troot; /* timer pairing heap */
	size_t count[DQ__COUNT];
	size_t nrefinal; /* TIMER entries that are final statuses to produce again */
	dq_camp_t *free_camps;
	uint64_t spare_uses;
};

static const char *const where_name[DQ__COUNT] = {"none",      "ready",         "timer",
                                                  "in_flight", "final_pending", "done"};

static const char *wname(dq_where_t w) { return w < DQ__COUNT ? where_name[w] : "freed"; }

/* msg must be in state w; else abort naming the caller. */
static void expect(const dsp_msg_t *msg, dq_where_t w, const char *func)
{
	if (msg->where != w)
		dq_panic_at(func, "message %s is %s, expected %s", msg->m.id ? msg->m.id : "?",
		            wname(msg->where), where_name[w]);
}
#define EXPECT(msg, w) expect((msg), (w), __func__)

static void move(dq_t *q, dsp_msg_t *m, dq_where_t to)
{
	if (m->where >= DQ__COUNT || !q->count[m->where])
		dq_panic("count of %s underflows", wname(m->where));
	q->count[m->where]--;
	q->count[to]++;
	m->where = to;
}

dq_t *dq_new(const cfg_t *cfg, char *err, size_t errlen)
{
	dq_t *q = calloc(1, sizeof *q);
	if (!q)
		goto nomem;
	q->nvendors = cfg->nvendors;
	q->vbase = calloc(cfg->nvendors + 1, sizeof *q->vbase);
	q->vnum = calloc(cfg->nvendors + 1, sizeof *q->vnum);
	if (!q->vbase || !q->vnum)
		goto nomem;
	for (size_t i = 0; i < cfg->nvendors; i++) {
		q->vbase[i] = q->ndests;
		q->vnum[i] = cfg->vendors[i].nsenders + 1;
		q->ndests += q->vnum[i];
	}
	q->dests = calloc(q->ndests ? q->ndests : 1, sizeof *q->dests);
	if (!q->dests)
		goto nomem;
	for (size_t i = 0; i < cfg->nvendors; i++)
		for (size_t s = 0; s < q->vnum[i]; s++) {
			dq_dest_t *d = &q->dests[q->vbase[i] + s];
			d->vi = (int)i;
			d->slot = (int)s - 1;
			d->spare.spare = 1;
		}
	return q;
nomem:
	dq_free(q);
	snprintf(err, errlen, "out of memory for the destination queues");
	return NULL;
}

static void free_camp_list(dq_camp_t *c)
{
	while (c) {
		dq_camp_t *n = c->next;
		if (!c->spare)
			free(c);
		c = n;
	}
}

void dq_free(dq_t *q)
{
	if (!q)
		return;
	for (size_t i = 0; q->dests && i < q->ndests; i++)
		free_camp_list(q->dests[i].first);
	free_camp_list(q->free_camps);
	free(q->dests);
	free(q->vbase);
	free(q->vnum);
	free(q);
}

dq_dest_t *dq_dest(dq_t *q, int vi, int slot)
{
	if (vi < 0 || (size_t)vi >= q->nvendors || slot < -1 || (size_t)(slot + 1) >= q->vnum[vi])
		dq_panic("no destination vendor=%d slot=%d", vi, slot);
	return &q->dests[q->vbase[vi] + (size_t)(slot + 1)];
}

int dq_dest_vendor(const dq_dest_t *d) { return d->vi; }
int dq_dest_slot(const dq_dest_t *d) { return d->slot; }
size_t dq_dest_ready(const dq_dest_t *d) { return d->nready; }
int dq_dest_inflight(const dq_dest_t *d) { return d->inflight; }
int64_t dq_dest_wait_until(const dq_dest_t *d) { return d->wait_until; }
void dq_dest_wait(dq_dest_t *d, int64_t until_ms) { d->wait_until = until_ms; }
size_t dq_ndests(const dq_t *q) { return q->ndests; }

dq_dest_t *dq_dest_at(dq_t *q, size_t i)
{
	if (i >= q->ndests)
		dq_panic("destination %zu of %zu", i, q->ndests);
	return &q->dests[i];
}

int dq_dest_top(const dq_dest_t *d)
{
	int top = INT32_MIN;
	for (const dq_camp_t *c = d->first; c; c = c->next)
		if (c->prio > top)
			top = c->prio;
	return top;
}

/* ------------------------------------------------------------ turn order */

static void camp_unlink(dq_dest_t *d, dq_camp_t *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		d->first = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		d->last = c->prev;
	c->next = c->prev = NULL;
}

static void camp_link_back(dq_dest_t *d, dq_camp_t *c)
{
	c->next = NULL;
	c->prev = d->last;
	if (d->last)
		d->last->next = c;
	else
		d->first = c;
	d->last = c;
}

static void camp_link_front(dq_dest_t *d, dq_camp_t *c)
{
	c->prev = NULL;
	c->next = d->first;
	if (d->first)
		d->first->prev = c;
	else
		d->last = c;
	d->first = c;
}

static dq_camp_t *camp_find(const dq_dest_t *d, const dsp_msg_t *m)
{
	const char *id = m->m.campaign ? m->m.campaign : "";
	for (dq_camp_t *c = d->first; c; c = c->next) {
		const char *cid = c->head->m.campaign ? c->head->m.campaign : "";
		if (c->prio == m->m.priority && !c->spare && !strcmp(cid, id))
			return c;
	}
	return NULL;
}

/* The list m joins in d: its campaign's, a new one, or (out of memory) the
 * destination's spare list. Never NULL. */
static dq_camp_t *camp_for(dq_t *q, dq_dest_t *d, const dsp_msg_t *m, int front)
{
	dq_camp_t *c = camp_find(d, m);
	if (c)
		return c;
	if ((c = q->free_camps))
		q->free_camps = c->next;
	else if (!(c = calloc(1, sizeof *c))) {
		c = &d->spare;
		if (!q->spare_uses++)
			log_error(
			    "event=out_of_memory where=campaign_list action=spare msg=\"campaigns "
			    "share one list in this destination: turns are not fair, nothing is lost\"");
		if (c->n) /* already linked */
			return c;
	}
	memset(c, 0, sizeof *c);
	c->spare = c == &d->spare;
	c->prio = m->m.priority;
	if (front)
		camp_link_front(d, c);
	else
		camp_link_back(d, c);
	return c;
}

static void camp_drop_if_empty(dq_t *q, dq_dest_t *d, dq_camp_t *c)
{
	if (c->n)
		return;
	camp_unlink(d, c);
	if (!c->spare) {
		c->next = q->free_camps;
		q->free_camps = c;
	}
}

static dsp_msg_t *camp_pop(dq_t *q, dq_dest_t *d, dq_camp_t *c)
{
	dsp_msg_t *m = c->head;
	EXPECT(m, DQ_READY);
	if (m->dest != d || m->camp != c)
		dq_panic("message %s is ready in another list", m->m.id);
	c->head = m->q_next;
	if (!c->head)
		c->tail = NULL;
	c->n--;
	d->nready--;
	m->q_next = NULL;
	m->dest = NULL;
	m->camp = NULL;
	move(q, m, DQ_NONE);
	return m;
}

void dq_enter(dq_t *q, dsp_msg_t *m)
{
	m->where = DQ_NONE;
	m->dest = NULL;
	m->camp = NULL;
	m->q_next = m->t_child = m->t_sib = NULL;
	q->count[DQ_NONE]++;
}

void dq_ready(dq_t *q, dsp_msg_t *m, dq_dest_t *d)
{
	EXPECT(m, DQ_NONE);
	dq_camp_t *c = camp_for(q, d, m, 0);
	m->q_next = NULL;
	if (c->tail)
		c->tail->q_next = m;
	else
		c->head = m;
	c->tail = m;
	c->n++;
	d->nready++;
	m->dest = d;
	m->camp = c;
	move(q, m, DQ_READY);
}

void dq_unpop(dq_t *q, dsp_msg_t *m, dq_dest_t *d)
{
	EXPECT(m, DQ_NONE);
	dq_camp_t *c = camp_for(q, d, m, 1);
	if (c != d->first) { /* its turn again */
		camp_unlink(d, c);
		camp_link_front(d, c);
	}
	m->q_next = c->head;
	c->head = m;
	if (!c->tail)
		c->tail = m;
	c->n++;
	d->nready++;
	m->dest = d;
	m->camp = c;
	move(q, m, DQ_READY);
}

dsp_msg_t *dq_pop(dq_t *q, dq_dest_t *d)
{
	dq_camp_t *pick = NULL;
	for (dq_camp_t *c = d->first; c; c = c->next)
		if (!pick || c->prio > pick->prio)
			pick = c;
	if (!pick)
		return NULL;
	dsp_msg_t *m = camp_pop(q, d, pick);
	if (pick->n) { /* its turn ends: behind the others */
		camp_unlink(d, pick);
		camp_link_back(d, pick);
	} else
		camp_drop_if_empty(q, d, pick);
	return m;
}

const dsp_msg_t *dq_peek_same(const dq_dest_t *d, const dsp_msg_t *like)
{
	dq_camp_t *c = camp_find(d, like);
	return c ? c->head : NULL;
}

dsp_msg_t *dq_pop_same(dq_t *q, dq_dest_t *d, const dsp_msg_t *like)
{
	dq_camp_t *c = camp_find(d, like);
	if (!c)
		return NULL;
	dsp_msg_t *m = camp_pop(q, d, c);
	camp_drop_if_empty(q, d, c);
	return m;
}

/* ------------------------------------------------------------ timers: a pairing heap */

static dsp_msg_t *t_meld(dsp_msg_t *a, dsp_msg_t *b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	if (b->due_ms < a->due_ms) {
		dsp_msg_t *t = a;
		a = b;
		b = t;
	}
	b->t_sib = a->t_child;
	a->t_child = b;
	return a;
}

static void t_push(dq_t *q, dsp_msg_t *m, int64_t due_ms)
{
	m->due_ms = due_ms;
	m->t_child = m->t_sib = NULL;
	q->troot = t_meld(q->troot, m);
}

static dsp_msg_t *t_pop(dq_t *q)
{
	dsp_msg_t *r = q->troot;
	if (!r)
		return NULL;
	/* two-pass pairing of the children */
	dsp_msg_t *c = r->t_child, *pairs = NULL;
	while (c) {
		dsp_msg_t *a = c, *b = c->t_sib;
		c = b ? b->t_sib : NULL;
		a->t_sib = NULL;
		if (b)
			b->t_sib = NULL;
		dsp_msg_t *p = t_meld(a, b);
		p->t_sib = pairs;
		pairs = p;
	}
	dsp_msg_t *root = NULL;
	while (pairs) {
		dsp_msg_t *n = pairs->t_sib;
		pairs->t_sib = NULL;
		root = t_meld(root, pairs);
		pairs = n;
	}
	q->troot = root;
	r->t_child = r->t_sib = NULL;
	return r;
}

void dq_timer(dq_t *q, dsp_msg_t *m, int64_t due_ms)
{
	EXPECT(m, DQ_NONE);
	m->refinal = 0;
	t_push(q, m, due_ms);
	move(q, m, DQ_TIMER);
}

void dq_refinal(dq_t *q, dsp_msg_t *m)
{
	EXPECT(m, DQ_FINAL_PENDING);
	m->refinal = 1;
	q->nrefinal++;
	t_push(q, m, INT64_MIN);
	move(q, m, DQ_TIMER);
}

dsp_msg_t *dq_due(dq_t *q, int64_t now_ms)
{
	if (!q->troot || q->troot->due_ms > now_ms)
		return NULL;
	dsp_msg_t *m = t_pop(q);
	EXPECT(m, DQ_TIMER);
	q->nrefinal -= m->refinal != 0;
	move(q, m, m->refinal ? DQ_FINAL_PENDING : DQ_NONE);
	return m;
}

int64_t dq_next_due(const dq_t *q) { return q->troot ? q->troot->due_ms : INT64_MAX; }

dsp_msg_t *dq_any(dq_t *q)
{
	if (q->troot) {
		dsp_msg_t *m = t_pop(q);
		EXPECT(m, DQ_TIMER);
		q->nrefinal -= m->refinal != 0;
		m->refinal = 0;
		move(q, m, DQ_NONE);
		return m;
	}
	for (size_t i = 0; i < q->ndests; i++) {
		dq_dest_t *d = &q->dests[i];
		if (d->first) {
			dq_camp_t *c = d->first;
			dsp_msg_t *m = camp_pop(q, d, c);
			camp_drop_if_empty(q, d, c);
			return m;
		}
	}
	return NULL;
}

/* ------------------------------------------------------------ sending and finals */

void dq_inflight(dq_t *q, dq_dest_t *d, dsp_msg_t *const *msgs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		EXPECT(msgs[i], DQ_NONE);
		move(q, msgs[i], DQ_INFLIGHT);
	}
	d->inflight++;
}

void dq_landed(dq_t *q, dq_dest_t *d, dsp_msg_t *const *msgs, size_t n)
{
	if (d->inflight <= 0)
		dq_panic("destination vendor=%d slot=%d has no request in flight", d->vi, d->slot);
	d->inflight--;
	for (size_t i = 0; i < n; i++) {
		EXPECT(msgs[i], DQ_INFLIGHT);
		move(q, msgs[i], DQ_NONE);
	}
}

void dq_final(dq_t *q, dsp_msg_t *m)
{
	EXPECT(m, DQ_NONE);
	move(q, m, DQ_FINAL_PENDING);
}

void dq_acked(dq_t *q, dsp_msg_t *m)
{
	EXPECT(m, DQ_FINAL_PENDING);
	move(q, m, DQ_DONE);
}

void dq_skip(dq_t *q, dsp_msg_t *m)
{
	EXPECT(m, DQ_NONE);
	move(q, m, DQ_DONE);
}

void dq_abandon(dq_t *q, dsp_msg_t *m)
{
	if (m->where != DQ_INFLIGHT && m->where != DQ_FINAL_PENDING)
		dq_panic("message %s is %s, expected in_flight or final_pending", m->m.id,
		         wname(m->where));
	move(q, m, DQ_NONE);
}

void dq_release(dq_t *q, dsp_msg_t *m)
{
	if (m->where != DQ_NONE && m->where != DQ_DONE)
		dq_panic("message %s freed while %s", m->m.id ? m->m.id : "?", wname(m->where));
	q->count[m->where]--;
	m->where = DQ__COUNT; /* a second free aborts */
}

size_t dq_count(const dq_t *q, dq_where_t w) { return w < DQ__COUNT ? q->count[w] : 0; }
size_t dq_unacked(const dq_t *q) { return q->count[DQ_FINAL_PENDING] + q->nrefinal; }
uint64_t dq_spare_uses(const dq_t *q) { return q->spare_uses; }
