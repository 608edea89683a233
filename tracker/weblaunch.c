/* weblaunch.c -- launches asked for from the page: typed confirmation, launch.approvals, and a `tocsin launch` child watched to its end. */
#include "tracker/web_int.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const state_names[] = {"pending", "running", "done", "failed", "cancelled"};

static void keep(trk_web_t *w, web_launch_t *l);

static int by_ts(const void *a, const void *b)
{
	int64_t x = (*(web_launch_t *const *)a)->ts_ms, y = (*(web_launch_t *const *)b)->ts_ms;
	return x < y ? -1 : x > y;
}

static web_launch_t *find(trk_web_t *w, const char *id)
{
	for (int i = w->nlaunches - 1; i >= 0; i--)
		if (!strcmp(w->launches[i]->id, id))
			return w->launches[i];
	return NULL;
}

static json_t *launch_json(trk_web_t *w, const web_launch_t *l)
{
	json_t *ap = json_array();
	for (int i = 0; i < l->napproved; i++)
		json_array_append_new(ap, json_string(l->approved_by[i]));
	json_t *o = json_pack("{ss ss ss ss ss so sI sf si sI}", "id", l->id, "name", l->name,
	                      "audience", l->audience, "state", state_names[l->state],
	                      "requested_by", l->requested_by, "approved_by", ap, "recipients",
	                      (json_int_t)l->recipients, "cost", l->cost, "approvals", w->approvals,
	                      "ts_ms", (json_int_t)l->ts_ms);
	if (l->ended_by[0])
		json_object_set_new(o, "cancelled_by", json_string(l->ended_by));
	if (l->started_ms)
		json_object_set_new(o, "started_ms", json_integer(l->started_ms));
	if (l->adopted)
		json_object_set_new(o, "reattached", json_true());
	if (l->ended_ms)
		json_object_set_new(o, "ended_ms", json_integer(l->ended_ms));
	if (l->state == WL_DONE || l->state == WL_FAILED) {
		json_object_set_new(o, "exit", json_integer(l->exit_code));
		char rp[WEB_PATH + 64];
		snprintf(rp, sizeof rp, "launch/%s/report.json", l->id);
		char full[WEB_PATH + 128];
		if (!cfg_var_path(w->cfg, rp, full, sizeof full)) {
			json_t *rep = json_load_file(full, 0, NULL);
			if (rep)
				json_object_set_new(o, "report", rep);
		}
	}
	if (l->error[0])
		json_object_set_new(o, "error", json_string(l->error));
	return o;
}

/* Keep l on disk (<dir>/launch.json, 0600) so a restarted tracker knows it. Under w->mu. */
static void save(trk_web_t *w, const web_launch_t *l)
{
	char p[WEB_DIR + 128], tmp[WEB_DIR + 136];
	snprintf(p, sizeof p, "%s/launch.json", l->dir);
	snprintf(tmp, sizeof tmp, "%s.tmp", p);
	json_t *o = launch_json(w, l);
	json_object_del(o, "report");
	json_object_set_new(o, "pid", json_integer(l->pid));
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || json_dumpfd(o, fd, JSON_COMPACT) || close(fd) || rename(tmp, p)) {
		log_warn("event=web_launch_not_saved campaign=%s err=\"%s\"", l->id, strerror(errno));
		if (fd >= 0)
			unlink(tmp);
	}
	json_decref(o);
}

static void str_of(json_t *o, const char *k, char *out, size_t outlen)
{
	const char *v = json_string_value(json_object_get(o, k));
	snprintf(out, outlen, "%s", v ? v : "");
}

/* 1 while the launch's `tocsin launch` runs: its pid is a live process (not a
 * zombie) whose arguments name the launch's campaign file, so a pid reused by
 * another process is not taken for it. */
