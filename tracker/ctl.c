/* ctl.c -- operator controls published on Kafka, shared by the HTTP API and the subcommands. */
#include "tracker/ctl.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/kq.h"
#include "core/log.h"
#include "vendors/vnd.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int trk_ctl_campaign_state(trk_store_t *rd, const char *id)
{
	if (!rd)
		return -1;
	sqlite3_stmt *q = NULL;
	int st = -1;
	if (sqlite3_prepare_v2(trk_store_db(rd), "SELECT state FROM campaigns WHERE id=?1", -1, &q,
	                       NULL) == SQLITE_OK) {
		sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
		if (sqlite3_step(q) == SQLITE_ROW)
			st = sqlite3_column_int(q, 0);
	}
	sqlite3_finalize(q);
	return st;
}

static int publish(rd_kafka_t *rk, const char *topic, const char *key, buf_t *b, char *err, size_t errlen)
{
	if (kq_produce(rk, topic, key, strlen(key), b->p, b->len, NULL) || kq_flush(rk, 10000)) {
		snprintf(err, errlen,
		         "could not publish to %s within 10 s (is the broker running?)", topic);
		return TOCSIN_ERR_KAFKA;
	}
	return 0;
}

int trk_ctl_campaign(rd_kafka_t *rk, trk_store_t *rd, const char *id, const char *action,
                     const char *actor, char *err, size_t errlen)
{
	msg_camp_state_t to;
	if (!strcmp(action, "pause"))
		to = MSG_CAMP_PAUSED;
	else if (!strcmp(action, "resume"))
		to = MSG_CAMP_RUNNING;
	else if (!strcmp(action, "cancel"))
		to = MSG_CAMP_CANCELLED;
	else {
		snprintf(err, errlen, "unknown campaign action \"%s\" (pause, resume or cancel)",
		         action);
		return TOCSIN_ERR_INVAL;
	}
	if (!id || !*id || strlen(id) > 255) {
		snprintf(err, errlen, "campaign id must be 1..255 bytes");
		return TOCSIN_ERR_INVAL;
	}
	char name[256] = "";
	int64_t queued = -1, send_at_ms = 0; /* carried on, so the compacted record keeps them */
	int known = 0, qh_urgent = 0;
	if (rd) {
		sqlite3_stmt *q = NULL;
		if (sqlite3_prepare_v2(trk_store_db(rd),
		                       "SELECT name, state, queued, send_at_ms, qh_urgent FROM campaigns"
		                       " WHERE id=?1",
		                       -1, &q, NULL) == SQLITE_OK) {
			sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
			if (sqlite3_step(q) == SQLITE_ROW) {
				known = 1;
				const unsigned char *n = sqlite3_column_text(q, 0);
				snprintf(name, sizeof name, "%s", n ? (const char *)n : "");
				if (sqlite3_column_int(q, 1) == MSG_CAMP_CANCELLED &&
				    to != MSG_CAMP_CANCELLED) {
					sqlite3_finalize(q);
					snprintf(err, errlen,
					         "campaign \"%s\" is cancelled; it cannot be %sd",
					         id, action);
					return TOCSIN_ERR_STATE;
				}
				queued = sqlite3_column_type(q, 2) == SQLITE_NULL
				             ? -1
				             : sqlite3_column_int64(q, 2);
				send_at_ms = sqlite3_column_int64(q, 3);
				qh_urgent = sqlite3_column_int(q, 4) != 0;
			}
		}
		sqlite3_finalize(q);
		if (!known) {
			sqlite3_stmt *q2 = NULL;
			if (sqlite3_prepare_v2(trk_store_db(rd),
			                       "SELECT 1 FROM counts WHERE campaign=?1 LIMIT 1", -1,
			                       &q2, NULL) == SQLITE_OK) {
				sqlite3_bind_text(q2, 1, id, -1, SQLITE_STATIC);
				known = sqlite3_step(q2) == SQLITE_ROW;
			}
			sqlite3_finalize(q2);
		}
		if (!known) {
			snprintf(err, errlen, "unknown campaign \"%s\"", id);
			return TOCSIN_ERR_NOTFOUND;
		}
	}
	msg_campaign_t rec = {.id = id,
	                      .name = name[0] ? name : NULL,
	                      .state = to,
	                      .queued = queued,
	                      .send_at_ms = send_at_ms,
	                      .qh_urgent = qh_urgent,
	                      .ts_ms = clock_wall_ms(),
	                      .actor = actor};
	buf_t b;
	buf_init(&b, 8192);
	int rc = msg_campaign_encode(&rec, &b);
	if (!rc)
		rc = publish(rk, KQ_T_CAMPAIGNS, id, &b, err, errlen);
	buf_free(&b);
	if (!rc)
		log_info("event=operator_action action=%s campaign=%s actor=%s", action, id,
		         actor ? actor : "-");
	return rc;
}

int trk_ctl_vendor(rd_kafka_t *rk, const cfg_t *cfg, const char *vendor, const char *action,
                   const char *actor, char *err, size_t errlen)
{
	msg_vh_state_t to;
	if (!strcmp(action, "drain"))
		to = MSG_VH_DRAINED;
	else if (!strcmp(action, "undrain"))
		to = MSG_VH_HEALTHY;
	else {
		snprintf(err, errlen, "unknown vendor action \"%s\" (drain or undrain)", action);
		return TOCSIN_ERR_INVAL;
	}
	if (!cfg_vendor(cfg, vendor)) {
		snprintf(err, errlen, "unknown vendor \"%s\" (not in the configuration)", vendor);
		return TOCSIN_ERR_NOTFOUND;
	}
	msg_vhealth_t h = {.vendor = vendor,
	                   .state = to,
	                   .reason = to == MSG_VH_DRAINED ? "operator drain" : "operator undrain",
	                   .by = "operator",
	                   .p95_ms = -1,
	                   .error_rate = -1,
	                   .ts_ms = clock_wall_ms(),
	                   .actor = actor};
	buf_t b;
	buf_init(&b, 8192);
	int rc = msg_vhealth_encode(&h, &b);
	if (!rc)
		rc = publish(rk, KQ_T_VENDOR_HEALTH, vendor, &b, err, errlen);
	buf_free(&b);
	if (!rc)
		log_info("event=operator_action action=%s vendor=%s actor=%s", action, vendor,
		         actor ? actor : "-");
	return rc;
}

