/* log.c -- one-line key=value logs on stderr. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

/* Written once by log_init() before threads start; read-only afterwards. */
static const char *log_comp = "tocsin";
static int log_level = TLOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *component, int level)
{
	const char *env = getenv("TOCSIN_LOG");
	if (component)
		log_comp = component;
	log_level = level;
	if (env) {
		for (int i = 0; i < 4; i++)
			if (strcmp(env, level_names[i]) == 0)
				log_level = i;
	}
}

int log_enabled(int level) { return level >= log_level; }

void log_at(int level, const char *fmt, ...)
{
	if (level < log_level)
		return;
	char line[2048];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ lvl=%s comp=%s ",
	                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	                 tm.tm_sec, (int)(tv.tv_usec / 1000),
	                 level_names[level < 0   ? 0
	                             : level > 3 ? 3
	                                         : level],
	                 log_comp);
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	size_t ml = m < 0 ? 0 : (size_t)m >= sizeof msg ? sizeof msg - 1 : (size_t)m;
	/* A logged value is outside input (paths, vendor answers): control bytes
	 * are written as \xNN so no value can end the line or forge another. */
	size_t len = (size_t)n;
	for (size_t i = 0; i < ml && len < sizeof line - 6; i++) {
		unsigned char ch = (unsigned char)msg[i];
		if (ch < 0x20 || ch == 0x7f)
			len += (size_t)snprintf(line + len, 5, "\\x%02x", ch);
		else
			line[len++] = (char)ch;
	}
	line[len++] = '\n';
	fwrite(line, 1, len, stderr);
}
