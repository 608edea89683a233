/* up.c -- `tocsin up`: broker, emulator, tracker and one dispatcher per channel in the
 * foreground until Ctrl-C / SIGTERM, then stop them all in reverse order. */
#include "core/clock.h"
#include "core/cmd.h"
#include "core/kq.h"
#include "core/runfile.h"
#include "core/sig.h"
#include "core/sup.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define UP_RUN_PID "run/up.pid"
#define UP_RESTART_MAX_S 30

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: tocsin up [--emulator]\n"
	        "\n"
	        "Start everything the configuration needs, in the foreground, until Ctrl-C or\n"
	        "SIGTERM: the embedded broker (unless kafka.\"bootstrap.servers\" is set or one is\n"
	        "already running), the vendor emulator (when a vendor's base_url is http://127.0.0.1\n"
	        "or http://localhost, on that port; or with --emulator, on 127.0.0.1:8025), the\n"
	        "tracker (dashboard on tracker.listen), `tocsin hold` and one dispatcher per channel that has\n"
	        "vendors. Prints where the dashboard is. A dispatcher that exits is started again\n"
	        "(after 1, 2, 4 ... %d s); if the broker, emulator or tracker exits, everything is\n"
	        "stopped and the exit status is 1. Logs: <var_dir>/up/logs/<name>.log.\n"
	        "\n"
	        "  --emulator  start the emulator even when no vendor points at loopback\n",
	        UP_RESTART_MAX_S);
}

/* The loopback port of the first vendor whose base_url is http://127.0.0.1:P or
 * http://localhost:P, else 0. */
static int emulator_port(const cfg_t *c)
{
	static const char *const pre[] = {"http://127.0.0.1:", "http://localhost:"};
	for (size_t i = 0; i < c->nvendors; i++)
		for (int p = 0; p < 2; p++) {
			size_t pl = strlen(pre[p]);
			if (strncmp(c->vendors[i].base_url, pre[p], pl))
				continue;
			char *end;
			long port = strtol(c->vendors[i].base_url + pl, &end, 10);
			if (port > 0 && port < 65536 && (*end == 0 || *end == '/'))
				return (int)port;
		}
	return 0;
}

typedef struct up_dsp {
	int kid;            /* index in the supervisor */
	int backoff_s;      /* next restart delay */
	int64_t started_ms; /* last start */
	int64_t restart_at; /* when stopped: restart then */
} up_dsp_t;

/* This executable, the run directory, no other `tocsin up` for this var dir, the logs
 * directory and the supervisor (*supp); the pid file written. 0, else 1 said on stderr. */
static int up_prepare(cfg_t *cfg, sup_t **supp, char *logs, size_t logslen)
{
	char self[4096], err[512];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
	if (sl <= 0) {
		fprintf(stderr, "tocsin up: cannot find my own executable\n");
		return 1;
	}
	self[sl] = 0;
	if (runfile_mkdir(cfg, err, sizeof err)) {
		fprintf(stderr, "tocsin up: %s\n", err);
		return 1;
	}
	pid_t other = runfile_live_pid(cfg, UP_RUN_PID);
	if (other && other != getpid()) {
		fprintf(stderr, "tocsin up: already running for var_dir %s (pid %d); stop it first\n",
		        cfg->var_dir, (int)other);
		return 1;
	}
	char pids[4200], up_dir[4200];
	if (cfg_var_path(cfg, "up", up_dir, sizeof up_dir) ||
	    cfg_var_path(cfg, "up/logs", logs, logslen) ||
	    cfg_var_path(cfg, "run/up.pids", pids, sizeof pids) ||
	    (mkdir(up_dir, 0755) && errno != EEXIST) || (mkdir(logs, 0755) && errno != EEXIST)) {
		fprintf(stderr, "tocsin up: cannot create %s\n", logs);
		return 1;
	}
	int builtin = strcmp(cfg->path, CFG_BUILTIN_PATH) == 0;
	sup_t *sup = sup_new("tocsin up", self, builtin ? NULL : cfg->path, logs, pids, err,
	                     sizeof err);
	if (!sup) {
		fprintf(stderr, "tocsin up: %s\n", err);
		return 1;
	}
	sup_stop_leftovers(sup);
	char mypid[32];
	snprintf(mypid, sizeof mypid, "%d\n", (int)getpid());
	runfile_write(cfg, UP_RUN_PID, mypid, err, sizeof err);
	*supp = sup;
	return 0;
}

/* The broker (the configured cluster, an embedded broker already running, or a new one)
 * and the emulator when the configuration points at it (or force_sim): 0, or -1. */
static int up_broker_sim(cfg_t *cfg, sup_t *sup, int force_sim)
{
	char addr[2048];
	int k;
	json_t *bs = json_object_get(cfg->kafka, "bootstrap.servers");
	pid_t bpid = runfile_live_pid(cfg, KQ_RUN_PID);
	if (json_is_string(bs) && *json_string_value(bs)) {
		printf("  broker      %s (kafka.\"bootstrap.servers\")\n", json_string_value(bs));
	} else if (bpid) {
		runfile_read(cfg, KQ_RUN_BOOTSTRAP, addr, sizeof addr);
		printf("  broker      already running (pid %d: %s); left running at exit\n",
		       (int)bpid, addr);
	} else {
		static char *const a_broker[] = {"broker", NULL};
		runfile_remove(cfg, KQ_RUN_BOOTSTRAP);
		if ((k = sup_start(sup, "broker", a_broker)) < 0 ||
		    sup_wait_runfile(sup, k, cfg, KQ_RUN_BOOTSTRAP, addr, sizeof addr, 30))
			return -1;
		printf("  broker      up  (embedded Kafka: %s)\n", addr);
	}
	int port = emulator_port(cfg);
	if (port || force_sim) {
		char listen[64];
		snprintf(listen, sizeof listen, "127.0.0.1:%d", port ? port : 8025);
		char *a_sim[] = {"vendor-sim", "--listen", listen, NULL};
		runfile_remove(cfg, "run/vendor-sim.addr");
		if ((k = sup_start(sup, "vendor-sim", a_sim)) < 0 ||
		    sup_wait_runfile(sup, k, cfg, "run/vendor-sim.addr", addr, sizeof addr, 30))
			return -1;
		printf("  vendor-sim  up  (vendor API emulator on http://%s)\n", addr);
	}
	return 0;
}

