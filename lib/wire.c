/*
 * wire: checks on the remote's answers; see wire.h.
 *
 * The logic is the sync engine's own (daemon/sync.c push_results_check,
 * pull_check, pull_parse_run and pull_hint), moved here unchanged so that
 * it can be tested and fuzzed alone, and then made stricter in one
 * place: a conflict result must carry a body or be a tombstone.  The
 * reasons are the sentences ferryd has always logged after "bad answer
 * from <remote>: ".
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "bodylimit.h"
#include "jscan.h"
#include "names.h"
#include "wire.h"

/*
 * The server's current state in a conflict result: a body unless it is
 * deleted, as a pulled change has (without a body the merge would take
 * theirs as a deletion while the conflict recorded it as not deleted),
 * and a version >= 1, or 0 with deleted true: a document the server does
 * not have at all (docs/protocol.md, /v1/push), such as one its operator
 * removed or restored from an older backup.  Merged as a deletion, and a
 * resolution then pushes on base 0, a create.
 */
static bool
wire_current_check(json_t *cur)
{
	json_t *version = json_object_get(cur, "version");
	bool deleted = json_is_true(json_object_get(cur, "deleted"));

	return json_is_object(cur) && json_is_integer(version) &&
	    json_integer_value(version) >= (deleted ? 0 : 1) &&
	    (deleted || json_is_object(json_object_get(cur, "body")));
}

const char *
wire_push_results_check(json_t *results, size_t n)
{
	const char *status;
	json_t *res, *cur;
	size_t i;

	if (!json_is_array(results) || json_array_size(results) != n)
		return "results do not match the changes sent";
	json_array_foreach(results, i, res) {
		status = json_string_value(json_object_get(res, "status"));
		if (status == NULL)
			return "a result has no status";
		if (strcmp(status, "applied") == 0 ||
		    strcmp(status, "duplicate") == 0) {
			if (!json_is_integer(json_object_get(res, "version")) ||
			    json_integer_value(json_object_get(res,
			    "version")) < 1)
				return "an applied result has no version";
		} else if (strcmp(status, "conflict") == 0) {
			cur = json_object_get(res, "current");
			if (!wire_current_check(cur))
				return "a conflict result has no current state";
		} else if (strcmp(status, "rejected") == 0) {
			if (!json_is_string(json_object_get(res, "error")))
				return "a rejected result has no error";
		} else
			return "a result has an unknown status";
	}
	return NULL;
}

const char *
wire_change_check(const json_t *ch, const char **ret_field)
{
	/* jansson's getters take non-const */
	return wire_change_check_apart(ch, json_is_object(json_object_get(
	    (json_t *)ch, "body")), ret_field);
}

const char *
wire_change_check_apart(const json_t *ch, bool has_body,
    const char **ret_field)
{
	const char *reason = NULL, *what = NULL;
	json_t *c = (json_t *)ch;	/* jansson's getters take non-const */

	if (!json_is_object(c))
		what = "change", reason = "is not an object";
	else if (!json_is_string(json_object_get(c, "collection")))
		what = "collection", reason = "is missing";
	else if (names_check_collection(json_string_value(json_object_get(c,
	    "collection")), &reason) < 0)
		what = "collection";
	else if (!json_is_string(json_object_get(c, "id")))
		what = "id", reason = "is missing";
	else if (names_check_id(json_string_value(json_object_get(c, "id")),
	    &reason) < 0)
		what = "id";
	else if (!json_is_integer(json_object_get(c, "version")) ||
	    json_integer_value(json_object_get(c, "version")) < 1)
		what = "version", reason = "is missing or not positive";
	else if (!json_is_true(json_object_get(c, "deleted")) && !has_body)
		what = "body", reason = "is missing or not an object";
	if (what == NULL)
		return NULL;
	if (ret_field != NULL)
		*ret_field = what;
	return reason;
}

int
wire_changes_page_parse(const char *text, size_t len, json_t **ret_changes,
    int64_t *ret_last_seq, char *reason, size_t reason_size)
{
	json_error_t jerr;
	const char *bad;
	json_t *o, *last;
	int r = -EBADMSG;

	o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	last = json_object_get(o, "last_seq");
	if (o == NULL) {
		bad = jerr.text;
		if (json_error_code(&jerr) == json_error_out_of_memory)
			r = -ENOMEM;
	} else if (!json_is_integer(last))
		bad = "no last_seq";
	else if (!json_is_array(json_object_get(o, "changes")))
		bad = "no changes array";
	else
		bad = NULL;
	if (bad != NULL) {
		if (reason_size > 0)
			snprintf(reason, reason_size, "%s", bad);
		json_decref(o);
		return r;
	}
	*ret_changes = json_incref(json_object_get(o, "changes"));
	*ret_last_seq = json_integer_value(last);
	json_decref(o);
	return 0;
}

