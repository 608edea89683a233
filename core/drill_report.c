/* drill_report.c -- what `tocsin drill` measured: the terminal table, and the self-contained HTML
 * report (inline SVG charts, capacity table, pass/fail) written beside the JSON it shows. */
#include "core/buf.h"
#include "core/capacity.h"
#include "core/drill.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CH_W 720
#define CH_H 220
#define CH_L 56
#define CH_R 12
#define CH_T 12
#define CH_B 30

static const char *const colours[] = {"#1f77b4", "#d62728", "#2ca02c",
                                      "#9467bd", "#ff7f0e", "#8c564b"};

static const char *js(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static double jnum(const json_t *o, const char *k)
{
	return json_number_value(json_object_get(o, k));
}

/* "1.25 s" or "-" for null; halves rounded up, as JavaScript's toFixed(2) does (the report's
 * browser check), not to even as printf's %.2f does with 1.125 */
static void fmt_ms(const json_t *v, char *out, size_t outlen)
{
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		long long cs = (json_integer_value(v) + 5) / 10;
		snprintf(out, outlen, "%lld.%02lld s", cs / 100, cs % 100);
	} else if (json_is_integer(v))
		snprintf(out, outlen, "%.2f s", json_integer_value(v) / 1000.0);
	else
		snprintf(out, outlen, "-");
}

/* Where each scenario's wall time went (its "phases_ms"), and the whole drill's. */
static void print_phases(FILE *f, const json_t *r)
{
	static const char *const ph[] = {"prepare", "first", "steady", "fault", "tail", "measure"};
	fprintf(f, "\n%-9s", "time (s)");
	for (size_t k = 0; k < sizeof ph / sizeof *ph; k++)
		fprintf(f, " %8s", ph[k]);
	fprintf(f, " %8s\n", "wall");
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(r, "scenarios"), i, s)
	{
		fprintf(f, "%-9s", js(s, "name"));
		for (size_t k = 0; k < sizeof ph / sizeof *ph; k++) {
			json_t *v = json_object_get(json_object_get(s, "phases_ms"), ph[k]);
			if (json_is_integer(v))
				fprintf(f, " %8.1f", json_integer_value(v) / 1000.0);
			else
				fprintf(f, " %8s", "-");
		}
		fprintf(f, " %8.1f\n", jnum(s, "wall_ms") / 1000.0);
	}
	char all[32], up[32];
	cap_duration(jnum(r, "duration_ms") / 1000.0, all, sizeof all);
	cap_duration(jnum(r, "startup_ms") / 1000.0, up, sizeof up);
	fprintf(f,
	        "drill: %zu scenario(s) in %s, after %s starting its processes; load average %.2f "
	        "at the start, %.2f at the end\n",
	        json_array_size(json_object_get(r, "scenarios")), all, up, jnum(r, "load_start"),
	        jnum(r, "load"));
}

void drill_print(FILE *f, const json_t *r)
{
	fprintf(f, "%-9s %9s %9s %9s %8s %8s %11s %9s %6s %14s  %s\n", "scenario", "messages",
	        "elapsed", "wall", "rate/s", "detect", "99% on 2nd", "recover", "lost",
	        "twice (bound)", "result");
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(r, "scenarios"), i, s)
	{
		char el[32], wa[32], de[32], sw[32], re[32], tw[32];
		json_t *e = json_integer(json_integer_value(json_object_get(s, "elapsed_ms")));
		fmt_ms(e, el, sizeof el);
		json_decref(e);
		fmt_ms(json_object_get(s, "wall_ms"), wa, sizeof wa);
		fmt_ms(json_object_get(s, "detect_ms"), de, sizeof de);
		fmt_ms(json_object_get(s, "switch_ms"), sw, sizeof sw);
		fmt_ms(json_object_get(s, "recover_ms"), re, sizeof re);
		snprintf(tw, sizeof tw, "%lld (%lld)",
		         (long long)json_integer_value(json_object_get(s, "twice")),
		         (long long)json_integer_value(json_object_get(s, "twice_bound")));
		fprintf(f, "%-9s %9lld %9s %9s %8.0f %8s %11s %9s %6lld %14s  %s\n", js(s, "name"),
		        (long long)json_integer_value(json_object_get(s, "messages")), el, wa,
		        jnum(s, "rate_per_s"), de, sw, re,
		        (long long)json_integer_value(json_object_get(s, "lost")), tw,
		        json_is_true(json_object_get(s, "pass")) ? "PASS" : "FAIL");
		size_t j;
		json_t *why;
		json_array_foreach(json_object_get(s, "failures"), j, why)
		    fprintf(f, "          %s\n", json_string_value(why));
	}
	print_phases(f, r);
	json_t *cap = json_object_get(r, "capacity");
	json_array_foreach(json_object_get(r, "scenarios"), i,
	                   s) if (!strcmp(js(s, "name"), "capacity"))
	    fprintf(f,
	            "\ncapacity measured: %.0f messages/s sustained; estimated from the config: "
	            "%.0f messages/s (below)\n",
	            jnum(s, "rate_per_s"),
	            jnum(json_array_get(json_object_get(cap, "channels"), 0), "messages_per_s"));
	fprintf(f, "\n");
	cap_print(f, cap);
	fprintf(f, "\nload average %.2f; %s\n", jnum(r, "load"),
	        json_is_true(json_object_get(r, "pass")) ? "every promise kept" : "PROMISES BROKEN");
}