static int launch_alive(const web_launch_t *l)
{
	char p[64], camp[WEB_DIR + 96], args[8192];
	if (l->pid <= 0)
		return 0;
	snprintf(p, sizeof p, "/proc/%d/cmdline", (int)l->pid);
	snprintf(camp, sizeof camp, "%s/campaign.json", l->dir);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, args, sizeof args - 1);
	close(fd);
	if (n <= 0) /* a zombie has no arguments */
		return 0;
	args[n] = 0;
	for (const char *a = args; a < args + n; a += strlen(a) + 1)
		if (!strcmp(a, camp))
			return 1;
	return 0;
}

static void last_line(const char *dir, char *out, size_t outlen);

/* End running launch l that is not (or no longer) our child by its report,
 * written when `tocsin launch` ends: finished is done, else failed with what
 * the launch said (last_line) and the way to resume it (restarted: the
 * tracker was not running when it ended). The exit code is not known. Under
 * w->mu or before the reaper starts. */
static void end_by_report(trk_web_t *w, web_launch_t *l, int restarted)
{
	char rp[WEB_PATH + 128], full[WEB_PATH + 256];
	snprintf(rp, sizeof rp, "launch/%s/report.json", l->id);
	char camp[WEB_DIR + 96];
	snprintf(camp, sizeof camp, "%s/campaign.json", l->dir);
	struct stat st, cst; /* not an earlier launch's report: newer than this launch's file */
	int fresh = !cfg_var_path(w->cfg, rp, full, sizeof full) && !stat(full, &st) &&
	            !stat(camp, &cst) &&
	            (st.st_mtim.tv_sec > cst.st_mtim.tv_sec ||
	             (st.st_mtim.tv_sec == cst.st_mtim.tv_sec &&
	              st.st_mtim.tv_nsec >= cst.st_mtim.tv_nsec));
	json_t *rep = fresh ? json_load_file(full, 0, NULL) : NULL;
	int fin = json_is_true(json_object_get(rep, "finished"));
	json_decref(rep);
	l->state = fin ? WL_DONE : WL_FAILED;
	l->exit_code = fin ? 0 : -1;
	l->adopted = 0;
	l->ended_ms = clock_wall_ms();
	if (!fin) {
		char last[512];
		last_line(l->dir, last, sizeof last);
		snprintf(l->error, sizeof l->error,
		         "%s%.300s%sit did not finish: run the same tocsin "
		         "launch again to resume it",
		         restarted ? "the tracker was stopped while it ran; " : "", last,
		         last[0] ? "; " : "");
	}
	save(w, l);
}

/* The launches a previous run of the tracker kept (<var_dir>/compose/<id>/launch.json):
 * pending ones wait again; one still running is watched again (adopted) till its end;
 * one that ended meanwhile is ended by its report (end_by_report). Main thread. */