int
wire_last_seq_hint(const char *text, size_t len, int64_t *ret)
{
	static const char key[] = "\"last_seq\":";
	size_t end, i;

	end = len;
	while (end > 0 && (text[end - 1] == ' ' || text[end - 1] == '\n' ||
	    text[end - 1] == '\r' || text[end - 1] == '\t'))
		end--;
	if (end == 0 || text[--end] != '}')
		return -ENOENT;
	i = end;
	while (i > 0 && end - i < 18 && text[i - 1] >= '0' &&
	    text[i - 1] <= '9')
		i--;
	if (i == end || i < sizeof key - 1 ||
	    memcmp(text + i - (sizeof key - 1), key, sizeof key - 1) != 0)
		return -ENOENT;
	*ret = strtoll(text + i, NULL, 10);
	return 0;
}

/* Is the literal lit at text[*i]?  If so, step over it. */
static bool
scan_lit(const char *text, size_t len, size_t *i, const char *lit)
{
	size_t n = strlen(lit);

	if (len - *i < n || memcmp(text + *i, lit, n) != 0)
		return false;
	*i += n;
	return true;
}

/* Is text[i..len) white space only (as jansson allows after a value)? */
static bool
scan_end(const char *text, size_t len, size_t i)
{
	while (i < len && text[i] != '\0' && strchr(" \t\r\n", text[i]) !=
	    NULL)
		i++;
	return i == len;
}

/* A string with no escape in it (names, change ids, signatures). */
static bool
scan_plain(const char *text, size_t len, size_t *i, const char **ret,
    size_t *ret_n)
{
	size_t n;
	int plain;

	if (jscan_string(text + *i, len - *i, &n, &plain) < 0 || !plain)
		return false;
	*ret = text + *i + 1;
	*ret_n = n - 2;
	*i += n;
	return true;
}

static bool
scan_int(const char *text, size_t len, size_t *i, json_int_t *ret)
{
	long long v;
	size_t n;

	if (jscan_int(text + *i, len - *i, &n, &v) < 0)
		return false;
	*ret = (json_int_t)v;
	*i += n;
	return true;
}

/* One change of a page as ferry-server writes it; *ret_change is new. */
static bool
scan_change(const char *text, size_t len, size_t *i, json_t **ret_change,
    size_t *ret_body_off, size_t *ret_body_len)
{
	const char *change, *collection, *id, *sig;
	size_t nchange, ncollection, nid, nsig, boff = 0, blen = 0;
	json_int_t seq, ts, version;
	bool deleted;

	if (!scan_lit(text, len, i, "{"))
		return false;
	if (scan_lit(text, len, i, "\"body\":")) {
		boff = *i;
		if (jscan_compact(text + *i, len - *i, BODYLIMIT_MAX_DEPTH,
		    &blen, NULL) < 0 || text[boff] != '{')
			return false;
		*i += blen;
		if (!scan_lit(text, len, i, ","))
			return false;
	}
	if (!scan_lit(text, len, i, "\"change\":") ||
	    !scan_plain(text, len, i, &change, &nchange) ||
	    !scan_lit(text, len, i, ",\"collection\":") ||
	    !scan_plain(text, len, i, &collection, &ncollection) ||
	    !scan_lit(text, len, i, ",\"deleted\":"))
		return false;
	if (scan_lit(text, len, i, "true"))
		deleted = true;
	else if (scan_lit(text, len, i, "false"))
		deleted = false;
	else
		return false;
	if (!scan_lit(text, len, i, ",\"id\":") ||
	    !scan_plain(text, len, i, &id, &nid) ||
	    !scan_lit(text, len, i, ",\"seq\":") ||
	    !scan_int(text, len, i, &seq) ||
	    !scan_lit(text, len, i, ",\"sig\":") ||
	    !scan_plain(text, len, i, &sig, &nsig) ||
	    !scan_lit(text, len, i, ",\"ts\":") ||
	    !scan_int(text, len, i, &ts) ||
	    !scan_lit(text, len, i, ",\"version\":") ||
	    !scan_int(text, len, i, &version) ||
	    !scan_lit(text, len, i, "}"))
		return false;
	/* A put has its body, a delete none (else: jansson's path says). */
	if (deleted == (blen > 0))
		return false;
	*ret_change = json_pack("{s:s%,s:s%,s:b,s:s%,s:I,s:s%,s:I,s:I}",
	    "change", change, nchange, "collection", collection, ncollection,
	    "deleted", deleted, "id", id, nid, "seq", seq, "sig", sig, nsig,
	    "ts", ts, "version", version);
	*ret_body_off = boff;
	*ret_body_len = blen;
	return *ret_change != NULL;
}

