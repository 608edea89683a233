/* sendgrid.c -- the sendgrid adapter (not yet implemented: every build fails with TOCSIN_ERR_INVAL). */
#include "vendors/vnd_int.h"

#include "core/err.h"

#include <stdio.h>

static int x_build(vnd_t *a, const msg_out_t *const *msgs, size_t n, vnd_req_t *req, char *err,
                   size_t errlen)
{
	(void)msgs, (void)n, (void)req;
	snprintf(err, errlen, "vendor %s: adapter sendgrid is not implemented yet", a->v->name);
	return TOCSIN_ERR_INVAL;
}

static void x_classify(vnd_t *a, const msg_out_t *const *msgs, size_t n, long st, int cc,
                       const char *body, size_t len, long ra, vnd_result_t *res)
{
	(void)a, (void)msgs, (void)st, (void)cc, (void)body, (void)len, (void)ra;
	for (size_t i = 0; i < n; i++)
		vnd_res(&res[i], VND_CONFIG, "not_implemented", "adapter not implemented");
}

static int x_webhook(vnd_t *a, const vnd_wh_req_t *rq, vnd_wh_fn fn, void *ctx, char *err,
                     size_t errlen)
{
	(void)rq, (void)fn, (void)ctx;
	snprintf(err, errlen, "vendor %s: webhooks not implemented yet", a->v->name);
	return TOCSIN_ERR_INVAL;
}

const vnd_ops_t vnd_sendgrid_ops = {"sendgrid", 1, x_build, x_classify, x_webhook};
