/* web.c -- the compose-and-launch page's front: who is asking (token and role), routing, answers, the timeline. */
#include "tracker/web_int.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/runfile.h"
#include "templates/email.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define UPLOAD_MAX_MB_DEFAULT 1024

extern char **environ;

enum MHD_Result trk_web_answer(struct MHD_Connection *c, unsigned code, const char *ctype,
                               const char *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body,
	                                                         MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", ctype);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "X-Frame-Options", "DENY"); /* no page frames an approve button */
	enum MHD_Result ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result web_json(struct MHD_Connection *c, unsigned code, json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!s)
		return trk_web_answer(c, 500, "application/json", "{\"error\":\"out of memory\"}\n",
		                      26);
	size_t n = strlen(s);
	enum MHD_Result r = trk_web_answer(c, code, "application/json", s, n);
	free(s);
	return r;
}

enum MHD_Result web_err(struct MHD_Connection *c, unsigned code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	json_t *o = json_pack("{ss}", "error", msg);
	if (!o) { /* it quotes input cut inside a character, or not text: not quoted as such */
		for (char *p = msg; *p; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '?';
		o = json_pack("{ss}", "error", msg);
	}
	return web_json(c, code, o);
}

void web_record(trk_web_t *w, const char *kind, const char *subject, const char *actor,
                const char *fmt, ...)
{
	char detail[680];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(detail, 600, fmt, ap);
	va_end(ap);
	if (actor && n >= 0 && n < 600) /* the dashboard's timeline shows the detail */
		snprintf(detail + n, sizeof detail - (size_t)n, " (by %s)", actor);
	log_info("event=web_action kind=%s subject=%s actor=%s detail=\"%s\"", kind, subject,
	         actor ? actor : "-", detail);
	pthread_mutex_lock(&w->wmu);
	if (w->wr && trk_store_event(w->wr, clock_wall_ms(), kind, subject, detail, actor))
		log_warn("event=timeline_not_written kind=%s subject=%s", kind, subject);
	pthread_mutex_unlock(&w->wmu);
}

pid_t web_spawn(const trk_web_t *w, const char *const *argv, int out_fd)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
	posix_spawnattr_init(&at);
	sigset_t none;
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
	pid_t pid;
	int rc = posix_spawn(&pid, w->self, &fa, &at, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc) {
		log_warn("event=spawn_failed cmd=%s err=\"%s\"", argv[1] ? argv[1] : "-", strerror(rc));
		return -1;
	}
	return pid;
}

int web_self_argv(const trk_web_t *w, const char **argv)
{
	int n = 0;
	argv[n++] = w->self;
	if (strcmp(w->cfg->path, CFG_BUILTIN_PATH)) {
		argv[n++] = "-c";
		argv[n++] = w->cfg->path;
	}
	return n;
}

const char *trk_web_token_who(const trk_ctl_tokens_t *t, struct MHD_Connection *c, trk_role_t *role)
{
	const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	const char *tok = NULL;
	if (a && !strncasecmp(a, "Bearer ", 7))
		tok = a + 7;
	if (!tok)
		tok = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Tocsin-Token");
	return trk_ctl_tokens_who_role(t, tok, role);
}

/* 1 when a vendor of channel ch is configured. */
static int web_has_channel(const cfg_t *cfg, msg_channel_t ch)
{
	for (size_t i = 0; i < cfg->nvendors; i++)
		if (cfg->vendors[i].channel == ch)
			return 1;
	return 0;
}

static int json_int(json_t *o, const char *k, int64_t lo, int64_t hi, int64_t dflt, int64_t *out,
                    char *err, size_t errlen)
{
	json_t *v = json_object_get(o, k);
	*out = dflt;
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
		snprintf(err, errlen, "%s must be an integer %lld..%lld", k, (long long)lo,
		         (long long)hi);
		return TOCSIN_ERR_CONFIG;
	}
	*out = json_integer_value(v);
	return 0;
}

