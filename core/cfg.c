/* cfg.c -- load and validate tocsin.json. */
#include "core/cfg.h"
#include "core/err.h"
#include "core/tz.h"
#include "core/near.h"

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
    "     \"rate_per_s\": 0, \"max_in_flight\": 64, \"timeout_ms\": 10000, \"cost\": 0.0079},\n"
    "    {\"name\": \"vonage\", \"kind\": \"vonage\", \"channel\": \"sms\",\n"
    "     \"base_url\": \"http://127.0.0.1:8025\", \"account\": \"simvonagekey\",\n"
    "     \"secret_env\": \"TOCSIN_VONAGE_SECRET\",\n"
    "     \"signature_secret_env\": \"TOCSIN_VONAGE_SIGNATURE_SECRET\", \"signature_method\": \"md5hash\",\n"
    "     \"senders\": {\"main\": {\"from\": \"+15005550007\"}},\n"
    "     \"rate_per_s\": 0, \"max_in_flight\": 64, \"timeout_ms\": 10000, \"cost\": 0.0068},\n"
    "    {\"name\": \"sendgrid\", \"kind\": \"sendgrid\", \"channel\": \"email\",\n"
    "     \"base_url\": \"http://127.0.0.1:8025\", \"account\": \"-\",\n"
    "     \"secret_env\": \"TOCSIN_SENDGRID_KEY\",\n"
    "     \"senders\": {\"main\": {\"from\": \"news@example.org\"}},\n"
    "     \"webhook_public_key\": \"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEcarVor//rbAedhDzzKjoDOob2abrxDR86frpv3BidxMMeQ5/a07blMIM7TPSu1tQx42rxWK3KMR4Ly9oLCzOSg==\",\n"
    "     \"sim_signing_key_env\": \"TOCSIN_SIM_SENDGRID_SIGNING_KEY\",\n"
    "     \"max_in_flight\": 8, \"timeout_ms\": 10000, \"cost\": 0.0006},\n"
    "    {\"name\": \"mailgun\", \"kind\": \"mailgun\", \"channel\": \"email\",\n"
    "     \"base_url\": \"http://127.0.0.1:8025\", \"account\": \"mg.example.org\",\n"
    "     \"secret_env\": \"TOCSIN_MAILGUN_KEY\",\n"
    "     \"senders\": {\"main\": {\"from\": \"news@mg.example.org\"}},\n"
    "     \"max_in_flight\": 8, \"timeout_ms\": 10000, \"cost\": 0.0008}\n"
    "  ],\n"
    "  \"routes\": {\n"
    "    \"sms\": {\"strategy\": \"priority\", \"vendors\": [\"twilio\", \"vonage\"]},\n"
    "    \"email\": {\"strategy\": \"priority\", \"vendors\": [\"sendgrid\", \"mailgun\"]}\n"
    "  },\n"
    "  \"dispatcher\": {\"max_attempts\": 6, \"retry_base_ms\": 500, \"retry_max_ms\": 30000,\n"
    "                 \"max_in_flight\": 256, \"http_threads\": 2},\n"
    "  \"tracker\": {\"listen\": \"127.0.0.1:8026\", \"public_url\": \"http://127.0.0.1:8026\",\n"
    "              \"control_token_env\": \"TOCSIN_CONTROL_TOKEN\"},\n"
    "  \"email\": {\"unsubscribe_key_env\": \"TOCSIN_UNSUB_KEY\"}\n"
    "}\n";

static char *dupstr(const char *s) { return s ? strdup(s) : NULL; }

static int bad(char *err, size_t errlen, const cfg_t *c, const char *fmt, const char *a, const char *b)
{
	char what[256];
	snprintf(what, sizeof what, fmt, a ? a : "", b ? b : "");
	snprintf(err, errlen, "%s: %s", c->path, what);
	return TOCSIN_ERR_CONFIG;
}

/* quiet_hours: {"sms": {"enabled", "start", "end"}, "email": {...}}; a channel with an entry
 * is on unless "enabled": false; SMS is on at 08:00-20:00 without one, email off. */
