/* web_int.h -- what the files of the compose-and-launch API share (tracker/web*.c); not a public interface. */
#ifndef TOCSIN_TRK_WEB_INT_H
#define TOCSIN_TRK_WEB_INT_H
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "tracker/store.h"
#include "tracker/web.h"

#define WEB_PATH 4096
#define WEB_DIR 3072            /* a directory of ours, leaving room for the file names in it */
#define WEB_MAX_JSON (1u << 20) /* a compose / preview / launch request body */
#define WEB_MAX_LAUNCHES 256    /* launch requests kept (oldest finished ones dropped) */
#define WEB_MAX_APPROVERS 8
#define WEB_PREVIEW_CACHE 8
#define WEB_AUD_ID_LEN 17 /* "a" + 16 hex digits */
#define WEB_SAMPLE_ROWS 5

typedef enum web_lstate {
	WL_PENDING = 0,
	WL_RUNNING,
	WL_DONE,
	WL_FAILED,
	WL_CANCELLED
} web_lstate_t;

/* One launch asked for from the page: waiting for approvals, running (a
 * `tocsin launch` child), or ended. */
typedef struct web_launch {
	char id[65]; /* the campaign id */
	char name[256];
	char audience[WEB_AUD_ID_LEN + 1];
	char requested_by[65];
	char approved_by[WEB_MAX_APPROVERS][65];
	int napproved;
	char ended_by[65]; /* who cancelled it */
	web_lstate_t state;
	int64_t recipients;
	double cost;
	int64_t ts_ms, started_ms, ended_ms;
	pid_t pid;
	int adopted; /* running, started by an earlier run of the tracker: watched through /proc */
	int exit_code; /* -1: not known (it ended while adopted, or before this tracker started) */
	char error[512];
	char dir[WEB_DIR + 80]; /* <var_dir>/compose/<id>: campaign.json, launch.log */
} web_launch_t;

/* A preview's counts kept for the launch of the same campaign document. */
typedef struct web_pcache {
	uint64_t key; /* hash of the campaign document; 0 = empty */
	int64_t recipients;
	double cost;
} web_pcache_t;

struct trk_web {
	const cfg_t *cfg;
	const trk_ctl_tokens_t *tokens;
	char aud_dir[WEB_DIR], comp_dir[WEB_DIR], self[WEB_PATH];
	int64_t upload_max;  /* bytes */
	int approvals;       /* launch.approvals: people who must agree, the requester included */
	int64_t max_lag;     /* launch.max_lag for the launches it starts; -1 = the launch's own */
	pthread_mutex_t wmu; /* wr (taken after mu when both are) */
	trk_store_t *wr;     /* the timeline (NULL: not recorded there, logged) */
	struct email_unsub *unsub; /* signs a test email's unsubscribe link (NULL: unsub_err says why) */
	char unsub_err[256];
	pthread_mutex_t mu; /* everything below */
	web_launch_t *launches[WEB_MAX_LAUNCHES];
	int nlaunches;
	web_pcache_t pcache[WEB_PREVIEW_CACHE];
	int pcache_next;
	uint64_t seq;
	pthread_t reaper;
	int reaper_on;
	volatile int stopping;
};

/* One request's state. */
typedef struct web_req {
	const char *who; /* the token's holder (owned by the tokens) */
	trk_role_t role;
	buf_t body; /* a JSON request's body (capped) */
	int too_big;
	int answered;      /* refused at the first call: the rest is ignored */
	struct web_up *up; /* an audience upload in progress */
} web_req_t;

