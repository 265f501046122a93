/*
 * ferry-server: the reference remote of remote protocol v1 (DESIGN
 * "Remote protocol v1"; "ferryd and ferry-server").
 *
 *   ferry-server [--config FILE] [--listen ADDR:PORT] [--data-dir DIR] [--keys FILE]
 *                [--db FILE|postgresql://...] [--open] [--debug] [--max-waiters N] [--max-wait S]
 *                [--max-connections N] [--max-inflight-mib N]
 *   ferry-server [--data-dir DIR | --keys FILE | --db URL] allow PUBKEY [NAME]
 *                [--read PATTERNS] [--write PATTERNS] [--all]
 *   ferry-server [--data-dir DIR | --db FILE|URL] revoke PUBKEY [--reason TEXT]
 *   ferry-server [--data-dir DIR | --db FILE|URL] unrevoke PUBKEY
 *   ferry-server [--data-dir DIR | --keys FILE | --db FILE|URL] keys [--json]
 *
 * Settings come from the command line, then the configuration file
 * (srv_config: --config FILE, or $XDG_CONFIG_HOME/ferry/ferry-server.conf
 * if it exists) for what the command line left unsaid.
 *
 * One process, one libevent loop: evhttp in front (srv_http), the store
 * behind (srv_db: SQLite in <data-dir>/server.db, another file with --db
 * FILE, or PostgreSQL with --db postgresql://..., shared by any number of
 * instances), push signatures checked on a pool
 * of worker threads (lib/jobq), the authorized keys in memory
 * (srv_keys, <data-dir>/authorized_keys unless --keys; reread on SIGHUP,
 * keeping the old set if the new file is bad; with PostgreSQL on a thread
 * of its own, see "Rereading the keys" below).  The data directory is
 * locked (one server per database) before anything is opened, and the
 * socket is bound last, so "ready: listening on ADDR:PORT" is logged only
 * when a request can be answered.  SIGTERM and SIGINT stop it: callbacks
 * run one at a time, so the transaction in hand has finished; the listener
 * closes, waiting long-polls are answered, replies already made get a
 * moment to be written, then the database is closed.
 *
 * `allow` validates the key, appends "<key> [NAME]" to the keys file
 * (created 0600) and exits; a running server takes it on SIGHUP.  With
 * --db postgresql://... the key goes into the database instead, and every
 * instance on it takes it at once (a notification); an instance's keys
 * are then its keys file (if any) and the database's list.
 *
 * `revoke` records the key as revoked, with the time and the reason, in
 * the store (either backend): from the next request on, a running server
 * refuses the key with 401 saying when and why (SQLite: the server asks
 * the store, cheaply, whether another process wrote it, before each
 * request; PostgreSQL: every instance is notified), rejects any record
 * it signed, and marks the history it signed before.  A revoked key stays
 * refused even though the keys file lists it, and `allow` refuses it;
 * only `unrevoke` lifts a revocation, on purpose, never as a side effect.
 * `keys` lists every key known (the keys file, the database): name, when
 * added (where known), last seen (written by the server every few
 * seconds), revoked, and its grants.
 *
 * `allow ... --read PATTERNS --write PATTERNS` (each repeatable, patterns
 * comma-separated; srv_grants.h) limits the key to those collections,
 * for a key allowed before too; `--all` lifts the limits.  The grants
 * live in the store (either backend) and reach a running server as a
 * revocation does: from its next request on.
 */
#include "autoconfig.h"

#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>
#include <sodium.h>

#include "jobq.h"
#include "keys.h"
#include "log.h"
#include "srv_access.h"
#include "srv_config.h"
#include "srv_conn.h"
#include "srv_db.h"
#include "srv_grants.h"
#include "srv_http.h"
#include "srv_keys.h"
#include "util.h"

#define SRV_DEFAULT_LISTEN	"127.0.0.1:8765"
#define SRV_STOP_GRACE_MS	200	/* to write replies already made */

struct options {
	const char	*config;
	const char	*listen;
	const char	*data_dir;
	const char	*keys;
	const char	*db;
	bool		 open;
	bool		 debug;
	int		 max_waiters;
	int		 max_wait;
	int		 max_connections;
	int		 max_inflight_mib;
	int		 max_scan;
};

struct server {
	struct options		 opt;
	struct srv_config	 conf;		/* owns what opt takes from it */
	char			*data_dir;
	char			*keys_path;
	char			 addr[256];
	int			 port;
	struct event_base	*base;
	struct srv_db		*db;
	struct srv_http		*http;
	int			 lock_fd;
	bool			 stopping;
	struct jobq		*reload_q;	/* rereads (NULL: on the loop) */
	struct reload		*reload;	/* a reread in hand, or NULL */
	int			 reload_again;	/* RELOAD_* to reread after */
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: ferry-server [--config FILE] [--listen ADDR:PORT] "
	    "[--data-dir DIR] [--keys FILE]\n"
	    "                    [--db FILE|postgresql://...] [--open] [--debug] [--max-waiters N] "
	    "[--max-wait SECONDS]\n"
	    "                    [--max-connections N] [--max-inflight-mib N]\n"
	    "       ferry-server [--data-dir DIR | --keys FILE | --db URL] allow "
	    "PUBKEY [NAME]\n"
	    "                    [--read PATTERNS] [--write PATTERNS] "
	    "[--all]\n"
	    "       ferry-server [--data-dir DIR | --db FILE|URL] revoke PUBKEY "
	    "[--reason TEXT]\n"
	    "       ferry-server [--data-dir DIR | --db FILE|URL] unrevoke "
	    "PUBKEY\n"
	    "       ferry-server [--data-dir DIR | --keys FILE | --db FILE|URL] "
	    "keys [--json]\n"
	    "       ferry-server --help | --version\n"
	    "\n"
	    "  --config FILE       settings the options below leave unsaid "
	    "(default\n"
	    "                      $XDG_CONFIG_HOME/ferry/ferry-server.conf, "
	    "if it exists)\n"
	    "  --listen ADDR:PORT  address to serve on (default "
	    SRV_DEFAULT_LISTEN ";\n"
	    "                      IPv6 as [ADDR]:PORT; port 0 picks one)\n"
	    "  --data-dir DIR      database and keys (default "
	    "$XDG_DATA_HOME/ferry-server)\n"
	    "  --keys FILE         authorized keys (default "
	    "DIR/authorized_keys)\n"
	    "  --db FILE|URL       the store: a SQLite file (default "
	    "DIR/server.db) or\n"
	    "                      postgresql://... shared by many instances\n"
	    "  --open              accept any well-formed key (local trials "
	    "only)\n"
	    "  --debug             log debug messages\n"
	    "  --max-waiters N     concurrent long-polls (default %d)\n"
	    "  --max-wait SECONDS  longest long-poll (default %d)\n"
	    "  --max-connections N connections at once; at the cap the one idle\n"
	    "                      longest is closed (default min(%d, open-file\n"
	    "                      limit - %d), here %d)\n"
	    "  --max-scan N        change-log rows a filtered page reads past\n"
	    "                      (collections=, grants; default %d)\n"
	    "  --max-inflight-mib N  MiB of request bodies received at once (503\n"
	    "                      beyond; default %d)\n"
	    "\n"
	    "  allow PUBKEY [NAME] add a device key to the keys file; send "
	    "SIGHUP to a\n"
	    "                      running server to apply it (with --db URL: "
	    "to the\n"
	    "                      database, applied by every instance at "
	    "once)\n"
	    "    --read PATTERNS   it may read only these collections, "
	    "and write only\n"
	    "    --write PATTERNS  these (write implies read); PATTERNS: "
	    "names or names\n"
	    "                      with '*' (any run of characters), "
	    "comma-separated,\n"
	    "                      each option repeatable; applied from the "
	    "key's next\n"
	    "                      request, for a key allowed before too\n"
	    "    --all             lift the limits: every collection "
	    "(the default)\n"
	    "  revoke PUBKEY       refuse the key from now on, on a running "
	    "server too,\n"
	    "    [--reason TEXT]   saying when and why; its records are "
	    "rejected\n"
	    "  unrevoke PUBKEY     lift a revocation (allow does not)\n"
	    "  keys [--json]       every key: name, added, last seen, "
	    "revoked, grants\n",
	    SRV_HTTP_MAX_WAITERS, SRV_HTTP_MAX_WAIT, SRV_CONN_MAX_DEFAULT,
	    SRV_CONN_FD_RESERVE, srv_conn_default_max(), SRV_HTTP_SCAN_MAX,
	    SRV_CONN_INFLIGHT_MIB);
}

