/*
 * srvclient: a signing HTTP client for ferry-server's end-to-end tests.
 *
 *   srvclient [OPTIONS] METHOD PATH [BODYFILE|-]
 *	sends one request to --url with a request signature made by the key
 *	in --key-dir (lib/auth.c, the same code the daemon uses) and prints
 *	the status code on the first line, then the body as received.
 *	Forgeries: --ts-offset SECONDS (sign with a skewed clock), --bad-sig
 *	(a well-formed signature over another body), --no-auth (no header),
 *	--auth VALUE (this exact header value), --header 'Name: value'.
 *	--elapsed prints "elapsed_ms N" on stderr; --timeout S bounds it.
 *	A body goes with "Content-Type: application/json" unless a --header
 *	names Content-Type ("Content-Type:" alone sends none).
 *   srvclient --key-dir DIR key
 *	prints the public key of DIR/device.key (created if missing).
 *   srvclient --key-dir DIR sign METHOD TARGET [BODYFILE]
 *	prints the Authorization header value for that request, for tests
 *	that write their requests byte by byte (tests/tools/rawhttp).
 *   srvclient --key-dir DIR change OP COLLECTION ID BASE SEQ [BODY]
 *	prints one push item {"record":..,"sig":..}: a change record made
 *	and signed by lib/record.c (OP put needs BODY, a JSON object, or
 *	@FILE holding one: an argument cannot be larger than 128 KiB).
 *   srvclient --key-dir DIR changes COLLECTION ID BASE SEQ COUNT [PAD]
 *	prints a push body {"changes":[...]} of COUNT puts of one
 *	document, each on top of the one before (base BASE+i, seq SEQ+i,
 *	body {"n":SEQ+i}, and "pad", PAD bytes, if given): a long
 *	history in one request.
 *   srvclient --key-dir DIR sign-record TEXT|@FILE
 *	prints a push item for exactly these record bytes (any spelling,
 *	any content: for records lib/record.c would never write).
 *   srvclient --key-dir DIR rotation NEWDIR SEQ
 *	prints a POST /v1/keys/rotate body {"statement","sig_old","sig_new"}:
 *	DIR's key retired in favour of NEWDIR's after SEQ (lib/rotation.c),
 *	made now (--ts-offset skews its ts too).
 *   srvclient verify-changes FILE...
 *	checks pages of /v1/changes replies (status line first, as this
 *	client prints them) offline: every entry's record (its own, or the
 *	one record_rebuild makes from it) verifies against the key its
 *	change id names.  Prints "verified N by KEY" for each key, in the
 *	order first seen.
 *   srvclient verify-history FILE
 *	checks a /v1/docs/../history reply offline: every record verifies
 *	against the key it names, and its device, seq, op and ts are the
 *	entry's, versions strictly increasing.  Prints "verified N".
 *
 * Exit status: 0 when the exchange happened (whatever the status: tests
 * assert on the output) or the check passed, 1 when a check failed,
 * 2 on usage errors, 3 when the server could not be reached.
 */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "auth.h"
#include "keys.h"
#include "record.h"
#include "rotation.h"
#include "util.h"

#define BODY_MAX	(64u * 1024 * 1024)

struct opts {
	const char	*key_dir;
	const char	*url;
	const char	*auth;		/* --auth: header value as is */
	const char	*headers[16];
	int		 nheaders;
	long		 ts_offset;
	long		 timeout;
	bool		 bad_sig;
	bool		 no_auth;
	bool		 elapsed;
};

static void
usage(void)
{
	fprintf(stderr,
	    "usage: srvclient [--key-dir DIR] [--url URL] [--ts-offset S]\n"
	    "                 [--bad-sig] [--no-auth] [--auth VALUE]\n"
	    "                 [--header 'N: V'] [--timeout S] [--elapsed]\n"
	    "                 METHOD PATH [BODYFILE|-]\n"
	    "       srvclient --key-dir DIR key\n"
	    "       srvclient --key-dir DIR sign METHOD TARGET [BODYFILE]\n"
	    "       srvclient --key-dir DIR change OP COLLECTION ID BASE SEQ "
	    "[BODY|@FILE]\n"
	    "       srvclient --key-dir DIR changes COLLECTION ID BASE SEQ "
	    "COUNT [PAD]\n"
	    "       srvclient --key-dir DIR sign-record TEXT|@FILE\n"
	    "       srvclient --key-dir DIR rotation NEWDIR SEQ\n"
	    "       srvclient verify-changes FILE...\n"
	    "       srvclient verify-history FILE\n");
	exit(2);
}

