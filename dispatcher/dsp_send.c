/* dsp_send.c -- the dispatcher's sending: a message's vendor and destination, requests built
 * (batched for email) and paced through the limiters, every destination served in turn. */
#include "dispatcher/dsp_int.h"
#include "core/clock.h"
#include "core/hash.h"

#include <stdio.h>
#include <string.h>

#define DSP_PAUSED_RECHECK_MS 200

/* Same campaign, sender and shared content (subject/text/html with their
 * substitution placeholders), so one batch request can carry both; per-recipient
 * "headers" (List-Unsubscribe) and "subs" travel in each recipient's slot. */
static int batchable(const msg_out_t *a, const msg_out_t *b)
{
#define SAME(f) ((a->f == NULL && b->f == NULL) || (a->f && b->f && !strcmp(a->f, b->f)))
	return SAME(campaign) && SAME(sender) && SAME(subject) && SAME(text) && SAME(html) &&
	       strcmp(a->to, b->to) != 0;
#undef SAME
}

/* Take from destination src the messages that can share m's request to
 * vendor vi (batch vendors only), up to the batch size; m itself first. They
 * come from m's campaign list, which holds messages produced together. */
static size_t gather(dsp_t *d, dsp_msg_t *m, dq_dest_t *src, int vi, dsp_req_t *r)
{
	size_t max = (size_t)vnd_max_batch(d->vendors[vi].a);
	if (max > r->cap)
		max = r->cap;
	r->msgs[0] = m;
	r->n = 1;
	if (max <= 1)
		return 1;
	/* addresses already in the batch: an open-addressed table of 64-bit hashes
	 * (an address twice would make the vendor refuse the whole request) */
	enum { GT = 4096 };
	uint64_t tab[GT];
	int use_tab = max * 2 <= GT;
	if (use_tab) {
		memset(tab, 0, sizeof tab);
		uint64_t h = hash64(m->m.to, strlen(m->m.to), 11) | 1;
		tab[h & (GT - 1)] = h;
	}
	int64_t wall = clock_wall_ms();
	const dsp_msg_t *q;
	while (r->n < max && (q = dq_peek_same(src, m))) {
		/* the first that cannot join ends the batch: it goes on its own turn */
		if (q->discard || !batchable(&m->m, &q->m) ||
		    dsp_state_campaign(d->st, q->m.campaign) != MSG_CAMP_RUNNING ||
		    dsp_state_opted_out(d->st, q->m.channel, q->m.to) ||
		    (q->m.expires_ms > 0 && wall >= q->m.expires_ms) || q->m.not_before_ms > wall)
			break;
		int dup = 0;
		if (use_tab) { /* same hash: compare the addresses themselves */
			uint64_t h = hash64(q->m.to, strlen(q->m.to), 11) | 1;
			size_t k = h & (GT - 1);
			for (; tab[k] && !dup; k = (k + 1) & (GT - 1))
				if (tab[k] == h)
					for (size_t i = 0; i < r->n && !dup; i++)
						dup = !strcmp(r->msgs[i]->m.to, q->m.to);
			if (!dup)
				tab[k] = h;
		} else
			for (size_t i = 0; i < r->n && !dup; i++)
				dup = !strcmp(r->msgs[i]->m.to, q->m.to);
		if (dup)
			break;
		r->msgs[r->n++] = dq_pop_same(d->q, src, m);
	}
	return r->n;
}

/* Give messages r->msgs[from..n) back to the front of src, in order. */
static void unsend_from(dsp_t *d, dq_dest_t *src, dsp_req_t *r, size_t from)
{
	for (size_t i = r->n; i > from; i--)
		dq_unpop(d->q, r->msgs[i - 1], src);
	r->n = from;
}

static void req_put(dsp_t *d, dsp_req_t *r)
{
	r->n = 0;
	r->next_free = d->free_reqs;
	d->free_reqs = r;
}

/* What happens to m (held, NONE) before it may be sent: cancelled, paused,
 * expired, opted out or not yet due are dealt with here. Returns 1 when m was
 * handled so, 0 when it may go. */
static int settle(dsp_t *d, dsp_msg_t *m, int64_t now_ms)
{
	msg_camp_state_t cs = dsp_state_campaign(d->st, m->m.campaign);
	if (cs == MSG_CAMP_CANCELLED) {
		dsp_finish(d, m, MSG_ST_CANCELLED, NULL, NULL, "cancelled", "campaign cancelled", -1);
		return 1;
	}
	if (cs == MSG_CAMP_PAUSED) {
		dq_timer(d->q, m, now_ms + DSP_PAUSED_RECHECK_MS);
		return 1;
	}
	int64_t wall = clock_wall_ms();
	if (retry_expired(&m->m, wall)) {
		dsp_finish(d, m, MSG_ST_EXPIRED, NULL, NULL, "expired",
		           "expired before it could be sent", -1);
		return 1;
	}
	if (dsp_state_opted_out(d->st, m->m.channel, m->m.to)) {
		dsp_finish(d, m, MSG_ST_SUPPRESSED, NULL, NULL, "opted_out",
		           "recipient opted out before sending", -1);
		return 1;
	}
	if (m->m.not_before_ms > wall) {
		dq_timer(d->q, m, now_ms + (m->m.not_before_ms - wall));
		return 1;
	}
	return 0;
}