void web_launches_load(trk_web_t *w)
{
	DIR *d = opendir(w->comp_dir);
	struct dirent *de;
	while (d && (de = readdir(d)) && w->nlaunches < WEB_MAX_LAUNCHES) {
		char p[WEB_DIR + 400];
		if (de->d_name[0] == '.' || strlen(de->d_name) > 64)
			continue;
		snprintf(p, sizeof p, "%s/%s/launch.json", w->comp_dir, de->d_name);
		json_t *o = json_load_file(p, 0, NULL);
		web_launch_t *l = o ? calloc(1, sizeof *l) : NULL;
		const char *st = json_string_value(json_object_get(o, "state"));
		int k = -1;
		for (int i = 0; st && i <= WL_CANCELLED; i++)
			if (!strcmp(st, state_names[i]))
				k = i;
		const char *id = json_string_value(json_object_get(o, "id"));
		if (!l || k < 0 || !id || strcmp(id, de->d_name)) {
			free(l);
			json_decref(o);
			continue;
		}
		str_of(o, "id", l->id, sizeof l->id);
		str_of(o, "name", l->name, sizeof l->name);
		str_of(o, "audience", l->audience, sizeof l->audience);
		str_of(o, "requested_by", l->requested_by, sizeof l->requested_by);
		str_of(o, "cancelled_by", l->ended_by, sizeof l->ended_by);
		str_of(o, "error", l->error, sizeof l->error);
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(o, "approved_by"), i,
		                   e) if (l->napproved < WEB_MAX_APPROVERS)
		    snprintf(l->approved_by[l->napproved++], sizeof l->approved_by[0], "%s",
		             json_is_string(e) ? json_string_value(e) : "");
		l->state = (web_lstate_t)k;
		l->recipients = json_integer_value(json_object_get(o, "recipients"));
		l->cost = json_number_value(json_object_get(o, "cost"));
		l->ts_ms = json_integer_value(json_object_get(o, "ts_ms"));
		l->started_ms = json_integer_value(json_object_get(o, "started_ms"));
		l->ended_ms = json_integer_value(json_object_get(o, "ended_ms"));
		l->exit_code = (int)json_integer_value(json_object_get(o, "exit"));
		snprintf(l->dir, sizeof l->dir, "%s/%s", w->comp_dir, l->id);
		l->pid = (pid_t)json_integer_value(json_object_get(o, "pid"));
		json_decref(o);
		if (l->state == WL_RUNNING && launch_alive(l)) { /* not our child: watched till its end */
			l->adopted = 1;
			log_info("event=web_launch_reattached campaign=%s pid=%d", l->id, (int)l->pid);
			web_record(w, "launch", l->id, NULL,
			           "launch still running after a tracker restart "
			           "(pid %d): watched again",
			           (int)l->pid);
		} else if (l->state == WL_RUNNING)
			end_by_report(w, l, 1);
		keep(w, l);
	}
	if (d)
		closedir(d);
	qsort(w->launches, (size_t)w->nlaunches, sizeof w->launches[0], by_ts);
	if (w->nlaunches)
		log_info("event=web_launches_loaded n=%d", w->nlaunches);
}

json_t *web_launch_list(trk_web_t *w)
{
	json_t *a = json_array();
	pthread_mutex_lock(&w->mu);
	for (int i = w->nlaunches - 1; i >= 0; i--)
		json_array_append_new(a, launch_json(w, w->launches[i]));
	pthread_mutex_unlock(&w->mu);
	return json_pack("{sosi}", "launches", a, "approvals", w->approvals);
}

int web_launch_using(trk_web_t *w, const char *aud_id, char *busy, size_t busylen)
{
	for (int i = 0; i < w->nlaunches; i++) {
		const web_launch_t *l = w->launches[i];
		if ((l->state == WL_PENDING || l->state == WL_RUNNING) && !strcmp(l->audience, aud_id)) {
			snprintf(busy, busylen, "%s", l->id);
			return 1;
		}
	}
	return 0;
}

/* Start the launch's `tocsin launch` child. Under w->mu. */
static int start(trk_web_t *w, web_launch_t *l)
{
	char camp[WEB_PATH + 32], logp[WEB_PATH + 32], lag[32];
	snprintf(camp, sizeof camp, "%s/campaign.json", l->dir);
	snprintf(logp, sizeof logp, "%s/launch.log", l->dir);
	const char *argv[24];
	int n = web_self_argv(w, argv);
	argv[n++] = "launch";
	argv[n++] = camp;
	argv[n++] = "--no-progress";
	if (w->max_lag >= 0) {
		snprintf(lag, sizeof lag, "%lld", (long long)w->max_lag);
		argv[n++] = "--max-lag";
		argv[n++] = lag;
	}
	argv[n] = NULL;
	int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	pid_t pid = fd < 0 ? -1 : web_spawn(w, argv, fd);
	if (fd >= 0)
		close(fd);
	if (pid < 0) {
		l->state = WL_FAILED;
		l->ended_ms = clock_wall_ms();
		snprintf(l->error, sizeof l->error,
		         "could not start tocsin launch (see the tracker's log)");
		return TOCSIN_ERR_IO;
	}
	l->pid = pid;
	l->state = WL_RUNNING;
	l->started_ms = clock_wall_ms();
	log_info("event=web_launch_started campaign=%s pid=%d", l->id, (int)pid);
	return 0;
}

