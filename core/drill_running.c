/* drill_running.c -- `tocsin drill --use-running`: drill on the broker, emulator, tracker and
 * dispatchers of the user's running `tocsin up`, only when every vendor is that emulator. */
#include "core/drill_int.h"
#include "core/runfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define UP_PID "run/up.pid" /* core/up.c's */

/* 1 when base_url is the running emulator at addr (127.0.0.1:P): http://127.0.0.1:P or
 * http://localhost:P, nothing after */
static int is_emulator(const char *base_url, const char *addr)
{
	const char *colon = strrchr(addr, ':');
	char a[300], b[300];
	snprintf(a, sizeof a, "http://%s", addr);
	snprintf(b, sizeof b, "http://localhost%s", colon ? colon : "");
	return base_url && (!strcmp(base_url, a) || !strcmp(base_url, b));
}

/* 0 when the emulator at d->sim answers its control API for exactly the user's vendors (so it
 * is tocsin's emulator, not something else listening there); its settings kept in sim_saved */
static int emulator_answers(drill_t *d, char *err, size_t errlen)
{
	json_t *c = drill_sim_get(d, "/_sim/config"), *vs = json_object_get(c, "vendors");
	int ok = json_is_object(vs) && json_object_size(vs) == d->user->nvendors;
	for (size_t i = 0; ok && i < d->user->nvendors; i++)
		ok = json_is_object(json_object_get(vs, d->user->vendors[i].name));
	if (!ok) {
		snprintf(err, errlen,
		         "http://%s does not answer as tocsin's vendor emulator for the vendors of %s",
		         d->sim, d->user->path);
		json_decref(c);
		return -1;
	}
	d->sim_saved = c;
	return 0;
}

int drill_use_running(drill_t *d, char *err, size_t errlen)
{
	const cfg_t *c = d->user;
	pid_t up = runfile_live_pid(c, UP_PID);
	if (!up) {
		snprintf(err, errlen, "--use-running: no `tocsin up` is running for var_dir %s",
		         c->var_dir);
		return -1;
	}
	/* the dispatchers run the configuration as it was when `tocsin up` started them */
	char pidpath[4200];
	struct stat cs, ps;
	if (cfg_var_path(c, UP_PID, pidpath, sizeof pidpath) || stat(c->path, &cs) ||
	    stat(pidpath, &ps) || cs.st_mtime > ps.st_mtime) {
		snprintf(err, errlen,
		         "--use-running: %s changed after `tocsin up` (pid %d) started; restart it first",
		         c->path, (int)up);
		return -1;
	}
	json_t *bs = json_object_get(c->kafka, "bootstrap.servers");
	if (json_is_string(bs) && *json_string_value(bs)) {
		snprintf(err, errlen,
		         "--use-running: kafka names a cluster (%.100s); other dispatchers may read "
		         "it: the drill uses only the embedded broker of `tocsin up`",
		         json_string_value(bs));
		return -1;
	}
	if (!runfile_live_pid(c, "run/vendor-sim.pid") ||
	    runfile_read(c, "run/vendor-sim.addr", d->sim, sizeof d->sim) <= 0) {
		snprintf(err, errlen,
		         "--use-running: the running `tocsin up` has no vendor emulator; the drill never "
		         "sends to a real vendor");
		return -1;
	}
	for (size_t i = 0; i < c->nvendors; i++)
		if (!is_emulator(c->vendors[i].base_url, d->sim)) {
			snprintf(err, errlen,
			         "--use-running: vendors[%zu] (%s) base_url is %.200s, not the running "
			         "emulator http://%s; the drill never sends to a real vendor",
			         i, c->vendors[i].name, c->vendors[i].base_url, d->sim);
			return -1;
		}
	if (runfile_read(c, "run/track.addr", d->trk, sizeof d->trk) <= 0) {
		snprintf(err, errlen,
		         "--use-running: the running `tocsin up` has no tracker address (run/track.addr)");
		return -1;
	}
	d->token = c->control_token_env ? getenv(c->control_token_env) : NULL;
	if (!d->token || !*d->token) {
		snprintf(err, errlen,
		         "--use-running: the tracker's control token must be in $%s (tracker.control_token_env)",
		         c->control_token_env ? c->control_token_env
		                              : "<tracker.control_token_env is not set>");
		return -1;
	}
	return emulator_answers(d, err, errlen);
}

int drill_running_alive(drill_t *d) { return runfile_live_pid(d->user, UP_PID) != 0; }

void drill_sim_restore(drill_t *d)
{
	const char *name;
	json_t *f;
	drill_sim_post(d, "/_sim/config", "{\"reset\":true}");
	json_object_foreach(json_object_get(d->sim_saved, "vendors"), name, f)
	{
		json_t *o = json_deep_copy(f);
		json_object_set_new(o, "vendor", json_string(name));
		char *body = json_dumps(o, JSON_COMPACT);
		if (body)
			drill_sim_post(d, "/_sim/config", body);
		free(body);
		json_decref(o);
	}
}