/* The sender slot of m's pool at vendor v (-1: the vendor has no number of its own for it). */
static int sender_slot(const dsp_vendor_t *v, const dsp_msg_t *m)
{
	return rl_sender(v->rl, m->m.sender ? m->m.sender : "main");
}

/* A held message (NONE) finds its destination: the vendor the route picks for
 * it now, and that vendor's queue of its sender pool. */
void dsp_admit(dsp_t *d, dsp_msg_t *m, int64_t now_ms)
{
	d->n_held -= m->held;
	m->held = 0;
	if (settle(d, m, now_ms))
		return;
	int vi;
	int rc = route_pick(d->route, &m->m, d->slas, now_ms, m->last_vendor, &vi);
	if (rc == TOCSIN_ERR_NOTFOUND) {
		char why[160];
		snprintf(why, sizeof why,
		         "no %s vendor of the route has a number for sender pool \"%s\"",
		         msg_channel_name(d->channel), m->m.sender ? m->m.sender : "main");
		dsp_finish(d, m, MSG_ST_FAILED, NULL, NULL, "no_route", why, -1);
		return;
	}
	dsp_vendor_t *v = rc == 0 ? &d->vendors[vi] : NULL;
	if (!v || !v->a || v->unusable) {
		/* Every vendor that could take it is open, drained, probing or
		 * unusable: hold it; consumption pauses when too many wait. */
		m->held = 1;
		d->n_held++;
		dq_timer(d->q, m, now_ms + 100);
		return;
	}
	dq_ready(d->q, m, dq_dest(d->q, vi, sender_slot(v, m)));
}

/* Send m (just popped from destination src) in one request through vendor vi.
 * Returns 0 when handled, 1 when the destination must wait (its vendor's
 * window or its limiter: m is back in src, src's timer set for a rate limit),
 * -1 when the dispatcher has no request left (m is back in src). */