/* What the person typed equals the recipient count (commas, spaces and dots
 * between digits allowed) or the campaign's name or id. */
static int confirmed(const web_launch_t *l, json_t *v)
{
	char s[256];
	if (json_is_integer(v))
		return json_integer_value(v) == l->recipients;
	if (!json_is_string(v))
		return 0;
	snprintf(s, sizeof s, "%s", json_string_value(v));
	if (s[0] && (!strcmp(s, l->name) || !strcmp(s, l->id)))
		return 1;
	char digits[32];
	size_t n = 0;
	for (const char *p = s; *p; p++) {
		if (*p >= '0' && *p <= '9') {
			if (n + 1 >= sizeof digits)
				return 0;
			digits[n++] = *p;
		} else if (*p != ',' && *p != ' ' && *p != '.')
			return 0;
	}
	digits[n] = 0;
	return n && strtoll(digits, NULL, 10) == l->recipients;
}

static void keep(trk_web_t *w, web_launch_t *l)
{
	if (w->nlaunches == WEB_MAX_LAUNCHES) { /* drop the oldest ended one */
		for (int i = 0; i < w->nlaunches; i++)
			if (w->launches[i]->state >= WL_DONE) {
				free(w->launches[i]);
				memmove(&w->launches[i], &w->launches[i + 1],
				        (size_t)(w->nlaunches - i - 1) * sizeof w->launches[0]);
				w->nlaunches--;
				break;
			}
	}
	w->launches[w->nlaunches++] = l;
}

enum MHD_Result web_launch_new(trk_web_t *w, struct MHD_Connection *c, json_t *rq, const char *who,
                               trk_role_t role)
{
	(void)role;
	char err[1024];
	json_t *doc = web_campaign_doc(w, rq, 1, err, sizeof err);
	if (!doc)
		return web_err(c, 400, "%s", err);
	web_launch_t *l = calloc(1, sizeof *l);
	if (!l) {
		json_decref(doc);
		return web_err(c, 500, "out of memory");
	}
	const char *id = json_string_value(json_object_get(doc, "id"));
	const char *name = json_string_value(json_object_get(doc, "name"));
	snprintf(l->id, sizeof l->id, "%s", id);
	snprintf(l->name, sizeof l->name, "%s", name ? name : id);
	snprintf(l->audience, sizeof l->audience, "%s",
	         json_string_value(json_object_get(rq, "audience")));
	snprintf(l->requested_by, sizeof l->requested_by, "%s", who);
	l->ts_ms = clock_wall_ms();
	snprintf(l->dir, sizeof l->dir, "%s/%s", w->comp_dir, l->id);
	pthread_mutex_lock(&w->mu);
	web_launch_t *prev = find(w, l->id);
	int busy = prev && (prev->state == WL_PENDING || prev->state == WL_RUNNING);
	web_lstate_t pst = prev ? prev->state : WL_DONE;
	pthread_mutex_unlock(&w->mu);
	if (busy) {
		enum MHD_Result r = web_err(c, 409, "campaign \"%s\" already has a launch %s",
		                            l->id, state_names[pst]);
		free(l);
		json_decref(doc);
		return r;
	}
	char path[WEB_PATH + 32];
	snprintf(path, sizeof path, "%s/campaign.json", l->dir);
	int rc = mkdir(l->dir, 0700) && errno != EEXIST ? TOCSIN_ERR_IO : 0;
	if (rc)
		snprintf(err, sizeof err,
		         "cannot create the campaign's directory (see the tracker's log)");
	else if (web_preview_cached(w, doc, &l->recipients, &l->cost))
		rc = web_write_doc(doc, path, err, sizeof err);
	else /* not previewed as it is now: count it first, as the page's preview does */
		rc = web_dry_run(w, doc, path, 0, &l->recipients, &l->cost, NULL, err, sizeof err);
	json_decref(doc);
	if (rc) {
		free(l);
		return web_err(c, 400, "%s", err);
	}
	if (l->recipients <= 0) {
		free(l);
		return web_err(c, 400,
		               "nothing to send: no recipient would be queued (see the preview)");
	}
	if (!confirmed(l, json_object_get(rq, "confirm"))) {
		enum MHD_Result r = web_err(c, 400,
		                            "to launch, type the number of recipients (%lld) or the "
		                            "campaign's name (%s) in confirm",
		                            (long long)l->recipients, l->name);
		free(l);
		return r;
	}
	pthread_mutex_lock(&w->mu);
	prev = find(w, l->id);
	char ap[WEB_PATH];
	int deleted = web_aud_path(w, l->audience, ap, sizeof ap) != 0;
	if (deleted || (prev && (prev->state == WL_PENDING || prev->state == WL_RUNNING))) {
		pthread_mutex_unlock(&w->mu);
		enum MHD_Result r = deleted ? web_err(c, 409, "the audience was deleted meanwhile")
		                            : web_err(c, 409,
		                                      "campaign \"%s\" already has a launch", l->id);
		free(l);
		return r;
	}
	keep(w, l);
	rc = w->approvals <= 1 ? start(w, l) : 0;
	save(w, l);
	json_t *o = launch_json(w, l);
	pthread_mutex_unlock(&w->mu);
	if (w->approvals <= 1)
		web_record(w, "launch", l->id, who, "launch of %lld recipients (est. cost %.2f) %s",
		           (long long)l->recipients, l->cost, rc ? "could not start" : "started");
	else
		web_record(w, "launch", l->id, who,
		           "launch of %lld recipients (est. cost %.2f) requested: needs %d more "
		           "approval(s) from another person",
		           (long long)l->recipients, l->cost, w->approvals - 1);
	return web_json(c, rc ? 500 : 201, o);
}

