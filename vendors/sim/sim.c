/* sim.c -- `tocsin vendor-sim`: the four vendor APIs on loopback, with faults injectable at run time. */
#include "vendors/sim/sim.h"

#include "core/clock.h"
#include "core/cmd.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/num.h"
#include "core/runfile.h"
#include "core/sig.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SIM_MAX_REQ (32u << 20) /* SendGrid allows < 30 MB */

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: tocsin vendor-sim [--listen HOST:PORT] [--threads N]\n"
	        "\n"
	        "Run the vendor API emulator on 127.0.0.1 (default 127.0.0.1:8025; port 0 picks a\n"
	        "free port). It serves the Twilio, Vonage, SendGrid and Mailgun send APIs (and\n"
	        "Twilio's message list and fetch) for every vendor in the config, authenticating\n"
	        "each request against that vendor's account and secret (the environment variable\n"
	        "named by secret_env), and answers with the vendor's own shapes; its webhooks are\n"
	        "signed as the vendor signs them (Vonage: signature_secret_env, signature_method).\n"
	        "Writes <var_dir>/run/vendor-sim.addr and .pid; stops on SIGTERM or Ctrl-C.\n"
	        "\n"
	        "Control API (same port):\n"
	        "  GET  /_sim/stats   per vendor: requests, accepted, unique_ids, duplicate_count,\n"
	        "                     duplicate_ids, per_second ([unix second, accepted] pairs)\n"
	        "  GET  /_sim/ticks   per vendor: [unix ms / 50, requests, accepted] per 50 ms\n"
	        "  POST /_sim/reset   zero the counts\n"
	        "  GET  /_sim/config  the fault settings per vendor\n"
	        "  POST /_sim/config  change faults: {\"vendor\":\"twilio\",\"latency_ms\":{\"median\":20,\n"
	        "                     \"tail\":500 (p99)},\"error_rate\":0.1,\"throttle_rate\":0.1,\n"
	        "                     \"retry_after_s\":1,\"outage\":\"none|refuse|reset|503|hang|auth\",\n"
	        "                     \"permanent_rate\":0,\"optout_rate\":0,\"receipts\":{\"enabled\":true,\n"
	        "                     \"delay_ms\":500,\"delivered_rate\":0.95,\"url\":\"...\"}}\n"
	        "  POST /_sim/inbound {\"vendor\":\"twilio\",\"from\":\"+1...\",\"body\":\"STOP\"}: send an\n"
	        "                     inbound message webhook, signed like the vendor\n"
	        "  GET  /_sim/keys    the SendGrid webhook public key per vendor (base64 DER)\n"
	        "  GET  /_sim/receipts  webhook deliveries: sent, failed, dropped, pending\n"
	        "\n"
	        "Options:\n"
	        "  --listen HOST:PORT  address (127.0.0.1 only)\n"
	        "  --threads N         HTTP worker threads (default 2)\n"
	        "See vendors/README.md for the full control API.\n");
}

int cmd_vendor_sim(cfg_t *cfg, int argc, char **argv)
{
	static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
	                                     {"threads", required_argument, NULL, 't'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0}};
	const char *listen = "127.0.0.1:8025";
	int threads = 2, o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "l:t:h", opts, NULL)) != -1) {
		switch (o) {
		case 'l': listen = optarg; break;
		case 't':
			if (num_int(optarg, 1, 64, &threads)) {
				fprintf(stderr, "tocsin vendor-sim: --threads must be 1..64\n");
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tocsin vendor-sim: unexpected argument %s\n", argv[optind]);
		return 2;
	}
	const char *colon = strrchr(listen, ':');
	char host[64];
	char *end = NULL;
	long port = colon ? strtol(colon + 1, &end, 10) : -1;
	if (!colon || (size_t)(colon - listen) >= sizeof host || !end || *end || port < 0 ||
	    port > 65535) {
		fprintf(stderr, "tocsin vendor-sim: --listen wants HOST:PORT, got \"%s\"\n", listen);
		return 2;
	}
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = 0;
	if (strcmp(host, "127.0.0.1") && strcmp(host, "localhost")) {
		fprintf(stderr, "tocsin vendor-sim: listens on 127.0.0.1 only, got \"%s\"\n", host);
		return 2;
	}
	char err[512];
	if (runfile_mkdir(cfg, err, sizeof err)) {
		fprintf(stderr, "tocsin vendor-sim: %s\n", err);
		return 1;
	}
	sim_t *s = sim_new(cfg, (int)port, threads, err, sizeof err);
	if (!s) {
		fprintf(stderr, "tocsin vendor-sim: %s\n", err);
		return 1;
	}
	char addr[64], pid[32];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", sim_port(s));
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	if (runfile_write(cfg, "run/vendor-sim.pid", pid, err, sizeof err) ||
	    runfile_write(cfg, "run/vendor-sim.addr", addr, err, sizeof err)) {
		fprintf(stderr, "tocsin vendor-sim: %s\n", err);
		sim_free(s);
		return 1;
	}
	log_info("event=vendor_sim_started addr=%s threads=%d vendors=%zu", addr, threads,
	         cfg->nvendors);
	while (!tocsin_stop)
		usleep(100000);
	log_info("event=vendor_sim_stopping signal=%d", (int)tocsin_stop);
	sim_free(s);
	runfile_remove(cfg, "run/vendor-sim.addr");
	runfile_remove(cfg, "run/vendor-sim.pid");
	log_info("event=vendor_sim_stopped");
	return 0;
}