static int send_one(dsp_t *d, dsp_msg_t *m, dq_dest_t *src, int vi, int64_t now_ms)
{
	dsp_vendor_t *v = &d->vendors[vi];
	dq_dest_t *dst = dq_dest(d->q, vi, sender_slot(v, m));
	if (v->inflight >= v->v->max_in_flight) {
		dq_unpop(d->q, m, src);
		return 1;
	}
	if (!d->free_reqs) {
		dq_unpop(d->q, m, src);
		return -1;
	}
	int64_t now_ns = clock_mono_ns();
	int slot = dq_dest_slot(dst);
	int units = m->m.channel == MSG_CH_SMS && m->m.segments > 0 ? m->m.segments : 1;
	int64_t wait_ms;
	if ((wait_ms = rl_wait_ms(v->rl, slot, units, now_ns)) > 0) {
		dsp_metrics_rl_wait(d->met, vi);
		/* rounded up to a whole ms: the timer never fires early, so nothing spins */
		dq_dest_wait(dst, now_ms + (wait_ms == RL_NEVER ? 100 : wait_ms));
		dq_unpop(d->q, m, src);
		return 1;
	}
	dsp_req_t *r = d->free_reqs;
	d->free_reqs = r->next_free;
	size_t n = gather(d, m, src, vi, r);
	/* The whole batch must fit the limiter now; send fewer if it does not. */
	while (n > 1 && rl_wait_ns(v->rl, slot, units * (int)n, now_ns) > 0)
		n--;
	unsend_from(d, src, r, n);
	http_xfer_t *x = http_acquire(d->http);
	if (!x) {
		unsend_from(d, src, r, 0);
		req_put(d, r);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		d->batch[i] = &r->msgs[i]->m;
	char err[256];
	int rc = vnd_build(v->a, d->batch, n, http_xfer_req(x), err, sizeof err);
	if (rc && n > 1) { /* one bad message must not fail its batch: send m alone */
		unsend_from(d, src, r, 1);
		n = 1;
		rc = vnd_build(v->a, d->batch, 1, http_xfer_req(x), err, sizeof err);
	}
	if (rc) {
		http_release(d->http, x);
		req_put(d, r);
		dsp_finish(d, m, MSG_ST_FAILED, v->v->name, NULL, "build", err, -1);
		return 0;
	}
	if (rl_take(v->rl, slot, units * (int)n, now_ns, NULL) != 0)
		rl_take(v->rl, slot, 1, now_ns, NULL); /* oversize first message: charged as it goes */
	if (http_submit(d->http, x, v->v->timeout_ms, r)) {
		http_release(d->http, x);
		unsend_from(d, src, r, 0);
		req_put(d, r);
		return -1;
	}
	r->vendor = vi;
	r->dest = dst;
	r->sent_ms = now_ms;
	dq_inflight(d->q, dst, r->msgs, n);
	for (size_t i = 0; i < n; i++) {
		dsp_msg_t *q = r->msgs[i];
		q->vendor = vi;
		/* a receipt of a send that gets no answer may be published before the request
		 * times out: its id is looked for in tocsin.status from the send on */
		if (d->amb_grace_ms > 0 && !q->watched) {
			dsp_state_watch(d->st, q->m.id, 1);
			q->watched = 1;
		}
		if (q->attempt == 0)
			retry_note_send(d->retry, clock_wall_ms());
	}
	v->inflight++;
	v->sent += (int64_t)n;
	return 0;
}

/* The sender pool of destination x, or NULL for the queue of pools its vendor has no number for. */
static const char *dest_pool(const dsp_t *d, const dq_dest_t *x)
{
	int s = dq_dest_slot(x);
	return s < 0 ? NULL : d->vendors[dq_dest_vendor(x)].v->senders[s].pool;
}

static int same_pool(const dsp_t *d, const dq_dest_t *a, const dq_dest_t *b)
{
	const char *pa = dest_pool(d, a), *pb = dest_pool(d, b);
	return pa && pb && !strcmp(pa, pb);
}

/* Send messages waiting in destination src through vendor vi (its own, or
 * another with room), until src is empty or vi must wait. Returns -1 when the dispatcher has no
 * request left, else 0. */
static int lend(dsp_t *d, dq_dest_t *src, int vi, int64_t now_ms)
{
	dsp_msg_t *m;
	while ((m = dq_pop(d->q, src))) {
		if (m->discard) {
			dsp_msg_free(d, m);
			continue;
		}
		if (settle(d, m, now_ms))
			continue;
		int rc = send_one(d, m, src, vi, now_ms);
		if (rc)
			return rc < 0 ? -1 : 0;
	}
	return 0;
}

/* Send what destination src holds until it is empty or must wait. A vendor
 * that can no longer take traffic (open, drained, unusable) gives its
 * messages back to the route. Returns -1 when the dispatcher has no request
 * left (stop serving), else 0. */
static int serve(dsp_t *d, dq_dest_t *src, int64_t now_ms)
{
	int vi = dq_dest_vendor(src);
	dsp_vendor_t *v = &d->vendors[vi];
	dsp_msg_t *m;
	if (v->unusable || sla_fraction(v->sla, now_ms) <= 0) {
		while ((m = dq_pop(d->q, src))) {
			if (m->discard)
				dsp_msg_free(d, m);
			else
				dsp_admit(d, m, now_ms);
		}
		return 0;
	}
	if (dq_dest_wait_until(src) > now_ms)
		return 0;
	return lend(d, src, vi, now_ms);
}

/* Serve every destination with ready messages: the highest priority waiting
 * first, destinations of equal priority in turns. */
void dsp_serve_all(dsp_t *d, int64_t now_ms)
{
	size_t nd = dq_ndests(d->q), n = 0;
	dq_dest_t *order[nd ? nd : 1];
	int top[nd ? nd : 1];
	d->serve_turn++;
	for (size_t k = 0; k < nd; k++) {
		dq_dest_t *x = dq_dest_at(d->q, (k + d->serve_turn) % nd);
		if (!dq_dest_ready(x))
			continue;
		/* insertion by priority, stable: the rotation decides among equals */
		int t = dq_dest_top(x);
		size_t i = n++;
		while (i > 0 && top[i - 1] < t) {
			order[i] = order[i - 1];
			top[i] = top[i - 1];
			i--;
		}
		order[i] = x;
		top[i] = t;
	}
	for (size_t i = 0; i < n; i++)
		if (serve(d, order[i], now_ms) < 0)
			return;
	/* What is still ready now waits on its own vendor (limiter, window). A
	 * vendor of the route at full traffic with nothing of its own to send for
	 * the same sender pool takes it: a busy, slow or hung vendor's backlog
	 * fills the others' spare capacity, in route order. */
	for (size_t k = 0; k < route_count(d->route); k++) {
		int vi = route_vendor(d->route, k);
		dsp_vendor_t *v = &d->vendors[vi];
		if (!v->a || v->unusable || sla_fraction(v->sla, now_ms) < 1)
			continue;
		for (size_t s = 0; s < v->v->nsenders; s++) {
			dq_dest_t *to = dq_dest(d->q, vi, (int)s);
			if (dq_dest_ready(to) || dq_dest_wait_until(to) > now_ms)
				continue;
			for (size_t i = 0; i < n; i++) {
				dq_dest_t *from = order[i];
				if (from == to || !dq_dest_ready(from) || !same_pool(d, from, to))
					continue;
				if (lend(d, from, vi, now_ms) < 0)
					return;
				if (dq_dest_wait_until(to) > now_ms || v->inflight >= v->v->max_in_flight)
					break;
			}
		}
	}
}