static int quiet_hours(cfg_t *c, json_t *qh, char *err, size_t errlen)
{
	if (qh && !json_is_object(qh))
		return bad(err, errlen, c, "quiet_hours must be an object%s%s", NULL, NULL);
	for (int ch = 0; ch < MSG_CH__COUNT; ch++) {
		const char *chn = msg_channel_name((msg_channel_t)ch);
		json_t *o = json_object_get(qh, chn);
		c->qh_on[ch] = ch == MSG_CH_SMS || o;
		c->qh_start[ch] = 8 * 60;
		c->qh_end[ch] = 20 * 60;
		if (!o)
			continue;
		if (!json_is_object(o))
			return bad(err, errlen, c,
			           "quiet_hours.%s must be an object {\"start\", \"end\", \"enabled\"}%s",
			           chn, NULL);
		json_t *en = json_object_get(o, "enabled");
		if (en && !json_is_boolean(en))
			return bad(err, errlen, c, "quiet_hours.%s.enabled must be true or false%s",
			           chn, NULL);
		if (en)
			c->qh_on[ch] = json_is_true(en);
		const char *k[2] = {"start", "end"};
		int *v[2] = {&c->qh_start[ch], &c->qh_end[ch]};
		for (int i = 0; i < 2; i++) {
			json_t *x = json_object_get(o, k[i]);
			if (!x)
				continue;
			char f[64];
			snprintf(f, sizeof f, "%s.%s", chn, k[i]);
			if (!json_is_string(x) || tz_parse_hhmm(json_string_value(x), v[i]))
				return bad(err, errlen, c,
				           "quiet_hours.%s must be \"HH:MM\" (00:00..24:00)%s", f,
				           NULL);
		}
		if (c->qh_start[ch] == c->qh_end[ch])
			return bad(err, errlen, c,
			           "quiet_hours.%s: start and end are equal (the window would never open)%s",
			           chn, NULL);
	}
	return 0;
}

/* "reply_countries" of object o (a vendor, or one of its sender pools), when present: an array
 * of at most 16 calling codes ("1", "+44"). what names the object in the error. */
static int check_countries(const cfg_t *c, json_t *o, const char *what, char *err, size_t errlen)
{
	json_t *rcs = json_object_get(o, "reply_countries"), *rc1;
	size_t rci;
	if (rcs && (!json_is_array(rcs) || json_array_size(rcs) > 16))
		return bad(err, errlen, c,
		           "%s: \"reply_countries\" must be an array of calling codes (at most 16)%s",
		           what, NULL);
	json_array_foreach(rcs, rci, rc1)
	{
		const char *cc = json_is_string(rc1) ? json_string_value(rc1) : "";
		cc += cc[0] == '+';
		size_t cl = strspn(cc, "0123456789");
		if (cl < 1 || cl > 3 || cc[cl])
			return bad(err, errlen, c,
			           "%s: \"reply_countries\" entries are calling codes like \"1\" or \"+44\"%s",
			           what, NULL);
	}
	return 0;
}

/* ---- every key tocsin.json may hold: one table per object ----
 * A module that reads a new field adds its name to the table of the object it
 * lives in (and documents it in its README); any other key is refused at load,
 * naming its full path and the closest known key. A field that only one kind of
 * vendor reads goes in that kind's table. */
typedef enum {
	CK_LEAF, /* any value; its reader checks the type */
	CK_OBJ,  /* an object whose keys are in sub */
	CK_MAP,  /* an object of any keys, each value an object whose keys are in sub */
	CK_LIST, /* a list of objects whose keys are in sub */
	CK_FREE, /* an object of any keys (librdkafka properties) */
} ck_shape_t;

typedef struct ck {
	const char *name;
	ck_shape_t shape;
	const struct ck *sub;
} ck_t;

static const ck_t ck_sla[] = {{"p95_ms", CK_LEAF, NULL},
                              {"error_rate", CK_LEAF, NULL},
                              {"timeout_rate", CK_LEAF, NULL},
                              {"min_delivered", CK_LEAF, NULL},
                              {"window_s", CK_LEAF, NULL},
                              {"min_samples", CK_LEAF, NULL},
                              {"min_open_s", CK_LEAF, NULL},
                              {"probe_windows", CK_LEAF, NULL},
                              {"probe_min_samples", CK_LEAF, NULL},
                              {"probe_fraction", CK_LEAF, NULL},
                              {"ramp_s", CK_LEAF, NULL},
                              {"recover_ratio", CK_LEAF, NULL},
                              {NULL, CK_LEAF, NULL}};