static int sub_dir(const cfg_t *cfg, const char *rel, char *out, size_t outlen, char *err, size_t errlen)
{
	if (runfile_mkdir(cfg, err, errlen) || cfg_var_path(cfg, rel, out, outlen))
		return TOCSIN_ERR_IO;
	char abs[PATH_MAX];
	if ((mkdir(out, 0700) && errno != EEXIST) || !realpath(out, abs)) {
		snprintf(err, errlen, "%s: %s", out, strerror(errno));
		return TOCSIN_ERR_IO;
	}
	if (strlen(abs) >= outlen) { /* campaign files name the audience by its absolute path */
		snprintf(err, errlen, "%s: path too long", out);
		return TOCSIN_ERR_IO;
	}
	snprintf(out, outlen, "%s", abs);
	return 0;
}

trk_web_t *trk_web_new(const cfg_t *cfg, const trk_ctl_tokens_t *tokens, char *err, size_t errlen)
{
	trk_web_t *w = calloc(1, sizeof *w);
	if (!w) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->cfg = cfg;
	w->tokens = tokens;
	pthread_mutex_init(&w->mu, NULL);
	pthread_mutex_init(&w->wmu, NULL);
	json_t *launch = json_object_get(cfg->root, "launch");
	json_t *tracker = json_object_get(cfg->root, "tracker");
	int64_t v;
	char e[256];
	if (json_int(launch, "approvals", 1, WEB_MAX_APPROVERS, 1, &v, e, sizeof e)) {
		snprintf(err, errlen, "launch.%s", e);
		goto fail;
	}
	w->approvals = (int)v;
	if (json_int(launch, "max_lag", -1, INT64_MAX / 4, -1, &w->max_lag, e, sizeof e)) {
		snprintf(err, errlen, "launch.%s", e);
		goto fail;
	}
	if (json_int(tracker, "upload_max_mb", 1, 1 << 20, UPLOAD_MAX_MB_DEFAULT, &v, e, sizeof e)) {
		snprintf(err, errlen, "tracker.%s", e);
		goto fail;
	}
	w->upload_max = v << 20;
	if (sub_dir(cfg, "audiences", w->aud_dir, sizeof w->aud_dir, err, errlen) ||
	    sub_dir(cfg, "compose", w->comp_dir, sizeof w->comp_dir, err, errlen))
		goto fail;
	ssize_t n = readlink("/proc/self/exe", w->self, sizeof w->self - 1);
	if (n <= 0) {
		snprintf(err, errlen, "cannot find this executable (/proc/self/exe): %s",
		         strerror(errno));
		goto fail;
	}
	w->self[n] = 0;
	char e2[512];
	w->wr = trk_store_open(cfg->db_path, 0, e2, sizeof e2);
	if (!w->wr)
		log_warn("event=web_timeline_disabled reason=\"%s\"", e2);
	if (web_has_channel(cfg, MSG_CH_EMAIL))
		w->unsub = email_unsub_from_cfg(cfg, w->unsub_err, sizeof w->unsub_err);
	web_launches_load(w);
	if (pthread_create(&w->reaper, NULL, web_reaper_main, w) == 0)
		w->reaper_on = 1;
	return w;
fail:
	pthread_mutex_destroy(&w->mu);
	pthread_mutex_destroy(&w->wmu);
	free(w);
	return NULL;
}

void trk_web_free(trk_web_t *w)
{
	if (!w)
		return;
	w->stopping = 1;
	if (w->reaper_on)
		pthread_join(w->reaper, NULL);
	web_launches_free(w);
	trk_store_free(w->wr);
	email_unsub_free(w->unsub);
	pthread_mutex_destroy(&w->mu);
	pthread_mutex_destroy(&w->wmu);
	free(w);
}