/* Positive decimal int option; -EINVAL if it is not one. */
static int
parse_count(const char *s, int *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v > 1000000)
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

/* The setting a numeric option (by its short letter) sets, and its name. */
static int *
count_option(struct options *o, int ch, const char **ret_name)
{
	switch (ch) {
	case 'W':
		*ret_name = "max-waiters";
		return &o->max_waiters;
	case 'w':
		*ret_name = "max-wait";
		return &o->max_wait;
	case 'C':
		*ret_name = "max-connections";
		return &o->max_connections;
	case 'S':
		*ret_name = "max-scan";
		return &o->max_scan;
	default:
		*ret_name = "max-inflight-mib";
		return &o->max_inflight_mib;
	}
}

static int
parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "keys", required_argument, NULL, 'k' },
		{ "db", required_argument, NULL, 'B' },
		{ "open", no_argument, NULL, 'o' },
		{ "debug", no_argument, NULL, 'D' },
		{ "max-waiters", required_argument, NULL, 'W' },
		{ "max-wait", required_argument, NULL, 'w' },
		{ "max-connections", required_argument, NULL, 'C' },
		{ "max-inflight-mib", required_argument, NULL, 'I' },
		{ "max-scan", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *name;
	int ch;

	/* "+": options end at the first operand (allow PUBKEY NAME). */
	while ((ch = getopt_long(argc, argv, "+l:d:k:oDhV", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->config = optarg;
			break;
		case 'l':
			o->listen = optarg;
			break;
		case 'd':
			o->data_dir = optarg;
			break;
		case 'k':
			o->keys = optarg;
			break;
		case 'B':
			o->db = optarg;
			break;
		case 'o':
			o->open = true;
			break;
		case 'D':
			o->debug = true;
			break;
		case 'W':
		case 'w':
		case 'C':
		case 'I':
		case 'S':
			if (parse_count(optarg, count_option(o, ch, &name)) < 0) {
				fprintf(stderr, "ferry-server: --%s wants a "
				    "positive number, not '%s'\n", name, optarg);
				return -EINVAL;
			}
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("ferry-server %s\n", FERRY_VERSION);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	return 0;
}

/* $XDG_DATA_HOME/ferry-server, or ~/.local/share/ferry-server. */
static int
default_data_dir(char **ret)
{
	const char *xdg, *home;
	int n;

	xdg = getenv("XDG_DATA_HOME");
	home = getenv("HOME");
	if (xdg != NULL && xdg[0] == '/')
		n = asprintf(ret, "%s/ferry-server", xdg);
	else if (home != NULL && home[0] == '/')
		n = asprintf(ret, "%s/.local/share/ferry-server", home);
	else
		return -ENOENT;
	return n < 0 ? -ENOMEM : 0;
}

/* Idempotent: the commands may ask more than once. */
static int
resolve_paths(struct server *s)
{
	int r;

	if (s->data_dir != NULL && s->keys_path != NULL)
		return 0;
	free(s->data_dir);
	s->data_dir = NULL;
	if (s->opt.data_dir != NULL) {
		if ((s->data_dir = strdup(s->opt.data_dir)) == NULL)
			return -ENOMEM;
	} else if ((r = default_data_dir(&s->data_dir)) < 0) {
		log_err("cannot find a data directory: set XDG_DATA_HOME or "
		    "HOME, or give --data-dir");
		return r;
	}
	if (s->opt.keys != NULL)
		s->keys_path = strdup(s->opt.keys);
	else if (asprintf(&s->keys_path, "%s/authorized_keys",
	    s->data_dir) < 0)
		s->keys_path = NULL;
	return s->keys_path != NULL ? 0 : -ENOMEM;
}

/*
 * The configuration file (the named one, or the default if it exists)
 * fills in what the command line left unsaid.  0, or -1 after saying
 * why.
 */
static int
load_config(struct server *s)
{
	struct options *o = &s->opt;
	struct srv_config *c = &s->conf;
	char *path, *err = NULL;
	int r;

	if (o->config != NULL)
		path = strdup(o->config);
	else if ((path = srv_config_default_path()) == NULL)
		return 0;
	if (path == NULL ||
	    (r = srv_config_load(c, path, o->config != NULL, &err)) < 0) {
		fprintf(stderr, "ferry-server: %s\n", err != NULL ? err :
		    strerror(ENOMEM));
		free(err);
		free(path);
		return -1;
	}
	free(path);
	if (o->listen == NULL)
		o->listen = c->listen;
	if (o->data_dir == NULL)
		o->data_dir = c->data_dir;
	if (o->keys == NULL)
		o->keys = c->keys;
	if (o->db == NULL)
		o->db = c->db;
	o->open = o->open || c->open;
	o->debug = o->debug || c->debug;
	if (o->max_waiters == 0)
		o->max_waiters = c->max_waiters;
	if (o->max_wait == 0)
		o->max_wait = c->max_wait;
	if (o->max_connections == 0)
		o->max_connections = c->max_connections;
	if (o->max_inflight_mib == 0)
		o->max_inflight_mib = c->max_inflight_mib;
	return 0;
}

/* The store's path or URL: --db, else DIR/server.db.  NULL: ENOMEM. */
static char *
store_path(struct server *s)
{
	char *path;

	if (s->opt.db != NULL)
		return strdup(s->opt.db);
	if (asprintf(&path, "%s/server.db", s->data_dir) < 0)
		return NULL;
	return path;
}

/*
 * Open the store the commands read and write: --db, else
 * DIR/server.db (the directory made if need be).  0 or -errno, said.
 */
static int
open_store(struct server *s, struct srv_db **ret)
{
	char *path = NULL, *err = NULL;
	int r;

	if (s->opt.db == NULL || !srv_db_is_url(s->opt.db)) {
		if ((r = resolve_paths(s)) < 0)
			return r;
		if (s->opt.db == NULL && (r = util_mkdir_p(s->data_dir,
		    0700)) < 0) {
			fprintf(stderr, "ferry-server: cannot create %s: %s\n",
			    s->data_dir, strerror(-r));
			return r;
		}
	}
	if ((path = store_path(s)) == NULL)
		return -ENOMEM;
	if ((r = srv_db_open(path, ret, &err)) < 0)
		fprintf(stderr, "ferry-server: cannot open the database %s: "
		    "%s\n", srv_db_is_url(path) ? "(PostgreSQL)" : path,
		    err != NULL ? err : strerror(-r));
	free(err);
	free(path);
	return r;
}

/* Find one key's revocation (srv_db_revocations callback). */
struct find_revoked {
	const char	*key;
	struct srv_revoked *rv;
};

static int
find_revoked_cb(const char *key, int64_t ms, const char *reason, void *arg)
{
	struct find_revoked *fr = arg;

	if (fr->key != NULL && strcmp(key, fr->key) != 0)
		return 0;
	return srv_revoked_add(fr->rv, key, ms, reason);
}

/*
 * The store's revocations (of key only, unless NULL), sealed, into *ret.
 * 0 or -errno.
 */
static int
read_revoked(struct srv_db *db, const char *key, struct srv_revoked **ret)
{
	struct find_revoked fr;
	int r;

	fr.key = key;
	if ((r = srv_revoked_new(&fr.rv)) < 0)
		return r;
	if ((r = srv_db_revocations(db, find_revoked_cb, &fr)) < 0) {
		srv_revoked_free(fr.rv);
		return r;
	}
	srv_revoked_seal(fr.rv);
	*ret = fr.rv;
	return 0;
}

/*
 * 1 (said) if key is revoked, 0 if not, -errno (said).  `allow` never
 * lifts a revocation by the way.
 */
static int
check_not_revoked(struct srv_db *db, const char *key)
{
	const struct srv_revocation *rv;
	struct srv_revoked *set = NULL;
	char words[512];
	int r;

	if ((r = read_revoked(db, key, &set)) < 0) {
		fprintf(stderr, "ferry-server: cannot read the revoked keys: "
		    "%s (%s)\n", strerror(-r), srv_db_errmsg(db));
		return r;
	}
	if ((rv = srv_revoked_find(set, key)) != NULL) {
		srv_revocation_words(rv, words, sizeof words);
		fprintf(stderr, "ferry-server: key %s was %s; it stays "
		    "refused. To allow it again on purpose: ferry-server "
		    "unrevoke %s\n", key, words, key);
		r = 1;
	}
	srv_revoked_free(set);
	return r;
}

/* `ferry-server --db URL allow PUBKEY [NAME]`: exit status. */
static int
cmd_allow_db(struct srv_db *db, const char *key, const char *name)
{
	int r;

	r = srv_db_allow(db, key, name);
	if (r == -EEXIST)
		printf("key %s is already allowed in the database; nothing "
		    "changed\n", key);
	else if (r < 0)
		fprintf(stderr, "ferry-server: cannot allow %s: %s (%s)\n", key,
		    strerror(-r), srv_db_errmsg(db));
	else
		printf("allowed %s%s%s in the database (every instance applies "
		    "it now)\n", key, name != NULL ? " as " : "",
		    name != NULL ? name : "");
	return r < 0 && r != -EEXIST ? 1 : 0;
}

/* What `allow` was told about grants. */
struct allow_grants {
	bool	 set;		/* --read, --write or --all given */
	bool	 all;		/* --all */
	char	*rd;		/* the patterns, comma-joined */
	char	*wr;
};

/* Append list to *acc (comma-joined).  0 or -ENOMEM. */
static int
allow_grants_add(char **acc, const char *list)
{
	char *s;

	if (asprintf(&s, "%s%s%s", *acc != NULL ? *acc : "", *acc != NULL &&
	    **acc != '\0' && *list != '\0' ? "," : "", list) < 0)
		return -ENOMEM;
	free(*acc);
	*acc = s;
	return 0;
}

/*
 * Parse `allow`'s operands: PUBKEY [NAME] and the grant options, in any
 * order.  0, or 2 (usage, said) or 1 (a bad pattern list, said).
 */
static int
allow_args(int argc, char **argv, const char **ret_key, const char **ret_name,
    struct allow_grants *ag)
{
	const char *key = NULL, *name = NULL, *val;
	char **acc, *norm, why[256];
	int i;

	for (i = 1; i < argc; i++) {
		acc = NULL;
		val = NULL;
		if (strcmp(argv[i], "--read") == 0 ||
		    strcmp(argv[i], "--write") == 0) {
			if (i + 1 == argc)
				goto usage;
			acc = argv[i][2] == 'r' ? &ag->rd : &ag->wr;
			val = argv[++i];
		} else if (strncmp(argv[i], "--read=", 7) == 0) {
			acc = &ag->rd;
			val = argv[i] + 7;
		} else if (strncmp(argv[i], "--write=", 8) == 0) {
			acc = &ag->wr;
			val = argv[i] + 8;
		} else if (strcmp(argv[i], "--all") == 0) {
			ag->set = ag->all = true;
			continue;
		} else if (key == NULL && (argv[i][0] != '-' ||
		    strlen(argv[i]) == KEYS_PUB_B64_LEN))
			key = argv[i];
		else if (key != NULL && name == NULL && argv[i][0] != '-')
			name = argv[i];
		else
			goto usage;
		if (acc == NULL)
			continue;
		if (srv_grants_list_norm(val, &norm, why, sizeof why) < 0) {
			fprintf(stderr, "ferry-server: %s %s\n", acc == &ag->rd ?
			    "--read" : "--write", why);
			return 1;
		}
		ag->set = true;
		if (allow_grants_add(acc, norm) < 0) {
			free(norm);
			return 1;
		}
		free(norm);
	}
	if (key == NULL)
		goto usage;
	if (ag->all && (ag->rd != NULL || ag->wr != NULL)) {
		fprintf(stderr, "ferry-server: --all lifts every limit; it "
		    "cannot go with --read or --write\n");
		return 2;
	}
	*ret_key = key;
	*ret_name = name;
	return 0;
usage:
	fprintf(stderr, "usage: ferry-server [--data-dir DIR | --keys FILE | "
	    "--db URL] allow PUBKEY [NAME] [--read PATTERNS] [--write "
	    "PATTERNS] [--all]\n");
	return 2;
}

/* Store what `allow` was told about the key's grants: exit status. */
static int
allow_grants_store(struct srv_db *db, const char *key,
    const struct allow_grants *ag)
{
	char *rd = NULL, *wr = NULL, why[256];
	int r;

	if (!ag->set)
		return 0;
	if (ag->all)
		r = srv_db_grant_set(db, key, NULL, NULL);
	else {
		/* Joined lists: normalised again, for duplicates across
		 * repeated options and the bound on their number. */
		if ((r = srv_grants_list_norm(ag->rd != NULL ? ag->rd : "", &rd,
		    why, sizeof why)) < 0 ||
		    (r = srv_grants_list_norm(ag->wr != NULL ? ag->wr : "", &wr,
		    why, sizeof why)) < 0) {
			fprintf(stderr, "ferry-server: %s\n", r == -ENOMEM ?
			    "out of memory" : why);
			free(rd);
			return 1;
		}
		r = srv_db_grant_set(db, key, rd, wr);
	}
	if (r < 0)
		fprintf(stderr, "ferry-server: cannot store the grants of %s: "
		    "%s (%s)\n", key, strerror(-r), srv_db_errmsg(db));
	else if (ag->all)
		printf("key %s may read and write every collection\n", key);
	else
		printf("key %s may read %s, and write %s (which it may read "
		    "too), from its next request on\n", key, *rd != '\0' ?
		    rd : "nothing else", *wr != '\0' ? wr : "nothing");
	free(rd);
	free(wr);
	return r < 0 ? 1 : 0;
}

static int	cmd_allow_key(struct server *, int, char **,
		    struct allow_grants *);

/* `ferry-server allow PUBKEY [NAME] [--read ...] ...`: exit status. */
static int
cmd_allow(struct server *s, int argc, char **argv)
{
	struct allow_grants ag;
	int r;

	memset(&ag, 0, sizeof ag);
	r = cmd_allow_key(s, argc, argv, &ag);
	free(ag.rd);
	free(ag.wr);
	return r;
}

static int
cmd_allow_key(struct server *s, int argc, char **argv, struct allow_grants *ag)
{
	const char *key, *name, *why;
	struct srv_db *db = NULL;
	char *err = NULL;
	int r;

	if ((r = allow_args(argc, argv, &key, &name, ag)) != 0)
		return r;
	if (srv_keys_check_key(key, &why) < 0) {
		fprintf(stderr, "ferry-server: '%s' %s\n", key, why);
		return 1;
	}
	if (name != NULL && srv_keys_check_name(name, &why) < 0) {
		fprintf(stderr, "ferry-server: the name '%s' %s\n", name, why);
		return 1;
	}
	if (open_store(s, &db) < 0)
		return 1;
	if ((r = check_not_revoked(db, key)) != 0) {
		srv_db_close(db);
		return 1;
	}
	if (s->opt.db != NULL && srv_db_is_url(s->opt.db)) {
		r = cmd_allow_db(db, key, name);
		if (r == 0)
			r = allow_grants_store(db, key, ag);
		srv_db_close(db);
		return r;
	}
	r = srv_keys_append(s->keys_path, key, name, &err);
	if (r == -EEXIST) {
		printf("%s%s\n", err != NULL ? err : "the key is already "
		    "allowed", ag->set ? "" : "; nothing changed");
		free(err);
		r = allow_grants_store(db, key, ag);
		srv_db_close(db);
		return r;
	}
	if (r < 0) {
		fprintf(stderr, "ferry-server: %s\n", err != NULL ? err :
		    strerror(-r));
		free(err);
		srv_db_close(db);
		return 1;
	}
	/* When, for `keys`; the keys file itself has no room for it. */
	if (srv_db_note_added(db, key, util_now_ms()) < 0)
		fprintf(stderr, "ferry-server: warning: cannot record when %s "
		    "was added: %s\n", key, srv_db_errmsg(db));
	printf("allowed %s%s%s in %s (send SIGHUP to a running ferry-server "
	    "to apply)\n", key, name != NULL ? " as " : "",
	    name != NULL ? name : "", s->keys_path);
	r = allow_grants_store(db, key, ag);
	srv_db_close(db);
	return r;
}

/* `ferry-server revoke PUBKEY [--reason TEXT]`: exit status. */
static int
cmd_revoke(struct server *s, int argc, char **argv)
{
	const char *key = NULL, *reason = NULL, *why;
	struct srv_revoked *set = NULL;
	const struct srv_revocation *rv;
	struct srv_db *db = NULL;
	char words[512];
	int i, r;

	/* A key may begin with '-' (base64url): one of key length is one. */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc)
			reason = argv[++i];
		else if (strncmp(argv[i], "--reason=", 9) == 0)
			reason = argv[i] + 9;
		else if (key == NULL && (argv[i][0] != '-' ||
		    strlen(argv[i]) == KEYS_PUB_B64_LEN))
			key = argv[i];
		else
			break;
	}
	if (key == NULL || i < argc) {
		fprintf(stderr, "usage: ferry-server [--data-dir DIR | --db "
		    "FILE|URL] revoke PUBKEY [--reason TEXT]\n");
		return 2;
	}
	if (srv_keys_check_key(key, &why) < 0) {
		fprintf(stderr, "ferry-server: '%s' %s\n", key, why);
		return 1;
	}
	if (reason != NULL && srv_access_check_reason(reason, &why) < 0) {
		fprintf(stderr, "ferry-server: the reason '%s' %s\n", reason,
		    why);
		return 1;
	}
	if (open_store(s, &db) < 0)
		return 1;
	r = srv_db_revoke(db, key, util_now_ms(), reason);
	if (r == -EEXIST && read_revoked(db, key, &set) == 0 &&
	    (rv = srv_revoked_find(set, key)) != NULL) {
		srv_revocation_words(rv, words, sizeof words);
		printf("key %s was %s already; nothing changed\n", key, words);
	} else if (r < 0 && r != -EEXIST)
		fprintf(stderr, "ferry-server: cannot revoke %s: %s (%s)\n",
		    key, strerror(-r), srv_db_errmsg(db));
	else if (r == 0)
		printf("revoked %s%s%s: refused from its next request on, by "
		    "every server on this database\n", key, reason != NULL ?
		    ": " : "", reason != NULL ? reason : "");
	srv_revoked_free(set);
	srv_db_close(db);
	return r < 0 && r != -EEXIST ? 1 : 0;
}

/* `ferry-server unrevoke PUBKEY`: exit status. */
static int
cmd_unrevoke(struct server *s, int argc, char **argv)
{
	struct srv_db *db = NULL;
	const char *why;
	int r;

	if (argc != 2) {
		fprintf(stderr, "usage: ferry-server [--data-dir DIR | --db "
		    "FILE|URL] unrevoke PUBKEY\n");
		return 2;
	}
	if (srv_keys_check_key(argv[1], &why) < 0) {
		fprintf(stderr, "ferry-server: '%s' %s\n", argv[1], why);
		return 1;
	}
	if (open_store(s, &db) < 0)
		return 1;
	r = srv_db_unrevoke(db, argv[1]);
	if (r == -ENOENT)
		printf("key %s is not revoked; nothing changed\n", argv[1]);
	else if (r < 0)
		fprintf(stderr, "ferry-server: cannot unrevoke %s: %s (%s)\n",
		    argv[1], strerror(-r), srv_db_errmsg(db));
	else
		printf("the revocation of %s is lifted: it is accepted again "
		    "wherever it is allowed\n", argv[1]);
	srv_db_close(db);
	return r < 0 && r != -ENOENT ? 1 : 0;
}

/* `keys`: one object per key, by key, gathered from every source. */
static json_t *
keys_entry(json_t *all, const char *key)
{
	json_t *e;

	if ((e = json_object_get(all, key)) != NULL)
		return e;
	e = json_pack("{s:s, s:n, s:[], s:n, s:n, s:n}", "key", key, "name",
	    "sources", "added_ms", "seen_ms", "revoked");
	if (e == NULL || json_object_set_new(all, key, e) != 0)
		return NULL;
	return e;
}

static int
keys_add(json_t *all, const char *key, const char *name, const char *source)
{
	json_t *e;

	if ((e = keys_entry(all, key)) == NULL)
		return -ENOMEM;
	if (name != NULL && json_is_null(json_object_get(e, "name")))
		json_object_set_new(e, "name", json_string(name));
	json_array_append_new(json_object_get(e, "sources"),
	    json_string(source));
	return 0;
}

static int
keys_file_cb(const char *key, const char *name, void *arg)
{
	return keys_add(arg, key, name, "file");
}

static int
keys_db_cb(const char *key, const char *name, void *arg)
{
	return keys_add(arg, key, name, "database");
}

static int
keys_times_cb(const char *key, int64_t added_ms, int64_t seen_ms, void *arg)
{
	json_t *e;

	if ((e = keys_entry(arg, key)) == NULL)
		return -ENOMEM;
	if (added_ms > 0)
		json_object_set_new(e, "added_ms", json_integer(added_ms));
	if (seen_ms > 0)
		json_object_set_new(e, "seen_ms", json_integer(seen_ms));
	return 0;
}

static int
keys_revoked_cb(const char *key, int64_t ms, const char *reason, void *arg)
{
	json_t *e;

	if ((e = keys_entry(arg, key)) == NULL)
		return -ENOMEM;
	return json_object_set_new(e, "revoked", json_pack("{s:I, s:s?}",
	    "time", (json_int_t)ms, "reason", reason));
}

/* A rotation: the new key goes by the old one's name; the old one is
 * marked retired (only then: the member is absent otherwise). */
static int
keys_rotation_cb(const struct srv_rotation *rot, void *arg)
{
	json_t *o, *n;

	if ((o = keys_entry(arg, rot->old_key)) == NULL ||
	    keys_add(arg, rot->new_key, json_string_value(json_object_get(o,
	    "name")), "rotation") < 0 ||
	    (n = json_object_get(arg, rot->new_key)) == NULL)
		return -ENOMEM;
	if (json_is_null(json_object_get(n, "added_ms")))
		json_object_set_new(n, "added_ms", json_integer(rot->ms));
	return json_object_set_new(o, "retired", json_pack("{s:I, s:s}",
	    "time", (json_int_t)rot->ms, "new_key", rot->new_key));
}

static int
keys_grants_cb(const char *key, const char *rd, const char *wr, void *arg)
{
	json_t *e;

	if ((e = keys_entry(arg, key)) == NULL)
		return -ENOMEM;
	return json_object_set_new(e, "grants", srv_grants_json(rd, wr));
}

/* A key's grants in words: "all", or "read a,b; write c" (into buf). */
static const char *
keys_grants_words(json_t *g, char *buf, size_t size)
{
	json_t *p;
	size_t i, o = 0;
	int k;

	if (!json_is_object(g))
		return "all";
	for (k = 0; k < 2; k++) {
		o += (size_t)snprintf(buf + o, o < size ? size - o : 0,
		    "%s%s ", k == 0 ? "" : "; ", k == 0 ? "read" : "write");
		if (json_array_size(json_object_get(g, k == 0 ? "read" :
		    "write")) == 0)
			o += (size_t)snprintf(buf + o, o < size ? size - o : 0,
			    "-");
		json_array_foreach(json_object_get(g, k == 0 ? "read" :
		    "write"), i, p)
			o += (size_t)snprintf(buf + o, o < size ? size - o : 0,
			    "%s%s", i > 0 ? "," : "", json_string_value(p));
	}
	return buf;
}

/* A time column: "2026-12-03 10:40:00" (UTC), or "-". */
static const char *
keys_time(json_t *ms, char *buf, size_t size)
{
	time_t t;
	struct tm tm;

	if (!json_is_integer(ms))
		return "-";
	t = (time_t)(json_integer_value(ms) / 1000);
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		return "?";
	return buf;
}

static void
keys_print(json_t *list)
{
	char added[32], seen[32], revoked[32], retired[32], grants[512], *line;
	json_t *e, *rv, *rt;
	const char *name, *reason;
	bool any = false;
	size_t i;

	/* A GRANTS column only where some key is limited (srv_grants). */
	json_array_foreach(list, i, e)
		any = any || json_object_get(e, "grants") != NULL;
	printf("%-43s  %-16s  %-19s  %-19s  %s%s\n", "KEY", "NAME",
	    "ADDED (UTC)", "LAST SEEN (UTC)", "REVOKED (UTC)", any ?
	    "  GRANTS" : "");
	json_array_foreach(list, i, e) {
		rv = json_object_get(e, "revoked");
		name = json_string_value(json_object_get(e, "name"));
		reason = json_string_value(json_object_get(rv, "reason"));
		if (asprintf(&line, "%-43s  %-16s  %-19s  %-19s  %s%s%s%s",
		    json_string_value(json_object_get(e, "key")),
		    name != NULL ? name : "-",
		    keys_time(json_object_get(e, "added_ms"), added,
		    sizeof added),
		    keys_time(json_object_get(e, "seen_ms"), seen, sizeof seen),
		    keys_time(json_object_get(rv, "time"), revoked,
		    sizeof revoked), reason != NULL ? " (" : "",
		    reason != NULL ? reason : "", reason != NULL ? ")" : "") < 0)
			return;
		if (any)
			printf("%s  %s\n", line, keys_grants_words(
			    json_object_get(e, "grants"), grants,
			    sizeof grants));
		else
			printf("%s\n", line);
		free(line);
		if ((rt = json_object_get(e, "retired")) != NULL)
			printf("%-43s  retired %s for %s\n", "",
			    keys_time(json_object_get(rt, "time"), retired,
			    sizeof retired), json_string_value(
			    json_object_get(rt, "new_key")));
	}
	if (json_array_size(list) == 0)
		printf("(no keys: add one with ferry-server allow PUBKEY "
		    "NAME)\n");
}

static int
keys_name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* `ferry-server keys [--json]`: exit status. */
static int
cmd_keys(struct server *s, int argc, char **argv)
{
	struct srv_keys *ks = NULL;
	struct srv_db *db = NULL;
	json_t *all = NULL, *list = NULL, *e;
	const char *k, **names = NULL;
	char *err = NULL;
	bool json = false;
	size_t i, n = 0;
	int r, rc = 1;

	if (argc == 2 && strcmp(argv[1], "--json") == 0)
		json = true;
	else if (argc != 1) {
		fprintf(stderr, "usage: ferry-server [--data-dir DIR | --keys "
		    "FILE | --db FILE|URL] keys [--json]\n");
		return 2;
	}
	if (resolve_paths(s) < 0 || (all = json_object()) == NULL ||
	    (list = json_array()) == NULL)
		goto out;
	r = srv_keys_load(s->keys_path, &ks, &err);
	if (r < 0 && r != -ENOENT) {
		fprintf(stderr, "ferry-server: %s\n", err != NULL ? err :
		    strerror(-r));
		goto out;
	}
	if (ks != NULL && srv_keys_foreach(ks, keys_file_cb, all) < 0)
		goto out;
	if (open_store(s, &db) < 0)
		goto out;
	r = srv_db_keys(db, keys_db_cb, all);
	if ((r < 0 && r != -EOPNOTSUPP) ||
	    (r = srv_db_key_times(db, keys_times_cb, all)) < 0 ||
	    (r = srv_db_revocations(db, keys_revoked_cb, all)) < 0 ||
	    (r = srv_db_rotations(db, keys_rotation_cb, all)) < 0 ||
	    (r = srv_db_grants(db, keys_grants_cb, all)) < 0) {
		fprintf(stderr, "ferry-server: cannot read the keys from the "
		    "database: %s (%s)\n", strerror(-r), srv_db_errmsg(db));
		goto out;
	}
	/* Sorted by key: a stable list whatever the sources' order. */
	if ((names = calloc(json_object_size(all) + 1, sizeof *names)) == NULL)
		goto out;
	json_object_foreach(all, k, e)
		names[n++] = k;
	qsort(names, n, sizeof *names, keys_name_cmp);
	for (i = 0; i < n; i++)
		json_array_append(list, json_object_get(all, names[i]));
	if (json) {
		char *text = json_dumps(list, JSON_COMPACT | JSON_SORT_KEYS);

		if (text == NULL)
			goto out;
		printf("{\"keys\":%s}\n", text);
		free(text);
	} else
		keys_print(list);
	rc = 0;
out:
	free(names);
	free(err);
	srv_keys_free(ks);
	srv_db_close(db);
	json_decref(all);
	json_decref(list);
	return rc;
}

/* One server per data directory: an exclusive lock for our lifetime. */
static int
lock_data_dir(struct server *s)
{
	char *path = NULL;
	int fd, r;

	if (asprintf(&path, "%s/ferry-server.lock", s->data_dir) < 0)
		return -ENOMEM;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		r = -errno;
		log_err("cannot open %s: %s", path, strerror(-r));
		goto out;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		log_err("%s is in use by another ferry-server (%s)",
		    s->data_dir, r == -EBUSY ? "locked" : strerror(-r));
		close(fd);
		goto out;
	}
	s->lock_fd = fd;
	r = 0;
out:
	free(path);
	return r;
}

