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
#include <langinfo.h>
#include <locale.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include <jansson.h>

#include "ferry.h"
#include "merge.h"

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
"  sync [--wait] [--collections C,C...|'*']\n"
"                                   push and pull now; --collections: sync\n"
"                                   only these from now on ('*': all)\n"
"  conflicts                        list unresolved conflicts\n"
"  conflicts show ID                show one conflict\n"
"  parked                           pulled changes that could not be applied\n"
"  resolve ID --mine|--theirs       resolve a conflict: that side at the\n"
"                                   conflicting paths, all other changes kept\n"
"  resolve ID --all-mine|--all-theirs\n"
"                                   resolve with one side's whole document\n"
"  resolve ID --merged FILE         resolve with the body in FILE\n"
"  log C ID                         a document's signed history\n"
"  who [C [ID]]                     who is present (apps here and on other\n"
"                                   devices), in C, at ID\n"
"  key [--name]                     this device's key (--name: its name)\n"
"  key rotate                       a new device key, the old one retired\n"
"  help                             this text\n"
"\n"
"Options:\n"
"  --socket PATH   ferryd's socket (default $FERRY_SOCKET, else\n"
"                  $XDG_RUNTIME_DIR/ferry/ferryd.sock, else where ferryd\n"
"                  puts it: see ferryctl(1))\n"
"  --json          print the reply objects, one compact JSON per line\n"
"  --version       print ferryctl's version\n"
"\n"
"--if-rev N writes only if the document is still at rev N (0: only if it\n"
"does not exist).  get of a deleted document exits 3 (with --json it\n"
"prints the tombstone and exits 0).\n"
"\n"
"After the command, options may come anywhere and are long ones only: a\n"
"word that begins with one '-' is an argument (ferryctl get notes -x).\n"
"'--' ends the options (for names that begin with '--').\n"
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

static json_int_t	 get_int(const json_t *, const char *);
static const char	*get_str(const json_t *, const char *, const char *);

/*
 * An error ferryd answered, as a sentence for people ("no conflict 99",
 * not io.ferry.NotFound: {"conflict_id":99}).  Returns 0 and fills buf,
 * or -1 for an error it has no words for (libferry's message is used).
 */
static int
error_sentence(const char *name, const char *params_text, char *buf,
    size_t size)
{
	json_t *p, *cur;
	const char *field, *reason;
	int r = 0;

	if (name == NULL || params_text == NULL ||
	    (p = json_loads(params_text, 0, NULL)) == NULL)
		return -1;
	reason = get_str(p, "reason", NULL);
	cur = json_object_get(p, "current");
	if (strcmp(name, "io.ferry.NotFound") == 0 &&
	    json_is_integer(json_object_get(p, "conflict_id")))
		snprintf(buf, size, "no conflict %" JSON_INTEGER_FORMAT,
		    get_int(p, "conflict_id"));
	else if (strcmp(name, "io.ferry.NotFound") == 0 &&
	    get_str(p, "id", NULL) != NULL)
		snprintf(buf, size, "no document %s/%s",
		    get_str(p, "collection", "?"), get_str(p, "id", "?"));
	else if (strcmp(name, "io.ferry.RevMismatch") == 0 &&
	    json_is_object(cur))
		snprintf(buf, size, "%s/%s is at rev %" JSON_INTEGER_FORMAT
		    "%s, not the rev given: nothing was written",
		    get_str(cur, "collection", "?"), get_str(cur, "id", "?"),
		    get_int(cur, "rev"),
		    json_is_true(json_object_get(cur, "deleted")) ?
		    " (deleted)" : "");
	else if ((strcmp(name, "io.ferry.InvalidArgument") == 0 ||
	    strcmp(name, "org.varlink.service.InvalidParameter") == 0) &&
	    ((field = get_str(p, "field", NULL)) != NULL ||
	    (field = get_str(p, "parameter", NULL)) != NULL))
		snprintf(buf, size, "%s: %s", field, reason != NULL ? reason :
		    "not valid");
	else if (strcmp(name, "io.ferry.Offline") == 0)
		snprintf(buf, size, "the remote cannot be reached%s%s",
		    reason != NULL ? ": " : "", reason != NULL ? reason : "");
	else if (strcmp(name, "io.ferry.RotationRefused") == 0)
		snprintf(buf, size, "the key was not rotated: %s",
		    reason != NULL ? reason : "refused");
	else if (strcmp(name, "io.ferry.WriteFailed") == 0)
		snprintf(buf, size, "ferryd could not write it%s%s",
		    reason != NULL ? ": " : "", reason != NULL ? reason : "");
	else if (strcmp(name, "io.ferry.TooManyConnections") == 0)
		snprintf(buf, size, "ferryd refused the connection: it has "
		    "%" JSON_INTEGER_FORMAT " connections open already",
		    get_int(p, "limit"));
	else if (strcmp(name, "org.varlink.service.MethodNotFound") == 0)
		snprintf(buf, size, "this ferryd does not know %s (it is older "
		    "than ferryctl)", get_str(p, "method", "the method"));
	else
		r = -1;
	json_decref(p);
	return r;
}

/*
 * Report a failed libferry call and choose the exit code: a sentence on
 * a terminal, libferry's raw form (name and parameters) with --json.
 */
