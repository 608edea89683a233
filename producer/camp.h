/* camp.h -- the campaign file (campaign.json): audience, column mapping, SMS and email versions. */
#ifndef TOCSIN_CAMP_H
#define TOCSIN_CAMP_H
#include <jansson.h>
#include <stdint.h>

#include "producer/aud.h"

/* Plain data read once (like cfg_t): every string is owned by the camp_t.
 * Paths inside the file are resolved relative to the campaign file. */
typedef struct camp {
	char *path;     /* the campaign file as given */
	char *id;       /* "id": [A-Za-z0-9._-]{1,64} */
	char *name;     /* "name", default = id */
	aud_spec_t aud; /* "audience": path/format/table/query (strings below) */
	char *aud_path, *aud_table, *aud_query;
	char *col_phone; /* "audience.phone": column holding the phone, default "phone" */
	char *col_email; /* "audience.email": default "email" */
	char *col_tz, *col_zip, *col_state; /* optional, carried for quiet hours (NULL = none) */
	char *country;      /* "audience.country": default country for phones, only "US" (+1) */
	int priority;       /* "priority", default 0 */
	int64_t expires_s;  /* "expires_in_s", default 86400; 0 = never */
	int64_t send_at_ms; /* "send_at": RFC 3339 with an offset; 0 = "now" (the default) */
	/* "quiet_hours": {"start","end"} narrows tocsin.json's window (checked by prod_new);
	 * {"override": "urgent"} turns quiet hours off for this campaign, shown by preview */
	int qh_start, qh_end; /* minutes after midnight; -1 = the configuration's */
	int qh_urgent;
	int missing_empty; /* "on_missing_field": "reject" (default) or "empty" */
	/* SMS version ("sms": {...}); sms_on = 0 when absent */
	int sms_on;
	char *sms_sender; /* sender pool, default "main" */
	char *sms_template;
	int sms_max_segments; /* default 6 */
	char *sms_footer;     /* NULL = none */
	int sms_smart;        /* "smart_replace", default true */
	/* email version ("email": {...}) */
	int email_on;
	char *email_sender; /* sender pool, default "main" */
	char *email_subject, *email_text, *email_html;
	/* output files, default under <var_dir>/launch/<id>/ */
	char *rejects_path, *report_path;
	json_t *root;
} camp_t;

/* Load and validate path. Returns a new camp_t (caller frees, camp_free) or
 * NULL with "path: reason" (or "path:line:col: reason" for bad JSON) in err.
 * Main thread. */
camp_t *camp_load(const char *path, char *err, size_t errlen);
void camp_free(camp_t *c);

#endif