/* senders.<pool>: core/cfg.c; rate_per_number core/rl.c; reply_countries tracker/reply.c */
static const ck_t ck_sender[] = {{"from", CK_LEAF, NULL},
                                 {"service", CK_LEAF, NULL},
                                 {"rate_per_number", CK_LEAF, NULL},
                                 {"reply_countries", CK_LEAF, NULL},
                                 {NULL, CK_LEAF, NULL}};
/* vendors[]: the fields of every kind (core/cfg.c, core/rl.c, dispatcher/route.c, sla.c,
 * vendors/sim/sim_srv.c) */
static const ck_t ck_vendor[] = {{"name", CK_LEAF, NULL},
                                 {"kind", CK_LEAF, NULL},
                                 {"channel", CK_LEAF, NULL},
                                 {"base_url", CK_LEAF, NULL},
                                 {"account", CK_LEAF, NULL},
                                 {"secret_env", CK_LEAF, NULL},
                                 {"senders", CK_MAP, ck_sender},
                                 {"rate_per_s", CK_LEAF, NULL},
                                 {"rate_per_sender", CK_LEAF, NULL},
                                 {"burst", CK_LEAF, NULL},
                                 {"max_in_flight", CK_LEAF, NULL},
                                 {"timeout_ms", CK_LEAF, NULL},
                                 {"cost", CK_LEAF, NULL},
                                 {"weight", CK_LEAF, NULL},
                                 {"rate_decrease", CK_LEAF, NULL},
                                 {"rate_recover_per_s", CK_LEAF, NULL},
                                 {"rate_min_fraction", CK_LEAF, NULL},
                                 {"sla", CK_OBJ, ck_sla},
                                 {"webhook_auth", CK_LEAF, NULL}, /* "signed" (default) or "none" (Vonage only) */
                                 {"reply_countries", CK_LEAF,
                                  NULL}, /* tracker/reply.c: calling codes replies may go to */
                                 {NULL, CK_LEAF, NULL}};
/* the fields one kind's adapter (vendors/) or its emulator (vendors/sim/) reads */
static const ck_t ck_twilio[] = {{NULL, CK_LEAF, NULL}};
/* vonage: signed webhooks (vendors/sim/sim_vonage.c signs with them) */
static const ck_t ck_vonage[] = {{"signature_secret_env", CK_LEAF, NULL},
                                 {"signature_method", CK_LEAF, NULL},
                                 {NULL, CK_LEAF, NULL}};
static const ck_t ck_sendgrid[] = {{"webhook_public_key", CK_LEAF, NULL},
                                   {"sim_signing_key_env", CK_LEAF, NULL},
                                   {NULL, CK_LEAF, NULL}};
static const ck_t ck_mailgun[] = {{"webhook_key_env", CK_LEAF, NULL}, {NULL, CK_LEAF, NULL}};
static const struct {
	const char *kind;
	const ck_t *keys;
} ck_kinds[] = {{"twilio", ck_twilio},
                {"vonage", ck_vonage},
                {"sendgrid", ck_sendgrid},
                {"mailgun", ck_mailgun}};
static const ck_t ck_route[] = {{"strategy", CK_LEAF, NULL},
                                {"vendors", CK_LEAF, NULL},
                                {NULL, CK_LEAF, NULL}};
static const ck_t ck_routes[] = {{"sms", CK_OBJ, ck_route},
                                 {"email", CK_OBJ, ck_route},
                                 {NULL, CK_LEAF, NULL}};
/* dispatcher: core/cfg.c, dispatcher/retry.c */
static const ck_t ck_dispatcher[] = {{"max_attempts", CK_LEAF, NULL},
                                     {"retry_base_ms", CK_LEAF, NULL},
                                     {"retry_max_ms", CK_LEAF, NULL},
                                     {"max_in_flight", CK_LEAF, NULL},
                                     {"http_threads", CK_LEAF, NULL},
                                     {"retry_budget", CK_LEAF, NULL},
                                     {"retry_budget_min_per_s", CK_LEAF, NULL},
                                     {"metrics_listen", CK_LEAF, NULL}, /* dispatcher/dsp_metrics.c */
                                     {"ambiguous_grace_ms", CK_LEAF, NULL}, /* dispatcher/dsp_setup.c */
                                     {"static_membership", CK_LEAF, NULL}, /* dispatcher/dsp_group.c */
                                     {"partition_leases", CK_LEAF, NULL}, /* dispatcher/dsp_group.c */
                                     {"rate_share", CK_LEAF, NULL}, /* dispatcher/dsp_setup.c */
                                     {NULL, CK_LEAF, NULL}};
