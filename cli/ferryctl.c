/*
 * ferryctl: the command-line client of ferryd, built on libferry.
 *
 * One process runs one command over one connection and exits with a code a
 * script can branch on: 0 ok, 1 error, 2 usage, 3 not found, 4 rev mismatch
 * or conflict, 5 daemon not reachable.  Everything a command sends is
 * checked first (arguments, and input files parsed as JSON with their line
 * and column reported), so a refused command sends nothing.  Errors go to
 * stderr as one "ferryctl: <message>" line; stdout carries only results:
 * with --json the reply objects, one compact JSON object per line (watch:
 * one event per line), otherwise short human-readable text.
 *
 * ferryctl does no JSON framing or socket work of its own: that is
 * libferry's, so this file is also a worked example of the client API.
 */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ferry.h"

#define EXIT_USAGE		2
#define EXIT_NOTFOUND		3
#define EXIT_MISMATCH		4
#define EXIT_UNREACHABLE	5

#define INPUT_MAX		(8u * 1024 * 1024)

struct ctl {
	const char	*socket;	/* --socket, or NULL for the default */
	int		 json;		/* --json */
	ferry		*f;
};

struct cmd {
	const char	*name;
	int		(*run)(struct ctl *, int, char **);
};

static void
usage(FILE *fp)
{
	fprintf(fp,
"usage: ferryctl [--socket PATH] [--json] COMMAND [ARGS]\n"
"\n"
"Commands:\n"
"  status                           the daemon's state\n"
"  get C ID                         print a document's body\n"
"  put C ID [FILE|-] [--if-rev N]   replace a document (stdin without FILE)\n"
"  patch C ID [FILE|-] [--if-rev N] apply an RFC 7396 merge patch\n"
"  delete C ID [--if-rev N]         delete a document (leaves a tombstone)\n"
"  ls C [--after ID] [--limit N] [--all]\n"
"                                   list a collection, one page or --all\n"
"  watch [C...] [--since SEQ]       print changes as they happen\n"
"  sync [--wait]                    push and pull now\n"
"  conflicts                        list unresolved conflicts\n"
"  conflicts show ID                show one conflict\n"
"  resolve ID --mine|--theirs|--body FILE\n"
"                                   resolve a conflict\n"
"  log C ID                         a document's signed history\n"
"  key                              this device's public key\n"
"  help                             this text\n"
"\n"
"Options:\n"
"  --socket PATH   ferryd's socket (default $FERRY_SOCKET, else\n"
"                  $XDG_RUNTIME_DIR/ferry/ferryd.sock)\n"
"  --json          print the reply objects, one compact JSON per line\n"
"  --version       print ferryctl's version\n"
"\n"
"--if-rev N writes only if the document is still at rev N (0: only if it\n"
"does not exist).  get of a deleted document exits 3 (with --json it\n"
"prints the tombstone and exits 0).\n"
"\n"
"Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 rev mismatch or\n"
"conflict, 5 daemon not reachable.\n");
}

