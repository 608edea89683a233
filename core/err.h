/* err.h -- the one error enum every tocsin call returns, and its strings. */
#ifndef TOCSIN_ERR_H
#define TOCSIN_ERR_H

/* 0 is success; every failure is negative. Calls that return int use these. */
typedef enum tocsin_err {
	TOCSIN_OK = 0,
	TOCSIN_ERR_INVAL = -1,      /* bad input: malformed, out of range, unknown name */
	TOCSIN_ERR_NOMEM = -2,      /* allocation failed */
	TOCSIN_ERR_IO = -3,         /* file or socket I/O failed */
	TOCSIN_ERR_TOOBIG = -4,     /* input exceeds a configured or built-in maximum */
	TOCSIN_ERR_KAFKA = -5,      /* Kafka client or broker error */
	TOCSIN_ERR_HTTP = -6,       /* HTTP transport error */
	TOCSIN_ERR_CONFIG = -7,     /* configuration is missing or wrong */
	TOCSIN_ERR_NOTFOUND = -8,   /* no such thing */
	TOCSIN_ERR_AGAIN = -9,      /* temporarily unavailable: try later */
	TOCSIN_ERR_TIMEOUT = -10,   /* deadline passed */
	TOCSIN_ERR_STATE = -11,     /* call not valid in the current state */
	TOCSIN_ERR_TRUNCATED = -12, /* input ended early: need more bytes */
	TOCSIN_ERR_AUTH = -13,      /* signature or credentials missing or wrong */
} tocsin_err_t;

/* A static string for err (never NULL, never to be freed). Any thread. */
const char *tocsin_strerror(int err);

/* Abort naming the function, Postfix's msg_panic: an invariant of a lifecycle or a data
 * structure broke -- a bug, never bad input (that is refused with an error). One line to the
 * log (event=panic func=<function> msg="...") and to stderr, then abort(). Never compiled
 * out (it does not depend on NDEBUG). Any thread. */
#define tocsin_panic(...) tocsin_panic_at(__func__, __VA_ARGS__)
void tocsin_panic_at(const char *func, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));

/* tocsin_panic("invariant broken: <cond>") unless cond holds. */
#define TOCSIN_CHECK(cond)                                                                         \
	((cond) ? (void)0 : tocsin_panic_at(__func__, "invariant broken: %s", #cond))

#endif