int
wire_changes_page_scan(const char *text, size_t len, json_t **ret_changes,
    char ***ret_bodies, int64_t *ret_last_seq)
{
	json_t *changes, *ch;
	char **bodies = NULL, **v;
	size_t i = 0, n = 0, cap = 0, boff, blen, k;
	json_int_t head, last;
	int r = -ENOTSUP;

	if (text == NULL || ret_changes == NULL || ret_bodies == NULL ||
	    ret_last_seq == NULL)
		return -EINVAL;
	if (!scan_lit(text, len, &i, "{\"changes\":["))
		return -ENOTSUP;
	if ((changes = json_array()) == NULL)
		return -ENOMEM;
	if (scan_lit(text, len, &i, "]"))
		goto tail;
	for (;;) {
		if (!scan_change(text, len, &i, &ch, &boff, &blen))
			goto fail;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			if ((v = realloc(bodies, cap * sizeof *v)) == NULL) {
				json_decref(ch);
				r = -ENOMEM;
				goto fail;
			}
			bodies = v;
		}
		bodies[n] = blen > 0 ? strndup(text + boff, blen) : NULL;
		if ((blen > 0 && bodies[n] == NULL) ||
		    json_array_append_new(changes, ch) < 0) {
			free(bodies[n]);
			r = -ENOMEM;
			goto fail;
		}
		n++;
		if (scan_lit(text, len, &i, "]"))
			break;
		if (!scan_lit(text, len, &i, ","))
			goto fail;
	}
tail:
	if (!scan_lit(text, len, &i, ",\"head\":") ||
	    !scan_int(text, len, &i, &head) ||
	    !scan_lit(text, len, &i, ",\"last_seq\":") ||
	    !scan_int(text, len, &i, &last) || !scan_lit(text, len, &i, "}"))
		goto fail;
	if (!scan_end(text, len, i))
		goto fail;
	if (n == 0 && (bodies = calloc(1, sizeof *bodies)) == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	*ret_changes = changes;
	*ret_bodies = bodies;
	*ret_last_seq = last;
	return 0;
fail:
	for (k = 0; k < n; k++)
		free(bodies[k]);
	free(bodies);
	json_decref(changes);
	return r;
}

void
wire_push_req_free(struct wire_push_req *q)
{
	free(q->text);
	memset(q, 0, sizeof *q);
}

/* Room for more bytes at the end of q's text (and a NUL). */
static int
wire_push_req_room(struct wire_push_req *q, size_t more)
{
	size_t cap;
	char *v;

	if (more > SIZE_MAX / 2 - q->len - 1) {
		wire_push_req_free(q);
		return -ENOMEM;
	}
	if (q->len + more + 1 <= q->cap)
		return 0;
	for (cap = q->cap ? q->cap : 4096; cap < q->len + more + 1; cap *= 2)
		;
	if ((v = realloc(q->text, cap)) == NULL) {
		wire_push_req_free(q);
		return -ENOMEM;
	}
	q->text = v;
	q->cap = cap;
	return 0;
}