static void __attribute__((format(printf, 1, 2)))
warnx_(const char *fmt, ...)
{
	va_list ap;

	fputs("ferryctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int __attribute__((format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("ferryctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'ferryctl --help' for more information.\n", stderr);
	return EXIT_USAGE;
}

/* Report a failed libferry call and choose the exit code. */
static int
fail(struct ctl *c, int r)
{
	const char *name, *msg, *dot;

	msg = ferry_errmsg(c->f);
	if (msg == NULL || *msg == '\0')
		warnx_("%s", strerror(-r));
	else
		warnx_("%s", msg);
	if (r == -ENOENT)
		return EXIT_NOTFOUND;
	if (r == -ESTALE)
		return EXIT_MISMATCH;
	name = ferry_errname(c->f);
	if (name != NULL && (dot = strrchr(name, '.')) != NULL &&
	    strncmp(dot, ".Conflict", 9) == 0)
		return EXIT_MISMATCH;
	return EXIT_FAILURE;
}

static int
connect_daemon(struct ctl *c)
{
	int r;

	r = ferry_connect(c->socket, &c->f);
	if (r < 0) {
		warnx_("%s", *ferry_errmsg(NULL) != '\0' ?
		    ferry_errmsg(NULL) : strerror(-r));
		return EXIT_UNREACHABLE;
	}
	return 0;
}

/* Parse a decimal integer in [min, max]; 0 or -1. */
static int
parse_int(const char *s, int64_t min, int64_t max, int64_t *ret)
{
	char *end;
	long long v;

	if (*s == '\0')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*ret = v;
	return 0;
}

/*
 * Read FILE ("-" or NULL: stdin), at most 8 MiB, and parse it as a JSON
 * object.  On failure says why (with jansson's line and column) and
 * returns -1.
 */
static int
read_object(const char *path, json_t **ret)
{
	json_error_t jerr;
	json_t *v;
	FILE *fp;
	const char *name;
	char *buf;
	size_t len = 0, n;
	int r = -1;

	if (path == NULL || strcmp(path, "-") == 0) {
		fp = stdin;
		name = "stdin";
	} else {
		fp = fopen(path, "r");
		name = path;
		if (fp == NULL) {
			warnx_("cannot open %s: %s", path, strerror(errno));
			return -1;
		}
	}
	buf = malloc(INPUT_MAX + 1);
	if (buf == NULL) {
		warnx_("out of memory");
		goto out;
	}
	while (len <= INPUT_MAX &&
	    (n = fread(buf + len, 1, INPUT_MAX + 1 - len, fp)) > 0)
		len += n;
	if (ferror(fp)) {
		warnx_("cannot read %s: %s", name, strerror(errno));
		goto out;
	}
	if (len > INPUT_MAX) {
		warnx_("%s: larger than 8 MiB", name);
		goto out;
	}
	v = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (v == NULL) {
		warnx_("%s: line %d column %d: %s", name, jerr.line,
		    jerr.column, jerr.text);
		goto out;
	}
	if (!json_is_object(v)) {
		json_decref(v);
		warnx_("%s: not a JSON object", name);
		goto out;
	}
	*ret = v;
	r = 0;
out:
	free(buf);
	if (fp != stdin)
		fclose(fp);
	return r;
}

/* Parse JSON text libferry returned; a failure is a daemon bug. */
static json_t *
parse_reply(const char *text)
{
	json_error_t jerr;
	json_t *v;

	v = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (v == NULL)
		warnx_("cannot parse a reply: %s", jerr.text);
	return v;
}

/* Print v as one compact JSON line. */
static void
print_line(const json_t *v)
{
	json_dumpf(v, stdout, JSON_COMPACT | JSON_ENCODE_ANY);
	fputc('\n', stdout);
}

/* Print {key: v} as one compact JSON line: the shape of the daemon's reply. */
static void
print_reply(const char *key, json_t *v)
{
	json_t *o;

	o = json_pack("{sO}", key, v);
	if (o == NULL) {
		warnx_("out of memory");
		return;
	}
	print_line(o);
	json_decref(o);
}

static json_int_t
get_int(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static const char *
get_str(const json_t *o, const char *key, const char *dflt)
{
	const char *s;

	s = json_string_value(json_object_get(o, key));
	return s != NULL ? s : dflt;
}

/* "notes/n1 rev 4 (deleted, pending)": the one line a write prints. */
static void
print_doc_line(const json_t *doc)
{
	static const char *const flags[] = { "deleted", "pending", "conflicted" };
	const char *sep = "";
	size_t i;

	printf("%s/%s rev %" JSON_INTEGER_FORMAT " (",
	    get_str(doc, "collection", "?"), get_str(doc, "id", "?"),
	    get_int(doc, "rev"));
	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (json_is_true(json_object_get(doc, flags[i]))) {
			printf("%s%s", sep, flags[i]);
			sep = ", ";
		}
	printf("%s)\n", *sep == '\0' ? "synced" : "");
}

/* A duration in a short human form: "850ms", "12s", "3m 5s", "2h 3m". */
static void
format_age(int64_t ms, char *buf, size_t size)
{
	int64_t s = ms / 1000;

	if (ms < 0)
		ms = s = 0;
	if (ms < 1000)
		snprintf(buf, size, "%" PRId64 "ms", ms);
	else if (s < 60)
		snprintf(buf, size, "%" PRId64 "s", s);
	else if (s < 3600)
		snprintf(buf, size, "%" PRId64 "m %" PRId64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, size, "%" PRId64 "h %" PRId64 "m", s / 3600,
		    s % 3600 / 60);
	else
		snprintf(buf, size, "%" PRId64 "d %" PRId64 "h", s / 86400,
		    s % 86400 / 3600);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A wall-clock time in ms: "2025-11-22 10:33:20 (12s ago)". */
static void
format_time(int64_t ms, char *buf, size_t size)
{
	struct tm tm;
	time_t t = (time_t)(ms / 1000);
	char when[32], age[32];

	if (localtime_r(&t, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(when, sizeof(when), "%" PRId64, ms);
	format_age(now_ms() - ms, age, sizeof(age));
	snprintf(buf, size, "%s (%s ago)", when, age);
}

/*
 * Commands.  Each gets argv[0] = its name and parses its own options;
 * --json and --socket are accepted after the command too.
 */

enum {
	OPT_JSON = 0x100,
	OPT_SOCKET,
	OPT_IF_REV,
	OPT_AFTER,
	OPT_LIMIT,
	OPT_ALL,
	OPT_SINCE,
	OPT_WAIT,
	OPT_MINE,
	OPT_THEIRS,
	OPT_BODY,
};

#define COMMON_OPTS \
	{ "json", no_argument, NULL, OPT_JSON }, \
	{ "socket", required_argument, NULL, OPT_SOCKET }

/*
 * getopt_long over a command's arguments.  Returns the option, -1 at the
 * end, or 0 after handling a common option; '?' for a bad one (reported).
 */
static int
next_opt(struct ctl *c, int argc, char **argv, const struct option *opts)
{
	int o;

	o = getopt_long(argc, argv, ":", opts, NULL);
	switch (o) {
	case OPT_JSON:
		c->json = 1;
		return 0;
	case OPT_SOCKET:
		c->socket = optarg;
		return 0;
	case ':':
		usage_error("%s: option '%s' needs an argument", argv[0],
		    argv[optind - 1]);
		return '?';
	case '?':
		usage_error("%s: unknown option '%s'", argv[0],
		    argv[optind - 1]);
		return '?';
	default:
		return o;
	}
}

/* Options that only the common ones: returns 0 or EXIT_USAGE. */
static int
common_opts_only(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	int o;

	optind = 0;
	while ((o = next_opt(c, argc, argv, opts)) != -1)
		if (o != 0)
			return EXIT_USAGE;
	return 0;
}

static int
if_rev_arg(const char *s, int64_t *ret)
{
	if (parse_int(s, 0, INT64_MAX, ret) < 0)
		return usage_error("--if-rev: not a revision: '%s'", s);
	return 0;
}

static int
status_print(const json_t *st)
{
	char buf[96];
	const json_t *v;

	printf("%-16s%s\n", "state:", get_str(st, "state", "?"));
	printf("%-16s%s\n", "remote:", get_str(st, "remote", "(none)"));
	printf("%-16s%s\n", "device:", get_str(st, "device", "?"));
	printf("%-16s%" JSON_INTEGER_FORMAT "\n", "docs:", get_int(st, "docs"));
	printf("%-16s%" JSON_INTEGER_FORMAT "\n", "pending:",
	    get_int(st, "pending"));
	v = json_object_get(st, "oldest_pending_ms");
	if (json_is_integer(v)) {
		/* An age, or the time it was written (ms since the epoch). */
		if (json_integer_value(v) > 1000000000000LL)
			format_age(now_ms() - json_integer_value(v), buf,
			    sizeof(buf));
		else
			format_age(json_integer_value(v), buf, sizeof(buf));
		printf("%-16s%s\n", "oldest pending:", buf);
	} else
		printf("%-16s%s\n", "oldest pending:", "-");
	printf("%-16s%" JSON_INTEGER_FORMAT "\n", "conflicts:",
	    get_int(st, "conflicts"));
	printf("%-16s%" JSON_INTEGER_FORMAT "\n", "rejected:",
	    get_int(st, "rejected"));
	{
		json_t *rej = json_object_get(st, "rejected_changes"), *rc;
		size_t i;

		/* Each parked change with the remote's reason. */
		json_array_foreach(rej, i, rc)
			printf("  %s/%s: %s\n", get_str(rc, "collection", "?"),
			    get_str(rc, "id", "?"), get_str(rc, "error", "?"));
	}
	v = json_object_get(st, "last_sync_ms");
	if (json_is_integer(v) && json_integer_value(v) > 0) {
		format_time(json_integer_value(v), buf, sizeof(buf));
		printf("%-16s%s\n", "last sync:", buf);
	} else
		printf("%-16s%s\n", "last sync:", "never");
	printf("%-16s%s\n", "last error:", get_str(st, "last_error", "-"));
	printf("%-16s%s\n", "version:", get_str(st, "version", "?"));
	return 0;
}

/* status and key: one Status call, printed whole or as the device key. */
static int
cmd_status(struct ctl *c, int argc, char **argv)
{
	json_t *st = NULL;
	const char *dev;
	char *text = NULL;
	int r, key = strcmp(argv[0], "key") == 0;

	if ((r = common_opts_only(c, argc, argv)) != 0)
		return r;
	if (optind != argc)
		return usage_error("%s: takes no arguments", argv[0]);
	if ((r = connect_daemon(c)) != 0)
		return r;
	if ((r = ferry_status(c->f, &text)) < 0)
		return fail(c, r);
	r = EXIT_FAILURE;
	if ((st = parse_reply(text)) == NULL)
		goto out;
	if (key) {
		if ((dev = get_str(st, "device", NULL)) == NULL) {
			warnx_("the daemon reported no device key");
			goto out;
		}
		if (c->json)
			print_reply("device", json_object_get(st, "device"));
		else
			printf("%s\n", dev);
	} else if (c->json)
		print_reply("status", st);
	else
		status_print(st);
	r = 0;
out:
	json_decref(st);
	free(text);
	return r;
}

static int
cmd_get(struct ctl *c, int argc, char **argv)
{
	json_t *doc = NULL, *body;
	char *text = NULL;
	int r;

	if ((r = common_opts_only(c, argc, argv)) != 0)
		return r;
	if (argc - optind != 2)
		return usage_error("usage: get C ID");
	if ((r = connect_daemon(c)) != 0)
		return r;
	if ((r = ferry_get(c->f, argv[optind], argv[optind + 1], &text)) < 0)
		return fail(c, r);
	r = EXIT_FAILURE;
	if ((doc = parse_reply(text)) == NULL)
		goto out;
	if (c->json) {
		print_reply("doc", doc);
		r = 0;
		goto out;
	}
	body = json_object_get(doc, "body");
	if (json_is_true(json_object_get(doc, "deleted")) || body == NULL) {
		warnx_("%s/%s is deleted (rev %" JSON_INTEGER_FORMAT ")",
		    argv[optind], argv[optind + 1], get_int(doc, "rev"));
		r = EXIT_NOTFOUND;
		goto out;
	}
	json_dumpf(body, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
	fputc('\n', stdout);
	r = 0;
out:
	json_decref(doc);
	free(text);
	return r;
}

/* Print a write's reply doc: the reply object, or the one-line summary. */
static int
print_write(struct ctl *c, const char *text)
{
	json_t *doc;

	if ((doc = parse_reply(text)) == NULL)
		return EXIT_FAILURE;
	if (c->json)
		print_reply("doc", doc);
	else
		print_doc_line(doc);
	json_decref(doc);
	return 0;
}

/* put and patch: C ID [FILE|-] [--if-rev N]. */
static int
cmd_write(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "if-rev", required_argument, NULL, OPT_IF_REV },
		{ 0 }
	};
	json_t *obj = NULL;
	char *in = NULL, *text = NULL;
	int64_t if_rev = -1;
	int o, r, patch = strcmp(argv[0], "patch") == 0;

	optind = 0;
	while ((o = next_opt(c, argc, argv, opts)) != -1) {
		if (o == OPT_IF_REV) {
			if ((r = if_rev_arg(optarg, &if_rev)) != 0)
				return r;
		} else if (o != 0)
			return EXIT_USAGE;
	}
	if (argc - optind != 2 && argc - optind != 3)
		return usage_error("usage: %s C ID [FILE|-] [--if-rev N]",
		    argv[0]);
	if (read_object(argc - optind == 3 ? argv[optind + 2] : NULL,
	    &obj) < 0)
		return EXIT_FAILURE;
	r = EXIT_FAILURE;
	in = json_dumps(obj, JSON_COMPACT);
	if (in == NULL) {
		warnx_("out of memory");
		goto out;
	}
	if ((r = connect_daemon(c)) != 0)
		goto out;
	if (patch)
		r = ferry_patch(c->f, argv[optind], argv[optind + 1], in,
		    if_rev, &text);
	else
		r = ferry_put(c->f, argv[optind], argv[optind + 1], in,
		    if_rev, &text);
	if (r < 0) {
		r = fail(c, r);
		goto out;
	}
	r = print_write(c, text);
out:
	free(text);
	free(in);
	json_decref(obj);
	return r;
}

static int
cmd_delete(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "if-rev", required_argument, NULL, OPT_IF_REV },
		{ 0 }
	};
	char *text = NULL;
	int64_t if_rev = -1;
	int o, r;

	optind = 0;
	while ((o = next_opt(c, argc, argv, opts)) != -1) {
		if (o == OPT_IF_REV) {
			if ((r = if_rev_arg(optarg, &if_rev)) != 0)
				return r;
		} else if (o != 0)
			return EXIT_USAGE;
	}
	if (argc - optind != 2)
		return usage_error("usage: delete C ID [--if-rev N]");
	if ((r = connect_daemon(c)) != 0)
		return r;
	r = ferry_delete(c->f, argv[optind], argv[optind + 1], if_rev, &text);
	if (r < 0)
		return fail(c, r);
	r = print_write(c, text);
	free(text);
	return r;
}

/* Print one List page; returns its "next" (owned by page) or NULL. */
static const char *
ls_page(struct ctl *c, const json_t *page)
{
	const json_t *doc;
	size_t i;

	if (c->json) {
		print_line(page);
		return get_str(page, "next", NULL);
	}
	json_array_foreach(json_object_get(page, "docs"), i, doc) {
		printf("%s  rev %" JSON_INTEGER_FORMAT "%s%s\n",
		    get_str(doc, "id", "?"), get_int(doc, "rev"),
		    json_is_true(json_object_get(doc, "deleted")) ?
		    "  deleted" : "",
		    json_is_true(json_object_get(doc, "conflicted")) ?
		    "  conflicted" : "");
	}
	return get_str(page, "next", NULL);
}

static int
cmd_ls(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "after", required_argument, NULL, OPT_AFTER },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "all", no_argument, NULL, OPT_ALL },
		{ 0 }
	};
	json_t *page = NULL;
	const char *next;
	char *after = NULL, *text = NULL;
	int64_t limit = 0;
	int o, r, all = 0;

	optind = 0;
	while ((o = next_opt(c, argc, argv, opts)) != -1) {
		switch (o) {
		case 0:
			break;
		case OPT_AFTER:
			free(after);
			if ((after = strdup(optarg)) == NULL) {
				warnx_("out of memory");
				return EXIT_FAILURE;
			}
			break;
		case OPT_LIMIT:
			if (parse_int(optarg, 1, INT32_MAX, &limit) < 0) {
				free(after);
				return usage_error("--limit: not a positive "
				    "number: '%s'", optarg);
			}
			break;
		case OPT_ALL:
			all = 1;
			break;
		default:
			free(after);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		free(after);
		return usage_error("usage: ls C [--after ID] [--limit N] "
		    "[--all]");
	}
	if ((r = connect_daemon(c)) != 0)
		goto out;
	for (;;) {
		r = ferry_list(c->f, argv[optind], after, (int)limit, &text);
		if (r < 0) {
			r = fail(c, r);
			goto out;
		}
		if ((page = parse_reply(text)) == NULL) {
			r = EXIT_FAILURE;
			goto out;
		}
		free(text);
		text = NULL;
		next = ls_page(c, page);
		if (next == NULL)
			break;
		if (!all) {
			if (!c->json && isatty(STDERR_FILENO))
				warnx_("more after '%s': use --after %s or "
				    "--all", next, next);
			break;
		}
		if (after != NULL && strcmp(after, next) == 0) {
			warnx_("the daemon repeated page '%s'", next);
			r = EXIT_FAILURE;
			goto out;
		}
		free(after);
		if ((after = strdup(next)) == NULL) {
			warnx_("out of memory");
			r = EXIT_FAILURE;
			goto out;
		}
		json_decref(page);
		page = NULL;
	}
	r = 0;
out:
	json_decref(page);
	free(text);
	free(after);
	return r;
}