int trk_ctl_actor_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n < 1 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '@' || c == '-'))
			return 0;
	}
	return 1;
}

#define MAX_TOKENS 64
struct trk_ctl_tokens {
	size_t n;
	struct {
		char name[65];
		const char *token; /* the environment's */
		trk_role_t role;
	} t[MAX_TOKENS];
};

void trk_ctl_tokens_free(trk_ctl_tokens_t *t) { free(t); }
size_t trk_ctl_tokens_count(const trk_ctl_tokens_t *t) { return t ? t->n : 0; }

static const char *const role_names[TRK_ROLE__COUNT] = {"viewer", "sender", "approver", "admin"};

const char *trk_role_name(trk_role_t r)
{
	return r >= 0 && r < TRK_ROLE__COUNT ? role_names[r] : "?";
}

static int token_add(trk_ctl_tokens_t *t, const char *name, const char *env, trk_role_t role,
                     char *err, size_t errlen)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->t[i].name, name)) {
			snprintf(err, errlen, "tracker.control_tokens: name \"%s\" appears twice",
			         name);
			return TOCSIN_ERR_CONFIG;
		}
	const char *tok = getenv(env);
	if (!tok || !*tok) {
		log_warn("event=control_token_unset name=%s env=%s msg=\"this name cannot use the "
		         "controls until the variable is set\"",
		         name, env);
		return 0;
	}
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->t[i].token, tok)) {
			snprintf(err, errlen,
			         "tracker.control_tokens: %s and %s have the same token (give each its own)",
			         t->t[i].name, name);
			return TOCSIN_ERR_CONFIG;
		}
	if (t->n == MAX_TOKENS) {
		snprintf(err, errlen, "tracker.control_tokens: more than %d tokens", MAX_TOKENS);
		return TOCSIN_ERR_CONFIG;
	}
	snprintf(t->t[t->n].name, sizeof t->t[0].name, "%s", name);
	t->t[t->n].role = role;
	t->t[t->n++].token = tok;
	return 0;
}

trk_ctl_tokens_t *trk_ctl_tokens_new(const cfg_t *cfg, char *err, size_t errlen)
{
	trk_ctl_tokens_t *t = calloc(1, sizeof *t);
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	json_t *list = json_object_get(json_object_get(cfg->root, "tracker"), "control_tokens");
	if (list && !json_is_array(list)) {
		snprintf(err, errlen,
		         "tracker.control_tokens must be an array of {\"name\", \"token_env\"}");
		goto fail;
	}
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e)
	{
		const char *k;
		json_t *v;
		json_object_foreach(e, k, v)
		{
			if (strcmp(k, "name") && strcmp(k, "token_env") && strcmp(k, "role")) {
				snprintf(err, errlen,
				         "tracker.control_tokens[%zu]: unknown field \"%.40s\"", i, k);
				goto fail;
			}
		}
		const char *name = json_string_value(json_object_get(e, "name"));
		const char *env = json_string_value(json_object_get(e, "token_env"));
		if (!json_is_object(e) || !trk_ctl_actor_ok(name) || !env || !*env) {
			snprintf(err, errlen,
			         "tracker.control_tokens[%zu] needs \"name\" (1..64 of letters, digits, . _ @ -) "
			         "and \"token_env\"",
			         i);
			goto fail;
		}
		json_t *rv = json_object_get(e, "role");
		trk_role_t role = TRK_ROLE_ADMIN;
		if (rv) {
			int r = TRK_ROLE__COUNT;
			for (int k = 0; k < TRK_ROLE__COUNT; k++)
				if (json_is_string(rv) && !strcmp(json_string_value(rv), role_names[k]))
					r = k;
			if (r == TRK_ROLE__COUNT) {
				snprintf(err, errlen,
				         "tracker.control_tokens[%zu].role must be \"viewer\", \"sender\", "
				         "\"approver\" or \"admin\"",
				         i);
				goto fail;
			}
			role = (trk_role_t)r;
		}
		if (token_add(t, name, env, role, err, errlen))
			goto fail;
	}
	if (cfg->control_token_env &&
	    token_add(t, "operator", cfg->control_token_env, TRK_ROLE_ADMIN, err, errlen))
		goto fail;
	return t;
fail:
	free(t);
	return NULL;
}

const char *trk_ctl_tokens_who_role(const trk_ctl_tokens_t *t, const char *presented, trk_role_t *role)
{
	const char *who = NULL;
	if (!t || !presented)
		return NULL;
	size_t n = strlen(presented);
	for (size_t i = 0; i < t->n; i++) /* every one compared: the time says nothing of which */
		if (vnd_ct_eq(presented, n, t->t[i].token, strlen(t->t[i].token)) && !who) {
			who = t->t[i].name;
			if (role)
				*role = t->t[i].role;
		}
	return who;
}

const char *trk_ctl_tokens_who(const trk_ctl_tokens_t *t, const char *presented)
{
	return trk_ctl_tokens_who_role(t, presented, NULL);
}
