/* web.h -- the tracker's compose-and-launch page and its API: roles, audiences, compose, preview, test send, launches with approvals. */
#ifndef TOCSIN_TRK_WEB_H
#define TOCSIN_TRK_WEB_H
#include <microhttpd.h>
#include <stddef.h>

#include "core/cfg.h"
#include "tracker/ctl.h"

/* The page at /send and the endpoints under /api/me, /api/audiences,
 * /api/compose, /api/preview, /api/test-send and /api/launches
 * (tracker/README.md, "Compose and launch"). cfg and tokens are borrowed and
 * must outlive it. Reads launch.approvals, launch.max_lag and
 * tracker.upload_max_mb; creates <var_dir>/audiences and <var_dir>/compose.
 * NULL with err (a bad setting, a directory it cannot create). Main thread. */
typedef struct trk_web trk_web_t;
trk_web_t *trk_web_new(const cfg_t *cfg, const trk_ctl_tokens_t *tokens, char *err, size_t errlen);
/* Stop watching the launches it started (they go on: their own processes,
 * report and checkpoint on disk); NULL is a no-op. Main thread, once the
 * HTTP server is stopped. */
void trk_web_free(trk_web_t *w);

/* 1 when url is answered by trk_web_handle. Any thread. */
int trk_web_wants(const char *url);
/* The libmicrohttpd access handler for those urls, called for every call of
 * one request (headers, each piece of the body, the end) with *req NULL at
 * the first; an upload's body is written to disk as it arrives. The Host
 * header is already checked. Any HTTP thread. */
enum MHD_Result trk_web_handle(trk_web_t *w, struct MHD_Connection *c, const char *url,
                               const char *method, const char *upload, size_t *upload_size,
                               void **req);
/* Free a request's state (the request ended, answered or not); NULL is a no-op. */
void trk_web_req_free(void *req);

/* Queue an answer of code with body (copied) of content type ctype, not to be
 * cached; MHD_NO when it could not be. Any HTTP thread. */
enum MHD_Result trk_web_answer(struct MHD_Connection *c, unsigned code, const char *ctype,
                               const char *body, size_t len);

/* The name (and *role) of whoever the request's token belongs to
 * ("Authorization: Bearer <token>" or "X-Tocsin-Token: <token>"; never a
 * cookie, so another site's page cannot act with it), or NULL. Any thread. */
const char *trk_web_token_who(const trk_ctl_tokens_t *t, struct MHD_Connection *c, trk_role_t *role);

#endif