static int
cmd_watch(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "since", required_argument, NULL, OPT_SINCE },
		{ 0 }
	};
	json_t *ev;
	char *text;
	int64_t since = -1;
	int o, r;

	optind = 0;
	while ((o = next_opt(c, argc, argv, opts)) != -1) {
		if (o == OPT_SINCE) {
			if (parse_int(optarg, 0, INT64_MAX, &since) < 0)
				return usage_error("--since: not a sequence "
				    "number: '%s'", optarg);
		} else if (o != 0)
			return EXIT_USAGE;
	}
	if ((r = connect_daemon(c)) != 0)
		return r;
	/* argv[optind..argc) are the collections; argv[argc] is NULL. */
	r = ferry_watch(c->f, optind < argc ?
	    (const char *const *)argv + optind : NULL, since);
	if (r < 0)
		return fail(c, r);
	for (;;) {
		text = NULL;
		r = ferry_watch_wait(c->f, -1, &text);
		if (r < 0)
			return fail(c, r);
		if (r == 0)
			continue;
		ev = parse_reply(text);
		free(text);
		if (ev == NULL)
			return EXIT_FAILURE;
		if (c->json)
			print_line(ev);
		else
			printf("%" JSON_INTEGER_FORMAT " %s/%s rev %"
			    JSON_INTEGER_FORMAT " %s%s\n",
			    get_int(ev, "seq"), get_str(ev, "collection", "?"),
			    get_str(ev, "id", "?"), get_int(ev, "rev"),
			    get_str(ev, "origin", "?"),
			    json_is_true(json_object_get(ev, "deleted")) ?
			    " deleted" : "");
		json_decref(ev);
		if (fflush(stdout) == EOF) {
			warnx_("cannot write output: %s", strerror(errno));
			return EXIT_FAILURE;
		}
	}
}

