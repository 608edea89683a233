/* webaud.c -- audiences uploaded from the page: streamed to <var_dir>/audiences under a generated id, header mapped, rows counted, sampled. */
#include "tracker/web_int.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "producer/aud.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#define HDR_MAX (64u << 10) /* the header line */
#define MAX_COLS 1024
#define NAME_MAX_BYTES 200   /* the display name */
#define SAMPLE_VALUE_MAX 200 /* bytes of a sample value shown */
#define LIST_MAX 200
#define BAD_SHOWN 5

struct web_up {
	trk_web_t *w;
	char id[WEB_AUD_ID_LEN + 1];
	char name[NAME_MAX_BYTES + 1];
	char who[65];
	char part[WEB_PATH], csv[WEB_PATH];
	FILE *f;
	int64_t bytes;
	int err; /* TOCSIN_ERR_TOOBIG, TOCSIN_ERR_IO, TOCSIN_ERR_INVAL: the rest is ignored */
	char why[256];
	int header_done, inq;
	buf_t hdr;
	json_t *cols; /* [{"name","original"}] */
};

int web_aud_id_ok(const char *id)
{
	if (!id || strlen(id) != WEB_AUD_ID_LEN || id[0] != 'a')
		return 0;
	for (int i = 1; i < WEB_AUD_ID_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return 1;
}

static int aud_file(trk_web_t *w, const char *id, const char *ext, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/%s%s", w->aud_dir, id, ext);
	return n < 0 || (size_t)n >= outlen ? TOCSIN_ERR_TOOBIG : 0;
}

int web_aud_path(trk_web_t *w, const char *id, char *out, size_t outlen)
{
	if (!web_aud_id_ok(id) || aud_file(w, id, ".csv", out, outlen) || access(out, R_OK))
		return TOCSIN_ERR_NOTFOUND;
	return 0;
}

/* The display name: printable, at most NAME_MAX_BYTES bytes (never a path). */
static void clean_name(const char *in, char *out, size_t outlen)
{
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)(in ? in : ""); *p && o + 1 < outlen; p++)
		out[o++] = *p < 0x20 || *p == 0x7f ? ' ' : (char)*p;
	for (int k = 0; k < 3 && o && !aud_utf8_ok(out, o); k++) /* cut inside a character */
		o--;
	out[o] = 0;
	if (!o || !aud_utf8_ok(out, o)) /* not text at all */
		snprintf(out, outlen, "audience");
}

web_up_t *web_up_new(trk_web_t *w, const char *name, const char *who, int64_t length, int *code,
                     char *err, size_t errlen)
{
	if (length > w->upload_max) {
		*code = 413;
		snprintf(err, errlen,
		         "the file is %lld bytes; the limit is %lld MiB (tracker.upload_max_mb)",
		         (long long)length, (long long)(w->upload_max >> 20));
		return NULL;
	}
	web_up_t *u = calloc(1, sizeof *u);
	unsigned char rnd[8];
	if (!u || getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
		free(u);
		*code = 500;
		snprintf(err, errlen, "out of memory or randomness");
		return NULL;
	}
	u->w = w;
	u->id[0] = 'a';
	for (int i = 0; i < 8; i++)
		snprintf(u->id + 1 + 2 * i, 3, "%02x", rnd[i]);
	clean_name(name, u->name, sizeof u->name);
	snprintf(u->who, sizeof u->who, "%s", who);
	buf_init(&u->hdr, HDR_MAX);
	aud_file(w, u->id, ".part", u->part, sizeof u->part);
	aud_file(w, u->id, ".csv", u->csv, sizeof u->csv);
	int fd = open(u->part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || !(u->f = fdopen(fd, "w"))) {
		log_warn("event=upload_failed path=%s err=\"%s\"", u->part, strerror(errno));
		if (fd >= 0)
			close(fd);
		web_up_free(u);
		*code = 500;
		snprintf(err, errlen, "cannot store the audience (see the tracker's log)");
		return NULL;
	}
	setvbuf(u->f, NULL, _IOFBF, 1u << 20);
	return u;
}

void web_up_free(web_up_t *u)
{
	if (!u)
		return;
	if (u->f) { /* not finished: nothing is kept */
		fclose(u->f);
		unlink(u->part);
	}
	buf_free(&u->hdr);
	json_decref(u->cols);
	free(u);
}

/* A column name a template can use: letters, digits, _ . - kept, any other
 * run of characters one "_", ends trimmed; "column_N" when nothing is left;
 * "_2", "_3" ... after a name already taken. */