static void td_ms(buf_t *b, const char *cls, const json_t *v)
{
	char t[32];
	fmt_ms(v, t, sizeof t);
	buf_printf(b, "<td class=\"%s\">%s</td>", cls, t);
}

/* One chart: messages/s per vendor per bucket, the fault's span shaded. */
static void chart(buf_t *b, const json_t *s)
{
	json_t *ser = json_object_get(json_object_get(s, "series"), "vendors");
	double per_s = 1000.0 /
	               json_integer_value(json_object_get(json_object_get(s, "series"), "bucket_ms"));
	double ymax = 1;
	size_t nb = 1;
	const char *k;
	json_t *arr;
	json_object_foreach(ser, k, arr)
	{
		size_t i;
		json_t *v;
		if (json_array_size(arr) > nb)
			nb = json_array_size(arr);
		json_array_foreach(arr, i, v) if (json_integer_value(v) * per_s > ymax)
		    ymax = json_integer_value(v) * per_s;
	}
	double pw = CH_W - CH_L - CH_R, ph = CH_H - CH_T - CH_B;
	double bms = 1000.0 / per_s, span_ms = nb * bms;
	buf_printf(b, "<svg class=\"chart\" data-scenario=\"");
	buf_xml_text(b, js(s, "name"));
	buf_printf(b,
	           "\" data-ymax=\"%.0f\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
	           "xmlns=\"http://www.w3.org/2000/svg\">",
	           ymax, CH_W, CH_H, CH_W, CH_H);
	buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"#fafafa\" stroke=\"#ccc\"/>",
	           CH_L, CH_T, pw, ph);
	json_t *fm = json_object_get(s, "fault_ms"), *cm = json_object_get(s, "clear_ms");
	if (json_is_integer(fm)) {
		double x0 = CH_L + pw * json_integer_value(fm) / span_ms;
		double x1 = json_is_integer(cm) ? CH_L + pw * json_integer_value(cm) / span_ms : x0;
		if (x1 < x0 + 2)
			x1 = x0 + 2;
		buf_printf(b,
		           "<rect class=\"fault\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%.0f\" "
		           "fill=\"#f4b183\" fill-opacity=\"0.45\"/><text x=\"%.1f\" y=\"%d\" "
		           "font-size=\"11\" fill=\"#a33\">fault</text>",
		           x0, CH_T, x1 - x0, ph, x0 + 3, CH_T + 12);
	}
	buf_printf(b, "<text x=\"4\" y=\"%d\" font-size=\"11\">%.0f/s</text>", CH_T + 10, ymax);
	buf_printf(b, "<text x=\"4\" y=\"%d\" font-size=\"11\">0</text>", CH_T + (int)ph);
	buf_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"11\">0 s</text>", CH_L, CH_H - 8);
	buf_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">%.1f s</text>",
	           CH_W - CH_R, CH_H - 8, span_ms / 1000.0);
	int ci = 0;
	json_object_foreach(ser, k, arr)
	{
		const char *col = colours[ci++ % (int)(sizeof colours / sizeof *colours)];
		buf_puts(b, "<polyline class=\"rate\" data-vendor=\"");
		buf_xml_text(b, k);
		buf_printf(b, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", col);
		size_t i;
		json_t *v;
		json_array_foreach(arr, i, v)
		{
			double x = CH_L + (nb > 1 ? pw * i / (nb - 1) : 0);
			double y = CH_T + ph * (1 - json_integer_value(v) * per_s / ymax);
			buf_printf(b, "%s%.1f,%.2f", i ? " " : "", x, y);
		}
		buf_printf(b, "\"/><text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"%s\">",
		           CH_L + 8 + 90 * (ci - 1), CH_H - 8, col);
		buf_xml_text(b, k);
		buf_puts(b, "</text>");
	}
	buf_puts(b, "</svg>\n");
}