static int
fail(struct ctl *c, int r)
{
	const char *name, *msg, *dot;
	char sentence[1024];

	msg = ferry_errmsg(c->f);
	if (!c->json && error_sentence(ferry_errname(c->f),
	    ferry_errparams(c->f), sentence, sizeof(sentence)) == 0)
		warnx_("%s", sentence);
	else if (msg == NULL || *msg == '\0')
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
		/* The message names the path it tried. */
		warnx_("%s", *ferry_errmsg(NULL) != '\0' ?
		    ferry_errmsg(NULL) : strerror(-r));
		if (r == -ENOENT || r == -ECONNREFUSED)
			fprintf(stderr, "ferryctl: is ferryd running? Start it "
			    "with 'systemctl --user start ferryd' or 'ferryd "
			    "&'%s.\n", c->socket != NULL ? " (with --socket "
			    "the same path)" : "");
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
	OPT_ALL_MINE,
	OPT_ALL_THEIRS,
	OPT_NAME,
	OPT_COLLECTIONS,
};

#define COMMON_OPTS \
	{ "json", no_argument, NULL, OPT_JSON }, \
	{ "socket", required_argument, NULL, OPT_SOCKET }

/*
 * Option parsing for the commands, in place of getopt_long.  After the
 * command only long options exist, so a word with a single leading '-'
 * ("-x", "-") is an operand: collections and ids may begin with '-'
 * without "--" in front (ferryctl get notes -x).  "--name", "--name=value"
 * and "--name value" are options, unique prefixes accepted; "--" ends
 * them (a name that begins with "--" needs it).  Like GNU getopt, the
 * first call (with optind set to 0) moves the operands, in their order,
 * behind the options, so once next_opt returned -1 the operands are
 * argv[optind..argc).
 */
static int opt_pos;		/* next option word */
static int opt_end;		/* end of the option words */
static int opt_operands;	/* first operand */

static const struct option *
opt_lookup(const struct option *opts, const char *name, size_t len,
    int *ret_ambiguous)
{
	const struct option *o, *found = NULL;

	*ret_ambiguous = 0;
	for (o = opts; o->name != NULL; o++) {
		if (strncmp(o->name, name, len) != 0)
			continue;
		if (strlen(o->name) == len)
			return o;
		if (found != NULL)
			*ret_ambiguous = 1;
		found = o;
	}
	return *ret_ambiguous ? NULL : found;
}

/* Options first, then "--" if given, then the operands.  0 or -1. */
static int
opt_sort(int argc, char **argv, const struct option *opts)
{
	const struct option *o;
	const char *eq;
	char **operands, *dashdash = NULL;
	int i, n = 0, w = 1, amb;

	if ((operands = calloc((size_t)argc + 1, sizeof(*operands))) == NULL)
		return -1;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			dashdash = argv[i];
			while (++i < argc)
				operands[n++] = argv[i];
			break;
		}
		if (strncmp(argv[i], "--", 2) != 0) {
			operands[n++] = argv[i];
			continue;
		}
		argv[w++] = argv[i];
		eq = strchr(argv[i] + 2, '=');
		o = opt_lookup(opts, argv[i] + 2, eq != NULL ?
		    (size_t)(eq - argv[i] - 2) : strlen(argv[i] + 2), &amb);
		/* Its value is the next word, whatever it looks like. */
		if (o != NULL && o->has_arg == required_argument &&
		    eq == NULL && i + 1 < argc)
			argv[w++] = argv[++i];
	}
	opt_end = w;
	if (dashdash != NULL)
		argv[w++] = dashdash;
	opt_operands = w;
	memcpy(argv + w, operands, (size_t)n * sizeof(*operands));
	free(operands);
	return 0;
}

/*
 * The next option of a command's arguments.  Returns the option, -1 at
 * the end, or 0 after handling a common option; '?' for a bad one
 * (reported).
 */