static void map_name(const char *in, size_t n, size_t idx, json_t *cols, char *out, size_t outlen)
{
	size_t o = 0;
	int gap = 0;
	for (size_t i = 0; i < n && o + 2 < outlen && o < 60; i++) {
		char ch = in[i];
		int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		         (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';
		if (!ok) {
			gap = 1;
			continue;
		}
		if (gap && o)
			out[o++] = '_';
		gap = 0;
		out[o++] = ch;
	}
	out[o] = 0;
	if (!o)
		snprintf(out, outlen, "column_%zu", idx + 1);
	char base[80];
	snprintf(base, sizeof base, "%.70s", out); /* out holds at most 60 here */
	for (int k = 2;; k++) {
		int taken = 0;
		size_t i;
		json_t *e;
		json_array_foreach(cols, i, e)
		    taken |= !strcasecmp(json_string_value(json_object_get(e, "name")), out);
		if (!taken)
			return;
		snprintf(out, outlen, "%.70s_%d", base, k);
	}
}

/* Parse the header line held in u->hdr, map its names, write the new header. */
static int write_header(web_up_t *u)
{
	const char *p = u->hdr.p ? u->hdr.p : "";
	size_t n = u->hdr.len;
	if (n >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3))
		p += 3, n -= 3;
	if (n && p[n - 1] == '\r')
		n--;
	if (!n) {
		snprintf(u->why, sizeof u->why,
		         "the file has no header row (the first line names the columns)");
		return TOCSIN_ERR_INVAL;
	}
	u->cols = json_array();
	buf_t field;
	buf_init(&field, HDR_MAX);
	size_t i = 0;
	int rc = 0;
	while (!rc) {
		buf_reset(&field);
		while (i < n && p[i] == ' ')
			i++;
		if (i < n && p[i] == '"') {
			for (i++; i < n; i++) {
				if (p[i] == '"' && i + 1 < n && p[i + 1] == '"')
					buf_putc(&field, p[i++]);
				else if (p[i] == '"')
					break;
				else
					buf_putc(&field, p[i]);
			}
			i++;
			while (i < n && p[i] != ',')
				i++;
		} else {
			while (i < n && p[i] != ',')
				buf_putc(&field, p[i++]);
			while (field.len && field.p[field.len - 1] == ' ')
				field.len--;
		}
		if (json_array_size(u->cols) >= MAX_COLS) {
			snprintf(u->why, sizeof u->why, "more than %d columns", MAX_COLS);
			rc = TOCSIN_ERR_INVAL;
			break;
		}
		char name[96];
		map_name(field.p ? field.p : "", field.len, json_array_size(u->cols), u->cols, name,
		         sizeof name);
		json_array_append_new(u->cols, json_pack("{sss s#}", "name", name, "original",
		                                         field.p ? field.p : "", (int)field.len));
		if (i >= n)
			break;
		i++; /* the comma */
	}
	buf_free(&field);
	size_t k;
	json_t *e;
	json_array_foreach(u->cols, k, e)
	{
		if (k)
			fputc(',', u->f);
		fputs(json_string_value(json_object_get(e, "name")), u->f);
	}
	fputc('\n', u->f);
	u->header_done = 1;
	return rc;
}

int web_up_write(web_up_t *u, const char *p, size_t n)
{
	if (u->err)
		return u->err;
	u->bytes += (int64_t)n;
	if (u->bytes > u->w->upload_max) {
		snprintf(u->why, sizeof u->why,
		         "the audience is larger than %lld MiB (tracker.upload_max_mb)",
		         (long long)(u->w->upload_max >> 20));
		return u->err = TOCSIN_ERR_TOOBIG;
	}
	if (!u->header_done) {
		size_t i = 0;
		for (; i < n; i++) {
			if (p[i] == '"')
				u->inq = !u->inq;
			else if (p[i] == '\n' && !u->inq)
				break;
		}
		if (buf_append(&u->hdr, p, i)) {
			snprintf(u->why, sizeof u->why, "the header row is longer than %u KiB",
			         HDR_MAX >> 10);
			return u->err = TOCSIN_ERR_INVAL;
		}
		if (i == n)
			return 0;
		if ((u->err = write_header(u)))
			return u->err;
		p += i + 1;
		n -= i + 1;
	}
	if (n && fwrite(p, 1, n, u->f) != n) {
		log_warn("event=upload_failed path=%s err=\"%s\"", u->part, strerror(errno));
		snprintf(u->why, sizeof u->why, "cannot store the audience (see the tracker's log)");
		return u->err = TOCSIN_ERR_IO;
	}
	return 0;
}