/* tracker: core/cfg.c, tracker/http.c, tracker/reply.c, tracker/presence.c */
static const ck_t ck_tracker[] = {{"db", CK_LEAF, NULL},
                                  {"listen", CK_LEAF, NULL},
                                  {"public_url", CK_LEAF, NULL},
                                  {"control_token_env", CK_LEAF, NULL},
                                  {"control_tokens", CK_LEAF, NULL}, /* tracker/ctl.c checks its entries */
                                  {"api_cache_ms", CK_LEAF, NULL},
                                  {"webhook_max_age_s", CK_LEAF, NULL},
                                  {"reply_per_number_hour", CK_LEAF, NULL},
                                  {"reply_per_minute", CK_LEAF, NULL},
                                  {"conns_per_ip", CK_LEAF, NULL},
                                  {"allowed_hosts", CK_LEAF, NULL},
                                  {"dispatcher_idle_s", CK_LEAF, NULL},
                                  {"upload_max_mb", CK_LEAF,
                                   NULL}, /* tracker/web.c: audience uploads from the page */
                                  {"reconcile_after_s", CK_LEAF, NULL},
                                  {"unknown_receipt_after_s", CK_LEAF, NULL}, /* tracker/recon.c */
                                  {NULL, CK_LEAF, NULL}};
/* compliance: tracker/http.c (SMS keyword replies) */
static const ck_t ck_compliance[] = {{"program", CK_LEAF, NULL},
                                     {"help_reply", CK_LEAF, NULL},
                                     {"stop_reply", CK_LEAF, NULL},
                                     {"start_reply", CK_LEAF, NULL},
                                     {NULL, CK_LEAF, NULL}};
/* quiet_hours.<channel>: core/cfg.c, producer/prod.c */
static const ck_t ck_qh_ch[] = {{"enabled", CK_LEAF, NULL},
                                {"start", CK_LEAF, NULL},
                                {"end", CK_LEAF, NULL},
                                {NULL, CK_LEAF, NULL}};
static const ck_t ck_qh[] = {{"sms", CK_OBJ, ck_qh_ch},
                             {"email", CK_OBJ, ck_qh_ch},
                             {NULL, CK_LEAF, NULL}};
/* email: templates/email.c */
static const ck_t ck_email[] = {{"unsubscribe_key_env", CK_LEAF, NULL}, {NULL, CK_LEAF, NULL}};
/* tracker/web.c: launches from the page */
static const ck_t ck_launch[] = {{"approvals", CK_LEAF, NULL},
                                 {"max_lag", CK_LEAF, NULL},
                                 {NULL, CK_LEAF, NULL}};
static const ck_t ck_root[] = {{"var_dir", CK_LEAF, NULL},
                               {"kafka", CK_FREE, NULL},
                               {"vendors", CK_LIST, ck_vendor},
                               {"routes", CK_OBJ, ck_routes},
                               {"dispatcher", CK_OBJ, ck_dispatcher},
                               {"tracker", CK_OBJ, ck_tracker},
                               {"compliance", CK_OBJ, ck_compliance},
                               {"email", CK_OBJ, ck_email},
                               {"launch", CK_OBJ, ck_launch},
                               {"quiet_hours", CK_OBJ, ck_qh},
                               {NULL, CK_LEAF, NULL}};

static const ck_t *ck_find(const ck_t *t, const char *k)
{
	for (; t && t->name; t++)
		if (!strcmp(t->name, k))
			return t;
	return NULL;
}

static const ck_t *ck_kind_keys(const char *kind)
{
	for (size_t i = 0; kind && i < sizeof ck_kinds / sizeof ck_kinds[0]; i++)
		if (!strcmp(ck_kinds[i].kind, kind))
			return ck_kinds[i].keys;
	return NULL;
}

/* One line for the unknown key k at path.k: the closest known key of this object, else
 * the kind of vendor that reads it, else the keys this object has. */