int trk_web_wants(const char *url)
{
	static const char *const exact[] = {"/send",        "/api/me",      "/api/audiences",
	                                    "/api/compose", "/api/preview", "/api/test-send",
	                                    "/api/launches"};
	for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
		if (!strcmp(url, exact[i]))
			return 1;
	return !strncmp(url, "/api/audiences/", 15) || !strncmp(url, "/api/launches/", 14);
}

void trk_web_req_free(void *req)
{
	web_req_t *r = req;
	if (!r)
		return;
	web_up_free(r->up);
	buf_free(&r->body);
	free(r);
}

typedef enum web_method { WM_GET = 0, WM_POST, WM_DELETE } web_method_t;

/* The least role url + method needs, or -1 when the method is not allowed there. */
static int min_role(const char *url, web_method_t m)
{
	int post = m == WM_POST;
	if (m == WM_DELETE) /* only an audience is deleted */
		return strncmp(url, "/api/audiences/", 15) ? -1 : TRK_ROLE_SENDER;
	if (!strcmp(url, "/api/me"))
		return post ? -1 : TRK_ROLE_VIEWER;
	if (!strcmp(url, "/api/audiences") || !strcmp(url, "/api/launches"))
		return post ? TRK_ROLE_SENDER : TRK_ROLE_VIEWER;
	if (!strncmp(url, "/api/audiences/", 15))
		return post ? -1 : TRK_ROLE_VIEWER;
	if (!strncmp(url, "/api/launches/", 14)) {
		const char *a = strrchr(url, '/');
		if (!post)
			return -1;
		return !strcmp(a, "/approve") ? TRK_ROLE_APPROVER : TRK_ROLE_SENDER;
	}
	return post ? TRK_ROLE_SENDER : -1; /* compose, preview, test-send */
}

static const char *role_does[TRK_ROLE__COUNT] = {
    "reading", "uploading or deleting an audience, composing, previewing, test-sending and launching",
    "approving a launch", "the controls"};

/* The first call of a request: who is asking, may they, and where the body goes. */
static enum MHD_Result begin(trk_web_t *w, struct MHD_Connection *c, const char *url,
                             web_method_t m, web_req_t *r)
{
	int post = m == WM_POST;
	int need = min_role(url, m);
	if (need < 0)
		return r->answered = 1, web_err(c, 405, "method not allowed");
	if (!trk_ctl_tokens_count(w->tokens))
		return r->answered = 1,
		       web_err(c, 403,
		               "sending from the page is disabled: no token is configured "
		               "(tracker.control_tokens and their environment variables)");
	r->who = trk_web_token_who(w->tokens, c, &r->role);
	if (!r->who) {
		log_warn("event=web_denied reason=no_token path=%.100s", url);
		return r->answered = 1,
		       web_err(c, 401,
		               "missing or wrong token: enter your token at the top of the page");
	}
	if ((int)r->role < need) {
		log_warn("event=web_denied reason=role actor=%s role=%s path=%.100s", r->who,
		         trk_role_name(r->role), url);
		return r->answered = 1,
		       web_err(c, 403, "%s needs the %s role; %s is a %s", role_does[need],
		               trk_role_name((trk_role_t)need), r->who, trk_role_name(r->role));
	}
	if (post && !strcmp(url, "/api/audiences")) {
		const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
		const char *name = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "name");
		int code = 400;
		char err[512];
		r->up = web_up_new(w, name, r->who, len ? strtoll(len, NULL, 10) : -1, &code, err,
		                   sizeof err);
		if (!r->up)
			return r->answered = 1, web_err(c, (unsigned)code, "%s", err);
	}
	return MHD_YES;
}