/* The tracker (its address in trk), the holding store's releaser and one dispatcher per
 * channel with a route (dsp, *ndsp): 0, or -1. */
static int up_services(cfg_t *cfg, sup_t *sup, char *trk, size_t trklen, up_dsp_t *dsp, int *ndsp)
{
	int k;
	static char *const a_track[] = {"track", NULL};
	runfile_remove(cfg, "run/track.addr");
	if ((k = sup_start(sup, "track", a_track)) < 0 ||
	    sup_wait_runfile(sup, k, cfg, "run/track.addr", trk, trklen, 30))
		return -1;
	printf("  tracker     up  (%s)\n", cfg->db_path);
	char *a_hold[] = {"hold", NULL};
	if ((k = sup_start(sup, "hold", a_hold)) < 0)
		return -1;
	printf("  hold        up  (%s/hold.db: releases send_at and quiet-hours messages)\n",
	       cfg->var_dir);
	*ndsp = 0;
	for (int ch = 0; ch < MSG_CH__COUNT; ch++) {
		if (!cfg->routes[ch].nvendors)
			continue;
		const char *chn = msg_channel_name((msg_channel_t)ch);
		char name[32];
		snprintf(name, sizeof name, "dispatch-%s", chn);
		char *a_dsp[] = {"dispatch", "--channel", (char *)chn, NULL};
		if ((k = sup_start(sup, name, a_dsp)) < 0)
			return -1;
		dsp[(*ndsp)++] = (up_dsp_t){.kid = k, .backoff_s = 1, .started_ms = clock_mono_ms()};
		char grp[64];
		kq_dispatch_group((msg_channel_t)ch, grp, sizeof grp);
		printf("  dispatcher  up  (%s: consumer group %s)\n", chn, grp);
	}
	return 0;
}

/* Watch the children until a signal: a dispatcher that exits is started again after a
 * doubling pause (reset after a minute's run); anything else stopping stops everything.
 * 0 on a signal, -1 otherwise. */
static int up_watch(sup_t *sup, up_dsp_t *dsp, int ndsp)
{
	while (!tocsin_stop) {
		usleep(200000);
		int64_t now = clock_mono_ms();
		for (int i = 0; i < sup_count(sup) && !tocsin_stop; i++) {
			up_dsp_t *dp = NULL;
			for (int j = 0; j < ndsp; j++)
				if (dsp[j].kid == i)
					dp = &dsp[j];
			if (sup_alive(sup, i))
				continue;
			if (!dp) {
				fprintf(stderr,
				        "tocsin up: %s stopped (status %d); stopping everything\n",
				        sup_name(sup, i), sup_status(sup, i));
				sup_log_tail(sup, i);
				return -1;
			}
			if (!dp->restart_at) {
				if (now - dp->started_ms > 60000)
					dp->backoff_s = 1; /* it ran a while: not a crash loop */
				fprintf(stderr,
				        "tocsin up: %s exited with status %d; starting it again in %d s "
				        "(log %s)\n",
				        sup_name(sup, i), sup_status(sup, i), dp->backoff_s,
				        sup_log(sup, i));
				dp->restart_at = now + dp->backoff_s * 1000;
				dp->backoff_s = dp->backoff_s * 2 > UP_RESTART_MAX_S
				                    ? UP_RESTART_MAX_S
				                    : dp->backoff_s * 2;
			} else if (now >= dp->restart_at) {
				dp->restart_at = 0;
				dp->started_ms = now;
				if (sup_restart(sup, i))
					return -1;
			}
		}
	}
	return 0;
}

int cmd_up(cfg_t *cfg, int argc, char **argv)
{
	static const struct option opts[] = {{"emulator", no_argument, NULL, 'e'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0}};
	int force_sim = 0, o;
	while ((o = getopt_long(argc, argv, "eh", opts, NULL)) != -1) {
		switch (o) {
		case 'e': force_sim = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	char logs[4200], trk[256];
	sup_t *sup = NULL;
	if (up_prepare(cfg, &sup, logs, sizeof logs))
		return 1;
	int rc = 1, ndsp = 0;
	up_dsp_t dsp[MSG_CH__COUNT];
	printf("tocsin up: configuration %s, var_dir %s, logs in %s\n", cfg->path, cfg->var_dir, logs);
	if (!up_broker_sim(cfg, sup, force_sim) && !up_services(cfg, sup, trk, sizeof trk, dsp, &ndsp)) {
		printf("\ndashboard: http://%s/\nstop everything: Ctrl-C (or kill %d)\n", trk,
		       (int)getpid());
		fflush(stdout);
		rc = up_watch(sup, dsp, ndsp) ? 1 : 0;
	}
	fflush(stdout);
	sup_stop_all(sup);
	sup_free(sup);
	runfile_remove(cfg, UP_RUN_PID);
	printf("tocsin up: stopped everything it started\n");
	return rc;
}
