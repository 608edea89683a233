/* drill_int.h -- what the parts of `tocsin drill` share: the scenarios, the drill's state, one run,
 * and the calls between drill.c (the command), drill_env.c (its private processes and their HTTP
 * APIs), drill_blast.c (one blast with its fault) and drill_measure.c (what the blast did). */
#ifndef TOCSIN_DRILL_INT_H
#define TOCSIN_DRILL_INT_H
#include "core/cfg.h"
#include "core/sup.h"

#include <jansson.h>
#include <stdint.h>

#define DRILL_BUCKET_MS 250
#define DRILL_PRE_MS 4000 /* steady traffic before a fault */
#define DRILL_STOPPERS 50

/* The scenarios, in the order they run with --scenarios all. */
typedef enum {
	SC_CAPACITY,
	SC_503,
	SC_SLOW,
	SC_429,
	SC_HANG,
	SC_AUTH,
	SC_KILL,
	SC_CANCEL,
	SC_STOP,
	SC__COUNT
} sc_kind_t;

/* name (for --scenarios and the report) and one-line title of each scenario */
typedef struct drill_sc {
	const char *name, *title;
} drill_sc_t;
extern const drill_sc_t drill_sc[SC__COUNT];

typedef struct sla {
	double p95_ms, window_s, min_open_s, probe_windows, ramp_s;
} sla_t;

typedef struct drill {
	const cfg_t *user;
	char self[4096], dir[2048], cfgpath[2200], csv[2200], campaign[2200];
	char sim[256], trk[256];
	cfg_t probe; /* var_dir = dir, for run files */
	json_t *doc; /* the drill's configuration document */
	sup_t *sup;
	int k_dsp, k_launch;
	long audience;
	int segments, latency_ms, want[SC__COUNT];
	const char *primary, *secondary, *pool;
	sla_t sla;
	double rate; /* messages/s to size blasts: measured by capacity, else the estimate */
	double secondary_rate;        /* messages/s the secondary alone can carry (the estimate) */
	const char *inject;           /* TOCSIN_DRILL_INJECT, test only */
	int timeout_ms;               /* the primary's */
	int order[SC__COUNT], norder; /* scenarios in the order asked */
	long stop_lo, stop_hi; /* recipients [lo, hi) a stop scenario opted out (later blasts skip them) */
	const char *token; /* the tracker's control token */
	int use_running;   /* --use-running: the processes of the user's `tocsin up` */
	json_t *sim_saved; /* --use-running: the emulator's fault settings, restored at the end */
	double load_start; /* the load average when the drill started */
} drill_t;

/* one scenario's blast */
typedef struct run {
	sc_kind_t kind;
	char id[64];
	long n;                          /* recipients */
	int64_t begin;                   /* wall ms: the scenario started (before its reset) */
	int64_t t0, first, fault, clear; /* wall ms; 0 = not (yet) */
	int64_t done;                    /* wall ms: every message ended (or time ran out) */
	int restarted;
} run_t;

/* ---- drill_env.c: the private configuration, the processes, HTTP to them ---- */

/* method GET or POST (body JSON, or NULL) to url, with the bearer token when not NULL; the 2xx
 * answer parsed, or NULL. */
json_t *drill_http_json(const char *method, const char *url, const char *body, const char *token);
/* GET the drill's emulator / tracker at path; the answer or NULL */
json_t *drill_sim_get(drill_t *d, const char *path);
json_t *drill_trk_get(drill_t *d, const char *path);
/* POST body to the emulator at path; 0, or -1 with one line on stderr */
int drill_sim_post(drill_t *d, const char *path, const char *body);
/* integer field k of o, 0 when absent */
long drill_jl(const json_t *o, const char *k);
/* the drill's configuration document from the user's (every secret a placeholder) */
json_t *drill_private_doc(drill_t *d);
/* broker, emulator, tracker, an SMS dispatcher and the launcher slot; 0 or -1 (said on stderr) */
int drill_start_all(drill_t *d);
/* the launcher's slot in d->sup (`tocsin launch` of d->campaign, started per blast); 0 or -1 */
int drill_launch_slot(drill_t *d);

/* ---- drill_running.c: --use-running ---- */

/* Use the processes of the user's running `tocsin up` (d->user's var_dir): 0 with d->sim, d->trk,
 * d->token and d->sim_saved set, or -1 with one line in err when it is not safe -- no `tocsin up`,
 * its configuration changed since it started, a Kafka cluster, no emulator, a vendor whose
 * base_url is not that emulator, an emulator that does not answer as one, no control token. */
int drill_use_running(drill_t *d, char *err, size_t errlen);
/* 1 while that `tocsin up` runs */
int drill_running_alive(drill_t *d);
/* Put the emulator's fault settings back as drill_use_running found them. */
void drill_sim_restore(drill_t *d);

/* ---- drill_blast.c: one scenario ---- */

/* The phone number of synthetic recipient i (E.164, valid US numbers). */
void drill_phone_of(long i, char *out, size_t outlen);
/* how many of the first n synthetic recipients a stop scenario of this drill opted out */
long drill_opted(const drill_t *d, long n);
/* messages of campaign record c in a final state */
long drill_finals_of(json_t *c);
/* how long scenario k's fault lasts, and the time from its clearing to full traffic again */
int64_t drill_fault_ms(drill_t *d, sc_kind_t k);
int64_t drill_recover_budget_ms(drill_t *d, sc_kind_t k);
/* A primary the last scenario left open or probing is drained and undrained. */
void drill_primary_reset(drill_t *d);
/* Run the blast of r, injecting its fault; 0 when every message ended (or time ran out), -1 when
 * a process of the drill stopped. */
int drill_blast(drill_t *d, run_t *r);

/* ---- drill_measure.c ---- */

/* What r's blast did, as one scenario object of the report (README, "tocsin drill"). */
json_t *drill_measure(drill_t *d, run_t *r);
/* Where r's wall time went, measured_ms being when drill_measure returned: "wall_ms" and
 * "phases_ms" set on m (README, "tocsin drill"). */
void drill_phases(const run_t *r, int64_t measured_ms, json_t *m);

#endif
