/* cfg.c -- load and validate tocsin.json. */
#include "core/cfg.h"
#include "core/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char cfg_default_json[] =
    "{\n"
    "  \"var_dir\": \"var\",\n"
    "  \"kafka\": {},\n"
    "  \"vendors\": [\n"
    "    {\"name\": \"twilio\", \"kind\": \"twilio\", \"channel\": \"sms\",\n"
    "     \"base_url\": \"http://127.0.0.1:8025\", \"account\": \"ACsim0000000000000000000000000000\",\n"
    "     \"secret_env\": \"TOCSIN_TWILIO_TOKEN\",\n"
    "     \"senders\": {\"main\": {\"from\": \"+15005550006\"}},\n"
    "     \"rate_per_s\": 0, \"max_in_flight\": 64, \"timeout_ms\": 10000, \"cost\": 0.0079}\n"
    "  ],\n"
    "  \"routes\": {\"sms\": {\"strategy\": \"priority\", \"vendors\": [\"twilio\"]}},\n"
    "  \"dispatcher\": {\"max_attempts\": 6, \"retry_base_ms\": 500, \"retry_max_ms\": 30000,\n"
    "                 \"max_in_flight\": 256},\n"
    "  \"tracker\": {\"listen\": \"127.0.0.1:8026\"}\n"
    "}\n";

static char *dupstr(const char *s) { return s ? strdup(s) : NULL; }

static int bad(char *err, size_t errlen, const cfg_t *c, const char *fmt, const char *a,
               const char *b)
{
	char what[256];
	snprintf(what, sizeof what, fmt, a ? a : "", b ? b : "");
	snprintf(err, errlen, "%s: %s", c->path, what);
	return TOCSIN_ERR_CONFIG;
}

static const char *get_str(json_t *o, const char *k, const char *dflt)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : dflt;
}

static int get_num(json_t *o, const char *k, double dflt, double *out)
{
	json_t *v = json_object_get(o, k);
	if (!v) {
		*out = dflt;
		return 0;
	}
	if (!json_is_number(v))
		return -1;
	*out = json_number_value(v);
	return 0;
}

static int parse_vendor(cfg_t *c, json_t *o, cfg_vendor_t *v, char *err, size_t errlen)
{
	static const char *const kinds[] = {"twilio", "vonage", "sendgrid", "mailgun"};
	if (!json_is_object(o))
		return bad(err, errlen, c, "vendors[] entries must be objects%s%s", NULL, NULL);
	const char *name = get_str(o, "name", NULL);
	const char *kind = get_str(o, "kind", NULL);
	if (!name || !*name)
		return bad(err, errlen, c, "a vendor lacks \"name\"%s%s", NULL, NULL);
	if (!kind)
		return bad(err, errlen, c, "vendor %s lacks \"kind\"%s", name, NULL);
	int known = 0;
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		known |= strcmp(kinds[i], kind) == 0;
	if (!known)
		return bad(err, errlen, c,
		           "vendor %s has unknown kind \"%s\" (twilio, vonage, sendgrid, mailgun)",
		           name, kind);
	v->raw = o;
	v->name = dupstr(name);
	v->kind = dupstr(kind);
	const char *ch = get_str(o, "channel",
	                         strcmp(kind, "twilio") == 0 || strcmp(kind, "vonage") == 0 ? "sms"
	                                                                                     : "email");
	if (msg_channel_parse(ch, &v->channel))
		return bad(err, errlen, c, "vendor %s has unknown channel \"%s\"", name, ch);
	const char *base = get_str(o, "base_url", NULL);
	if (!base || (strncmp(base, "http://", 7) && strncmp(base, "https://", 8)))
		return bad(err, errlen, c, "vendor %s needs \"base_url\" starting with http:// or https://%s",
		           name, NULL);
	v->base_url = dupstr(base);
	size_t bl = strlen(v->base_url);
	while (bl > 0 && v->base_url[bl - 1] == '/')
		v->base_url[--bl] = 0;
	v->account = dupstr(get_str(o, "account", NULL));
	v->secret_env = dupstr(get_str(o, "secret_env", NULL));
	double d;
	if (get_num(o, "rate_per_s", 0, &v->rate_per_s) || v->rate_per_s < 0)
		return bad(err, errlen, c, "vendor %s: \"rate_per_s\" must be a number >= 0%s", name, NULL);
	if (get_num(o, "rate_per_sender", 0, &v->rate_per_sender) || v->rate_per_sender < 0)
		return bad(err, errlen, c, "vendor %s: \"rate_per_sender\" must be a number >= 0%s", name,
		           NULL);
	if (get_num(o, "burst", 0, &d) || d < 0)
		return bad(err, errlen, c, "vendor %s: \"burst\" must be a number >= 0%s", name, NULL);
	v->burst = (int)d;
	if (get_num(o, "max_in_flight", 64, &d) || d < 1 || d > 10000)
		return bad(err, errlen, c, "vendor %s: \"max_in_flight\" must be 1..10000%s", name, NULL);
	v->max_in_flight = (int)d;
	if (get_num(o, "timeout_ms", 10000, &d) || d < 1)
		return bad(err, errlen, c, "vendor %s: \"timeout_ms\" must be >= 1%s", name, NULL);
	v->timeout_ms = (int)d;
	if (get_num(o, "cost", 0, &v->cost) || v->cost < 0)
		return bad(err, errlen, c, "vendor %s: \"cost\" must be a number >= 0%s", name, NULL);
	json_t *senders = json_object_get(o, "senders");
	if (senders && !json_is_object(senders))
		return bad(err, errlen, c, "vendor %s: \"senders\" must be an object pool -> {from}%s",
		           name, NULL);
	if (senders) {
		v->senders = calloc(json_object_size(senders) + 1, sizeof *v->senders);
		if (!v->senders)
			return TOCSIN_ERR_NOMEM;
		const char *pool;
		json_t *so;
		json_object_foreach(senders, pool, so)
		{
			cfg_sender_t *s = &v->senders[v->nsenders++];
			s->pool = dupstr(pool);
			if (json_is_string(so)) {
				s->from = dupstr(json_string_value(so));
			} else if (json_is_object(so)) {
				s->from = dupstr(get_str(so, "from", NULL));
				s->service = dupstr(get_str(so, "service", NULL));
			}
			if (!s->from && !s->service)
				return bad(err, errlen, c, "vendor %s: sender pool %s needs \"from\" or \"service\"",
				           name, pool);
		}
	}
	return 0;
}

