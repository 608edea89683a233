/* fuzz_vnd_sim_sendgrid.c -- libFuzzer target: the emulator's SendGrid body reading, scanner against jansson. */
#include "vendors/sim/sim_int.h"
#include "vendors/sim/sim_json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static sim_t *SIM;
static sim_vendor_t *SV;

static void start(void)
{
	char path[] = "/tmp/fuzz_vnd_sim_sg_XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	fputs("{\"var_dir\":\"/tmp\",\"vendors\":[{\"name\":\"sg\",\"kind\":\"sendgrid\",\"base_url\":\"http://127.0.0.1:1\","
	      "\"account\":\"-\",\"secret_env\":\"FUZZ_SG\",\"senders\":{\"main\":\"news@example.org\"}}]}",
	      f);
	fclose(f);
	setenv("FUZZ_SG", "fuzz-key", 1);
	char err[512];
	cfg_t *c = cfg_load(path, err, sizeof err); /* kept for the process's life */
	unlink(path);
	if (!c || !(SIM = sim_new(c, 0, 1, err, sizeof err))) {
		fprintf(stderr, "fuzz_vnd_sim_sendgrid: %s\n", err);
		abort();
	}
	SV = &SIM->vs[0];
}

typedef struct run {
	int rc;
	unsigned status;
	char *body;
	uint64_t acc, subs, ok, unr;
} run_t;

static void one(const char *d, size_t n, int mode, run_t *r)
{
	sim_fault_t f;
	memset(&f, 0, sizeof f);
	f.delivered_rate = 1;
	uint64_t a = atomic_load(&SV->accepted), s = atomic_load(&SV->subs_applied);
	uint64_t o = atomic_load(&SV->unsub_ok), u = atomic_load(&SV->unreplaced);
	sim_ans_t ans;
	memset(&ans, 0, sizeof ans);
	ans.retry_after_s = -1;
	buf_init(&ans.body, 64u << 20);
	r->rc = sim_sendgrid_body(SIM, SV, &f, d, n, mode, &ans);
	r->status = ans.status;
	r->body = strdup(ans.body.p ? ans.body.p : "");
	buf_free(&ans.body);
	r->acc = atomic_load(&SV->accepted) - a;
	r->subs = atomic_load(&SV->subs_applied) - s;
	r->ok = atomic_load(&SV->unsub_ok) - o;
	r->unr = atomic_load(&SV->unreplaced) - u;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	if (!SIM)
		start();
	/* the body in an exact-size copy: the scanner must not read past it */
	char *b = malloc(n ? n : 1);
	memcpy(b, d, n);
	sj_t root;
	(void)sj_parse(b, n, &root);
	run_t x, y;
	one(b, n, 2, &x);
	if (x.rc == 0) { /* the scanner answered: jansson must answer the same */
		one(b, n, 1, &y);
		if (x.status != y.status || strcmp(x.body, y.body) || x.acc != y.acc ||
		    x.subs != y.subs || x.ok != y.ok || x.unr != y.unr) {
			fprintf(stderr, "scanner %u %s / jansson %u %s\n", x.status, x.body,
			        y.status, y.body);
			abort();
		}
		free(y.body);
	}
	free(x.body);
	free(b);
	return 0;
}
