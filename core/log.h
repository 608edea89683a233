/* log.h -- one-line key=value logs on stderr, with level and component. */
#ifndef TOCSIN_LOG_H
#define TOCSIN_LOG_H

enum { TLOG_DEBUG = 0, TLOG_INFO = 1, TLOG_WARN = 2, TLOG_ERROR = 3 };

/* Set the component name (static string, e.g. "dispatch") and minimum level.
 * Call once at start-up, before any thread starts: the settings are the one
 * write-once process state besides the stop flag. TOCSIN_LOG=debug|info|warn|error
 * in the environment overrides level. */
void log_init(const char *component, int level);

/* Log one line: "ts=<iso8601> lvl=<level> comp=<component> <fmt...>".
 * fmt should itself be key=value pairs; never pass secrets. Control bytes in
 * the formatted text (newline, CR, ESC, ...) are written as \xNN, so a value
 * from outside cannot break or forge a line. Lines are cut at 2 KiB. Any thread. */
void log_at(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* 1 when lines at level would be printed. Any thread. */
int log_enabled(int level);

#define log_debug(...) log_at(TLOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_at(TLOG_INFO, __VA_ARGS__)
#define log_warn(...) log_at(TLOG_WARN, __VA_ARGS__)
#define log_error(...) log_at(TLOG_ERROR, __VA_ARGS__)

#endif