static struct keys *
load_key(const char *dir)
{
	struct keys *k = NULL;
	int r;

	if (dir == NULL) {
		fprintf(stderr, "srvclient: --key-dir is needed\n");
		exit(2);
	}
	if ((r = util_mkdir_p(dir, 0700)) < 0 ||
	    (r = keys_load_or_create(dir, &k, NULL)) < 0) {
		fprintf(stderr, "srvclient: key in %s: %s\n", dir,
		    strerror(-r));
		exit(1);
	}
	return k;
}

/* Read a whole file ("-": stdin) into a new buffer. */
static char *
read_all(const char *path, size_t *ret_len)
{
	FILE *f;
	char *buf;
	size_t len = 0, n;

	f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "srvclient: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	if ((buf = malloc(BODY_MAX + 1)) == NULL) {
		fprintf(stderr, "srvclient: out of memory\n");
		exit(1);
	}
	while ((n = fread(buf + len, 1, BODY_MAX + 1 - len, f)) > 0)
		len += n;
	if (len > BODY_MAX) {
		fprintf(stderr, "srvclient: %s is larger than %u bytes\n",
		    path, BODY_MAX);
		exit(1);
	}
	if (f != stdin)
		fclose(f);
	*ret_len = len;
	return buf;
}

struct reply {
	char	*p;
	size_t	 len;
};

/* Collect the body (bounded), so the status can be printed first. */
static size_t
write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct reply *rp = arg;
	size_t total = size * n;
	char *np;

	if (total == 0 || rp->len + total > BODY_MAX)
		return 0;
	if ((np = realloc(rp->p, rp->len + total)) == NULL)
		return 0;
	memcpy(np + rp->len, p, total);
	rp->p = np;
	rp->len += total;
	return total;
}

static int
cmd_request(const struct opts *o, int argc, char **argv)
{
	struct curl_slist *hdrs = NULL;
	struct reply rp = { NULL, 0 };
	struct keys *k = NULL;
	CURL *c;
	CURLcode cc;
	const char *method, *path;
	char *body = NULL, *auth = NULL, *url = NULL, *line = NULL;
	size_t len = 0;
	int64_t ts, t0;
	long code = 0;
	int i, r;

	if (argc < 2 || argc > 3 || o->url == NULL)
		usage();
	method = argv[0];
	path = argv[1];
	if (argc == 3)
		body = read_all(argv[2], &len);
	ts = (int64_t)time(NULL) + o->ts_offset;

	if (o->auth != NULL)
		auth = strdup(o->auth);
	else if (!o->no_auth) {
		k = load_key(o->key_dir);
		/* --bad-sig: a real signature, over a body never sent. */
		r = o->bad_sig ?
		    auth_header_make(k, method, path, "forged", 6, ts, &auth) :
		    auth_header_make(k, method, path, body, len, ts, &auth);
		if (r < 0) {
			fprintf(stderr, "srvclient: cannot sign: %s\n",
			    strerror(-r));
			return 1;
		}
	}
	if (auth != NULL) {
		if (asprintf(&line, "Authorization: %s", auth) < 0)
			return 1;
		hdrs = curl_slist_append(hdrs, line);
	}
	for (i = 0; i < o->nheaders; i++)
		hdrs = curl_slist_append(hdrs, o->headers[i]);
	for (i = 0; i < o->nheaders; i++)
		if (strncasecmp(o->headers[i], "Content-Type:", 13) == 0)
			break;
	if (body != NULL && i == o->nheaders)
		hdrs = curl_slist_append(hdrs,
		    "Content-Type: application/json");
	if (asprintf(&url, "%s%s", o->url, path) < 0)
		return 1;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	if ((c = curl_easy_init()) == NULL)
		return 1;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, o->timeout);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &rp);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)len);
	}
	t0 = util_mono_us();
	cc = curl_easy_perform(c);
	if (cc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (o->elapsed)
		fprintf(stderr, "elapsed_ms %" PRId64 "\n",
		    (util_mono_us() - t0) / 1000);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	free(url);
	free(line);
	free(auth);
	free(body);
	keys_free(k);
	if (cc != CURLE_OK) {
		printf("CURL-ERROR %s\n", curl_easy_strerror(cc));
		free(rp.p);
		return 3;
	}
	printf("%ld\n", code);
	if (rp.len > 0)
		fwrite(rp.p, 1, rp.len, stdout);
	free(rp.p);
	return 0;
}