/*
 * Rereading the keys.  What a request is judged by (the allowed keys with
 * the rotations' new keys, the retired keys, the revocations, the grants)
 * is built whole off the loop where the store has worker handles
 * (PostgreSQL: on reload_q's one thread, with its own srv_db_worker
 * handle, so the loop keeps serving with the sets in use while the
 * database is slow or away, and a reread waiting on a lock holds none of
 * srv_http's workers), then swapped in on the loop.  A part that cannot
 * be read keeps the set in use, said.  One reread at a time: changes
 * announced while one runs are taken by one more after it, never by a
 * queue.  At start-up everything is read before the socket is bound,
 * waited for; on SQLite a reread is the keys file and short local reads,
 * on the loop as before.
 */
#define RELOAD_KEYS	0x1	/* keys file, the database's keys, rotations */
#define RELOAD_REVOKED	0x2
#define RELOAD_GRANTS	0x4
#define RELOAD_ALL	(RELOAD_KEYS | RELOAD_REVOKED | RELOAD_GRANTS)

struct reload {
	struct server		*s;
	int			 what;		/* RELOAD_* */
	bool			 start;		/* start-up, not a reread */
	bool			 in_db;		/* keys in the database too */
	int			 worker_r;	/* < 0: no handle on the worker */
	/* Built by reload_run, each with its error and why. */
	struct srv_keys		*ks;
	struct srv_retired	*rt;
	bool			 no_file;
	int			 keys_r;
	char			 keys_why[1024];
	struct srv_revoked	*rv;
	int			 revoked_r;
	char			 revoked_why[512];
	struct srv_grants	*gs;
	int			 grants_r;
	char			 grants_why[512];
};