static int
next_opt(struct ctl *c, int argc, char **argv, const struct option *opts)
{
	const struct option *o;
	char *word, *eq;
	int amb;

	if (optind == 0) {
		if (opt_sort(argc, argv, opts) < 0) {
			warnx_("out of memory");
			return '?';
		}
		opt_pos = 1;
		optind = 1;
	}
	if (opt_pos >= opt_end) {
		optind = opt_operands;
		return -1;
	}
	word = argv[opt_pos++];
	eq = strchr(word + 2, '=');
	o = opt_lookup(opts, word + 2, eq != NULL ? (size_t)(eq - word - 2) :
	    strlen(word + 2), &amb);
	if (o == NULL) {
		usage_error("%s: %s option '%s'", argv[0], amb ? "ambiguous" :
		    "unknown", word);
		return '?';
	}
	optarg = NULL;
	if (o->has_arg == no_argument && eq != NULL) {
		usage_error("%s: option '--%s' takes no value", argv[0],
		    o->name);
		return '?';
	}
	if (o->has_arg == required_argument) {
		if (eq != NULL)
			optarg = eq + 1;
		else if (opt_pos < opt_end)
			optarg = argv[opt_pos++];
		else {
			usage_error("%s: option '--%s' needs an argument",
			    argv[0], o->name);
			return '?';
		}
	}
	switch (o->val) {
	case OPT_JSON:
		c->json = 1;
		return 0;
	case OPT_SOCKET:
		c->socket = optarg;
		return 0;
	default:
		return o->val;
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
	/* One vocabulary: the device name (for people) and its key. */
	printf("%-16s%s\n", "device name:", get_str(st, "device_name", "?"));
	printf("%-16s%s\n", "device key:", get_str(st, "device", "?"));
	printf("%-16s%" JSON_INTEGER_FORMAT "\n", "docs:", get_int(st, "docs"));
	printf("%-16s%" JSON_INTEGER_FORMAT "\n", "pending:",
	    get_int(st, "pending"));
	if (json_is_array(json_object_get(st, "collections"))) {
		/* Selective sync: what is synced, what stays here. */
		json_t *cn;
		size_t ci;

		printf("%-16s", "collections:");
		json_array_foreach(json_object_get(st, "collections"), ci, cn)
			printf("%s%s", ci > 0 ? ", " : "", json_string_value(cn));
		printf(" (the others stay on this machine)\n");
		printf("%-16s%" JSON_INTEGER_FORMAT " (changes to collections "
		    "not synced, kept here)\n", "local only:",
		    get_int(st, "local_only"));
	}
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
	printf("%-16s%" JSON_INTEGER_FORMAT "\n", "parked:",
	    get_int(st, "parked"));
	{
		json_t *pk = json_object_get(st, "parked_changes"), *pc;
		size_t i;

		/* Each pulled change that could not be applied, with why. */
		json_array_foreach(pk, i, pc)
			printf("  %s/%s version %" JSON_INTEGER_FORMAT ": %s\n",
			    get_str(pc, "collection", "?"),
			    get_str(pc, "id", "?"), get_int(pc, "version"),
			    get_str(pc, "reason", "?"));
	}
	v = json_object_get(st, "last_sync_ms");
	if (json_is_integer(v) && json_integer_value(v) > 0) {
		format_time(json_integer_value(v), buf, sizeof(buf));
		printf("%-16s%s\n", "last sync:", buf);
	} else
		printf("%-16s%s\n", "last sync:", "never");
	printf("%-16s%s\n", "last error:", get_str(st, "last_error", "-"));
	if (get_str(st, "key_rotation", NULL) != NULL)
		printf("%-16s%s\n", "key rotation:", get_str(st,
		    "key_rotation", ""));
	/* Said last and whole: the user has something to do. */
	if (get_str(st, "key_problem", NULL) != NULL)
		printf("%-16s%s\n", "key problem:", get_str(st, "key_problem",
		    ""));
	printf("%-16s%s\n", "version:", get_str(st, "version", "?"));
	return 0;
}

static int	call_json(struct ctl *, const char *, json_t *, json_t **);

/*
 * key rotate: a new device key, the old one retired by the remote.  An
 * Offline answer means it goes on in the background (exit 1, said so).
 */
static int
key_rotate(struct ctl *c)
{
	json_t *reply = NULL;
	int r;

	if ((r = call_json(c, "io.ferry.RotateKey", json_object(), &reply)) !=
	    0) {
		if (!c->json && c->f != NULL && ferry_errname(c->f) != NULL &&
		    strcmp(ferry_errname(c->f), "io.ferry.Offline") == 0)
			fprintf(stderr, "ferryctl: the rotation is kept and "
			    "completes when the remote is back\n");
		return r;
	}
	if (c->json)
		print_line(reply);
	else
		printf("new device key %s (the remote retired %s)\n",
		    get_str(reply, "key", "?"), get_str(reply, "old_key", "?"));
	json_decref(reply);
	return 0;
}

/*
 * status and key: one Status call, printed whole or as the device key
 * (key --name: the device name, as ferry-server allow KEY NAME wants it).
 */
static int
cmd_status(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "name", no_argument, NULL, OPT_NAME },
		{ 0 }
	};
	json_t *st = NULL;
	const char *dev, *what = "device";
	char *text = NULL;
	int o, r, key = strcmp(argv[0], "key") == 0;

	optind = 0;
	while ((o = next_opt(c, argc, argv, opts)) != -1) {
		if (o == OPT_NAME && key)
			what = "device_name";
		else if (o != 0)
			return o == OPT_NAME ? usage_error("status: takes no "
			    "arguments") : EXIT_USAGE;
	}
	if (key && optind + 1 == argc && strcmp(argv[optind], "rotate") == 0 &&
	    strcmp(what, "device") == 0)
		return key_rotate(c);
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
		if ((dev = get_str(st, what, NULL)) == NULL) {
			warnx_("the daemon reported no device %s",
			    strcmp(what, "device") == 0 ? "key" : "name");
			goto out;
		}
		if (c->json)
			print_reply(what, json_object_get(st, what));
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

/*
 * Print one List page in aligned columns (ID, REV, VERSION, STATE, the
 * header with the first page); STATE marks what waits: "pending" (not
 * pushed yet), "conflicted" (a conflict to resolve), else "synced".
 * Returns the page's "next" (owned by page) or NULL.
 */