int
wire_push_req_add(struct wire_push_req *q, const char *record, size_t len,
    const char *sig)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)record;
	size_t i, slen = strlen(sig);
	char *o;
	int r;

	/* Each byte escapes to at most 6 ("\u001f"). */
	if (len > (SIZE_MAX - 64 - slen) / 6)
		return -ENOMEM;
	if ((r = wire_push_req_room(q, 6 * len + slen + 64)) < 0)
		return r;
	o = q->text + q->len;
	o += sprintf(o, "%s{\"record\":\"", q->n == 0 ?
	    "{\"changes\":[" : ",");
	for (i = 0; i < len; i++) {
		if (u[i] >= 0x20 && u[i] != '"' && u[i] != '\\') {
			*o++ = (char)u[i];
			continue;
		}
		*o++ = '\\';
		switch (u[i]) {
		case '"':
		case '\\':
			*o++ = (char)u[i];
			break;
		case '\n':
			*o++ = 'n';
			break;
		case '\t':
			*o++ = 't';
			break;
		case '\r':
			*o++ = 'r';
			break;
		default:
			o += sprintf(o, "u00%c%c", hex[u[i] >> 4],
			    hex[u[i] & 0xf]);
		}
	}
	o += sprintf(o, "\",\"sig\":\"%s\"}", sig);
	q->len = (size_t)(o - q->text);
	q->n++;
	return 0;
}

int
wire_push_req_end(struct wire_push_req *q)
{
	int r;

	if ((r = wire_push_req_room(q, 16)) < 0)
		return r;
	q->len += (size_t)sprintf(q->text + q->len, "%s]}", q->n == 0 ?
	    "{\"changes\":[" : "");
	return 0;
}

/*
 * The string at text[*i] (a JSON string with no \u escape), unescaped into
 * buf (at least as large as the string): its length, or -1.
 */
static ssize_t
scan_unescape(const char *text, size_t len, size_t *i, char *buf)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	size_t k = *i + 1, o = 0;
	const char *p, *e;

	if (*i >= len || text[*i] != '"')
		return -1;
	while (k < len) {
		/* A run with nothing to undo, copied at once. */
		for (p = text + k; p < text + len && *p != '"' &&
		    *p != '\\' && (unsigned char)*p >= 0x20; p++)
			;
		memcpy(buf + o, text + k, (size_t)(p - text) - k);
		o += (size_t)(p - text) - k;
		k = (size_t)(p - text);
		if (k >= len || (unsigned char)text[k] < 0x20)
			return -1;
		if (text[k] == '"') {
			*i = k + 1;
			return (ssize_t)o;
		}
		if (k + 1 >= len)
			return -1;
		if (text[k + 1] == '\0' || (e = strchr(from, text[k + 1])) ==
		    NULL)
			return -1;
		buf[o++] = to[e - from];
		k += 2;
	}
	return -1;
}

int
wire_push_req_scan(const char *text, size_t len, size_t max,
    json_t **ret_changes)
{
	json_t *changes, *ch;
	const char *sig;
	size_t i = 0, nsig, slen;
	ssize_t n;
	char *buf;
	int r = -ENOTSUP;

	if (text == NULL || ret_changes == NULL)
		return -EINVAL;
	if (!scan_lit(text, len, &i, "{\"changes\":["))
		return -ENOTSUP;
	/* Any record is shorter than the text that holds it. */
	if ((buf = malloc(len + 1)) == NULL)
		return -ENOMEM;
	if ((changes = json_array()) == NULL) {
		free(buf);
		return -ENOMEM;
	}
	if (scan_lit(text, len, &i, "]"))
		goto tail;
	for (;;) {
		if (json_array_size(changes) == max) {
			r = -E2BIG;
			goto fail;
		}
		/* jscan_string checks the UTF-8 and the escapes as jansson
		 * would (no \u), so the unescaped bytes are a valid string. */
		if (!scan_lit(text, len, &i, "{\"record\":") ||
		    jscan_string(text + i, len - i, &slen, NULL) < 0 ||
		    (n = scan_unescape(text, len, &i, buf)) < 0 ||
		    !scan_lit(text, len, &i, ",\"sig\":") ||
		    !scan_plain(text, len, &i, &sig, &nsig) ||
		    !scan_lit(text, len, &i, "}"))
			goto fail;
		ch = json_pack("{s:o,s:s%}", "record",
		    json_stringn_nocheck(buf, (size_t)n), "sig", sig, nsig);
		if (ch == NULL || json_array_append_new(changes, ch) < 0) {
			r = -ENOMEM;
			goto fail;
		}
		if (scan_lit(text, len, &i, "]"))
			break;
		if (!scan_lit(text, len, &i, ","))
			goto fail;
	}
tail:
	if (!scan_lit(text, len, &i, "}"))
		goto fail;
	if (!scan_end(text, len, i))
		goto fail;
	free(buf);
	*ret_changes = changes;
	return 0;
fail:
	free(buf);
	json_decref(changes);
	return r;
}