static const char *guess(json_t *cols, const char *exact, const char *const *parts)
{
	size_t i;
	json_t *e;
	json_array_foreach(
	    cols, i, e) if (!strcasecmp(json_string_value(json_object_get(e, "name")),
	                                exact)) return json_string_value(json_object_get(e, "name"));
	for (const char *const *p = parts; *p; p++)
		json_array_foreach(
		    cols, i,
		    e) if (strcasestr(json_string_value(json_object_get(e, "name")),
		                      *p)) return json_string_value(json_object_get(e, "name"));
	return NULL;
}

/* At most SAMPLE_VALUE_MAX bytes of a value, cut before a character, not inside one. */
static size_t shown_len(const char *v, size_t n)
{
	if (n <= SAMPLE_VALUE_MAX)
		return n;
	n = SAMPLE_VALUE_MAX;
	while (n && ((unsigned char)v[n] & 0xC0) == 0x80)
		n--;
	return n;
}

/* Count the stored file's rows (good and bad, as the launch reads them) and take a sample. */
static int scan(web_up_t *u, json_t *meta, char *err, size_t errlen)
{
	aud_spec_t spec = {.fmt = AUD_CSV, .path = u->csv};
	aud_t *a = aud_open(&spec, err, errlen);
	if (!a)
		return 400;
	const char *const *names = aud_cols(a);
	size_t nc = aud_ncols(a);
	int64_t rows = 0, bad = 0;
	json_t *sample = json_array(), *bads = json_array();
	aud_row_t r;
	int rc;
	while ((rc = aud_next(a, &r)) != 0) {
		if (rc == TOCSIN_ERR_IO) {
			snprintf(err, errlen, "line %lld: %s", (long long)r.line, r.why);
			break;
		}
		if (rc < 0) {
			if (bad++ < BAD_SHOWN)
				json_array_append_new(bads,
				                      json_pack("{sIss}", "line",
				                                (json_int_t)r.line, "why", r.why));
			continue;
		}
		if (rows++ < WEB_SAMPLE_ROWS) {
			json_t *row = json_object();
			for (size_t i = 0; i < nc && i < r.n; i++)
				json_object_set_new(row, names[i],
				                    r.vals[i]
				                        ? json_stringn_nocheck(r.vals[i],
				                                               shown_len(r.vals[i],
				                                                         r.lens[i]))
				                        : json_null());
			json_array_append_new(sample, row);
		}
	}
	aud_free(a);
	json_object_set_new(meta, "rows", json_integer(rows));
	json_object_set_new(meta, "bad_rows", json_integer(bad));
	json_object_set_new(meta, "bad", bads);
	json_object_set_new(meta, "sample", sample);
	return rc == TOCSIN_ERR_IO ? 500 : 0;
}