static const char *
ls_page(struct ctl *c, const json_t *page, int first)
{
	const json_t *docs = json_object_get(page, "docs"), *doc;
	char rev[24], ver[24], state[48];
	size_t i, iw = 2, rw = 3, vw = 7, n;

	if (c->json) {
		print_line(page);
		return get_str(page, "next", NULL);
	}
	json_array_foreach(docs, i, doc) {
		if ((n = strlen(get_str(doc, "id", "?"))) > iw)
			iw = n;
		n = (size_t)snprintf(rev, sizeof(rev), "%" JSON_INTEGER_FORMAT,
		    get_int(doc, "rev"));
		if (n > rw)
			rw = n;
		n = (size_t)snprintf(ver, sizeof(ver), "%" JSON_INTEGER_FORMAT,
		    get_int(doc, "version"));
		if (n > vw)
			vw = n;
	}
	if (first && json_array_size(docs) > 0)
		printf("%-*s  %*s  %*s  %s\n", (int)iw, "ID", (int)rw, "REV",
		    (int)vw, "VERSION", "STATE");
	json_array_foreach(docs, i, doc) {
		snprintf(state, sizeof(state), "%s%s%s",
		    json_is_true(json_object_get(doc, "pending")) ?
		    "pending" : "",
		    json_is_true(json_object_get(doc, "pending")) &&
		    json_is_true(json_object_get(doc, "conflicted")) ? ", " : "",
		    json_is_true(json_object_get(doc, "conflicted")) ?
		    "conflicted" : "");
		printf("%-*s  %*" JSON_INTEGER_FORMAT "  %*" JSON_INTEGER_FORMAT
		    "  %s\n", (int)iw, get_str(doc, "id", "?"), (int)rw,
		    get_int(doc, "rev"), (int)vw, get_int(doc, "version"),
		    state[0] != '\0' ? state : "synced");
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
	int o, r, all = 0, pages = 0;

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
		next = ls_page(c, page, pages++ == 0);
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
	if (c->f == NULL && (r = connect_daemon(c)) != 0)
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
		{ "collections", required_argument, NULL, OPT_COLLECTIONS },
		{ 0 }
	};
	json_t *reply = NULL, *params, *list = NULL;
	const char *p, *e, *colls = NULL;
	int o, r, wait = 0;

	optind = 0;
	while ((o = next_opt(c, argc, argv, opts)) != -1) {
		if (o == OPT_WAIT)
			wait = 1;
		else if (o == OPT_COLLECTIONS)
			colls = optarg;
		else if (o != 0)
			return EXIT_USAGE;
	}
	if (optind != argc)
		return usage_error("usage: sync [--wait] [--collections "
		    "C,C...|'*']");
	params = wait ? json_pack("{sb}", "wait", 1) : json_object();
	if (colls != NULL) {
		/* Split at commas; ferryd checks each name and says which is
		 * wrong. */
		list = json_array();
		for (p = colls; ; p = e + 1) {
			if ((e = strchr(p, ',')) == NULL)
				e = p + strlen(p);
			json_array_append_new(list, json_stringn(p,
			    (size_t)(e - p)));
			if (*e == '\0')
				break;
		}
		json_object_set_new(params, "collections", list);
	}
	r = call_json(c, "io.ferry.Sync", params, &reply);
	if (r != 0 && !c->json && c->f != NULL && ferry_errname(c->f) != NULL &&
	    strcmp(ferry_errname(c->f), "io.ferry.Offline") == 0 &&
	    call_json(c, "io.ferry.Status", json_object(), &reply) == 0) {
		/* The state it ended in: offline, and what still waits. */
		if (json_is_object(json_object_get(reply, "status")))
			status_print(json_object_get(reply, "status"));
		json_decref(reply);
		return r;
	}
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

/*
 * Terminal output for the tables of conflicts show and log: the width to
 * fit (the terminal's; else $COLUMNS, else 80), colour only on a terminal
 * and unless NO_COLOR is set (https://no-color.org), and cells cut to
 * their column by display width, so UTF-8 text lines up.
 */
#define SGR_BOLD	"\033[1m"
#define SGR_DIM		"\033[2m"
#define SGR_RED		"\033[1;31m"
#define SGR_GREEN	"\033[32m"
#define SGR_YELLOW	"\033[33m"
#define SGR_RESET	"\033[0m"

struct term {
	size_t	 width;
	int	 colour;
	int	 utf8;
};

static void
term_init(struct term *t)
{
	struct winsize ws;
	const char *s;
	int64_t n;

	t->width = 80;
	if (isatty(STDOUT_FILENO) &&
	    ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		t->width = ws.ws_col;
	else if ((s = getenv("COLUMNS")) != NULL &&
	    parse_int(s, 1, 100000, &n) == 0)
		t->width = (size_t)n;
	s = getenv("NO_COLOR");
	t->colour = isatty(STDOUT_FILENO) && (s == NULL || *s == '\0');
	t->utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
}

/* The JSON dump flags for a cell: ASCII only unless the locale is UTF-8. */
static size_t
term_json_flags(const struct term *t)
{
	return JSON_COMPACT | JSON_ENCODE_ANY | (t->utf8 ? 0 : JSON_ENSURE_ASCII);
}

/*
 * Columns the text s takes on a terminal, stopping before max would be
 * passed; *ret_fit (may be NULL) gets the bytes that fit.  A byte that
 * does not decode counts one column.
 */
static size_t
text_cols(const char *s, size_t max, size_t *ret_fit)
{
	mbstate_t ps;
	wchar_t wc;
	size_t i = 0, len = strlen(s), cols = 0, n;
	int w;

	memset(&ps, 0, sizeof(ps));
	while (i < len) {
		n = mbrtowc(&wc, s + i, len - i, &ps);
		if (n == (size_t)-1 || n == (size_t)-2) {
			memset(&ps, 0, sizeof(ps));
			n = 1;
			w = 1;
		} else if ((w = wcwidth(wc)) < 0)
			w = 1;
		if (n == 0)
			n = 1;
		if (cols + (size_t)w > max)
			break;
		cols += (size_t)w;
		i += n;
	}
	if (ret_fit != NULL)
		*ret_fit = i;
	return cols;
}

/*
 * Print s in at most w columns, cut with an ellipsis when longer, in the
 * colour sgr (may be NULL), then pad it to w columns if pad.
 */
static void
print_cell(const struct term *t, const char *s, size_t w, const char *sgr,
    int pad)
{
	const char *ell = t->utf8 ? "\xe2\x80\xa6" : "...";
	size_t ell_w = t->utf8 ? 1 : 3, cols, fit;

	if (t->colour && sgr != NULL)
		fputs(sgr, stdout);
	if ((cols = text_cols(s, SIZE_MAX, NULL)) <= w)
		fputs(s, stdout);
	else if (w <= ell_w) {
		cols = text_cols(s, w, &fit);
		fwrite(s, 1, fit, stdout);
	} else {
		cols = text_cols(s, w - ell_w, &fit) + ell_w;
		fwrite(s, 1, fit, stdout);
		fputs(ell, stdout);
	}
	if (t->colour && sgr != NULL)
		fputs(SGR_RESET, stdout);
	for (; pad && cols < w; cols++)
		putchar(' ');
}

/*
 * Share room columns between n table columns that want want[i]: those that
 * fit in an equal share get what they want, the rest split what is left
 * (at least min each, even if that overflows room).
 */
static void
share_columns(size_t *w, const size_t *want, size_t n, size_t room,
    size_t min)
{
	size_t i, todo = n, share, left = room;
	int changed = 1;

	for (i = 0; i < n; i++)
		w[i] = 0;
	while (changed && todo > 0) {
		changed = 0;
		share = left / todo;
		for (i = 0; i < n; i++)
			if (w[i] == 0 && want[i] <= share) {
				w[i] = want[i] > 0 ? want[i] : 1;
				left -= w[i] <= left ? w[i] : left;
				todo--;
				changed = 1;
			}
	}
	for (i = 0; i < n && todo > 0; i++)
		if (w[i] == 0) {
			w[i] = left / todo;
			if (w[i] < min)
				w[i] = min;
			left -= w[i] <= left ? w[i] : left;
			todo--;
		}
}

/* A JSON Pointer for people: "" is the whole document. */
static const char *
path_label(const char *path)
{
	return *path == '\0' ? "(document)" : path;
}

/*
 * conflicts show: one row per conflicting path, as the local merge of
 * base, mine and theirs finds them (lib/merge, the daemon's own merge).
 */
struct conflict_row {
	char	*path;
	char	*v[3];		/* base, mine, theirs; NULL where absent */
};

struct conflict_rows {
	struct conflict_row	*v;
	size_t			 n;
	size_t			 cap;
	size_t			 flags;	/* for json_dumps */
};

static void
conflict_rows_free(struct conflict_rows *rows)
{
	size_t i, k;

	for (i = 0; i < rows->n; i++) {
		free(rows->v[i].path);
		for (k = 0; k < 3; k++)
			free(rows->v[i].v[k]);
	}
	free(rows->v);
}

static int
conflict_row_cb(const struct merge_conflict *mc, void *arg)
{
	struct conflict_rows *rows = arg;
	struct conflict_row *row, *v;
	json_t *val[3];
	size_t cap, k;

	if (rows->n == rows->cap) {
		cap = rows->cap > 0 ? rows->cap * 2 : 16;
		if ((v = realloc(rows->v, cap * sizeof(*v))) == NULL)
			return -ENOMEM;
		rows->v = v;
		rows->cap = cap;
	}
	row = &rows->v[rows->n];
	memset(row, 0, sizeof(*row));
	rows->n++;
	val[0] = mc->base;
	val[1] = mc->mine;
	val[2] = mc->theirs;
	if ((row->path = strdup(mc->path)) == NULL)
		return -ENOMEM;
	for (k = 0; k < 3; k++)
		if (val[k] != NULL &&
		    (row->v[k] = json_dumps(val[k], rows->flags)) == NULL)
			return -ENOMEM;
	return 0;
}

/* The three columns side by side, fitted to the terminal. */
static void
conflict_table(const struct term *t, const struct conflict_rows *rows)
{
	static const char *const head[3] = { "BASE", "MINE", "THEIRS" };
	static const char *const sgr[3] = { NULL, SGR_GREEN, SGR_YELLOW };
	const struct conflict_row *row;
	const char *cell;
	size_t want[3], w[3], pw = 4, room, n, i, k;

	for (k = 0; k < 3; k++)
		want[k] = strlen(head[k]);
	for (i = 0; i < rows->n; i++) {
		row = &rows->v[i];
		n = text_cols(path_label(row->path), SIZE_MAX, NULL);
		if (n > pw)
			pw = n;
		for (k = 0; k < 3; k++) {
			n = row->v[k] != NULL ?
			    text_cols(row->v[k], SIZE_MAX, NULL) :
			    strlen("(absent)");
			if (n > want[k])
				want[k] = n;
		}
	}
	/* The path takes at most a quarter of the line. */
	if (pw > t->width / 4 && t->width / 4 >= 10)
		pw = t->width / 4;
	room = t->width > pw + 6 ? t->width - pw - 6 : 0;
	share_columns(w, want, 3, room, 6);

	print_cell(t, "PATH", pw, SGR_BOLD, 1);
	for (k = 0; k < 3; k++) {
		fputs("  ", stdout);
		print_cell(t, head[k], w[k], SGR_BOLD, k < 2);
	}
	putchar('\n');
	for (i = 0; i < rows->n; i++) {
		row = &rows->v[i];
		print_cell(t, path_label(row->path), pw, SGR_BOLD, 1);
		for (k = 0; k < 3; k++) {
			fputs("  ", stdout);
			cell = row->v[k];
			if (cell == NULL)
				print_cell(t, *row->path == '\0' ?
				    "(deleted)" : "(absent)", w[k], SGR_DIM,
				    k < 2);
			else
				print_cell(t, cell, w[k], sgr[k], k < 2);
		}
		putchar('\n');
	}
}

/* A conflict for people: header, the paths side by side, the merge. */
static int
conflict_show(const json_t *cf)
{
	struct conflict_rows rows;
	struct term t;
	json_t *v[3], *merged = NULL;
	static const char *const names[3] = { "base", "mine", "theirs" };
	size_t k;
	int n;

	printf("conflict:      ");
	print_conflict_id(cf);
	printf("\ndocument:      %s/%s\n", get_str(cf, "collection", "?"),
	    get_str(cf, "id", "?"));
	printf("their version: %" JSON_INTEGER_FORMAT "%s\npaths:         ",
	    get_int(cf, "their_version"),
	    json_is_true(json_object_get(cf, "their_deleted")) ?
	    " (deleted)" : "");
	print_paths(json_object_get(cf, "paths"));
	printf("\n");

	term_init(&t);
	memset(&rows, 0, sizeof(rows));
	rows.flags = term_json_flags(&t);
	for (k = 0; k < 3; k++) {
		v[k] = json_object_get(cf, names[k]);
		if (!json_is_object(v[k]))
			v[k] = NULL;
	}
	n = merge_three_cb(v[0], v[1], v[2], conflict_row_cb, &rows,
	    &merged, NULL);
	if (n < 0) {
		/* Not mergeable here: show the three versions whole. */
		warnx_("cannot merge the versions: %s", strerror(-n));
		for (k = 0; k < 3; k++)
			print_indented(names[k], json_object_get(cf, names[k]));
		conflict_rows_free(&rows);
		return n == -ENOMEM ? EXIT_FAILURE : 0;
	}
	putchar('\n');
	if (rows.n > 0)
		conflict_table(&t, &rows);
	else
		printf("(no conflicting paths: base, mine and theirs merge "
		    "cleanly now)\n");
	printf("\nmerged, with mine at the conflicts:\n");
	if (merged == NULL)
		printf("(deleted)\n");
	else {
		json_dumpf(merged, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
		fputc('\n', stdout);
	}
	json_decref(merged);
	conflict_rows_free(&rows);
	return 0;
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
	else if (show)
		r = conflict_show(json_object_get(reply, "conflict"));
	else
		json_array_foreach(json_object_get(reply, "conflicts"), i, cf) {
			print_conflict_id(cf);
			printf("  %s/%s  ", get_str(cf, "collection", "?"),
			    get_str(cf, "id", "?"));
			print_paths(json_object_get(cf, "paths"));
			printf("\n");
		}
	json_decref(reply);
	return r;
}

/* parked: the pulled changes ferryd could not apply, with why. */
static int
cmd_parked(struct ctl *c, int argc, char **argv)
{
	json_t *reply = NULL, *pc;
	size_t i;
	int r;

	if ((r = common_opts_only(c, argc, argv)) != 0)
		return r;
	if (optind != argc)
		return usage_error("parked: takes no arguments");
	if ((r = call_json(c, "io.ferry.Parked", json_object(), &reply)) != 0)
		return r;
	if (c->json)
		print_line(reply);
	else
		json_array_foreach(json_object_get(reply, "parked"), i, pc)
			printf("%s/%s version %" JSON_INTEGER_FORMAT " (%s): %s\n",
			    get_str(pc, "collection", "?"),
			    get_str(pc, "id", "?"), get_int(pc, "version"),
			    get_str(pc, "change", "no change id"),
			    get_str(pc, "reason", "?"));
	json_decref(reply);
	return 0;
}

/*
 * resolve: --mine and --theirs choose a side at the conflicting paths and
 * keep every other change of both sides (what "conflicts show" prints as
 * merged); --all-mine and --all-theirs replace the whole document with one
 * side; --merged FILE (or --body FILE) writes the body in FILE.  Prints
 * the document and the body written.
 */
static int
cmd_resolve(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "mine", no_argument, NULL, OPT_MINE },
		{ "theirs", no_argument, NULL, OPT_THEIRS },
		{ "all-mine", no_argument, NULL, OPT_ALL_MINE },
		{ "all-theirs", no_argument, NULL, OPT_ALL_THEIRS },
		{ "merged", required_argument, NULL, OPT_BODY },
		{ "body", required_argument, NULL, OPT_BODY },
		{ 0 }
	};
	static const char *const how =
	    "--mine|--theirs|--all-mine|--all-theirs|--merged FILE";
	json_t *params = NULL, *body = NULL, *reply = NULL, *doc;
	const char *strategy = NULL, *file = NULL;
	int o, r;

	optind = 0;
	while ((o = next_opt(c, argc, argv, opts)) != -1) {
		if (o == 0)
			continue;
		if (o < OPT_MINE || o > OPT_ALL_THEIRS)
			return EXIT_USAGE;
		if (strategy != NULL)
			return usage_error("resolve: give one of %s", how);
		strategy = o == OPT_MINE ? "mine" : o == OPT_THEIRS ?
		    "theirs" : o == OPT_ALL_MINE ? "all_mine" :
		    o == OPT_ALL_THEIRS ? "all_theirs" : "merged";
		if (o == OPT_BODY)
			file = optarg;
	}
	if (argc - optind != 1 || strategy == NULL)
		return usage_error("usage: resolve ID %s", how);
	if (file != NULL && read_object(file, &body) < 0)
		return EXIT_FAILURE;
	params = json_pack("{sossso*}", "conflict_id",
	    conflict_id(argv[optind]), "strategy", strategy, "body", body);
	if ((r = call_json(c, "io.ferry.Resolve", params, &reply)) != 0)
		return r;
	doc = json_object_get(reply, "doc");
	if (c->json)
		print_line(reply);
	else if (json_is_object(doc)) {
		print_doc_line(doc);
		print_indented("body written", json_object_get(doc, "body"));
	}
	json_decref(reply);
	return 0;
}

/* log shows a device by its name, or by the start of its key. */
#define LOG_KEY_SHORT	12
#define LOG_DEVICE_MAX	24

static const char *
log_device(const json_t *e, char *buf, size_t size)
{
	const char *name = get_str(e, "device_name", NULL);

	if (name != NULL && *name != '\0')
		return name;
	snprintf(buf, size, "%.*s", LOG_KEY_SHORT, get_str(e, "device", "?"));
	return buf;
}

/*
 * The changed paths of a log line, at most room columns on a terminal
 * (else all of them): "/a, /b, +3 more".  "" is the whole document; no
 * paths at all (a record that did not verify) is "-".
 */
static void
log_paths(const struct term *t, const json_t *paths, size_t room, int cut)
{
	const json_t *p;
	const char *s;
	size_t i, n = json_array_size(paths), used = 0, w;
	char more[48];

	if (n == 0) {
		fputs("-", stdout);
		return;
	}
	json_array_foreach(paths, i, p) {
		s = json_string_value(p) != NULL ? json_string_value(p) : "?";
		if (*s == '\0')
			s = "(whole document)";
		w = text_cols(s, SIZE_MAX, NULL) + (i > 0 ? 2 : 0);
		snprintf(more, sizeof(more), ", +%zu more", n - i);
		/* Stop where the rest would not fit, if it is not the last. */
		if (cut && i > 0 && used + w + (i + 1 < n ? 12 : 0) > room) {
			fputs(more, stdout);
			return;
		}
		if (i > 0)
			fputs(", ", stdout);
		print_cell(t, s, SIZE_MAX, NULL, 0);
		used += w;
	}
}

/* One History page for people; counts the entries that did not verify. */
static void
log_page(const json_t *reply, size_t *unverified)
{
	const json_t *entries = json_object_get(reply, "entries"), *e, *ts;
	struct term t;
	struct tm tm;
	time_t secs;
	char when[32], ver[32], dev[LOG_KEY_SHORT + 1];
	size_t i, vw = 0, dw = 0, n, fixed;
	int verified;

	term_init(&t);
	json_array_foreach(entries, i, e) {
		n = (size_t)snprintf(ver, sizeof(ver), "v%" JSON_INTEGER_FORMAT,
		    get_int(e, "version"));
		if (n > vw)
			vw = n;
		n = text_cols(log_device(e, dev, sizeof(dev)), SIZE_MAX, NULL);
		if (n > dw)
			dw = n;
	}
	if (dw > LOG_DEVICE_MAX)
		dw = LOG_DEVICE_MAX;
	/* time, version, op, device, verified, then the paths */
	fixed = 19 + 2 + vw + 2 + 6 + 2 + dw + 2 + 10 + 2;
	json_array_foreach(entries, i, e) {
		ts = json_object_get(e, "ts");
		secs = (time_t)(json_integer_value(ts) / 1000);
		if (!json_is_integer(ts) || localtime_r(&secs, &tm) == NULL ||
		    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm) == 0)
			snprintf(when, sizeof(when), "?");
		snprintf(ver, sizeof(ver), "v%" JSON_INTEGER_FORMAT,
		    get_int(e, "version"));
		verified = json_is_true(json_object_get(e, "verified"));
		if (!verified)
			(*unverified)++;
		printf("%-19s  %-*s  ", when, (int)vw, ver);
		print_cell(&t, get_str(e, "op", "?"), 6,
		    strcmp(get_str(e, "op", ""), "delete") == 0 ?
		    SGR_YELLOW : NULL, 1);
		fputs("  ", stdout);
		print_cell(&t, log_device(e, dev, sizeof(dev)), dw, SGR_BOLD,
		    1);
		fputs("  ", stdout);
		print_cell(&t, verified ? "verified" : "UNVERIFIED", 10,
		    verified ? NULL : SGR_RED, 1);
		fputs("  ", stdout);
		log_paths(&t, json_object_get(e, "changed_paths"),
		    t.width > fixed + 20 ? t.width - fixed : 20,
		    isatty(STDOUT_FILENO));
		/* Signed before the revocation: still verified, but said. */
		if (json_is_object(json_object_get(e, "revoked")))
			print_cell(&t, "  (by a revoked device)", SIZE_MAX,
			    SGR_YELLOW, 0);
		putchar('\n');
	}
}