static int parse_routes(cfg_t *c, json_t *routes, char *err, size_t errlen)
{
	if (routes && !json_is_object(routes))
		return bad(err, errlen, c, "\"routes\" must be an object channel -> route%s%s", NULL, NULL);
	for (int ch = 0; ch < MSG_CH__COUNT; ch++) {
		cfg_route_t *r = &c->routes[ch];
		json_t *ro = routes ? json_object_get(routes, msg_channel_name((msg_channel_t)ch)) : NULL;
		const char *strategy = ro ? get_str(ro, "strategy", "priority") : "priority";
		if (strcmp(strategy, "priority") && strcmp(strategy, "cheapest"))
			return bad(err, errlen, c, "route %s: unknown strategy \"%s\" (priority, cheapest)",
			           msg_channel_name((msg_channel_t)ch), strategy);
		r->strategy = dupstr(strategy);
		json_t *list = ro ? json_object_get(ro, "vendors") : NULL;
		if (list && !json_is_array(list))
			return bad(err, errlen, c, "route %s: \"vendors\" must be a list of names%s",
			           msg_channel_name((msg_channel_t)ch), NULL);
		/* No route given: every vendor of the channel in file order. */
		size_t n = list ? json_array_size(list) : c->nvendors;
		r->vendors = calloc(n + 1, sizeof *r->vendors);
		if (!r->vendors)
			return TOCSIN_ERR_NOMEM;
		for (size_t i = 0; i < n; i++) {
			const char *vn;
			if (list) {
				vn = json_string_value(json_array_get(list, i));
				const cfg_vendor_t *v = vn ? cfg_vendor(c, vn) : NULL;
				if (!v)
					return bad(err, errlen, c, "route %s names unknown vendor \"%s\"",
					           msg_channel_name((msg_channel_t)ch), vn ? vn : "(not a string)");
				if (v->channel != (msg_channel_t)ch)
					return bad(err, errlen, c, "route %s names vendor \"%s\" of another channel",
					           msg_channel_name((msg_channel_t)ch), vn);
			} else {
				if (c->vendors[i].channel != (msg_channel_t)ch)
					continue;
				vn = c->vendors[i].name;
			}
			r->vendors[r->nvendors++] = dupstr(vn);
		}
	}
	return 0;
}