int web_up_finish(web_up_t *u, json_t **out, char *err, size_t errlen)
{
	if (!u->err && !u->header_done && (u->err = write_header(u)) == 0 && !u->bytes)
		u->err = TOCSIN_ERR_INVAL;
	int ferr = fclose(u->f);
	u->f = NULL;
	if (!u->err && ferr) {
		snprintf(u->why, sizeof u->why, "cannot store the audience (see the tracker's log)");
		log_warn("event=upload_failed path=%s err=\"%s\"", u->part, strerror(errno));
		u->err = TOCSIN_ERR_IO;
	}
	if (u->err || rename(u->part, u->csv)) {
		unlink(u->part);
		snprintf(err, errlen, "%s", u->err ? u->why : "cannot store the audience");
		return u->err == TOCSIN_ERR_TOOBIG ? 413 : u->err == TOCSIN_ERR_INVAL ? 400 : 500;
	}
	json_t *meta = json_pack("{sssssIsOsssI}", "id", u->id, "name", u->name, "bytes",
	                         (json_int_t)u->bytes, "columns", u->cols, "uploaded_by", u->who,
	                         "ts_ms", (json_int_t)clock_wall_ms());
	static const char *const phone_parts[] = {"phone", "mobile", "cell", NULL};
	static const char *const email_parts[] = {"mail", NULL};
	const char *ph = guess(u->cols, "phone", phone_parts),
	           *em = guess(u->cols, "email", email_parts);
	json_object_set_new(meta, "phone_column", ph ? json_string(ph) : json_null());
	json_object_set_new(meta, "email_column", em ? json_string(em) : json_null());
	int code = scan(u, meta, err, errlen);
	char mp[WEB_PATH];
	aud_file(u->w, u->id, ".json", mp, sizeof mp);
	int fd = code ? -1 : open(mp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (!code && (fd < 0 || json_dumpfd(meta, fd, JSON_COMPACT))) {
		snprintf(err, errlen, "cannot store the audience (see the tracker's log)");
		log_warn("event=upload_failed path=%s err=\"%s\"", mp, strerror(errno));
		code = 500;
	}
	if (fd >= 0)
		close(fd);
	if (code) {
		unlink(u->csv);
		unlink(mp);
		json_decref(meta);
		return code;
	}
	web_record(u->w, "audience", u->id, u->who,
	           "audience \"%.200s\" uploaded: %lld rows, %lld bad, %lld bytes", u->name,
	           (long long)json_integer_value(json_object_get(meta, "rows")),
	           (long long)json_integer_value(json_object_get(meta, "bad_rows")),
	           (long long)u->bytes);
	*out = meta;
	return 201;
}

json_t *web_aud_meta(trk_web_t *w, const char *id)
{
	char p[WEB_PATH];
	if (!web_aud_id_ok(id) || aud_file(w, id, ".json", p, sizeof p))
		return NULL;
	return json_load_file(p, 0, NULL);
}

static int by_ts_desc(const void *a, const void *b)
{
	json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "ts_ms"));
	json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "ts_ms"));
	return x < y ? 1 : x > y ? -1 : 0;
}

json_t *web_aud_list(trk_web_t *w)
{
	json_t *items[LIST_MAX];
	size_t n = 0;
	DIR *d = opendir(w->aud_dir);
	struct dirent *de;
	while (d && n < LIST_MAX && (de = readdir(d))) {
		char id[WEB_AUD_ID_LEN + 1];
		size_t l = strlen(de->d_name);
		if (l != WEB_AUD_ID_LEN + 5 || strcmp(de->d_name + WEB_AUD_ID_LEN, ".json"))
			continue;
		memcpy(id, de->d_name, WEB_AUD_ID_LEN);
		id[WEB_AUD_ID_LEN] = 0;
		json_t *m = web_aud_meta(w, id);
		if (!m)
			continue;
		json_object_del(m, "sample"); /* the list holds no recipient's data */
		json_object_del(m, "bad");
		items[n++] = m;
	}
	if (d)
		closedir(d);
	qsort(items, n, sizeof items[0], by_ts_desc);
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, items[i]);
	return json_pack("{so}", "audiences", arr);
}

int web_aud_delete(trk_web_t *w, const char *id, const char *who, trk_role_t role, char *err,
                   size_t errlen)
{
	json_t *m = web_aud_meta(w, id);
	if (!m) {
		snprintf(err, errlen, "no such audience");
		return 404;
	}
	char name[NAME_MAX_BYTES + 1], by[65], busy[65] = "";
	snprintf(name, sizeof name, "%s", json_string_value(json_object_get(m, "name")) ?: "");
	snprintf(by, sizeof by, "%s", json_string_value(json_object_get(m, "uploaded_by")) ?: "");
	json_decref(m);
	if (strcmp(who, by) && role < TRK_ROLE_APPROVER) {
		snprintf(err, errlen,
		         "only %s (who uploaded it) or an approver can delete this audience", by);
		return 403;
	}
	char csv[WEB_PATH], meta[WEB_PATH];
	aud_file(w, id, ".csv", csv, sizeof csv);
	aud_file(w, id, ".json", meta, sizeof meta);
	pthread_mutex_lock(&w->mu); /* a launch asked for now sees the file or its absence */
	int used = web_launch_using(w, id, busy, sizeof busy);
	int gone = !used && ((unlink(csv) && errno != ENOENT) || unlink(meta));
	pthread_mutex_unlock(&w->mu);
	if (used) {
		snprintf(err, errlen,
		         "the launch of \"%s\" uses this audience: cancel it or wait for "
		         "its end first",
		         busy);
		return 409;
	}
	if (gone) {
		log_warn("event=audience_not_deleted id=%s err=\"%s\"", id, strerror(errno));
		snprintf(err, errlen, "cannot delete the audience (see the tracker's log)");
		return 500;
	}
	web_record(w, "audience", id, who, "audience \"%.200s\" deleted", name);
	return 200;
}