/*
 * log C ID: the document's History, every page of it (the daemon answers
 * up to 10000 entries a call and says where to go on).
 */
/*
 * When the remote's trail is missing or cut short, why, and the replica's
 * own change log of the document (History's "local", first page only):
 * each signed entry (this device's applied changes, pulled changes) as
 * ferryd checked it, verified, NOT VERIFIED or not verifiable, with why.
 * With the remote's trail complete only a copy kept here that did not
 * verify is shown: it is counted in *failed, never passed over.
 */
static void
log_local(const json_t *reply, size_t *failed)
{
	const json_t *local = json_object_get(reply, "local"), *e, *v;
	const char *why = get_str(reply, "remote_error", NULL), *because;
	char when[64];
	size_t i;

	json_array_foreach(local, i, e) {
		if (!json_is_false(json_object_get(e, "verified")))
			continue;
		(*failed)++;
		if (why == NULL)
			warnx_("this replica's copy of change %s (rev %"
			    JSON_INTEGER_FORMAT ") does not verify: %s",
			    get_str(e, "change", "?"), get_int(e, "rev"),
			    get_str(e, "why", "?"));
	}
	/* A full trail from the remote already holds every change. */
	if (why == NULL)
		return;
	warnx_("the remote's history is %s: %s",
	    json_array_size(json_object_get(reply, "entries")) > 0 ?
	    "incomplete" : "not here", why);
	if (json_array_size(local) == 0)
		return;
	printf("%sthis device's change log:\n",
	    json_array_size(json_object_get(reply, "entries")) > 0 ? "\n" : "");
	json_array_foreach(local, i, e) {
		format_time(get_int(e, "ts"), when, sizeof(when));
		printf("%s  rev %-4" JSON_INTEGER_FORMAT "  %-7s", when,
		    get_int(e, "rev"), get_str(e, "origin", "?"));
		/* Signed entries: checked by ferryd against their record. */
		v = json_object_get(e, "verified");
		because = get_str(e, "why", NULL);
		if (json_is_boolean(v))
			printf("  v%" JSON_INTEGER_FORMAT "  %s  %s",
			    get_int(e, "version"), get_str(e, "op", "-"),
			    json_is_true(v) ? "verified" : "NOT VERIFIED");
		if (json_is_true(v) && json_object_get(e, "device") != NULL &&
		    strcmp(get_str(e, "origin", ""), "remote") == 0)
			printf("  %.*s", LOG_KEY_SHORT, get_str(e, "device",
			    "?"));
		if (because != NULL)
			printf("  (%s)", because);
		putchar('\n');
	}
}