/* ---- web.c ---- */
enum MHD_Result web_err(struct MHD_Connection *c, unsigned code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
enum MHD_Result web_json(struct MHD_Connection *c, unsigned code, json_t *o); /* steals o */
/* Put who did what on the dashboard's timeline (and the log). */
void web_record(trk_web_t *w, const char *kind, const char *subject, const char *actor,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Start this tocsin with argv (NULL-terminated, argv[0] = w->self) in its
 * own process group, no signal blocked, stdout and stderr on out_fd: its pid,
 * or -1. Any thread. */
pid_t web_spawn(const trk_web_t *w, const char *const *argv, int out_fd);
/* The argument vector prefix that runs this tocsin with the tracker's config:
 * argv[0..n) = self [-c path]; returns n. */
int web_self_argv(const trk_web_t *w, const char **argv);

/* ---- webaud.c: audiences ---- */
typedef struct web_up web_up_t;
/* Start an upload (display name, who). NULL + err (HTTP status in *code). */
web_up_t *web_up_new(trk_web_t *w, const char *name, const char *who, int64_t length, int *code,
                     char *err, size_t errlen);
/* Take the next piece: 0, or an error (TOOBIG over the cap, IO) after which
 * the rest is ignored. */
int web_up_write(web_up_t *u, const char *p, size_t n);
/* Finish: the audience's description as JSON into *out, or an error status + err. */
int web_up_finish(web_up_t *u, json_t **out, char *err, size_t errlen);
void web_up_free(web_up_t *u);
/* 1 when id looks like an audience id ("a" + 16 hex digits). */
int web_aud_id_ok(const char *id);
/* The stored description of audience id (new reference), or NULL. */
json_t *web_aud_meta(trk_web_t *w, const char *id);
/* The audience file of id into out (0) or TOCSIN_ERR_NOTFOUND. */
int web_aud_path(trk_web_t *w, const char *id, char *out, size_t outlen);
/* Delete audience id (its file and description) for who: 200, or the HTTP
 * status of the refusal with err (404 none, 403 neither its uploader nor an
 * approver, 409 a pending or running launch uses it); nothing changes on refusal. */
int web_aud_delete(trk_web_t *w, const char *id, const char *who, trk_role_t role, char *err,
                   size_t errlen);
/* {"audiences":[...]} newest first. */
json_t *web_aud_list(trk_web_t *w);

/* ---- webcomp.c: compose, preview, test send ---- */
/* Each answers the request (body: the parsed JSON object). */
enum MHD_Result web_compose(trk_web_t *w, struct MHD_Connection *c, json_t *rq);
enum MHD_Result web_preview(trk_web_t *w, struct MHD_Connection *c, json_t *rq, const char *who);
enum MHD_Result web_test_send(trk_web_t *w, struct MHD_Connection *c, json_t *rq, const char *who);
/* The campaign document for request rq (only the fields staff may set, the
 * audience resolved to its file); id_required for a launch. NULL + err. */
json_t *web_campaign_doc(trk_web_t *w, json_t *rq, int id_required, char *err, size_t errlen);
/* Write doc to path (0600): 0 or TOCSIN_ERR_IO with err. */
int web_write_doc(json_t *doc, const char *path, char *err, size_t errlen);
/* Dry-run the producer over doc (written to path): recipients queued and the
 * estimated cost (every configured vendor of each channel: the first of the
 * route's), and when out is not NULL the preview object. 0 or an error with err. */
int web_dry_run(trk_web_t *w, json_t *doc, const char *path, int n, int64_t *recipients,
                double *cost, json_t **out, char *err, size_t errlen);

/* 1 with the counts of a preview of the same document (this process, the last few). */
int web_preview_cached(trk_web_t *w, json_t *doc, int64_t *recipients, double *cost);

/* ---- weblaunch.c: launches and approvals ---- */
enum MHD_Result web_launch_new(trk_web_t *w, struct MHD_Connection *c, json_t *rq, const char *who,
                               trk_role_t role);
enum MHD_Result web_launch_act(trk_web_t *w, struct MHD_Connection *c, const char *id,
                               const char *action, const char *who, trk_role_t role);
json_t *web_launch_list(trk_web_t *w);
/* 1 with the campaign id in busy when a pending or running launch uses audience
 * aud_id. Under w->mu. */
int web_launch_using(trk_web_t *w, const char *aud_id, char *busy, size_t busylen);
void *web_reaper_main(void *arg);
/* The launches kept on disk by an earlier run (main thread, before serving). */
void web_launches_load(trk_web_t *w);
void web_launches_free(trk_web_t *w);

/* The page (generated from tracker/webpage.html by tracker/gen_dash.py). */
extern const char trk_web_page_html[];

#endif