static enum MHD_Result finish(trk_web_t *w, struct MHD_Connection *c, const char *url,
                              web_method_t m, web_req_t *r)
{
	int post = m == WM_POST;
	if (r->up) {
		json_t *o = NULL;
		char err[512] = "";
		int code = web_up_finish(r->up, &o, err, sizeof err);
		web_up_free(r->up);
		r->up = NULL;
		return code == 201 ? web_json(c, 201, o) : web_err(c, (unsigned)code, "%s", err);
	}
	if (!strcmp(url, "/api/me"))
		return web_json(c, 200,
		                json_pack("{sssssi}", "name", r->who, "role",
		                          trk_role_name(r->role), "approvals", w->approvals));
	if (!strcmp(url, "/api/audiences"))
		return web_json(c, 200, web_aud_list(w));
	if (!strncmp(url, "/api/audiences/", 15) && m == WM_DELETE) {
		char err[512];
		int code = web_aud_delete(w, url + 15, r->who, r->role, err, sizeof err);
		return code == 200
		           ? web_json(c, 200, json_pack("{sssb}", "id", url + 15, "deleted", 1))
		           : web_err(c, (unsigned)code, "%s", err);
	}
	if (!strncmp(url, "/api/audiences/", 15)) {
		json_t *a = web_aud_meta(w, url + 15);
		return a ? web_json(c, 200, a) : web_err(c, 404, "no such audience");
	}
	if (!post && !strcmp(url, "/api/launches"))
		return web_json(c, 200, web_launch_list(w));
	if (r->too_big)
		return web_err(c, 413, "request body too large (max %u KiB)", WEB_MAX_JSON >> 10);
	json_error_t je;
	json_t *rq = json_loadb(r->body.p ? r->body.p : "", r->body.len, 0, &je);
	if (!json_is_object(rq) && strncmp(url, "/api/launches/", 14)) {
		json_decref(rq);
		return web_err(c, 400, "the body must be a JSON object (%s)", je.text);
	}
	enum MHD_Result ret;
	if (!strcmp(url, "/api/compose"))
		ret = web_compose(w, c, rq);
	else if (!strcmp(url, "/api/preview"))
		ret = web_preview(w, c, rq, r->who);
	else if (!strcmp(url, "/api/test-send"))
		ret = web_test_send(w, c, rq, r->who);
	else if (!strcmp(url, "/api/launches"))
		ret = web_launch_new(w, c, rq, r->who, r->role);
	else {
		char id[80];
		const char *p = url + 14, *sl = strchr(p, '/');
		if (!sl || sl == p || (size_t)(sl - p) >= sizeof id || strchr(sl + 1, '/'))
			ret = web_err(c, 404, "not found");
		else {
			memcpy(id, p, (size_t)(sl - p));
			id[sl - p] = 0;
			ret = web_launch_act(w, c, id, sl + 1, r->who, r->role);
		}
	}
	json_decref(rq);
	return ret;
}

enum MHD_Result trk_web_handle(trk_web_t *w, struct MHD_Connection *c, const char *url,
                               const char *method, const char *upload, size_t *upload_size, void **req)
{
	int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	web_method_t m = get ? WM_GET : !strcmp(method, "POST") ? WM_POST : WM_DELETE;
	if (!get && m == WM_DELETE && strcmp(method, "DELETE"))
		return web_err(c, 405, "method not allowed");
	if (!strcmp(url, "/send")) { /* the page itself holds nothing secret */
		if (!get)
			return web_err(c, 405, "method not allowed");
		return trk_web_answer(c, 200, "text/html; charset=utf-8", trk_web_page_html,
		                      strlen(trk_web_page_html));
	}
	web_req_t *r = *req;
	if (!r) {
		if (!(r = calloc(1, sizeof *r)))
			return MHD_NO;
		buf_init(&r->body, WEB_MAX_JSON);
		*req = r;
		return begin(w, c, url, m, r);
	}
	if (r->answered) {
		*upload_size = 0;
		return MHD_YES;
	}
	if (*upload_size) {
		if (r->up)
			web_up_write(r->up, upload, *upload_size); /* an error is answered at the end */
		else if (buf_append(&r->body, upload, *upload_size))
			r->too_big = 1;
		*upload_size = 0;
		return MHD_YES;
	}
	return finish(w, c, url, m, r);
}