static int
cmd_log(struct ctl *c, int argc, char **argv)
{
	json_t *reply = NULL, *next;
	int64_t after = 0;
	size_t unverified = 0, failed = 0;
	int r;

	if ((r = common_opts_only(c, argc, argv)) != 0)
		return r;
	if (argc - optind != 2)
		return usage_error("usage: log C ID");
	for (;;) {
		r = call_json(c, "io.ferry.History", after > 0 ?
		    json_pack("{s:s,s:s,s:I}", "collection", argv[optind], "id",
		    argv[optind + 1], "after", (json_int_t)after) :
		    json_pack("{ssss}", "collection", argv[optind], "id",
		    argv[optind + 1]), &reply);
		if (r != 0)
			return r;
		if (c->json)
			print_line(reply);
		else {
			log_page(reply, &unverified);
			log_local(reply, &failed);
		}
		next = json_object_get(reply, "next");
		if (!json_is_integer(next))
			break;
		if (json_integer_value(next) <= after) {
			warnx_("the daemon repeated a page of the history");
			json_decref(reply);
			return EXIT_FAILURE;
		}
		after = json_integer_value(next);
		json_decref(reply);
		reply = NULL;
	}
	json_decref(reply);
	if (unverified > 0)
		warnx_("%zu change%s of %s/%s did not verify: the remote's "
		    "record is not the one its device signed",
		    unverified, unverified == 1 ? "" : "s", argv[optind],
		    argv[optind + 1]);
	if (failed > 0)
		warnx_("%zu change%s of %s/%s kept in this replica did not "
		    "verify: the copy here is not what its device signed",
		    failed, failed == 1 ? "" : "s", argv[optind],
		    argv[optind + 1]);
	return 0;
}