/*
 * Generic call for the commands below: params (reference taken; NULL
 * means building it failed) to method; *ret is the reply's parameters.
 * Returns 0 or an exit code.
 */
static int
call_json(struct ctl *c, const char *method, json_t *params, json_t **ret)
{
	char *ptext = NULL, *text = NULL;
	int r;

	if (params == NULL) {
		/* json_pack failed: a string that is not UTF-8, or no memory. */
		warnx_("%s: arguments must be valid UTF-8", method);
		return EXIT_USAGE;
	}
	ptext = json_dumps(params, JSON_COMPACT);
	json_decref(params);
	if (ptext == NULL) {
		warnx_("out of memory");
		return EXIT_FAILURE;
	}
	if ((r = connect_daemon(c)) != 0)
		goto out;
	if ((r = ferry_call(c->f, method, ptext, &text)) < 0) {
		r = fail(c, r);
		goto out;
	}
	if ((*ret = parse_reply(text)) == NULL) {
		r = EXIT_FAILURE;
		goto out;
	}
	r = 0;
out:
	free(text);
	free(ptext);
	return r;
}

/* A conflict id on the command line: an integer if it looks like one. */
static json_t *
conflict_id(const char *s)
{
	int64_t v;

	if (parse_int(s, 0, INT64_MAX, &v) == 0)
		return json_integer(v);
	return json_string(s);
}

