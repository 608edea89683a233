/* ctl.c -- operator controls published on Kafka, shared by the HTTP API and the subcommands. */
#include "tracker/ctl.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/kq.h"
#include "core/log.h"

#include <sqlite3.h>
#include <stdio.h>
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

static int publish(rd_kafka_t *rk, const char *topic, const char *key, buf_t *b, char *err,
                   size_t errlen)
{
	if (kq_produce(rk, topic, key, strlen(key), b->p, b->len, NULL) || kq_flush(rk, 10000)) {
		snprintf(err, errlen, "could not publish to %s within 10 s (is the broker running?)",
		         topic);
		return TOCSIN_ERR_KAFKA;
	}
	return 0;
}

int trk_ctl_campaign(rd_kafka_t *rk, trk_store_t *rd, const char *id, const char *action,
                     char *err, size_t errlen)
{
	msg_camp_state_t to;
	if (!strcmp(action, "pause"))
		to = MSG_CAMP_PAUSED;
	else if (!strcmp(action, "resume"))
		to = MSG_CAMP_RUNNING;
	else if (!strcmp(action, "cancel"))
		to = MSG_CAMP_CANCELLED;
	else {
		snprintf(err, errlen, "unknown campaign action \"%s\" (pause, resume or cancel)", action);
		return TOCSIN_ERR_INVAL;
	}
	if (!id || !*id || strlen(id) > 255) {
		snprintf(err, errlen, "campaign id must be 1..255 bytes");
		return TOCSIN_ERR_INVAL;
	}
	char name[256] = "";
	int64_t queued = -1;
	int known = 0;
	if (rd) {
		sqlite3_stmt *q = NULL;
		if (sqlite3_prepare_v2(trk_store_db(rd),
		                       "SELECT name, state, queued FROM campaigns WHERE id=?1", -1, &q,
		                       NULL) == SQLITE_OK) {
			sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
			if (sqlite3_step(q) == SQLITE_ROW) {
				known = 1;
				const unsigned char *n = sqlite3_column_text(q, 0);
				snprintf(name, sizeof name, "%s", n ? (const char *)n : "");
				if (sqlite3_column_int(q, 1) == MSG_CAMP_CANCELLED && to != MSG_CAMP_CANCELLED) {
					sqlite3_finalize(q);
					snprintf(err, errlen, "campaign \"%s\" is cancelled; it cannot be %sd", id,
					         action);
					return TOCSIN_ERR_STATE;
				}
				queued = sqlite3_column_type(q, 2) == SQLITE_NULL ? -1
				                                                  : sqlite3_column_int64(q, 2);
			}
		}
		sqlite3_finalize(q);
		if (!known) {
			sqlite3_stmt *q2 = NULL;
			if (sqlite3_prepare_v2(trk_store_db(rd), "SELECT 1 FROM counts WHERE campaign=?1 LIMIT 1",
			                       -1, &q2, NULL) == SQLITE_OK) {
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
	msg_campaign_t rec = {.id = id, .name = name[0] ? name : NULL, .state = to, .queued = queued,
	                      .ts_ms = clock_wall_ms()};
	buf_t b;
	buf_init(&b, 8192);
	int rc = msg_campaign_encode(&rec, &b);
	if (!rc)
		rc = publish(rk, KQ_T_CAMPAIGNS, id, &b, err, errlen);
	buf_free(&b);
	if (!rc)
		log_info("event=operator_action action=%s campaign=%s", action, id);
	return rc;
}

int trk_ctl_vendor(rd_kafka_t *rk, const cfg_t *cfg, const char *vendor, const char *action,
                   char *err, size_t errlen)
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
	msg_vhealth_t h = {.vendor = vendor, .state = to,
	                   .reason = to == MSG_VH_DRAINED ? "operator drain" : "operator undrain",
	                   .by = "operator", .p95_ms = -1, .error_rate = -1, .ts_ms = clock_wall_ms()};
	buf_t b;
	buf_init(&b, 8192);
	int rc = msg_vhealth_encode(&h, &b);
	if (!rc)
		rc = publish(rk, KQ_T_VENDOR_HEALTH, vendor, &b, err, errlen);
	buf_free(&b);
	if (!rc)
		log_info("event=operator_action action=%s vendor=%s", action, vendor);
	return rc;
}
