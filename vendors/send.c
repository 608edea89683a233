/* send.c -- `tocsin vendor-send`: one test message through a configured vendor (vendors/vsend.h), outcome printed. */
#include "core/num.h"
#include "core/buf.h"
#include "core/cmd.h"
#include "core/err.h"
#include "core/hash.h"
#include "vendors/vsend.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: tocsin vendor-send VENDOR --to ADDRESS [--text TEXT] [--subject SUBJECT]\n"
	        "                          [--sender POOL] [--id ID] [--campaign ID] [--count N]\n"
	        "\n"
	        "Send one test message (or, for an email vendor, a batch of N to ADDRESS plus\n"
	        "+1..+N-1 sub-addresses) through the adapter of the configured vendor VENDOR,\n"
	        "exactly as the dispatcher would, and print the classified outcome per message:\n"
	        "  vendor=<name> id=<id> to=<address> outcome=accepted|defer|permanent|optout|config\n"
	        "  code=<vendor code> ref=<vendor reference> http=<status> latency_ms=<n> detail=\"...\"\n"
	        "Use it to check a vendor's credentials and sender pool, or against `tocsin\n"
	        "vendor-sim` to rehearse its faults. It sends a REAL message to a real vendor.\n"
	        "Exit 0 when every message was accepted, 1 otherwise, 2 on usage errors.\n"
	        "\n"
	        "  --to ADDRESS     E.164 number (SMS vendors) or email address\n"
	        "  --text TEXT      SMS body / email text (default: a test line)\n"
	        "  --subject S      email subject (default \"tocsin test\")\n"
	        "  --sender POOL    sender pool (default \"main\")\n"
	        "  --id ID          message id (default: derived from campaign + address)\n"
	        "  --campaign ID    campaign id for the derived id (default \"vendor-send\")\n"
	        "  --count N        email batch size, 1..1000 (default 1)\n");
}

/* The test messages of vendor v: to, and for an email batch its sub-addresses +1..+N-1;
 * ids derived from the campaign and address unless one is given for a single message. */
static void build_msgs(const cfg_vendor_t *v, const char *to, const char *text, const char *subject,
                       const char *sender, const char *id, const char *campaign, int count,
                       msg_out_t *ms, const msg_out_t **pm, char (*ids)[MSG_ID_LEN + 1],
                       char (*tos)[320])
{
	const char *at = strchr(to, '@');
	for (int i = 0; i < count; i++) {
		if (i == 0 || !at)
			snprintf(tos[i], sizeof tos[i], "%s", to);
		else
			snprintf(tos[i], sizeof tos[i], "%.*s+%d%s", (int)(at - to), to, i, at);
		if (id && count == 1)
			snprintf(ids[i], sizeof ids[i], "%s", id);
		else
			msg_make_id(campaign, msg_channel_name(v->channel), tos[i], ids[i]);
		msg_out_t *m = &ms[i];
		m->id = ids[i];
		m->campaign = campaign;
		m->channel = v->channel;
		m->to = tos[i];
		m->sender = sender;
		m->segments = 1;
		if (v->channel == MSG_CH_SMS) {
			m->body = text;
			m->enc = "gsm7";
			for (const char *p = text; *p; p++)
				if ((unsigned char)*p >= 0x80)
					m->enc = "ucs2";
		} else {
			m->subject = subject;
			m->text = text;
		}
		pm[i] = m;
	}
}

int cmd_vendor_send(cfg_t *cfg, int argc, char **argv)
{
	static const struct option opts[] = {{"to", required_argument, NULL, 't'},
	                                     {"text", required_argument, NULL, 'x'},
	                                     {"subject", required_argument, NULL, 's'},
	                                     {"sender", required_argument, NULL, 'p'},
	                                     {"id", required_argument, NULL, 'i'},
	                                     {"campaign", required_argument, NULL, 'c'},
	                                     {"count", required_argument, NULL, 'n'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0}};
	const char *to = NULL, *text = "tocsin test message. Reply STOP to opt out.",
	           *subject = "tocsin test", *sender = "main", *id = NULL, *campaign = "vendor-send";
	int count = 1, o, exit_code = 1;
	optind = 1;
	while ((o = getopt_long(argc, argv, "t:x:s:p:i:c:n:h", opts, NULL)) != -1) {
		switch (o) {
		case 't': to = optarg; break;
		case 'x': text = optarg; break;
		case 's': subject = optarg; break;
		case 'p': sender = optarg; break;
		case 'i': id = optarg; break;
		case 'c': campaign = optarg; break;
		case 'n':
			if (num_int(optarg, 1, 1000, &count)) {
				fprintf(stderr, "tocsin vendor-send: --count must be 1..1000\n");
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc - 1 || !to) {
		fprintf(stderr, "tocsin vendor-send: need one VENDOR and --to (see --help)\n");
		return 2;
	}
	const char *vname = argv[optind];
	const cfg_vendor_t *v = cfg_vendor(cfg, vname);
	if (!v) {
		fprintf(stderr, "tocsin vendor-send: no vendor named \"%s\" in %s\n", vname, cfg->path);
		return 2;
	}
	char err[512];
	vsend_t *vs = vsend_new(cfg, v, NULL, err, sizeof err);
	if (!vs) {
		fprintf(stderr, "tocsin vendor-send: %s\n", err);
		return 1;
	}
	if (count > vnd_max_batch(vsend_vnd(vs))) {
		fprintf(stderr,
		        "tocsin vendor-send: vendor %s takes at most %d message(s) per request\n",
		        vname, vnd_max_batch(vsend_vnd(vs)));
		vsend_free(vs);
		return 2;
	}
	msg_out_t *ms = calloc((size_t)count, sizeof *ms);
	const msg_out_t **pm = calloc((size_t)count, sizeof *pm);
	char(*ids)[MSG_ID_LEN + 1] = calloc((size_t)count, sizeof *ids);
	char(*tos)[320] = calloc((size_t)count, sizeof *tos);
	vnd_result_t *res = calloc((size_t)count, sizeof *res);
	if (!ms || !pm || !ids || !tos || !res) {
		fprintf(stderr, "tocsin vendor-send: out of memory\n");
		exit_code = 1;
		goto out;
	}
	build_msgs(v, to, text, subject, sender, id, campaign, count, ms, pm, ids, tos);
	vsend_info_t info;
	int rc = vsend_msgs(vs, pm, (size_t)count, -1, res, &info, err, sizeof err);
	if (rc) {
		fprintf(stderr, "tocsin vendor-send: %s: %s\n",
		        rc == TOCSIN_ERR_INVAL || rc == TOCSIN_ERR_TOOBIG ? "cannot build the request"
		                                                          : "not sent",
		        err);
		goto out;
	}
	exit_code = 0;
	for (int i = 0; i < count; i++) {
		printf("vendor=%s id=%s to=%s outcome=%s code=%s ref=%s http=%ld latency_ms=%lld "
		       "throttled=%d retry_after_ms=%d detail=\"%s\"\n",
		       vname, ids[i], tos[i], vnd_outcome_name(res[i].outcome),
		       res[i].code[0] ? res[i].code : "-", res[i].ref[0] ? res[i].ref : "-",
		       info.http_status, (long long)info.latency_ms, res[i].throttled,
		       res[i].retry_after_ms, res[i].detail);
		if (res[i].outcome != VND_ACCEPTED)
			exit_code = 1;
	}
out:
	vsend_free(vs);
	free(ms);
	free(pm);
	free(ids);
	free(tos);
	free(res);
	return exit_code;
}