static int
cmd_sign(const struct opts *o, int argc, char **argv)
{
	struct keys *k;
	char *body = NULL, *auth = NULL;
	size_t len = 0;
	int r;

	if (argc < 3 || argc > 4)
		usage();
	if (argc == 4)
		body = read_all(argv[3], &len);
	k = load_key(o->key_dir);
	r = auth_header_make(k, argv[1], argv[2], body, len,
	    (int64_t)time(NULL) + o->ts_offset, &auth);
	keys_free(k);
	free(body);
	if (r < 0) {
		fprintf(stderr, "srvclient: cannot sign: %s\n", strerror(-r));
		return 1;
	}
	printf("%s\n", auth);
	free(auth);
	return 0;
}

/* Print {"record":text,"sig":sig} compactly, then end (a string).  0 or
 * 1. */
static int
print_item_end(const char *text, size_t len, const char *sig,
    const char *end)
{
	json_t *item;
	char *out;

	item = json_pack("{s:s%, s:s}", "record", text, len, "sig", sig);
	out = item != NULL ? json_dumps(item, JSON_COMPACT) : NULL;
	json_decref(item);
	if (out == NULL) {
		fprintf(stderr, "srvclient: the record is not UTF-8 text\n");
		return 1;
	}
	printf("%s%s", out, end);
	free(out);
	return 0;
}

static int
print_item(const char *text, size_t len, const char *sig)
{
	return print_item_end(text, len, sig, "\n");
}

static int
parse_i64(const char *s, int64_t *ret)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return -EINVAL;
	*ret = v;
	return 0;
}

static int
cmd_change(const struct opts *o, int argc, char **argv)
{
	struct keys *k;
	json_error_t err;
	json_t *body = NULL;
	int64_t base, seq;
	char *text = NULL, *sig = NULL;
	size_t len;
	int r;

	if (argc < 6 || argc > 7 || parse_i64(argv[4], &base) < 0 ||
	    parse_i64(argv[5], &seq) < 0)
		usage();
	if (argc == 7 && argv[6][0] == '@')
		body = json_load_file(argv[6] + 1, JSON_REJECT_DUPLICATES,
		    &err);
	else if (argc == 7)
		body = json_loads(argv[6], JSON_REJECT_DUPLICATES, &err);
	if (argc == 7 && body == NULL) {
		fprintf(stderr, "srvclient: BODY: %s\n", err.text);
		return 2;
	}
	k = load_key(o->key_dir);
	r = record_make(k, argv[1], base, argv[2], argv[3], seq,
	    util_now_ms(), body, &text, &len, &sig);
	if (r < 0) {
		fprintf(stderr, "srvclient: cannot make the record: %s\n",
		    strerror(-r));
		return 1;
	}
	r = print_item(text, len, sig);
	json_decref(body);
	free(text);
	free(sig);
	keys_free(k);
	return r;
}

/*
 * changes COLLECTION ID BASE SEQ COUNT [PAD]: one push body of COUNT puts
 * of one document, each on top of the one before: the i-th (from 0) has
 * base BASE+i, seq SEQ+i and body {"n":SEQ+i}, with "pad", a string of
 * PAD bytes, if PAD is given.
 */
