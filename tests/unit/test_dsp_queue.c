/* test_dsp_queue.c -- unit tests for dispatcher/dsp_queue: destinations, priority and campaign turns, timers, checked transitions. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/cfg.h"
#include "dispatcher/dsp_queue.h"

static cfg_t *load(void)
{
	const char *path = "/tmp/tocsin-test-dq.json";
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"vendors\":[{\"name\":\"tw\",\"kind\":\"twilio\",\"base_url\":\"http://127.0.0.1:1\","
	      "\"senders\":{\"main\":\"+15005550006\",\"slow\":\"+15005550007\"}},"
	      "{\"name\":\"vo\",\"kind\":\"vonage\",\"base_url\":\"http://127.0.0.1:1\"}]}",
	      f);
	fclose(f);
	char err[256];
	cfg_t *c = cfg_load(path, err, sizeof err);
	assert_non_null(c);
	remove(path);
	return c;
}

static dsp_msg_t *mk(dq_t *q, const char *id, const char *camp, int prio)
{
	dsp_msg_t *m = calloc(1, sizeof *m);
	assert_non_null(m);
	m->m.id = id;
	m->m.campaign = camp;
	m->m.priority = prio;
	dq_enter(q, m);
	return m;
}

static void release(dq_t *q, dsp_msg_t *m)
{
	dq_release(q, m);
	free(m);
}

static void test_dests(void **state)
{
	(void)state;
	cfg_t *c = load();
	char err[128];
	dq_t *q = dq_new(c, err, sizeof err);
	assert_non_null(q);
	/* tw: slots -1, 0, 1; vo: slot -1 */
	assert_int_equal(dq_ndests(q), 4);
	dq_dest_t *d = dq_dest(q, 0, 1);
	assert_int_equal(dq_dest_vendor(d), 0);
	assert_int_equal(dq_dest_slot(d), 1);
	assert_ptr_equal(dq_dest(q, 1, -1), dq_dest_at(q, 3));
	assert_int_equal(dq_dest_top(d), INT32_MIN);
	dq_free(q);
	cfg_free(c);
}

/* The highest priority goes first; equal priorities take turns by campaign,
 * one pop each; a message given back keeps its campaign's turn. */
static void test_turns(void **state)
{
	(void)state;
	cfg_t *c = load();
	char err[128];
	dq_t *q = dq_new(c, err, sizeof err);
	dq_dest_t *d = dq_dest(q, 0, 0);
	const char *ids[] = {"a1", "a2", "a3", "b1", "b2", "u1", "u2"};
	dsp_msg_t *m[7];
	for (int i = 0; i < 3; i++)
		dq_ready(q, m[i] = mk(q, ids[i], "A", 0), d);
	for (int i = 3; i < 5; i++)
		dq_ready(q, m[i] = mk(q, ids[i], "B", 0), d);
	assert_int_equal(dq_dest_ready(d), 5);
	assert_int_equal(dq_dest_top(d), 0);
	dq_ready(q, m[5] = mk(q, ids[5], "U", 5), d);
	dq_ready(q, m[6] = mk(q, ids[6], "U", 5), d);
	assert_int_equal(dq_dest_top(d), 5);
	assert_int_equal(dq_count(q, DQ_READY), 7);
	const char *want[] = {"u1", "u2", "a1", "b1", "a2", "b2", "a3"};
	for (int i = 0; i < 7; i++) {
		dsp_msg_t *x = dq_pop(q, d);
		assert_non_null(x);
		assert_string_equal(x->m.id, want[i]);
		assert_int_equal(x->where, DQ_NONE);
		if (i == 2) { /* a1 could not go: back in front, A keeps the turn */
			dq_unpop(q, x, d);
			x = dq_pop(q, d);
			assert_string_equal(x->m.id, "a1");
		}
		release(q, x);
	}
	assert_null(dq_pop(q, d));
	assert_int_equal(dq_dest_ready(d), 0);
	/* a batch fills from the same campaign without changing turns */
	dq_ready(q, m[0] = mk(q, "a1", "A", 0), d);
	dq_ready(q, m[3] = mk(q, "b1", "B", 0), d);
	dq_ready(q, m[1] = mk(q, "a2", "A", 0), d);
	dsp_msg_t *x = dq_pop(q, d);
	assert_string_equal(x->m.id, "a1");
	assert_string_equal(dq_peek_same(d, x)->m.id, "a2");
	dsp_msg_t *y = dq_pop_same(q, d, x);
	assert_string_equal(y->m.id, "a2");
	assert_null(dq_pop_same(q, d, x));
	release(q, x);
	release(q, y);
	x = dq_any(q);
	assert_string_equal(x->m.id, "b1");
	release(q, x);
	assert_null(dq_any(q));
	for (int w = 0; w < DQ__COUNT; w++)
		assert_int_equal(dq_count(q, (dq_where_t)w), 0);
	dq_free(q);
	cfg_free(c);
}