static int
cmd_sync(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "wait", no_argument, NULL, OPT_WAIT },
		{ 0 }
	};
	json_t *reply = NULL;
	int o, r, wait = 0;

	optind = 0;
	while ((o = next_opt(c, argc, argv, opts)) != -1) {
		if (o == OPT_WAIT)
			wait = 1;
		else if (o != 0)
			return EXIT_USAGE;
	}
	if (optind != argc)
		return usage_error("usage: sync [--wait]");
	r = call_json(c, "io.ferry.Sync",
	    wait ? json_pack("{sb}", "wait", 1) : json_object(), &reply);
	if (r != 0)
		return r;
	if (c->json)
		print_line(reply);
	else if (json_is_object(json_object_get(reply, "status")))
		status_print(json_object_get(reply, "status"));
	json_decref(reply);
	return 0;
}

static void
print_indented(const char *label, const json_t *v)
{
	printf("%s:\n", label);
	if (v == NULL || json_is_null(v)) {
		printf("  (none)\n");
		return;
	}
	json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
	fputc('\n', stdout);
}

static void
print_paths(const json_t *paths)
{
	const json_t *p;
	size_t i;

	json_array_foreach(paths, i, p)
		printf("%s%s", i > 0 ? ", " : "", json_string_value(p) != NULL ?
		    json_string_value(p) : "?");
}