static int
grants_add_cb(const char *key, const char *rd, const char *wr, void *arg)
{
	int r;

	/* A malformed row shuts its key out of every collection (the
	 * safe side), said, and harms no other key. */
	if ((r = srv_grants_add(arg, key, rd, wr)) == -EINVAL) {
		log_warn("key_grants in the database: the grants of %.64s "
		    "cannot be read; it may read and write nothing", key);
		r = srv_grants_add(arg, key, "", "");
	}
	return r < 0 ? r : 0;
}

static int
merge_key_cb(const char *key, const char *name, void *arg)
{
	int r;

	/* A malformed row is skipped, said, and harms no other key. */
	if ((r = srv_keys_merge(arg, key, name)) == -EINVAL)
		log_warn("allowed_keys in the database: ignoring the malformed "
		    "key %.64s", key);
	return r == -ENOMEM ? r : 0;
}

/*
 * The keys file, and the database's keys where it keeps some, with the
 * rotations' new keys and the retired set.  At start a missing file is
 * an empty set; with PostgreSQL the keys file is optional, at reread too.
 */
static int
reload_build_keys(struct reload *rl, struct srv_db *db)
{
	char *err = NULL;
	int r;

	r = srv_keys_load(rl->s->keys_path, &rl->ks, &err);
	if (r == -ENOENT && (rl->start || rl->in_db)) {
		free(err);
		err = NULL;
		rl->no_file = true;
		r = srv_keys_empty(&rl->ks);
	}
	if (r < 0) {
		snprintf(rl->keys_why, sizeof rl->keys_why, "%s", err != NULL ?
		    err : strerror(-r));
		goto out;
	}
	if (rl->in_db && (r = srv_db_keys(db, merge_key_cb, rl->ks)) < 0) {
		snprintf(rl->keys_why, sizeof rl->keys_why, "cannot read the "
		    "allowed keys from the database: %s (%s)", strerror(-r),
		    srv_db_errmsg(db));
		goto out;
	}
	/* Keys that follow a rotated one, under its name (srv_rotate.h). */
	if ((r = srv_rotate_load(db, rl->ks, &rl->rt)) < 0) {
		snprintf(rl->keys_why, sizeof rl->keys_why, "cannot read the "
		    "key rotations from the database: %s (%s)", strerror(-r),
		    srv_db_errmsg(db));
		goto out;
	}
	r = 0;
out:
	free(err);
	return r;
}