static int
cmd_changes(const struct opts *o, int argc, char **argv)
{
	struct keys *k;
	json_t *body;
	int64_t base, seq, count, i, pad = 0;
	char *text, *sig, *fill;
	size_t len;
	int r = 0;

	if (argc < 6 || argc > 7 || parse_i64(argv[3], &base) < 0 ||
	    parse_i64(argv[4], &seq) < 0 || parse_i64(argv[5], &count) < 0 ||
	    count < 1 || (argc == 7 && (parse_i64(argv[6], &pad) < 0 ||
	    pad < 0 || pad > 8 * 1024 * 1024)))
		usage();
	if ((fill = malloc((size_t)pad + 1)) == NULL) {
		fprintf(stderr, "srvclient: out of memory\n");
		return 1;
	}
	memset(fill, 'p', (size_t)pad);
	fill[pad] = '\0';
	k = load_key(o->key_dir);
	printf("{\"changes\":[");
	for (i = 0; i < count && r == 0; i++) {
		body = argc == 7 ? json_pack("{s:I,s:s}", "n",
		    (json_int_t)(seq + i), "pad", fill) : json_pack("{s:I}",
		    "n", (json_int_t)(seq + i));
		if (body == NULL || record_make(k, "put", base + i, argv[1], argv[2],
		    seq + i, util_now_ms(), body, &text, &len, &sig) < 0) {
			fprintf(stderr, "srvclient: cannot make record %"
			    PRId64 "\n", i);
			json_decref(body);
			r = 1;
			break;
		}
		r = print_item_end(text, len, sig, i + 1 < count ? "," : "");
		json_decref(body);
		free(text);
		free(sig);
	}
	printf("]}\n");
	keys_free(k);
	free(fill);
	return r;
}

static int
cmd_sign_record(const struct opts *o, int argc, char **argv)
{
	struct keys *k;
	char *text, *sig = NULL;
	size_t len;
	int r;

	if (argc != 2)
		usage();
	if (argv[1][0] == '@')
		text = read_all(argv[1] + 1, &len);
	else {
		text = strdup(argv[1]);
		len = text != NULL ? strlen(text) : 0;
	}
	if (text == NULL)
		return 1;
	/* A trailing newline from a file is not part of the record. */
	while (len > 0 && text[len - 1] == '\n')
		len--;
	k = load_key(o->key_dir);
	if ((r = record_sign_bytes(k, RECORD_SIG_PREFIX, text, len,
	    &sig)) < 0) {
		fprintf(stderr, "srvclient: cannot sign: %s\n", strerror(-r));
		return 1;
	}
	r = print_item(text, len, sig);
	free(text);
	free(sig);
	keys_free(k);
	return r;
}

static int
fail_entry(size_t i, const char *what)
{
	fprintf(stderr, "srvclient: entry %zu: %s\n", i, what);
	return 1;
}

static int
cmd_verify_history(int argc, char **argv)
{
	struct record_fields f;
	json_error_t err;
	json_t *root, *entries, *e;
	const char *rec, *sig, *dev, *change, *op;
	char want[KEYS_PUB_B64_LEN + 32];
	json_int_t prev = 0;
	size_t i;
	int r;

	if (argc != 2)
		usage();
	if ((root = json_load_file(argv[1], JSON_REJECT_DUPLICATES,
	    &err)) == NULL) {
		fprintf(stderr, "srvclient: %s: %s\n", argv[1], err.text);
		return 1;
	}
	entries = json_object_get(root, "entries");
	if (!json_is_array(entries) || json_array_size(entries) == 0) {
		fprintf(stderr, "srvclient: no entries\n");
		return 1;
	}
	json_array_foreach(entries, i, e) {
		rec = json_string_value(json_object_get(e, "record"));
		sig = json_string_value(json_object_get(e, "sig"));
		dev = json_string_value(json_object_get(e, "device"));
		change = json_string_value(json_object_get(e, "change"));
		op = json_string_value(json_object_get(e, "op"));
		if (rec == NULL || sig == NULL || dev == NULL ||
		    change == NULL || op == NULL)
			return fail_entry(i, "missing fields");
		memset(&f, 0, sizeof f);
		r = record_verify(rec, json_string_length(json_object_get(e,
		    "record")), sig, NULL, &f);
		if (r < 0)
			return fail_entry(i, "the record does not verify");
		snprintf(want, sizeof want, "%s:%" PRId64, f.device, f.seq);
		if (strcmp(f.device, dev) != 0 || strcmp(want, change) != 0 ||
		    strcmp(f.op, op) != 0 || json_integer_value(
		    json_object_get(e, "ts")) != f.ts)
			return fail_entry(i, "fields differ from the record");
		if (json_integer_value(json_object_get(e, "version")) <= prev)
			return fail_entry(i, "versions out of order");
		prev = json_integer_value(json_object_get(e, "version"));
		record_fields_clear(&f);
	}
	printf("verified %zu\n", json_array_size(entries));
	json_decref(root);
	return 0;
}