static void
print_conflict_id(const json_t *conflict)
{
	const json_t *id = json_object_get(conflict, "conflict_id");

	if (json_is_string(id))
		fputs(json_string_value(id), stdout);
	else
		printf("%" JSON_INTEGER_FORMAT, json_integer_value(id));
}

static int
cmd_conflicts(struct ctl *c, int argc, char **argv)
{
	json_t *reply = NULL, *cf;
	size_t i;
	int r, show;

	if ((r = common_opts_only(c, argc, argv)) != 0)
		return r;
	show = argc - optind == 2 && strcmp(argv[optind], "show") == 0;
	if (!show && argc - optind != 0)
		return usage_error("usage: conflicts [show ID]");
	if (show)
		r = call_json(c, "io.ferry.GetConflict", json_pack("{so}",
		    "conflict_id", conflict_id(argv[optind + 1])), &reply);
	else
		r = call_json(c, "io.ferry.Conflicts", json_object(), &reply);
	if (r != 0)
		return r;
	if (c->json)
		print_line(reply);
	else if (show) {
		cf = json_object_get(reply, "conflict");
		printf("conflict:      ");
		print_conflict_id(cf);
		printf("\ndocument:      %s/%s\n", get_str(cf, "collection", "?"),
		    get_str(cf, "id", "?"));
		printf("their version: %" JSON_INTEGER_FORMAT "\npaths:         ",
		    get_int(cf, "their_version"));
		print_paths(json_object_get(cf, "paths"));
		printf("\n");
		print_indented("base", json_object_get(cf, "base"));
		print_indented("mine", json_object_get(cf, "mine"));
		print_indented("theirs", json_object_get(cf, "theirs"));
	} else
		json_array_foreach(json_object_get(reply, "conflicts"), i, cf) {
			print_conflict_id(cf);
			printf("  %s/%s  ", get_str(cf, "collection", "?"),
			    get_str(cf, "id", "?"));
			print_paths(json_object_get(cf, "paths"));
			printf("\n");
		}
	json_decref(reply);
	return 0;
}