enum MHD_Result web_launch_act(trk_web_t *w, struct MHD_Connection *c, const char *id,
                               const char *action, const char *who, trk_role_t role)
{
	int approve = !strcmp(action, "approve");
	if (!approve && strcmp(action, "cancel"))
		return web_err(c, 404, "not found (approve or cancel)");
	pthread_mutex_lock(&w->mu);
	web_launch_t *l = find(w, id);
	unsigned code = 200;
	char msg[512] = "";
	int started = 0, rc = 0;
	if (!l) {
		code = 404;
		snprintf(msg, sizeof msg, "no launch of campaign \"%.64s\"", id);
	} else if (l->state != WL_PENDING) {
		code = 409;
		snprintf(msg, sizeof msg, "the launch of \"%s\" is %s, not waiting for approval%s",
		         l->id, state_names[l->state],
		         l->state == WL_RUNNING && !approve ? " (cancel the campaign on the dashboard)"
		                                            : "");
	} else if (approve && !strcmp(who, l->requested_by)) {
		code = 403;
		snprintf(msg, sizeof msg,
		         "%s asked for this launch: a second, different person must "
		         "approve it",
		         who);
	} else if (approve) {
		for (int i = 0; i < l->napproved; i++)
			if (!strcmp(l->approved_by[i], who)) {
				code = 409;
				snprintf(msg, sizeof msg, "%s has already approved this launch", who);
			}
		if (code == 200 && l->napproved < WEB_MAX_APPROVERS) {
			snprintf(l->approved_by[l->napproved++], sizeof l->approved_by[0], "%s", who);
			if (1 + l->napproved >= w->approvals) {
				rc = start(w, l);
				started = 1;
			}
		}
	} else if (strcmp(who, l->requested_by) && role < TRK_ROLE_APPROVER) {
		code = 403;
		snprintf(msg, sizeof msg,
		         "only %s (who asked for it) or an approver can cancel this "
		         "launch",
		         l->requested_by);
	} else {
		l->state = WL_CANCELLED;
		l->ended_ms = clock_wall_ms();
		snprintf(l->ended_by, sizeof l->ended_by, "%s", who);
	}
	if (code == 200)
		save(w, l);
	json_t *o = code == 200 ? launch_json(w, l) : NULL;
	int left = l && code == 200 ? w->approvals - 1 - l->napproved : 0;
	pthread_mutex_unlock(&w->mu);
	if (code != 200) {
		log_warn("event=web_launch_refused campaign=%.64s action=%s actor=%s code=%u", id,
		         action, who, code);
		return web_err(c, code, "%s", msg);
	}
	if (!approve)
		web_record(w, "launch", id, who, "launch request cancelled");
	else if (started)
		web_record(w, "launch", id, who, "launch approved: %s",
		           rc ? "could not start" : "started");
	else
		web_record(w, "launch", id, who, "launch approved: needs %d more approval(s)", left);
	return web_json(c, rc ? 500 : 200, o);
}