static void test_timers_and_finals(void **state)
{
	(void)state;
	cfg_t *c = load();
	char err[128];
	dq_t *q = dq_new(c, err, sizeof err);
	enum { N = 200 };
	dsp_msg_t *m[N];
	char ids[N][12];
	for (int i = 0; i < N; i++) {
		snprintf(ids[i], sizeof ids[i], "%d", i);
		m[i] = mk(q, ids[i], "A", 0);
		dq_timer(q, m[i], (i * 7919) % N); /* every time 0..N-1 once, shuffled */
	}
	assert_int_equal(dq_next_due(q), 0);
	assert_null(dq_due(q, -1));
	for (int t = 0; t < N; t++) {
		dsp_msg_t *x = dq_due(q, t);
		assert_non_null(x);
		assert_int_equal(x->due_ms, t);
		assert_null(dq_due(q, t));
		/* through a send to done */
		dq_inflight(q, dq_dest(q, 1, -1), &x, 1);
		assert_int_equal(dq_dest_inflight(dq_dest(q, 1, -1)), 1);
		dq_landed(q, dq_dest(q, 1, -1), &x, 1);
		dq_final(q, x);
		if (t % 2) { /* the broker refused the status: produced again from the timer */
			dq_refinal(q, x);
			assert_int_equal(dq_unacked(q), 1);
			dsp_msg_t *y = dq_due(q, t);
			assert_ptr_equal(y, x);
			assert_true(x->refinal);
			assert_int_equal(x->where, DQ_FINAL_PENDING);
		}
		dq_acked(q, x);
		assert_int_equal(dq_unacked(q), 0);
		assert_int_equal(dq_count(q, DQ_DONE), 1);
		release(q, x);
	}
	assert_int_equal(dq_next_due(q), INT64_MAX);
	dq_free(q);
	cfg_free(c);
}

/* A transition from the wrong state aborts (in a child process). */
static int aborts(void (*fn)(void))
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 2);
		fn();
		_exit(0);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void bad_acked(void)
{
	cfg_t *c = load();
	char err[64];
	dq_t *q = dq_new(c, err, sizeof err);
	dsp_msg_t *m = mk(q, "x", "A", 0);
	dq_acked(q, m); /* never finalled */
}

static void bad_release_ready(void)
{
	cfg_t *c = load();
	char err[64];
	dq_t *q = dq_new(c, err, sizeof err);
	dsp_msg_t *m = mk(q, "x", "A", 0);
	dq_ready(q, m, dq_dest(q, 0, 0));
	dq_release(q, m); /* would lose it from its list */
}

static void bad_double_ready(void)
{
	cfg_t *c = load();
	char err[64];
	dq_t *q = dq_new(c, err, sizeof err);
	dsp_msg_t *m = mk(q, "x", "A", 0);
	dq_ready(q, m, dq_dest(q, 0, 0));
	dq_timer(q, m, 5);
}

static void bad_dest(void)
{
	cfg_t *c = load();
	char err[64];
	dq_t *q = dq_new(c, err, sizeof err);
	dq_dest(q, 1, 0); /* vo has no sender pools */
}

static void fine(void)
{
	cfg_t *c = load();
	char err[64];
	dq_t *q = dq_new(c, err, sizeof err);
	dsp_msg_t *m = mk(q, "x", "A", 0);
	dq_skip(q, m);
	dq_release(q, m);
}

static void test_panics(void **state)
{
	(void)state;
	assert_false(aborts(fine));
	assert_true(aborts(bad_acked));
	assert_true(aborts(bad_release_ready));
	assert_true(aborts(bad_double_ready));
	assert_true(aborts(bad_dest));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dests),
	    cmocka_unit_test(test_turns),
	    cmocka_unit_test(test_timers_and_finals),
	    cmocka_unit_test(test_panics),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