static int
cmd_resolve(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "mine", no_argument, NULL, OPT_MINE },
		{ "theirs", no_argument, NULL, OPT_THEIRS },
		{ "body", required_argument, NULL, OPT_BODY },
		{ 0 }
	};
	json_t *params = NULL, *body = NULL, *reply = NULL;
	const char *strategy = NULL, *file = NULL;
	int o, r;

	optind = 0;
	while ((o = next_opt(c, argc, argv, opts)) != -1) {
		if (o == 0)
			continue;
		if (o != OPT_MINE && o != OPT_THEIRS && o != OPT_BODY)
			return EXIT_USAGE;
		if (strategy != NULL)
			return usage_error("resolve: give one of --mine, "
			    "--theirs, --body FILE");
		strategy = o == OPT_MINE ? "mine" : o == OPT_THEIRS ?
		    "theirs" : "merged";
		if (o == OPT_BODY)
			file = optarg;
	}
	if (argc - optind != 1 || strategy == NULL)
		return usage_error("usage: resolve ID --mine|--theirs|"
		    "--body FILE");
	if (file != NULL && read_object(file, &body) < 0)
		return EXIT_FAILURE;
	params = json_pack("{sossso*}", "conflict_id",
	    conflict_id(argv[optind]), "strategy", strategy, "body", body);
	if ((r = call_json(c, "io.ferry.Resolve", params, &reply)) != 0)
		return r;
	if (c->json)
		print_line(reply);
	else if (json_is_object(json_object_get(reply, "doc")))
		print_doc_line(json_object_get(reply, "doc"));
	json_decref(reply);
	return 0;
}

