/* main.c -- the `tocsin` binary: global options, then one subcommand. */
#include "core/cmd.h"
#include "core/log.h"
#include "core/sig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cmd {
	const char *name;
	cmd_fn fn;
	const char *help;
} cmd_t;

static const cmd_t cmds[] = {
    {"broker", cmd_broker, "host the embedded Kafka broker (librdkafka mock cluster)"},
    {"vendor-sim", cmd_vendor_sim, "run the vendor API emulator on loopback"},
    {"vendor-send", cmd_vendor_send, "send one test message through a vendor adapter, print the outcome"},
    {"launch", cmd_launch, "expand a campaign into one outbox message per recipient"},
    {"preview", cmd_preview, "render and cost a campaign without sending anything"},
    {"dispatch", cmd_dispatch, "send outbox messages to vendors (a consumer-group member)"},
    {"dead", cmd_dead, "list the messages that could not be sent, and why (tocsin.dead)"},
    {"track", cmd_track, "status store, dashboard, JSON API, /metrics and vendor webhooks"},
    {"status", cmd_status, "print a campaign's counts per state"},
    {"campaign", cmd_campaign,
     "list campaigns, or pause, resume or cancel one (list|pause|resume|cancel <id>)"},
    {"vendor", cmd_vendor, "drain or undrain a vendor by hand (drain|undrain <name>)"},
    {"hold", cmd_hold, "release held messages (send_at, quiet hours) to the outbox when they are due"},
    {"up", cmd_up, "run broker, emulator, tracker and dispatchers in the foreground until Ctrl-C"},
    {"capacity", cmd_capacity, "from the config alone: how long N recipients take, which limit binds"},
    {"drill", cmd_drill,
     "rehearse vendor outages and a dispatcher crash on a private copy of the config"},
    {"demo", cmd_demo, "run broker, emulator, tracker and a dispatcher; send the 10,000 example blast"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: tocsin [-c CONFIG] <command> [options]\n\n"
	           "tocsin sends rapid-response SMS and email blasts through Kafka to vendor APIs.\n\n"
	           "commands:\n");
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		fprintf(f, "  %-11s %s\n", cmds[i].name, cmds[i].help);
	fprintf(f, "\n"
	           "options:\n"
	           "  -c, --config FILE  configuration (default: $TOCSIN_CONFIG, else ./tocsin.json,\n"
	           "                     else built-in defaults: embedded broker, local emulator)\n"
	           "  -h, --help         this help; `tocsin <command> --help` for a command's\n"
	           "  --version          print the version\n"
	           "\n"
	           "environment: TOCSIN_LOG=debug|info|warn|error sets the log level.\n");
}

int main(int argc, char **argv)
{
	const char *config = NULL;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--version")) {
			printf("tocsin 0.1.0\n");
			return 0;
		} else if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) {
			config = argv[++i];
		} else if (!strncmp(argv[i], "--config=", 9)) {
			config = argv[i] + 9;
		} else {
			fprintf(stderr, "tocsin: unknown option %s\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	const cmd_t *cmd = NULL;
	for (size_t k = 0; k < sizeof cmds / sizeof cmds[0]; k++)
		if (!strcmp(cmds[k].name, argv[i]))
			cmd = &cmds[k];
	if (!cmd) {
		fprintf(stderr, "tocsin: unknown command \"%s\" (see tocsin --help)\n", argv[i]);
		return 2;
	}
	log_init(cmd->name, TLOG_INFO);
	sig_install();
	char err[1024];
	cfg_t *cfg = cfg_load(config, err, sizeof err);
	if (!cfg) {
		fprintf(stderr, "tocsin %s: %s\n", cmd->name, err);
		return 2; /* a configuration error: nothing was started */
	}
	int rc = cmd->fn(cfg, argc - i, argv + i);
	cfg_free(cfg);
	return rc;
}