static int ck_unknown(const cfg_t *c, const char *path, const char *k, const ck_t *a, const ck_t *b,
                      char *err, size_t errlen)
{
	near_t n;
	near_init(&n, k);
	for (const ck_t *t = a; t && t->name; t++)
		near_offer(&n, t->name);
	for (const ck_t *t = b; t && t->name; t++)
		near_offer(&n, t->name);
	const char *best = near_best(&n);
	char hint[512];
	if (best) {
		snprintf(hint, sizeof hint, "did you mean %s?", best);
	} else {
		const char *owner = NULL;
		for (size_t i = 0; a == ck_vendor && i < sizeof ck_kinds / sizeof ck_kinds[0]; i++)
			if (ck_find(ck_kinds[i].keys, k))
				owner = ck_kinds[i].kind;
		if (owner) {
			snprintf(hint, sizeof hint, "only %s vendors have it", owner);
		} else {
			size_t hl = (size_t)snprintf(hint, sizeof hint, "known:");
			for (int pass = 0; pass < 2; pass++)
				for (const ck_t *t = pass ? b : a; t && t->name && hl < sizeof hint; t++)
					hl += (size_t)snprintf(hint + hl, sizeof hint - hl, " %s",
					                       t->name);
		}
	}
	snprintf(err, errlen, "%s: unknown field %s%s%s (%s)", c->path, path, *path ? "." : "", k,
	         hint);
	return TOCSIN_ERR_CONFIG;
}

static int ck_object(const cfg_t *c, json_t *o, const char *path, const ck_t *a, const ck_t *b,
                     char *err, size_t errlen);

static int ck_value(const cfg_t *c, json_t *v, const char *path, const ck_t *f, char *err, size_t errlen)
{
	char sub[1024];
	const char *k;
	json_t *x;
	switch (f->shape) {
	case CK_OBJ: return ck_object(c, v, path, f->sub, NULL, err, errlen);
	case CK_MAP:
		if (!json_is_object(v))
			return 0;
		json_object_foreach(v, k, x)
		{
			if (snprintf(sub, sizeof sub, "%s.%s", path, k) >= (int)sizeof sub)
				return bad(err, errlen, c,
				           "a key path is longer than 1000 characters%s%s", NULL,
				           NULL);
			int rc = ck_object(c, x, sub, f->sub, NULL, err, errlen);
			if (rc)
				return rc;
		}
		return 0;
	case CK_LIST:
		for (size_t i = 0; json_is_array(v) && i < json_array_size(v); i++) {
			x = json_array_get(v, i);
			if (snprintf(sub, sizeof sub, "%s[%zu]", path, i) >= (int)sizeof sub)
				return bad(err, errlen, c,
				           "a key path is longer than 1000 characters%s%s", NULL,
				           NULL);
			/* vendors[]: the fields of every kind plus those of its own kind */
			const ck_t *kind = f->sub == ck_vendor ? ck_kind_keys(json_string_value(
			                                             json_object_get(x, "kind")))
			                                       : NULL;
			int rc = ck_object(c, x, sub, f->sub, kind, err, errlen);
			if (rc)
				return rc;
		}
		return 0;
	default: return 0;
	}
}

/* Check every key of o (when it is an object; its reader refuses other types) against the
 * tables a and b, and recurse into the known keys that are objects themselves. */