static int
cmd_log(struct ctl *c, int argc, char **argv)
{
	json_t *reply = NULL, *e, *ts;
	char when[64];
	size_t i;
	int r;

	if ((r = common_opts_only(c, argc, argv)) != 0)
		return r;
	if (argc - optind != 2)
		return usage_error("usage: log C ID");
	r = call_json(c, "io.ferry.History", json_pack("{ssss}",
	    "collection", argv[optind], "id", argv[optind + 1]), &reply);
	if (r != 0)
		return r;
	if (c->json)
		print_line(reply);
	else
		json_array_foreach(json_object_get(reply, "entries"), i, e) {
			ts = json_object_get(e, "ts");
			if (json_is_integer(ts))
				format_time(json_integer_value(ts), when,
				    sizeof(when));
			else
				snprintf(when, sizeof(when), "?");
			printf("v%" JSON_INTEGER_FORMAT "  %s  %-6s  %s  %s  ",
			    get_int(e, "version"), when, get_str(e, "op", "?"),
			    get_str(e, "device_name",
			    get_str(e, "device", "?")),
			    json_is_true(json_object_get(e, "verified")) ?
			    "verified" : "UNVERIFIED");
			print_paths(json_object_get(e, "changed_paths"));
			printf("\n");
		}
	json_decref(reply);
	return 0;
}

static int
cmd_help(struct ctl *c, int argc, char **argv)
{
	usage(stdout);
	return 0;
}

static const struct cmd cmds[] = {
	{ "status",	cmd_status },
	{ "key",	cmd_status },
	{ "get",	cmd_get },
	{ "put",	cmd_write },
	{ "patch",	cmd_write },
	{ "delete",	cmd_delete },
	{ "ls",		cmd_ls },
	{ "watch",	cmd_watch },
	{ "sync",	cmd_sync },
	{ "conflicts",	cmd_conflicts },
	{ "resolve",	cmd_resolve },
	{ "log",	cmd_log },
	{ "help",	cmd_help },
};

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	struct ctl c;
	size_t i;
	int o, r;

	memset(&c, 0, sizeof(c));
	/* '+': stop at the command; its own options are parsed later. */
	while ((o = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (o) {
		case OPT_JSON:
			c.json = 1;
			break;
		case OPT_SOCKET:
			c.socket = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("ferryctl %s\n", FERRY_VERSION);
			return 0;
		case ':':
			return usage_error("option '%s' needs an argument",
			    argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'",
			    argv[optind - 1]);
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[optind], cmds[i].name) == 0)
			break;
	if (i == sizeof(cmds) / sizeof(cmds[0]))
		return usage_error("unknown command '%s'", argv[optind]);
	r = cmds[i].run(&c, argc - optind, argv + optind);
	ferry_close(c.f);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		warnx_("cannot write output: %s", strerror(errno));
		if (r == 0)
			r = EXIT_FAILURE;
	}
	return r;
}
