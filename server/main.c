/*
 * ferry-server: the reference remote of remote protocol v1 (DESIGN
 * "Remote protocol v1"; "ferryd and ferry-server").
 *
 *   ferry-server [--config FILE] [--listen ADDR:PORT] [--data-dir DIR] [--keys FILE]
 *                [--db FILE|postgresql://...] [--open] [--debug] [--max-waiters N] [--max-wait S]
 *                [--max-connections N] [--max-inflight-mib N]
 *   ferry-server [--data-dir DIR | --keys FILE | --db URL] allow PUBKEY [NAME]
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
 * keeping the old set if the new file is bad).  The data directory is
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
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <sodium.h>

#include "log.h"
#include "srv_config.h"
#include "srv_conn.h"
#include "srv_db.h"
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
	    "  --max-inflight-mib N  MiB of request bodies received at once (503\n"
	    "                      beyond; default %d)\n"
	    "\n"
	    "  allow PUBKEY [NAME] add a device key to the keys file; send "
	    "SIGHUP to a\n"
	    "                      running server to apply it (with --db URL: "
	    "to the\n"
	    "                      database, applied by every instance at "
	    "once)\n",
	    SRV_HTTP_MAX_WAITERS, SRV_HTTP_MAX_WAIT, SRV_CONN_MAX_DEFAULT,
	    SRV_CONN_FD_RESERVE, srv_conn_default_max(), SRV_CONN_INFLIGHT_MIB);
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

static int
resolve_paths(struct server *s)
{
	int r;

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

/* `ferry-server --db URL allow PUBKEY [NAME]`: exit status. */
static int
cmd_allow_db(struct server *s, const char *key, const char *name)
{
	struct srv_db *db = NULL;
	char *err = NULL;
	int r;

	if ((r = srv_db_open(s->opt.db, &db, &err)) < 0) {
		fprintf(stderr, "ferry-server: cannot open the database: %s\n",
		    err != NULL ? err : strerror(-r));
		free(err);
		return 1;
	}
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
	srv_db_close(db);
	return r < 0 && r != -EEXIST ? 1 : 0;
}

/* `ferry-server allow PUBKEY [NAME]`: exit status. */
static int
cmd_allow(struct server *s, int argc, char **argv)
{
	const char *key, *name, *why;
	char *err = NULL;
	int r;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: ferry-server [--data-dir DIR | --keys "
		    "FILE] allow PUBKEY [NAME]\n");
		return 2;
	}
	key = argv[1];
	name = argc == 3 ? argv[2] : NULL;
	if (srv_keys_check_key(key, &why) < 0) {
		fprintf(stderr, "ferry-server: '%s' %s\n", key, why);
		return 1;
	}
	if (name != NULL && srv_keys_check_name(name, &why) < 0) {
		fprintf(stderr, "ferry-server: the name '%s' %s\n", name, why);
		return 1;
	}
	if (s->opt.db != NULL && srv_db_is_url(s->opt.db))
		return cmd_allow_db(s, key, name);
	if (resolve_paths(s) < 0)
		return 1;
	if (s->opt.keys == NULL &&
	    (r = util_mkdir_p(s->data_dir, 0700)) < 0) {
		fprintf(stderr, "ferry-server: cannot create %s: %s\n",
		    s->data_dir, strerror(-r));
		return 1;
	}
	r = srv_keys_append(s->keys_path, key, name, &err);
	if (r == -EEXIST) {
		printf("%s; nothing changed\n", err != NULL ? err :
		    "the key is already allowed");
		free(err);
		return 0;
	}
	if (r < 0) {
		fprintf(stderr, "ferry-server: %s\n", err != NULL ? err :
		    strerror(-r));
		free(err);
		return 1;
	}
	printf("allowed %s%s%s in %s (send SIGHUP to a running ferry-server "
	    "to apply)\n", key, name != NULL ? " as " : "",
	    name != NULL ? name : "", s->keys_path);
	return 0;
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
 * Load the keys file, and the database's keys where it keeps some.  At
 * start a missing file is an empty set (with a warning if nothing else
 * allows a key); at reload any failure keeps the set in use.
 */
static int
load_keys(struct server *s, bool reload)
{
	struct srv_keys *ks = NULL;
	char *err = NULL;
	bool in_db, no_file = false;
	int r;

	/* With PostgreSQL the keys file is optional, at reload too. */
	in_db = s->opt.db != NULL && srv_db_is_url(s->opt.db);
	r = srv_keys_load(s->keys_path, &ks, &err);
	if (r == -ENOENT && (!reload || in_db)) {
		free(err);
		if ((r = srv_keys_empty(&ks)) < 0)
			return r;
		no_file = true;
	} else if (r < 0) {
		log_err("%s%s", err != NULL ? err : strerror(-r),
		    reload ? "; keeping the keys in use" : "");
		free(err);
		return r;
	}
	if (in_db && (r = srv_db_keys(s->db, merge_key_cb, ks)) < 0) {
		log_err("cannot read the allowed keys from the database: %s "
		    "(%s)%s", strerror(-r), srv_db_errmsg(s->db), reload ?
		    "; keeping the keys in use" : "");
		srv_keys_free(ks);
		return r;
	}
	if (no_file && !reload && srv_keys_count(ks) == 0 && !s->opt.open)
		log_warn("no keys file %s%s: every request will be refused "
		    "until keys are added with `ferry-server allow PUBKEY "
		    "NAME`%s", s->keys_path, in_db ? " and no keys in the "
		    "database" : "", in_db ? " (with --db)" : " (then SIGHUP)");
	srv_http_set_keys(s->http, ks);
	if (reload || srv_keys_count(ks) > 0)
		log_notice("%s %zu authorized key%s from %s%s", reload ?
		    "reloaded" : "loaded", srv_keys_count(ks),
		    srv_keys_count(ks) == 1 ? "" : "s", s->keys_path,
		    in_db ? " and the database" : "");
	return 0;
}

/* Another instance allowed a key: reread (keeping the set on failure). */
static void
keys_changed_cb(void *arg)
{
	(void)load_keys(arg, true);
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
		(void)load_keys(s, true);
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
	if (s->opt.db != NULL)
		path = strdup(s->opt.db);
	else if (asprintf(&path, "%s/server.db", s->data_dir) < 0)
		path = NULL;
	if (path == NULL)
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
	hc.max_wait = s->opt.max_wait;
	hc.max_connections = s->opt.max_connections;
	hc.max_inflight = (size_t)s->opt.max_inflight_mib * 1024 * 1024;
	if ((r = srv_http_new(s->base, s->db, &hc, &s->http)) < 0) {
		log_err("cannot start the HTTP server: %s", strerror(-r));
		goto out;
	}
	if ((r = load_keys(s, false)) < 0 ||
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
	if (optind < argc && strcmp(argv[optind], "allow") == 0) {
		r = cmd_allow(&s, argc - optind, argv + optind);
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