/* The store's grants, sealed. */
static int
reload_build_grants(struct reload *rl, struct srv_db *db)
{
	int r;

	if ((r = srv_grants_new(&rl->gs)) < 0) {
		snprintf(rl->grants_why, sizeof rl->grants_why, "%s",
		    strerror(-r));
		return r;
	}
	if ((r = srv_db_grants(db, grants_add_cb, rl->gs)) < 0) {
		snprintf(rl->grants_why, sizeof rl->grants_why, "cannot read "
		    "the grants from the database: %s (%s)", strerror(-r),
		    srv_db_errmsg(db));
		return r;
	}
	srv_grants_seal(rl->gs);
	return 0;
}

/*
 * Build what rl asks for on db (a worker's handle, or the loop's).
 * Touches rl and the keys file only; logs nothing but malformed rows.
 */
static void
reload_run(struct reload *rl, struct srv_db *db)
{
	if (rl->what & RELOAD_KEYS)
		rl->keys_r = reload_build_keys(rl, db);
	if ((rl->what & RELOAD_REVOKED) &&
	    (rl->revoked_r = read_revoked(db, NULL, &rl->rv)) < 0)
		snprintf(rl->revoked_why, sizeof rl->revoked_why, "cannot read "
		    "the revoked keys from the database: %s (%s)",
		    strerror(-rl->revoked_r), srv_db_errmsg(db));
	if (rl->what & RELOAD_GRANTS)
		rl->grants_r = reload_build_grants(rl, db);
}