static void cap_table(buf_t *b, const json_t *cap)
{
	json_t *ch = json_array_get(json_object_get(cap, "channels"), 0);
	buf_printf(b,
	           "<table id=\"capacity\"><caption>capacity from the configuration: %lld recipients, "
	           "%lld segment(s), vendors answering in %lld ms (%s/s)</caption>\n"
	           "<tr><th>vendor</th><th>rate_per_s</th><th>sender</th><th>in flight</th>"
	           "<th>sustained</th><th>binds</th></tr>\n",
	           (long long)json_integer_value(json_object_get(cap, "audience")),
	           (long long)json_integer_value(json_object_get(cap, "segments")),
	           (long long)json_integer_value(json_object_get(cap, "latency_ms")), js(ch, "unit"));
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(ch, "vendors"), i, v)
	{
		buf_puts(b, "<tr class=\"vendor\" data-vendor=\"");
		buf_xml_text(b, js(v, "name"));
		buf_puts(b, "\"><td>");
		buf_xml_text(b, js(v, "name"));
		buf_puts(b, "</td>");
		static const char *const ks[] = {"vendor_rate", "sender_rate", "window_rate",
		                                 "sustained"};
		for (int k = 0; k < 4; k++) {
			json_t *x = json_object_get(v, ks[k]);
			if (json_is_number(x))
				buf_printf(b, "<td class=\"%s\">%.0f</td>", ks[k],
				           json_number_value(x));
			else
				buf_printf(b, "<td class=\"%s\">unlimited</td>", ks[k]);
		}
		buf_puts(b, "<td>");
		buf_xml_text(b, js(v, "binds"));
		buf_puts(b, "</td></tr>\n");
	}
	char d[64];
	cap_duration(jnum(ch, "seconds"), d, sizeof d);
	buf_printf(b,
	           "<tr class=\"route\"><td>route</td><td colspan=\"3\"></td><td class=\"messages_per_s\">%.0f</td>"
	           "<td>messages/s; the audience takes <span class=\"seconds\">%s</span>; binds: ",
	           jnum(ch, "messages_per_s"), d);
	buf_xml_text(b, js(ch, "binds"));
	buf_puts(b, "</td></tr>\n</table>\n");
}