static int
cmd_rotation(const struct opts *o, int argc, char **argv)
{
	struct keys *k, *nk;
	char *text = NULL, *so = NULL, *sn = NULL, *out;
	size_t len;
	int64_t seq;
	json_t *j;
	int r;

	if (argc != 3 || parse_i64(argv[2], &seq) < 0)
		usage();
	k = load_key(o->key_dir);
	nk = load_key(argv[1]);
	r = rotation_make(k, nk, seq, util_now_ms() + o->ts_offset * 1000,
	    &text, &len, &so, &sn);
	if (r < 0) {
		fprintf(stderr, "srvclient: cannot make the statement: %s\n",
		    strerror(-r));
		return 1;
	}
	j = json_pack("{s:s%,s:s,s:s}", "statement", text, len, "sig_old", so,
	    "sig_new", sn);
	out = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	if (out != NULL)
		printf("%s\n", out);
	free(out);
	json_decref(j);
	free(text);
	free(so);
	free(sn);
	keys_free(k);
	keys_free(nk);
	return out != NULL ? 0 : 1;
}

/* One /v1/changes entry: verify its record against its change id's key. */
static int
verify_change(json_t *e, char *ret_key)
{
	struct record_fields f;
	const char *change, *rec, *sig, *colon;
	char key[KEYS_PUB_B64_LEN + 1], *text = NULL, *body = NULL;
	json_t *jb;
	size_t len = 0;
	int64_t seq;
	int r;

	change = json_string_value(json_object_get(e, "change"));
	sig = json_string_value(json_object_get(e, "sig"));
	if (change == NULL || sig == NULL ||
	    (colon = strchr(change, ':')) == NULL ||
	    colon - change != KEYS_PUB_B64_LEN ||
	    parse_i64(colon + 1, &seq) < 0)
		return -EBADMSG;
	memcpy(key, change, KEYS_PUB_B64_LEN);
	key[KEYS_PUB_B64_LEN] = '\0';
	if ((rec = json_string_value(json_object_get(e, "record"))) != NULL) {
		text = strdup(rec);
		len = json_string_length(json_object_get(e, "record"));
	} else {
		jb = json_object_get(e, "body");
		if (json_is_object(jb) && (body = json_dumps(jb,
		    JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
			return -ENOMEM;
		r = record_rebuild(json_integer_value(json_object_get(e,
		    "version")) - 1, body, body != NULL ? strlen(body) : 0,
		    json_string_value(json_object_get(e, "collection")), key,
		    json_string_value(json_object_get(e, "id")), seq,
		    json_integer_value(json_object_get(e, "ts")), &text, &len);
		free(body);
		if (r < 0)
			return r;
	}
	if (text == NULL)
		return -ENOMEM;
	memset(&f, 0, sizeof f);
	r = record_verify(text, len, sig, NULL, &f);
	if (r == 0 && (strcmp(f.device, key) != 0 || f.seq != seq))
		r = -EBADMSG;
	record_fields_clear(&f);
	free(text);
	if (r == 0)
		memcpy(ret_key, key, KEYS_PUB_B64_LEN + 1);
	return r;
}

static int
cmd_verify_changes(int argc, char **argv)
{
	char (*keys)[KEYS_PUB_B64_LEN + 1] = NULL, key[KEYS_PUB_B64_LEN + 1];
	size_t *counts = NULL, nkeys = 0, i, k, n = 0;
	json_error_t err;
	json_t *root, *e;
	char *text, *nl;
	size_t len;
	int a, r = 1;

	if (argc < 2)
		usage();
	for (a = 1; a < argc; a++) {
		text = read_all(argv[a], &len);
		/* Skip the status line. */
		nl = memchr(text, '\n', len);
		root = nl != NULL ? json_loadb(nl + 1, len - (size_t)(nl + 1 -
		    text), JSON_REJECT_DUPLICATES, &err) : NULL;
		free(text);
		if (!json_is_array(json_object_get(root, "changes"))) {
			fprintf(stderr, "srvclient: %s: not a page of changes\n",
			    argv[a]);
			json_decref(root);
			goto out;
		}
		json_array_foreach(json_object_get(root, "changes"), i, e) {
			if (verify_change(e, key) < 0) {
				fprintf(stderr, "srvclient: %s: change %s does "
				    "not verify\n", argv[a], json_string_value(
				    json_object_get(e, "change")));
				json_decref(root);
				goto out;
			}
			for (k = 0; k < nkeys; k++)
				if (strcmp(keys[k], key) == 0)
					break;
			if (k == nkeys) {
				keys = reallocarray(keys, nkeys + 1,
				    sizeof *keys);
				counts = reallocarray(counts, nkeys + 1,
				    sizeof *counts);
				if (keys == NULL || counts == NULL)
					exit(1);
				memcpy(keys[k], key, sizeof key);
				counts[k] = 0;
				nkeys++;
			}
			counts[k]++;
			n++;
		}
		json_decref(root);
	}
	for (k = 0; k < nkeys; k++)
		printf("verified %zu by %s\n", counts[k], keys[k]);
	r = n > 0 ? 0 : 1;
out:
	free(keys);
	free(counts);
	return r;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "key-dir", required_argument, NULL, 'k' },
		{ "url", required_argument, NULL, 'u' },
		{ "ts-offset", required_argument, NULL, 't' },
		{ "bad-sig", no_argument, NULL, 'b' },
		{ "no-auth", no_argument, NULL, 'n' },
		{ "auth", required_argument, NULL, 'a' },
		{ "header", required_argument, NULL, 'H' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "elapsed", no_argument, NULL, 'e' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o;
	int ch;

	memset(&o, 0, sizeof o);
	o.timeout = 30;
	if (sodium_init() < 0)
		return 1;
	while ((ch = getopt_long(argc, argv, "+k:u:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'k':
			o.key_dir = optarg;
			break;
		case 'u':
			o.url = optarg;
			break;
		case 't':
			o.ts_offset = strtol(optarg, NULL, 10);
			break;
		case 'b':
			o.bad_sig = true;
			break;
		case 'n':
			o.no_auth = true;
			break;
		case 'a':
			o.auth = optarg;
			break;
		case 'H':
			if (o.nheaders == 16)
				usage();
			o.headers[o.nheaders++] = optarg;
			break;
		case 'T':
			o.timeout = strtol(optarg, NULL, 10);
			break;
		case 'e':
			o.elapsed = true;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	if (strcmp(argv[0], "key") == 0) {
		struct keys *k = load_key(o.key_dir);

		printf("%s\n", k->pub_b64);
		keys_free(k);
		return 0;
	}
	if (strcmp(argv[0], "change") == 0)
		return cmd_change(&o, argc, argv);
	if (strcmp(argv[0], "changes") == 0)
		return cmd_changes(&o, argc, argv);
	if (strcmp(argv[0], "sign") == 0)
		return cmd_sign(&o, argc, argv);
	if (strcmp(argv[0], "sign-record") == 0)
		return cmd_sign_record(&o, argc, argv);
	if (strcmp(argv[0], "verify-history") == 0)
		return cmd_verify_history(argc, argv);
	if (strcmp(argv[0], "verify-changes") == 0)
		return cmd_verify_changes(argc, argv);
	if (strcmp(argv[0], "rotation") == 0)
		return cmd_rotation(&o, argc, argv);
	return cmd_request(&o, argc, argv);
}