static int ck_object(const cfg_t *c, json_t *o, const char *path, const ck_t *a, const ck_t *b,
                     char *err, size_t errlen)
{
	if (!json_is_object(o))
		return 0;
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	{
		const ck_t *f = ck_find(a, k);
		if (!f)
			f = ck_find(b, k);
		if (!f)
			return ck_unknown(c, path, k, a, b, err, errlen);
		char sub[1024];
		if (snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", k) >= (int)sizeof sub)
			return bad(err, errlen, c, "a key path is longer than 1000 characters%s%s",
			           NULL, NULL);
		int rc = ck_value(c, v, sub, f, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
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
		return bad(err, errlen, c,
		           "vendor %s needs \"base_url\" starting with http:// or https://%s", name,
		           NULL);
	v->base_url = dupstr(base);
	size_t bl = strlen(v->base_url);
	while (bl > 0 && v->base_url[bl - 1] == '/')
		v->base_url[--bl] = 0;
	v->account = dupstr(get_str(o, "account", NULL));
	v->secret_env = dupstr(get_str(o, "secret_env", NULL));
	json_t *wa = json_object_get(o, "webhook_auth");
	if (wa && (!json_is_string(wa) || (strcmp(json_string_value(wa), "signed") &&
	                                   strcmp(json_string_value(wa), "none"))))
		return bad(err, errlen, c,
		           "vendor %s: \"webhook_auth\" must be \"signed\" or \"none\"%s", name, NULL);
	if (wa && !strcmp(json_string_value(wa), "none") && strcmp(kind, "vonage"))
		return bad(err, errlen, c,
		           "vendor %s: \"webhook_auth\":\"none\" is for Vonage only (kind %s always signs "
		           "its webhooks)",
		           name, kind);
	json_t *sm = json_object_get(o, "signature_method");
	static const char *const sms[] = {"md5hash", "md5", "sha1", "sha256", "sha512"};
	int smok = !sm;
	for (size_t i = 0; sm && json_is_string(sm) && i < sizeof sms / sizeof sms[0]; i++)
		smok |= !strcmp(sms[i], json_string_value(sm));
	if (!smok)
		return bad(err, errlen, c,
		           "vendor %s: \"signature_method\" must be md5hash, md5, sha1, sha256 or sha512%s",
		           name, NULL);
	char vwhat[160];
	snprintf(vwhat, sizeof vwhat, "vendor %s", name);
	if (check_countries(c, o, vwhat, err, errlen))
		return TOCSIN_ERR_CONFIG;
	json_t *sse = json_object_get(o, "signature_secret_env");
	if (sse && !json_is_string(sse))
		return bad(err, errlen, c, "vendor %s: \"signature_secret_env\" must be a string%s",
		           name, NULL);
	double d;
	if (get_num(o, "rate_per_s", 0, &v->rate_per_s) || v->rate_per_s < 0)
		return bad(err, errlen, c, "vendor %s: \"rate_per_s\" must be a number >= 0%s",
		           name, NULL);
	if (get_num(o, "rate_per_sender", 0, &v->rate_per_sender) || v->rate_per_sender < 0)
		return bad(err, errlen, c, "vendor %s: \"rate_per_sender\" must be a number >= 0%s",
		           name, NULL);
	if (get_num(o, "burst", 0, &d) || d < 0)
		return bad(err, errlen, c, "vendor %s: \"burst\" must be a number >= 0%s", name, NULL);
	v->burst = (int)d;
	if (get_num(o, "max_in_flight", 64, &d) || d < 1 || d > 10000)
		return bad(err, errlen, c, "vendor %s: \"max_in_flight\" must be 1..10000%s", name,
		           NULL);
	v->max_in_flight = (int)d;
	if (get_num(o, "timeout_ms", 10000, &d) || d < 1)
		return bad(err, errlen, c, "vendor %s: \"timeout_ms\" must be >= 1%s", name, NULL);
	v->timeout_ms = (int)d;
	if (get_num(o, "cost", 0, &v->cost) || v->cost < 0)
		return bad(err, errlen, c, "vendor %s: \"cost\" must be a number >= 0%s", name, NULL);
	json_t *senders = json_object_get(o, "senders");
	if (senders && !json_is_object(senders))
		return bad(err, errlen, c,
		           "vendor %s: \"senders\" must be an object pool -> {from}%s", name, NULL);
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
				char what[300];
				snprintf(what, sizeof what, "vendor %s: sender pool %s", name, pool);
				if (check_countries(c, so, what, err, errlen))
					return TOCSIN_ERR_CONFIG;
			}
			if (!s->from && !s->service)
				return bad(err, errlen, c,
				           "vendor %s: sender pool %s needs \"from\" or \"service\"",
				           name, pool);
		}
	}
	return 0;
}