int drill_write_report(const json_t *r, const char *html_path, const char *json_path, char *err,
                       size_t errlen)
{
	if (json_dump_file(r, json_path, JSON_INDENT(1))) {
		snprintf(err, errlen, "cannot write %s", json_path);
		return -1;
	}
	buf_t b;
	buf_init(&b, 64u << 20);
	int pass = json_is_true(json_object_get(r, "pass"));
	buf_puts(&b,
	         "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>tocsin drill</title>\n"
	         "<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1000px}"
	         "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
	         "text-align:right}td:first-child,th:first-child{text-align:left}.PASS{color:#161;"
	         "font-weight:bold}.FAIL{color:#b00;font-weight:bold}h2{margin-top:1.5em}</style>\n"
	         "</head><body>\n<h1>tocsin drill: ");
	buf_puts(&b, pass ? "<span class=\"PASS\" id=\"verdict\">every promise kept</span>"
	                  : "<span class=\"FAIL\" id=\"verdict\">promises broken</span>");
	buf_puts(&b, "</h1>\n<p>configuration <code>");
	buf_xml_text(&b, js(r, "config"));
	buf_printf(&b, "</code>, SMS route <b>");
	buf_xml_text(&b, js(r, "primary"));
	buf_puts(&b, "</b> then <b>");
	buf_xml_text(&b, js(r, "secondary"));
	buf_printf(&b,
	           "</b>, %lld recipients, the emulator answering in %lld ms; load average %.2f. "
	           "Every vendor was the drill's own emulator: nothing was sent to a real vendor.</p>\n",
	           (long long)json_integer_value(json_object_get(r, "audience")),
	           (long long)json_integer_value(json_object_get(r, "latency_ms")), jnum(r, "load"));
	char all[32];
	cap_duration(jnum(r, "duration_ms") / 1000.0, all, sizeof all);
	buf_printf(&b,
	           "<table id=\"scenarios\"><caption>the drill took <span id=\"duration\">%s</span>"
	           "</caption><tr><th>scenario</th><th>messages</th><th>wall</th><th>rate/s</th>",
	           all);
	buf_puts(&b, "<th>detect</th><th>99% on the secondary</th><th>recover</th><th>lost</th>"
	             "<th>sent twice (bound)</th><th>result</th></tr>\n");
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(r, "scenarios"), i, s)
	{
		int ok = json_is_true(json_object_get(s, "pass"));
		buf_puts(&b, "<tr data-scenario=\"");
		buf_xml_text(&b, js(s, "name"));
		buf_puts(&b, "\"><td><a href=\"#sc-");
		buf_xml_text(&b, js(s, "name"));
		buf_puts(&b, "\">");
		buf_xml_text(&b, js(s, "name"));
		buf_printf(&b, "</a></td><td class=\"messages\">%lld</td>",
		           (long long)json_integer_value(json_object_get(s, "messages")));
		td_ms(&b, "wall", json_object_get(s, "wall_ms"));
		buf_printf(&b, "<td class=\"rate\">%.0f</td>", jnum(s, "rate_per_s"));
		td_ms(&b, "detect", json_object_get(s, "detect_ms"));
		td_ms(&b, "switch", json_object_get(s, "switch_ms"));
		td_ms(&b, "recover", json_object_get(s, "recover_ms"));
		buf_printf(&b,
		           "<td class=\"lost\">%lld</td><td class=\"twice\">%lld (%lld)</td>"
		           "<td class=\"result %s\">%s</td></tr>\n",
		           (long long)json_integer_value(json_object_get(s, "lost")),
		           (long long)json_integer_value(json_object_get(s, "twice")),
		           (long long)json_integer_value(json_object_get(s, "twice_bound")),
		           ok ? "PASS" : "FAIL", ok ? "PASS" : "FAIL");
	}
	buf_puts(&b, "</table>\n");
	cap_table(&b, json_object_get(r, "capacity"));
	json_array_foreach(json_object_get(r, "scenarios"), i, s)
	{
		buf_puts(&b, "<h2 id=\"sc-");
		buf_xml_text(&b, js(s, "name"));
		buf_puts(&b, "\">");
		buf_xml_text(&b, js(s, "name"));
		buf_puts(&b, ": ");
		buf_xml_text(&b, js(s, "title"));
		buf_puts(&b,
		         "</h2>\n<p>messages accepted per second, per vendor (the shaded span is the fault)");
		size_t j;
		json_t *f;
		json_array_foreach(json_object_get(s, "failures"), j, f)
		{
			buf_puts(&b, "<br><span class=\"FAIL\">");
			buf_xml_text(&b, json_string_value(f));
			buf_puts(&b, "</span>");
		}
		buf_puts(&b, "</p>\n");
		chart(&b, s);
	}
	buf_puts(&b, "</body></html>\n");
	FILE *fo = fopen(html_path, "w");
	int rc = -1;
	if (fo && b.p) {
		rc = fwrite(b.p, 1, b.len, fo) == b.len ? 0 : -1;
		rc |= fclose(fo) ? -1 : 0;
	} else if (fo) {
		fclose(fo);
	}
	buf_free(&b);
	if (rc)
		snprintf(err, errlen, "cannot write %s", html_path);
	return rc;
}
