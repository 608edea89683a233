/* drill.h -- `tocsin drill`: rehearse outages on a private copy of the user's configuration
 * (core/drill.c runs the scenarios, core/drill_report.c prints and writes what they measured). */
#ifndef TOCSIN_DRILL_H
#define TOCSIN_DRILL_H
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* 0 when every address in the drill's configuration document doc is private to the drill:
 * every vendor's base_url is http://<sim> (the drill's emulator), tracker.public_url is on
 * 127.0.0.1, and kafka names no brokers. Else -1 with one line in err naming the field and
 * where it points. Reads doc only; any thread. */
int drill_check_private(const json_t *doc, const char *sim, char *err, size_t errlen);

/* The drill's result document r (see README, "tocsin drill"): the table for a terminal. */
void drill_print(FILE *f, const json_t *r);
/* Write r as JSON to json_path and the self-contained HTML report (inline SVG charts of each
 * vendor's rate over time with the fault marked, the capacity table, pass/fail per scenario)
 * to html_path. 0, or -1 with err. */
int drill_write_report(const json_t *r, const char *html_path, const char *json_path, char *err,
                       size_t errlen);

#endif