/* Loop: log the keys built (or why not) and use them. */
static int
reload_take_keys(struct reload *rl)
{
	struct server *s = rl->s;
	size_t n;

	if (rl->keys_r < 0) {
		log_err("%s%s", rl->keys_why, rl->start ? "" :
		    "; keeping the keys in use");
		return rl->keys_r;
	}
	n = srv_keys_count(rl->ks);
	srv_http_set_retired(s->http, rl->rt);
	rl->rt = NULL;
	if (rl->no_file && rl->start && n == 0 && !s->opt.open)
		log_warn("no keys file %s%s: every request will be refused "
		    "until keys are added with `ferry-server allow PUBKEY "
		    "NAME`%s", s->keys_path, rl->in_db ? " and no keys in the "
		    "database" : "", rl->in_db ? " (with --db)" :
		    " (then SIGHUP)");
	srv_http_set_keys(s->http, rl->ks);
	rl->ks = NULL;
	if (!rl->start || n > 0)
		log_notice("%s %zu authorized key%s from %s%s", rl->start ?
		    "loaded" : "reloaded", n, n == 1 ? "" : "s",
		    s->keys_path, rl->in_db ? " and the database" : "");
	return 0;
}

/*
 * Loop: use every part rl built; a part that failed keeps the set in use
 * (a revocation read once is not forgotten because the database
 * hiccuped), said.  0, or the first part's -errno.
 */