/* What `tocsin launch` said on failure: its "tocsin launch: " line in the
 * last 4 KiB of its output, else its last line. */
static void last_line(const char *dir, char *out, size_t outlen)
{
	char p[WEB_PATH + 32], tail[4096];
	snprintf(p, sizeof p, "%s/launch.log", dir);
	out[0] = 0;
	FILE *f = fopen(p, "r");
	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, sz > (long)sizeof tail - 1 ? sz - (long)sizeof tail + 1 : 0, SEEK_SET);
	size_t n = fread(tail, 1, sizeof tail - 1, f);
	fclose(f);
	tail[n] = 0;
	while (n && tail[n - 1] == '\n')
		tail[--n] = 0;
	/* its one line of why ("tocsin launch: ..."), before the summary, else the last line */
	const char *why = NULL;
	for (const char *q = tail; (q = strstr(q, "tocsin launch: ")); q++)
		if (q == tail || q[-1] == '\n')
			why = q;
	const char *nl = strrchr(tail, '\n');
	if (!why)
		why = nl ? nl + 1 : tail;
	size_t wl = strcspn(why, "\n");
	snprintf(out, outlen, "%.*s", (int)(wl < 500 ? wl : 500), why);
}

/* Our child l ended with wait status st. Under w->mu. */
static void reaped(trk_web_t *w, web_launch_t *l, int st)
{
	l->exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	l->state = l->exit_code ? WL_FAILED : WL_DONE;
	l->ended_ms = clock_wall_ms();
	if (l->exit_code)
		last_line(l->dir, l->error, sizeof l->error);
	save(w, l);
}

void *web_reaper_main(void *arg)
{
	trk_web_t *w = arg;
	for (unsigned tick = 0; !w->stopping; tick++) {
		usleep(50 * 1000);
		pthread_mutex_lock(&w->mu);
		for (int i = 0; i < w->nlaunches; i++) {
			web_launch_t *l = w->launches[i];
			int st;
			if (l->state != WL_RUNNING)
				continue;
			if (l->adopted) { /* not our child: looked at every 0.5 s */
				if (tick % 10 || launch_alive(l))
					continue;
				end_by_report(w, l, 0);
			} else if (waitpid(l->pid, &st, WNOHANG) == l->pid)
				reaped(w, l, st);
			else
				continue;
			web_record(w, "launch", l->id, NULL, "launch %s (exit %d)%s%.300s",
			           l->state == WL_FAILED ? "failed" : "finished queueing",
			           l->exit_code, l->error[0] ? ": " : "", l->error);
		}
		pthread_mutex_unlock(&w->mu);
	}
	return NULL;
}

void web_launches_free(trk_web_t *w)
{
	for (int i = 0; i < w->nlaunches; i++) {
		if (w->launches[i]->state == WL_RUNNING)
			log_info("event=web_launch_left_running campaign=%s pid=%d",
			         w->launches[i]->id, (int)w->launches[i]->pid);
		free(w->launches[i]);
	}
	w->nlaunches = 0;
}