static int parse_routes(cfg_t *c, json_t *routes, char *err, size_t errlen)
{
	if (routes && !json_is_object(routes))
		return bad(err, errlen, c, "\"routes\" must be an object channel -> route%s%s",
		           NULL, NULL);
	for (int ch = 0; ch < MSG_CH__COUNT; ch++) {
		cfg_route_t *r = &c->routes[ch];
		json_t *ro = routes ? json_object_get(routes, msg_channel_name((msg_channel_t)ch))
		                    : NULL;
		const char *strategy = ro ? get_str(ro, "strategy", "priority") : "priority";
		if (strcmp(strategy, "priority") && strcmp(strategy, "cheapest"))
			return bad(err, errlen, c,
			           "route %s: unknown strategy \"%s\" (priority, cheapest)",
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
					return bad(err, errlen, c,
					           "route %s names unknown vendor \"%s\"",
					           msg_channel_name((msg_channel_t)ch),
					           vn ? vn : "(not a string)");
				if (v->channel != (msg_channel_t)ch)
					return bad(err, errlen, c,
					           "route %s names vendor \"%s\" of another channel",
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
	int rc = ck_object(c, root, "", ck_root, NULL, err, errlen);
	if (rc)
		return rc;
	c->var_dir = dupstr(get_str(root, "var_dir", "var"));
	json_t *k = json_object_get(root, "kafka");
	if (k && !json_is_object(k))
		return bad(err, errlen, c,
		           "\"kafka\" must be an object of librdkafka properties%s%s", NULL, NULL);
	c->kafka = k ? json_incref(k) : json_object();
	const char *key;
	json_t *val;
	json_object_foreach(c->kafka, key, val)
	{
		if (!json_is_string(val))
			return bad(err, errlen, c, "kafka property \"%s\" must be a string%s", key,
			           NULL);
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
				return bad(err, errlen, c, "vendor name \"%s\" appears twice%s",
				           c->vendors[i].name, NULL);
	}
	rc = parse_routes(c, json_object_get(root, "routes"), err, errlen);
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
		return bad(err, errlen, c, "dispatcher.retry_max_ms must be >= retry_base_ms%s%s",
		           NULL, NULL);
	c->retry_max_ms = (int)x;
	if (get_num(d, "max_in_flight", 256, &x) || x < 1 || x > 100000)
		return bad(err, errlen, c, "dispatcher.max_in_flight must be 1..100000%s%s", NULL,
		           NULL);
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
	if (get_num(t, "webhook_max_age_s", 300, &x) || x < 1 || x > 86400)
		return bad(err, errlen, c, "tracker.webhook_max_age_s must be 1..86400%s%s", NULL,
		           NULL);
	c->webhook_max_age_s = (int)x;
	if (get_num(t, "reply_per_number_hour", 5, &x) || x < 0 || x > 1000)
		return bad(err, errlen, c, "tracker.reply_per_number_hour must be 0..1000%s%s",
		           NULL, NULL);
	c->reply_per_number_hour = (int)x;
	if (get_num(t, "reply_per_minute", 60, &x) || x < 0 || x > 100000)
		return bad(err, errlen, c, "tracker.reply_per_minute must be 0..100000%s%s", NULL,
		           NULL);
	c->reply_per_minute = (int)x;
	if (quiet_hours(c, json_object_get(root, "quiet_hours"), err, errlen))
		return TOCSIN_ERR_CONFIG;
	if (get_num(t, "conns_per_ip", 64, &x) || x < 1 || x > 10000)
		return bad(err, errlen, c, "tracker.conns_per_ip must be 1..10000%s%s", NULL, NULL);
	c->conns_per_ip = (int)x;
	if (get_num(t, "reconcile_after_s", 900, &x) || x < 0 || x > 604800)
		return bad(err, errlen, c,
		           "tracker.reconcile_after_s must be 0..604800 (0 = off)%s%s", NULL, NULL);
	c->reconcile_after_s = (int)x;
	if (get_num(t, "unknown_receipt_after_s", 86400, &x) || x < 1 || x > 2592000 ||
	    (c->reconcile_after_s && x < c->reconcile_after_s))
		return bad(err, errlen, c,
		           "tracker.unknown_receipt_after_s must be 1..2592000 and at least "
		           "tracker.reconcile_after_s%s%s",
		           NULL, NULL);
	c->unknown_receipt_after_s = (int)x;
	json_t *ah = json_object_get(t, "allowed_hosts");
	if (ah) {
		size_t i;
		json_t *h;
		if (!json_is_array(ah) || !json_array_size(ah))
			return bad(err, errlen, c,
			           "tracker.allowed_hosts must be a non-empty array of host names%s%s",
			           NULL, NULL);
		json_array_foreach(ah, i, h) if (!json_is_string(h) || !*json_string_value(h)) return bad(
		    err, errlen, c,
		    "tracker.allowed_hosts must hold strings (host or host:port)%s%s", NULL, NULL);
		c->allowed_hosts = ah;
	}
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
				snprintf(err, errlen, "%s: cannot read config: %s", path,
				         strerror(errno));
			else
				snprintf(err, errlen, "%s:%d:%d: invalid JSON: %s", path, je.line,
				         je.column, je.text);
			cfg_free(c);
			return NULL;
		}
	} else {
		c->path = strdup(CFG_BUILTIN_PATH);
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
