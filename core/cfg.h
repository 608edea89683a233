/* cfg.h -- tocsin.json: Kafka properties, vendors, routes, dispatcher and tracker settings. */
#ifndef TOCSIN_CFG_H
#define TOCSIN_CFG_H
#include <jansson.h>
#include <stddef.h>

#include "core/msg.h"

/* The configuration is plain data read once at start-up and never changed
 * afterwards, so its structs are public and read directly by every module;
 * the cfg_t owns every string and array inside it. Adapter-specific fields
 * are read from `raw`. */

typedef struct cfg_sender {
	char *pool;    /* sender pool name used by campaigns, e.g. "main" */
	char *from;    /* number / from-address on this vendor, or NULL */
	char *service; /* Twilio MessagingServiceSid, or NULL */
} cfg_sender_t;

typedef struct cfg_vendor {
	char *name; /* unique, e.g. "twilio" or "twilio-backup" */
	char *kind; /* adapter: twilio | vonage | sendgrid | mailgun */
	msg_channel_t channel;
	char *base_url;   /* e.g. https://api.twilio.com or the emulator */
	char *account;    /* Twilio AccountSid / Vonage api_key / Mailgun domain; not secret */
	char *secret_env; /* name of the environment variable holding the secret */
	cfg_sender_t *senders;
	size_t nsenders;
	double rate_per_s;      /* segments (SMS) or emails per second; 0 = unlimited */
	double rate_per_sender; /* per sender number; 0 = unlimited */
	int burst;              /* extra units allowed at once */
	int max_in_flight;      /* concurrent HTTP requests */
	int timeout_ms;         /* whole-request timeout */
	double cost;            /* per SMS segment or per email, in the account currency */
	json_t *raw;            /* the vendor's config object (borrowed from cfg) */
} cfg_vendor_t;

typedef struct cfg_route {
	char *strategy; /* "priority" (default) or "cheapest" */
	char **vendors; /* vendor names, in order */
	size_t nvendors;
} cfg_route_t;

/* cfg_t.path when no file was loaded. */
#define CFG_BUILTIN_PATH "(built-in defaults)"

typedef struct cfg {
	char *path;    /* file loaded, or CFG_BUILTIN_PATH */
	char *var_dir; /* run files, sqlite db, reports; default "var" */
	json_t *kafka; /* object: librdkafka property -> string value */
	cfg_vendor_t *vendors;
	size_t nvendors;
	cfg_route_t routes[MSG_CH__COUNT];
	/* dispatcher */
	int max_attempts;
	int retry_base_ms;
	int retry_max_ms;
	int max_in_flight; /* total across vendors */
	int http_threads;  /* sending threads per dispatcher; 0 = on the event loop's thread */
	/* tracker */
	char *db_path;      /* default <var_dir>/tocsin.db */
	char *track_listen; /* default 127.0.0.1:8026 */
	char *public_url;   /* webhook / unsubscribe base URL */
	char *control_token_env;
	int webhook_max_age_s;     /* signed webhook timestamps further from now are refused */
	int reply_per_number_hour; /* automatic SMS replies to one number per hour */
	int reply_per_minute;      /* automatic SMS replies per minute, all numbers */
	int conns_per_ip;          /* HTTP connections one client address may hold */
	int reconcile_after_s; /* accepted/sent with no news this long: ask the vendor; 0 = off */
	int unknown_receipt_after_s; /* ... and this long: unknown_receipt */
	json_t *allowed_hosts;       /* array of Host header values the API and dashboard answer,
	                            or NULL: loopback names and public_url's host (borrowed) */
	/* quiet_hours.<channel> (core/cfg.c; producer/prod.c): each recipient's local-time
	 * window in minutes after midnight; on for SMS (08:00-20:00), off for email unless set */
	int qh_on[MSG_CH__COUNT];
	int qh_start[MSG_CH__COUNT], qh_end[MSG_CH__COUNT];
	json_t *root; /* the whole document */
} cfg_t;

/* Load path, or when path is NULL: $TOCSIN_CONFIG, else ./tocsin.json if it
 * exists, else the built-in defaults (embedded broker, local emulator).
 * Returns a new cfg_t owned by the caller (cfg_free()) or NULL with a
 * one-line reason naming the file and field in err. Main thread. */
cfg_t *cfg_load(const char *path, char *err, size_t errlen);
void cfg_free(cfg_t *c);

/* The vendor named name, or NULL. */
const cfg_vendor_t *cfg_vendor(const cfg_t *c, const char *name);
/* The sender entry of vendor v for pool, or NULL when v owns no number for it. */
const cfg_sender_t *cfg_sender(const cfg_vendor_t *v, const char *pool);
/* The secret of v from its environment variable, or NULL when unset. The
 * returned pointer is owned by the environment; never log it. */
const char *cfg_secret(const cfg_vendor_t *v);
/* Join var_dir and rel into out. Returns 0 or TOCSIN_ERR_TOOBIG. */
int cfg_var_path(const cfg_t *c, const char *rel, char *out, size_t outlen);

/* The built-in default configuration document (also examples/tocsin.json). */
extern const char cfg_default_json[];

#endif
