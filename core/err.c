/* err.c -- strings for the tocsin error enum, and the panic of a broken invariant. */
#include "core/err.h"
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

const char *tocsin_strerror(int err)
{
	switch ((tocsin_err_t)err) {
	case TOCSIN_OK: return "ok";
	case TOCSIN_ERR_INVAL: return "invalid input";
	case TOCSIN_ERR_NOMEM: return "out of memory";
	case TOCSIN_ERR_IO: return "I/O error";
	case TOCSIN_ERR_TOOBIG: return "input too large";
	case TOCSIN_ERR_KAFKA: return "Kafka error";
	case TOCSIN_ERR_HTTP: return "HTTP error";
	case TOCSIN_ERR_CONFIG: return "configuration error";
	case TOCSIN_ERR_NOTFOUND: return "not found";
	case TOCSIN_ERR_AGAIN: return "temporarily unavailable";
	case TOCSIN_ERR_TIMEOUT: return "timed out";
	case TOCSIN_ERR_STATE: return "invalid state";
	case TOCSIN_ERR_TRUNCATED: return "truncated input";
	case TOCSIN_ERR_AUTH: return "authentication failed";
	}
	return "unknown error";
}

void tocsin_panic_at(const char *func, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_error("event=panic func=%s msg=\"%s\"", func, msg);
	fprintf(stderr, "tocsin: panic: %s: %s\n", func, msg);
	abort();
}