static int
reload_take(struct reload *rl)
{
	struct server *s = rl->s;
	size_t n;
	int r = 0;

	if (rl->what & RELOAD_KEYS)
		r = reload_take_keys(rl);
	if (rl->what & RELOAD_REVOKED) {
		if (rl->revoked_r < 0) {
			log_err("%s; keeping the revocations in use",
			    rl->revoked_why);
			r = r < 0 ? r : rl->revoked_r;
		} else {
			if ((n = srv_revoked_count(rl->rv)) > 0)
				log_info("%zu revoked key%s", n, n == 1 ? "" :
				    "s");
			srv_http_set_revoked(s->http, rl->rv);
			rl->rv = NULL;
		}
	}
	if (rl->what & RELOAD_GRANTS) {
		if (rl->grants_r < 0) {
			log_err("%s; keeping the grants in use",
			    rl->grants_why);
			r = r < 0 ? r : rl->grants_r;
		} else {
			if ((n = srv_grants_count(rl->gs)) > 0)
				log_info("%zu key%s limited to some "
				    "collections", n, n == 1 ? "" : "s");
			srv_http_set_grants(s->http, rl->gs);
			rl->gs = NULL;
		}
	}
	return r;
}

/* A reread of what (RELOAD_*) for s; NULL on ENOMEM. */
static struct reload *
reload_new(struct server *s, int what, bool start)
{
	struct reload *rl;

	if ((rl = calloc(1, sizeof *rl)) == NULL)
		return NULL;
	rl->s = s;
	rl->what = what;
	rl->start = start;
	rl->in_db = s->opt.db != NULL && srv_db_is_url(s->opt.db);
	return rl;
}

/* Free what was built and not taken.  Accepts NULL. */
static void
reload_free(struct reload *rl)
{
	if (rl == NULL)
		return;
	srv_keys_free(rl->ks);
	srv_retired_free(rl->rt);
	srv_revoked_free(rl->rv);
	srv_grants_free(rl->gs);
	free(rl);
}

static void	reload_start(struct server *, int);

/* reload_q's thread: build on this thread's own store handle. */
static void
reload_item(void *arg, size_t i)
{
	struct reload *rl = arg;
	struct srv_db *db;

	(void)i;
	if ((rl->worker_r = srv_db_worker(rl->s->db, &db)) == 0)
		reload_run(rl, db);
}

/* Loop: the reread finished. */
static void
reload_done(void *arg)
{
	struct reload *rl = arg;
	struct server *s = rl->s;
	int again;

	if (rl->worker_r < 0)
		log_err("cannot reread the keys: no database connection on "
		    "the worker (%s); keeping the keys, revocations and "
		    "grants in use", strerror(-rl->worker_r));
	else
		(void)reload_take(rl);
	reload_free(rl);
	s->reload = NULL;
	/* Whatever was announced meanwhile, in one more reread. */
	if ((again = s->reload_again) != 0) {
		s->reload_again = 0;
		reload_start(s, again);
	}
}

/* The server is stopping with a reread in hand. */
static void
reload_drop(void *arg)
{
	struct reload *rl = arg;

	rl->s->reload = NULL;
	reload_free(rl);
}

/*
 * Reread what (RELOAD_*), keeping each set in use until its new one is
 * built; while a reread runs, only note what to reread after it.
 */