/* How long ago ms (Unix ms) was, in a few characters: "3s", "5m", "2h". */
static void
age_text(int64_t ms, char *buf, size_t size)
{
	struct timespec ts;
	int64_t s;

	clock_gettime(CLOCK_REALTIME, &ts);
	s = ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - ms) / 1000;
	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(buf, size, "%" PRId64 "s", s);
	else if (s < 7200)
		snprintf(buf, size, "%" PRId64 "m", s / 60);
	else
		snprintf(buf, size, "%" PRId64 "h", s / 3600);
}

/*
 * who: the presence entries ferryd knows, local and from other devices,
 * one a line in columns: the device (its name, else the start of its
 * key; "(here)" marks this machine), the app, where, for how long, and
 * the state.
 */
static int
cmd_who(struct ctl *c, int argc, char **argv)
{
	json_t *reply = NULL, *params, *e;
	const char *name, *id;
	char where[300], dev[64], age[16], *state;
	size_t i;
	int r;

	if ((r = common_opts_only(c, argc, argv)) != 0)
		return r;
	if (argc - optind > 2)
		return usage_error("usage: who [COLLECTION [ID]]");
	params = json_object();
	if (params != NULL && argc - optind >= 1)
		json_object_set_new(params, "collection",
		    json_string(argv[optind]));
	if (params != NULL && argc - optind == 2)
		json_object_set_new(params, "id",
		    json_string(argv[optind + 1]));
	if ((r = call_json(c, "io.ferry.Who", params, &reply)) != 0)
		return r;
	if (c->json) {
		print_line(reply);
		json_decref(reply);
		return 0;
	}
	if (isatty(STDOUT_FILENO))
		printf("%-20s %-16s %-32s %-5s %s\n", "DEVICE", "APP", "WHERE",
		    "SINCE", "STATE");
	json_array_foreach(json_object_get(reply, "present"), i, e) {
		name = get_str(e, "device_name", NULL);
		snprintf(dev, sizeof dev, "%s%s", name != NULL ? name :
		    get_str(e, "device", "?"),
		    json_is_true(json_object_get(e, "local")) ? " (here)" : "");
		id = get_str(e, "id", NULL);
		snprintf(where, sizeof where, "%s%s%s",
		    get_str(e, "collection", "?"), id != NULL ? "/" : "",
		    id != NULL ? id : "");
		age_text(get_int(e, "since_ms"), age, sizeof age);
		state = json_dumps(json_object_get(e, "state"), JSON_COMPACT);
		printf("%-20s %-16s %-32s %-5s %s\n", dev,
		    get_str(e, "app", "?"), where, age,
		    state != NULL ? state : "{}");
		free(state);
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
	{ "parked",	cmd_parked },
	{ "resolve",	cmd_resolve },
	{ "log",	cmd_log },
	{ "who",	cmd_who },
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
	/* Display widths of UTF-8 text in tables (conflicts show, log). */
	setlocale(LC_CTYPE, "");
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