static int parse(cfg_t *c, char *err, size_t errlen)
{
	json_t *root = c->root;
	if (!json_is_object(root))
		return bad(err, errlen, c, "the configuration must be a JSON object%s%s", NULL, NULL);
	c->var_dir = dupstr(get_str(root, "var_dir", "var"));
	json_t *k = json_object_get(root, "kafka");
	if (k && !json_is_object(k))
		return bad(err, errlen, c, "\"kafka\" must be an object of librdkafka properties%s%s", NULL,
		           NULL);
	c->kafka = k ? json_incref(k) : json_object();
	const char *key;
	json_t *val;
	json_object_foreach(c->kafka, key, val)
	{
		if (!json_is_string(val))
			return bad(err, errlen, c, "kafka property \"%s\" must be a string%s", key, NULL);
	}
	json_t *vendors = json_object_get(root, "vendors");
	if (vendors && !json_is_array(vendors))
		return bad(err, errlen, c, "\"vendors\" must be a list%s%s", NULL, NULL);
	size_t nv = vendors ? json_array_size(vendors) : 0;
	c->vendors = calloc(nv + 1, sizeof *c->vendors);
	if (!c->vendors)
		return TOCSIN_ERR_NOMEM;
	for (size_t i = 0; i < nv; i++) {
		int rc = parse_vendor(c, json_array_get(vendors, i), &c->vendors[i], err, errlen);
		c->nvendors = i + 1;
		if (rc)
			return rc;
		for (size_t j = 0; j < i; j++)
			if (strcmp(c->vendors[j].name, c->vendors[i].name) == 0)
				return bad(err, errlen, c, "vendor name \"%s\" appears twice%s", c->vendors[i].name,
				           NULL);
	}
	int rc = parse_routes(c, json_object_get(root, "routes"), err, errlen);
	if (rc)
		return rc;
	json_t *d = json_object_get(root, "dispatcher");
	double x;
	if (get_num(d, "max_attempts", 6, &x) || x < 1 || x > 100)
		return bad(err, errlen, c, "dispatcher.max_attempts must be 1..100%s%s", NULL, NULL);
	c->max_attempts = (int)x;
	if (get_num(d, "retry_base_ms", 500, &x) || x < 1)
		return bad(err, errlen, c, "dispatcher.retry_base_ms must be >= 1%s%s", NULL, NULL);
	c->retry_base_ms = (int)x;
	if (get_num(d, "retry_max_ms", 30000, &x) || x < c->retry_base_ms)
		return bad(err, errlen, c, "dispatcher.retry_max_ms must be >= retry_base_ms%s%s", NULL,
		           NULL);
	c->retry_max_ms = (int)x;
	if (get_num(d, "max_in_flight", 256, &x) || x < 1 || x > 100000)
		return bad(err, errlen, c, "dispatcher.max_in_flight must be 1..100000%s%s", NULL, NULL);
	c->max_in_flight = (int)x;
	if (get_num(d, "http_threads", 2, &x) || x < 0 || x > 16)
		return bad(err, errlen, c, "dispatcher.http_threads must be 0..16%s%s", NULL, NULL);
	c->http_threads = (int)x;
	json_t *t = json_object_get(root, "tracker");
	char dbp[4096];
	snprintf(dbp, sizeof dbp, "%s/tocsin.db", c->var_dir);
	c->db_path = dupstr(get_str(t, "db", dbp));
	c->track_listen = dupstr(get_str(t, "listen", "127.0.0.1:8026"));
	c->public_url = dupstr(get_str(t, "public_url", NULL));
	c->control_token_env = dupstr(get_str(t, "control_token_env", NULL));
	return 0;
}

cfg_t *cfg_load(const char *path, char *err, size_t errlen)
{
	cfg_t *c = calloc(1, sizeof *c);
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (!path)
		path = getenv("TOCSIN_CONFIG");
	if (!path && access("tocsin.json", F_OK) == 0)
		path = "tocsin.json";
	json_error_t je;
	if (path) {
		c->path = strdup(path);
		c->root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
		if (!c->root) {
			if (access(path, R_OK) != 0)
				snprintf(err, errlen, "%s: cannot read config: %s", path, strerror(errno));
			else
				snprintf(err, errlen, "%s:%d:%d: invalid JSON: %s", path, je.line, je.column,
				         je.text);
			cfg_free(c);
			return NULL;
		}
	} else {
		c->path = strdup("(built-in defaults)");
		c->root = json_loads(cfg_default_json, 0, &je);
	}
	if (parse(c, err, errlen)) {
		cfg_free(c);
		return NULL;
	}
	return c;
}

void cfg_free(cfg_t *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nvendors; i++) {
		cfg_vendor_t *v = &c->vendors[i];
		free(v->name);
		free(v->kind);
		free(v->base_url);
		free(v->account);
		free(v->secret_env);
		for (size_t j = 0; j < v->nsenders; j++) {
			free(v->senders[j].pool);
			free(v->senders[j].from);
			free(v->senders[j].service);
		}
		free(v->senders);
	}
	free(c->vendors);
	for (int ch = 0; ch < MSG_CH__COUNT; ch++) {
		for (size_t i = 0; i < c->routes[ch].nvendors; i++)
			free(c->routes[ch].vendors[i]);
		free(c->routes[ch].vendors);
		free(c->routes[ch].strategy);
	}
	free(c->path);
	free(c->var_dir);
	free(c->db_path);
	free(c->track_listen);
	free(c->public_url);
	free(c->control_token_env);
	json_decref(c->kafka);
	json_decref(c->root);
	free(c);
}

const cfg_vendor_t *cfg_vendor(const cfg_t *c, const char *name)
{
	for (size_t i = 0; i < c->nvendors; i++)
		if (strcmp(c->vendors[i].name, name) == 0)
			return &c->vendors[i];
	return NULL;
}

const cfg_sender_t *cfg_sender(const cfg_vendor_t *v, const char *pool)
{
	if (!pool)
		pool = "main";
	for (size_t i = 0; i < v->nsenders; i++)
		if (strcmp(v->senders[i].pool, pool) == 0)
			return &v->senders[i];
	return NULL;
}

const char *cfg_secret(const cfg_vendor_t *v)
{
	return v->secret_env ? getenv(v->secret_env) : NULL;
}

int cfg_var_path(const cfg_t *c, const char *rel, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/%s", c->var_dir, rel);
	return n < 0 || (size_t)n >= outlen ? TOCSIN_ERR_TOOBIG : 0;
}