static void
reload_start(struct server *s, int what)
{
	struct reload *rl;
	int r;

	if (s->stopping)
		return;
	if (s->reload != NULL) {
		s->reload_again |= what;
		return;
	}
	if ((rl = reload_new(s, what, false)) == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	s->reload = rl;
	if (s->reload_q == NULL) {
		reload_run(rl, s->db);
		reload_done(rl);
		return;
	}
	if ((r = jobq_submit(s->reload_q, NULL, reload_item, reload_done,
	    reload_drop, rl)) == 0)
		return;
	s->reload = NULL;
	reload_free(rl);
fail:
	log_err("cannot reread the keys: %s; keeping the keys in use",
	    strerror(-r));
}

/*
 * Start-up: everything, before serving.  With PostgreSQL on the rereads'
 * thread, waited for here, so its connection is made now and the first
 * reread is as quick as the next.
 */
static int
load_all(struct server *s)
{
	struct reload *rl;
	int r;

	if ((rl = reload_new(s, RELOAD_ALL, true)) == NULL)
		return -ENOMEM;
	if (s->reload_q == NULL)
		reload_run(rl, s->db);
	else if ((r = jobq_submit(s->reload_q, NULL, reload_item, NULL, NULL,
	    rl)) < 0) {
		log_err("cannot read the keys: %s", strerror(-r));
		goto out;
	} else
		jobq_drain(s->reload_q);
	if ((r = rl->worker_r) < 0)
		log_err("cannot read the keys: no database connection (%s)",
		    strerror(-r));
	else
		r = reload_take(rl);
out:
	reload_free(rl);
	return r;
}

/*
 * Another instance or process allowed, revoked, unrevoked, rotated or
 * limited a key, the listener is back, or SIGHUP: reread all of it.
 */
static void
keys_changed_cb(void *arg)
{
	reload_start(arg, RELOAD_ALL);
}

/*
 * Another process wrote the SQLite store (revoke, unrevoke, grants; allow
 * noting when): reread the revocations and grants.  The keys file is
 * still taken on SIGHUP, as before.
 */
static void
revoked_changed_cb(void *arg)
{
	reload_start(arg, RELOAD_REVOKED | RELOAD_GRANTS);
}

/*
 * A cap the open-file limit cannot hold is kept (accept failures back
 * off), but said.
 */
static void
warn_max_connections(int n)
{
	struct rlimit rl;

	if (n <= 0 || getrlimit(RLIMIT_NOFILE, &rl) == -1 ||
	    rl.rlim_cur == RLIM_INFINITY ||
	    (rlim_t)n + SRV_CONN_FD_RESERVE <= rl.rlim_cur)
		return;
	log_warn("--max-connections %d leaves fewer than %d of the %llu "
	    "descriptors the open-file limit allows for the rest: accepting "
	    "will fail before the cap is reached", n, SRV_CONN_FD_RESERVE,
	    (unsigned long long)rl.rlim_cur);
}

/* libevent's own messages (bind failures, say) go through our log. */
static void
libevent_log_cb(int severity, const char *msg)
{
	switch (severity) {
	case EVENT_LOG_DEBUG:
		log_debug("libevent: %s", msg);
		break;
	case EVENT_LOG_MSG:
		log_info("libevent: %s", msg);
		break;
	case EVENT_LOG_WARN:
		log_warn("libevent: %s", msg);
		break;
	default:
		log_err("libevent: %s", msg);
		break;
	}
}

static void
stop(struct server *s, const char *why)
{
	struct timeval tv = { 0, SRV_STOP_GRACE_MS * 1000 };

	if (s->stopping)
		return;
	s->stopping = true;
	log_notice("%s: stopping", why);
	srv_http_shutdown(s->http);
	event_base_loopexit(s->base, &tv);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server *s = arg;

	if (sig == SIGHUP) {
		keys_changed_cb(s);
		return;
	}
	stop(s, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static int
serve(struct server *s)
{
	struct srv_http_config hc;
	struct event *sig[3] = { NULL, NULL, NULL };
	const int signo[3] = { SIGTERM, SIGINT, SIGHUP };
	char *path = NULL, *err = NULL;
	int i, port, r;

	if ((r = resolve_paths(s)) < 0)
		return r;
	if ((r = util_mkdir_p(s->data_dir, 0700)) < 0) {
		log_err("cannot create data directory %s: %s", s->data_dir,
		    strerror(-r));
		return r;
	}
	if ((r = lock_data_dir(s)) < 0)
		return r;
	if ((path = store_path(s)) == NULL)
		return -ENOMEM;
	if ((r = srv_db_open(path, &s->db, &err)) < 0) {
		log_err("cannot open database %s: %s", srv_db_is_url(path) ?
		    "(PostgreSQL)" : path, err != NULL ? err : strerror(-r));
		free(err);
		goto out;
	}
	/* Push checkers on worker threads wake the loop (lib/jobq). */
	if (evthread_use_pthreads() < 0 ||
	    (s->base = event_base_new()) == NULL) {
		log_err("cannot create the event loop");
		r = -ENOMEM;
		goto out;
	}
	memset(&hc, 0, sizeof hc);
	hc.open = s->opt.open;
	hc.max_waiters = s->opt.max_waiters;
	hc.max_scan = s->opt.max_scan;
	hc.max_wait = s->opt.max_wait;
	hc.max_connections = s->opt.max_connections;
	hc.max_inflight = (size_t)s->opt.max_inflight_mib * 1024 * 1024;
	hc.reload = revoked_changed_cb;
	hc.reload_arg = s;
	if ((r = srv_http_new(s->base, s->db, &hc, &s->http)) < 0) {
		log_err("cannot start the HTTP server: %s", strerror(-r));
		goto out;
	}
	/* Rereads wait for PostgreSQL on a thread of their own. */
	if (srv_db_has_workers(s->db) &&
	    (r = jobq_new(s->base, 1, &s->reload_q)) < 0) {
		log_err("cannot start the keys' reader thread: %s",
		    strerror(-r));
		goto out;
	}
	if ((r = load_all(s)) < 0 ||
	    (r = srv_db_watch_keys(s->db, keys_changed_cb, s)) < 0)
		goto out;
	warn_max_connections(s->opt.max_connections);
	if (s->opt.open)
		log_warn("OPEN MODE: accepting requests signed by ANY key; "
		    "for local trials only, never on a shared network");
	for (i = 0; i < 3; i++) {
		sig[i] = evsignal_new(s->base, signo[i], signal_cb, s);
		if (sig[i] == NULL || evsignal_add(sig[i], NULL) < 0) {
			log_err("cannot install signal handlers");
			r = -ENOMEM;
			goto out;
		}
	}
	if ((r = srv_http_listen(s->http, s->addr, s->port, &port)) < 0) {
		log_err("cannot listen on %s:%d: %s", s->addr, s->port,
		    strerror(-r));
		goto out;
	}
	log_notice(strchr(s->addr, ':') != NULL ?
	    "ready: listening on [%s]:%d, database %s, head %lld" :
	    "ready: listening on %s:%d, database %s, head %lld", s->addr,
	    port, srv_db_is_url(path) ? "PostgreSQL" : path,
	    (long long)srv_db_head(s->db));

	if (event_base_dispatch(s->base) < 0) {
		log_err("event loop failed");
		r = -EIO;
	}
out:
	for (i = 0; i < 3; i++)
		if (sig[i] != NULL)
			event_free(sig[i]);
	free(path);
	return r;
}

int
main(int argc, char **argv)
{
	struct server s;
	int r;

	memset(&s, 0, sizeof s);
	s.lock_fd = -1;
	log_init("ferry-server");
	/* Database, keys file and lock are private to the user. */
	umask(0077);
	signal(SIGPIPE, SIG_IGN);
	if (parse_args(argc, argv, &s.opt) < 0)
		return 2;
	if (load_config(&s) < 0)
		return 2;
	if (s.opt.debug)
		log_set_level(LOG_DEBUG);
	event_set_log_callback(libevent_log_cb);
	if (sodium_init() < 0) {
		log_err("cannot initialise libsodium");
		srv_config_free(&s.conf);
		return 1;
	}
	if (optind < argc && (strcmp(argv[optind], "allow") == 0 ||
	    strcmp(argv[optind], "revoke") == 0 ||
	    strcmp(argv[optind], "unrevoke") == 0 ||
	    strcmp(argv[optind], "keys") == 0)) {
		switch (argv[optind][0]) {
		case 'a':
			r = cmd_allow(&s, argc - optind, argv + optind);
			break;
		case 'r':
			r = cmd_revoke(&s, argc - optind, argv + optind);
			break;
		case 'u':
			r = cmd_unrevoke(&s, argc - optind, argv + optind);
			break;
		default:
			r = cmd_keys(&s, argc - optind, argv + optind);
			break;
		}
		free(s.data_dir);
		free(s.keys_path);
		srv_config_free(&s.conf);
		return r;
	}
	if (optind < argc) {
		fprintf(stderr, "ferry-server: unknown command '%s'\n",
		    argv[optind]);
		usage(stderr);
		srv_config_free(&s.conf);
		return 2;
	}
	if (srv_config_listen(s.opt.listen != NULL ? s.opt.listen :
	    SRV_DEFAULT_LISTEN, s.addr, sizeof s.addr, &s.port) < 0) {
		fprintf(stderr, "ferry-server: --listen wants ADDR:PORT or "
		    "[ADDR]:PORT, not '%s'\n", s.opt.listen);
		srv_config_free(&s.conf);
		return 2;
	}
	r = serve(&s);
	/* A reread in hand finishes first (its thread's handle is the
	 * store's), and is dropped. */
	jobq_free(s.reload_q);
	srv_http_free(s.http);
	srv_db_close(s.db);
	if (s.base != NULL)
		event_base_free(s.base);
	if (s.lock_fd != -1)
		close(s.lock_fd);
	free(s.data_dir);
	free(s.keys_path);
	srv_config_free(&s.conf);
	if (r == 0)
		log_notice("stopped");
	return r < 0 ? 1 : 0;
}
