/*
 * ferryd: the per-user ferry daemon.  Owns the event loop; opens the device
 * key, the replica and the IPC socket, then serves until SIGTERM or SIGINT.
 *
 * Start-up order matters: the data directory is locked first (one daemon
 * per replica), then the key and the replica are opened, and only then is
 * the socket bound, so a client that can connect is talking to a daemon that
 * can answer.  "ready" is logged and sent to systemd (sd_notify READY=1)
 * after that.  SIGHUP rereads the configuration; settings that need a
 * restart (data directory, socket) are reported, not half-applied.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <sodium.h>
#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "config.h"
#include "control.h"
#include "keys.h"
#include "log.h"
#include "presence_relay.h"
#include "store.h"
#include "sync.h"
#include "util.h"
#include "vl_server.h"
#include "watch.h"
#include "writer.h"

struct options {
	const char	*config;
	const char	*data_dir;
	const char	*socket;
	const char	*remote;
	bool		 debug;
};

struct daemon {
	struct options		 opt;
	struct config		 cfg;
	struct event_base	*base;
	struct store		*st;
	struct keys		*keys;
	struct watch		*watch;
	struct writer		*writer;
	struct sync		*sync;		/* NULL: no remote */
	struct presence_relay	*presence;
	struct control		*ctl;
	struct vl_server	*srv;
	int			 lock_fd;
	bool			 activated;	/* socket from systemd */
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: ferryd [--config FILE] [--data-dir DIR] [--socket PATH]\n"
	    "              [--remote URL] [--debug]\n"
	    "       ferryd --help | --version\n"
	    "\n"
	    "  --config FILE    configuration (default "
	    "$XDG_CONFIG_HOME/ferry/ferryd.conf)\n"
	    "  --data-dir DIR   replica and device key (default "
	    "$XDG_DATA_HOME/ferry)\n"
	    "  --socket PATH    IPC socket (default $FERRY_SOCKET, else "
	    "$XDG_RUNTIME_DIR/ferry/ferryd.sock;\n"
	    "                   see ferryd(8) without XDG_RUNTIME_DIR)\n"
	    "  --remote URL     sync remote (none: a local store only)\n"
	    "  --debug          log debug messages\n");
}

static void
notify(const char *state)
{
#ifdef HAVE_SYSTEMD
	sd_notify(0, state);
#else
	(void)state;
#endif
}

static void
notify_status(struct daemon *d)
{
	char *line, buf[512];

	if ((line = control_status_line(d->ctl)) == NULL)
		return;
	snprintf(buf, sizeof buf, "STATUS=%s", line);
	notify(buf);
	free(line);
}

/* Apply the command line over whatever the config file said. */
static int
apply_options(struct daemon *d, struct config *c)
{
	char **dst[] = { &c->data_dir, &c->socket_path, &c->remote_url };
	const char *src[] = { d->opt.data_dir, d->opt.socket, d->opt.remote };
	size_t i;

	for (i = 0; i < sizeof dst / sizeof dst[0]; i++) {
		char *v;

		if (src[i] == NULL)
			continue;
		if ((v = strdup(src[i])) == NULL)
			return -ENOMEM;
		free(*dst[i]);
		*dst[i] = v;
	}
	if (d->opt.debug)
		c->log_level = LOG_DEBUG;
	if (c->remote_url != NULL && *c->remote_url != '\0' &&
	    strncmp(c->remote_url, "http://", 7) != 0 &&
	    strncmp(c->remote_url, "https://", 8) != 0) {
		log_err("remote %s: not an http:// or https:// URL",
		    c->remote_url);
		return -EINVAL;
	}
	return 0;
}

static int
load_config(struct daemon *d, struct config *c)
{
	char *path = NULL, *err = NULL;
	int r;

	if ((r = config_defaults(c)) < 0) {
		log_err("cannot determine default paths: %s (set HOME or "
		    "XDG_DATA_HOME and XDG_RUNTIME_DIR)", strerror(-r));
		return r;
	}
	if (d->opt.config == NULL && (path = config_default_path()) == NULL) {
		/* No default config location: only built-in defaults. */
	} else {
		r = config_load(c, d->opt.config != NULL ? d->opt.config : path,
		    d->opt.config != NULL, &err);
		if (r < 0) {
			log_err("%s", err != NULL ? err : strerror(-r));
			free(err);
			free(path);
			return r;
		}
	}
	free(path);
	return apply_options(d, c);
}

/*
 * Open a directory ferryd keeps its files in (what: "data directory" or
 * "socket directory"), creating it 0700 if it is missing, and refuse it
 * unless it is ours alone: a directory someone else owns or can write to,
 * or a link to one, would let them plant a socket or a replica that our
 * clients then trust.  Returns the descriptor or -errno (logged).
 */
static int
open_private_dir(const char *what, const char *path)
{
	struct stat st;
	int fd, r;

	if ((r = util_mkdir_p(path, 0700)) < 0) {
		log_err("cannot create %s %s: %s", what, path, strerror(-r));
		return r;
	}
	fd = util_dir_open_private(path, geteuid(), &st);
	switch (fd) {
	case -ELOOP:
		log_err("%s %s is a symbolic link; ferryd uses only a real "
		    "directory that it owns", what, path);
		break;
	case -ENOTDIR:
		log_err("%s %s is not a directory", what, path);
		break;
	case -EPERM:
		log_err("%s %s is owned by uid %lu, not by ferryd's uid %lu, "
		    "so another user controls what is in it; remove it or "
		    "choose another path", what, path,
		    (unsigned long)st.st_uid, (unsigned long)geteuid());
		break;
	case -EACCES:
		log_err("%s %s is open to group or others (mode %04o); "
		    "ferryd needs it private: chmod 0700 %s", what, path,
		    (unsigned int)(st.st_mode & 07777), path);
		break;
	default:
		if (fd < 0)
			log_err("cannot open %s %s: %s", what, path,
			    strerror(-fd));
		break;
	}
	return fd;
}

/* Room for every connection max_connections allows, within the hard
 * limit: each one is a descriptor, beside the replica's and the remote's. */
static void
raise_fd_limit(int max_connections)
{
	rlim_t want = (rlim_t)max_connections + 256;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur >= want)
		return;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
		log_warn("the descriptor limit %lu is below max_connections "
		    "+ 256; connections past it wait for a free descriptor",
		    (unsigned long)rl.rlim_max);
		want = rl.rlim_max;
	}
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		log_warn("cannot raise the descriptor limit to %lu: %s",
		    (unsigned long)want, strerror(errno));
}

/* One daemon per data directory: an exclusive lock for our lifetime. */
static int
lock_data_dir(struct daemon *d, int dirfd)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof path, "%s/ferryd.lock", d->cfg.data_dir);
	fd = openat(dirfd, "ferryd.lock",
	    O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		log_err("cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		int e = errno;

		log_err("%s is in use by another ferryd (%s)", d->cfg.data_dir,
		    e == EWOULDBLOCK ? "locked" : strerror(e));
		close(fd);
		return -EBUSY;
	}
	d->lock_fd = fd;
	return 0;
}

/* Is a daemon already answering on path?  Then we must not steal it. */
static bool
socket_alive(const char *path)
{
	struct sockaddr_un sun;
	int fd, r;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return false;
	r = connect(fd, (struct sockaddr *)&sun, sizeof sun);
	close(fd);
	return r == 0;
}

static int
listen_socket(struct daemon *d)
{
	char dir[PATH_MAX], *slash;
	const char *name;
	int dirfd, r, n = 0;

#ifdef HAVE_SYSTEMD
	n = sd_listen_fds(1);
#else
	{
		const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");

		if (pid != NULL && fds != NULL && atol(pid) == (long)getpid())
			n = atoi(fds);
		unsetenv("LISTEN_PID");
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_FDNAMES");
	}
#endif
	if (n > 0) {
		if (n > 1)
			log_warn("socket activation passed %d sockets; using "
			    "the first", n);
		if ((r = vl_server_listen_fd(d->srv, 3)) < 0) {
			log_err("cannot use the activation socket: %s",
			    strerror(-r));
			return r;
		}
		d->activated = true;
		return 0;
	}
	if (strlen(d->cfg.socket_path) >= sizeof ((struct sockaddr_un *)0)->sun_path) {
		log_err("socket path %s is too long (at most %zu bytes)",
		    d->cfg.socket_path,
		    sizeof ((struct sockaddr_un *)0)->sun_path - 1);
		return -ENAMETOOLONG;
	}
	snprintf(dir, sizeof dir, "%s", d->cfg.socket_path);
	if ((slash = strrchr(dir, '/')) == NULL) {
		snprintf(dir, sizeof dir, ".");
		name = d->cfg.socket_path;
	} else {
		name = d->cfg.socket_path + (slash + 1 - dir);
		/* "/ferryd.sock" lives in "/". */
		*(slash == dir ? slash + 1 : slash) = '\0';
	}
	if (*name == '\0') {
		log_err("socket path %s names a directory, not a socket",
		    d->cfg.socket_path);
		return -EISDIR;
	}
	/* Whoever controls the directory controls which socket our clients
	 * find there. */
	if ((dirfd = open_private_dir("socket directory", dir)) < 0)
		return dirfd;
	if (socket_alive(d->cfg.socket_path)) {
		log_err("another ferryd is listening on %s",
		    d->cfg.socket_path);
		r = -EADDRINUSE;
		goto out;
	}
	/* A socket file nobody listens on is left from a crash. */
	if (unlinkat(dirfd, name, 0) == -1 && errno != ENOENT) {
		r = -errno;
		log_err("cannot remove stale socket %s: %s",
		    d->cfg.socket_path, strerror(-r));
		goto out;
	}
	if ((r = vl_server_listen_at(d->srv, dirfd, name,
	    d->cfg.socket_path)) < 0)
		log_err("cannot listen on %s: %s", d->cfg.socket_path,
		    strerror(-r));
out:
	close(dirfd);
	return r;
}

static void
control_info_from(struct daemon *d, struct control_info *ci)
{
	ci->keys = d->keys;
	ci->device_name = d->cfg.device_name;
	ci->remote = d->cfg.remote_url;
	ci->data_dir = d->cfg.data_dir;
	ci->backoff_max = d->cfg.backoff_max;
}

static void
reload(struct daemon *d)
{
	struct vl_server_config vc;
	struct control_info ci;
	struct config nc;

	notify("RELOADING=1");
	memset(&nc, 0, sizeof nc);
	if (load_config(d, &nc) < 0) {
		log_err("reload failed; keeping the running configuration");
		config_free(&nc);
		notify("READY=1");
		return;
	}
	if (strcmp(nc.data_dir, d->cfg.data_dir) != 0)
		log_warn("data_dir changed to %s: takes effect at restart",
		    nc.data_dir);
	if (!d->activated && strcmp(nc.socket_path, d->cfg.socket_path) != 0)
		log_warn("socket changed to %s: takes effect at restart",
		    nc.socket_path);
	if ((nc.remote_url == NULL) != (d->cfg.remote_url == NULL) ||
	    (nc.remote_url != NULL &&
	    strcmp(nc.remote_url, d->cfg.remote_url) != 0))
		log_warn("remote changed to %s: takes effect at restart",
		    nc.remote_url != NULL ? nc.remote_url : "(none)");
	if (nc.presence_ttl != d->cfg.presence_ttl)
		log_warn("presence_ttl changed to %d: takes effect at restart",
		    nc.presence_ttl);
	/* Keep the paths and the remote in use; take everything else. */
	free(nc.remote_url);
	nc.remote_url = d->cfg.remote_url;
	d->cfg.remote_url = NULL;
	free(nc.data_dir);
	nc.data_dir = d->cfg.data_dir;
	d->cfg.data_dir = NULL;
	free(nc.socket_path);
	nc.socket_path = d->cfg.socket_path;
	d->cfg.socket_path = NULL;
	config_free(&d->cfg);
	d->cfg = nc;
	log_set_level(d->cfg.log_level);
	raise_fd_limit(d->cfg.max_connections);
	vc.max_connections = d->cfg.max_connections;
	vc.idle_timeout = d->cfg.idle_timeout;
	vl_server_configure(d->srv, &vc);
	control_info_from(d, &ci);
	control_set_info(d->ctl, &ci);
	if (d->sync != NULL)
		sync_reload(d->sync, d->cfg.backoff_max);
	log_notice("configuration reloaded");
	notify("READY=1");
	notify_status(d);
}

/*
 * The writer's batch hook: after each op of a batch was answered by its
 * own completion, what follows the batch as a whole.  What it committed
 * is told to live watchers, Status subscribers and, if it changed the
 * replica, the sync engine (push soon); then the calls held behind it run.
 */
static void
daemon_batch_done(struct writer_batch *b, void *arg)
{
	struct daemon *d = arg;

	/* The events are those of committed ops only (writer.h), even when
	 * a transaction of the batch failed. */
	watch_notify(d->watch, &b->events, b->head);
	if (d->ctl != NULL)
		control_status_changed(d->ctl);
	if (d->sync != NULL && b->events.n > 0)
		sync_kick(d->sync);
	if (d->ctl != NULL)
		control_run_held(d->ctl);
}

/* The sync engine's state or counters moved. */
static void
daemon_sync_changed(void *arg)
{
	struct daemon *d = arg;

	if (d->ctl != NULL)
		control_status_changed(d->ctl);
}

/* A client connection closed. */
static void
daemon_conn_closed(unsigned long conn_id, void *arg)
{
	struct daemon *d = arg;

	presence_relay_conn_closed(d->presence, conn_id);
}

/* A Sync call is done: its answer is the status. */
static void
daemon_sync_reply(void *arg, struct vl_call *call, const char *error,
    json_t *params)
{
	struct daemon *d = arg;

	control_sync_reply(d->ctl, call, error, params);
}

/*
 * Make the engine's parts and wire them: the watch, the writer (its batch
 * hook above), the sync engine if a remote is configured, and the method
 * handlers, which borrow the three.
 */
static int
daemon_start(struct daemon *d)
{
	struct control_parts parts;
	struct control_info ci;
	struct sync_config sc;
	int r;

	if ((r = watch_new(d->st, &d->watch)) < 0 ||
	    (r = writer_new(d->base, d->st, daemon_batch_done, d,
	    &d->writer)) < 0)
		return r;
	if (d->cfg.remote_url != NULL && *d->cfg.remote_url != '\0') {
		sc.remote = d->cfg.remote_url;
		sc.backoff_max = d->cfg.backoff_max;
		sc.collections = d->cfg.sync_collections;
		if ((r = sync_new(d->base, d->st, d->writer, d->keys, &sc, NULL,
		    daemon_sync_changed, daemon_sync_reply, d, &d->sync)) < 0)
			return r;
		/* A rotation a crash left pending goes on first. */
		if ((r = sync_rotate_setup(d->sync, d->keys,
		    d->cfg.data_dir)) < 0) {
			log_err("cannot resume the pending key rotation in %s: "
			    "%s", d->cfg.data_dir, strerror(-r));
			return r;
		}
	}
	if ((r = presence_relay_new(d->base, d->watch, d->sync,
	    d->keys->pub_b64, d->cfg.device_name, d->cfg.presence_ttl,
	    &d->presence)) < 0)
		return r;
	parts.watch = d->watch;
	parts.writer = d->writer;
	parts.sync = d->sync;
	parts.presence = d->presence;
	control_info_from(d, &ci);
	return control_new(d->base, d->st, &ci, &parts, &d->ctl);
}

/*
 * Shutdown, in one place: the sync engine starts nothing new and answers
 * its Sync(wait) callers; the writer finishes the batch in flight and the
 * collecting one (their calls are answered) and the calls held behind
 * them run; clients get what is queued for them; then everything is
 * freed, users before what they use.  Safe to call twice.
 */
static void
daemon_stop(struct daemon *d)
{
	sync_stop(d->sync);
	presence_relay_stop(d->presence);
	if (d->writer != NULL)
		writer_drain(d->writer);
	if (d->ctl != NULL) {
		control_run_held(d->ctl);
		control_end_streams(d->ctl);
	}
	if (d->srv != NULL)
		vl_server_flush(d->srv, 2000);
	vl_server_free(d->srv);
	d->srv = NULL;
	sync_free(d->sync);
	d->sync = NULL;
	writer_free(d->writer);
	d->writer = NULL;
	control_free(d->ctl);
	d->ctl = NULL;
	presence_relay_free(d->presence);
	d->presence = NULL;
	watch_free(d->watch);
	d->watch = NULL;
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	if (sig == SIGHUP) {
		reload(d);
		return;
	}
	log_notice("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	notify("STOPPING=1");
	event_base_loopbreak(d->base);
}

static int
parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "socket", required_argument, NULL, 's' },
		{ "remote", required_argument, NULL, 'r' },
		{ "debug", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "c:d:s:r:DhV", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->config = optarg;
			break;
		case 'd':
			o->data_dir = optarg;
			break;
		case 's':
			o->socket = optarg;
			break;
		case 'r':
			o->remote = optarg;
			break;
		case 'D':
			o->debug = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("ferryd %s\n", FERRY_VERSION);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "ferryd: unexpected argument '%s'\n",
		    argv[optind]);
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

static int
run(struct daemon *d)
{
	struct vl_server_config vc;
	struct event *sig[3] = { NULL, NULL, NULL };
	const int signo[3] = { SIGTERM, SIGINT, SIGHUP };
	char path[PATH_MAX], *err = NULL;
	const char *check;
	bool created = false;
	int dirfd, i, r;

	if ((dirfd = open_private_dir("data directory", d->cfg.data_dir)) < 0)
		return dirfd;
	r = lock_data_dir(d, dirfd);
	close(dirfd);
	if (r < 0)
		return r;
	raise_fd_limit(d->cfg.max_connections);
	if ((r = keys_load_or_create(d->cfg.data_dir, &d->keys, &created)) < 0) {
		log_err("cannot load the device key in %s: %s%s",
		    d->cfg.data_dir, strerror(-r), r == -EPERM ?
		    " (device.key must be mode 0600 and owned by you)" : "");
		return r;
	}
	if (created)
		log_notice("created device key %s", d->keys->pub_b64);
	snprintf(path, sizeof path, "%s/replica.db", d->cfg.data_dir);
	if ((r = store_open(path, &d->st, &err)) < 0) {
		log_err("cannot open replica %s: %s", path,
		    err != NULL ? err : strerror(-r));
		free(err);
		return r;
	}
	/* The writer thread wakes the loop: libevent must be thread-aware. */
	if (evthread_use_pthreads() < 0 ||
	    (d->base = event_base_new()) == NULL) {
		log_err("cannot create the event loop");
		return -ENOMEM;
	}
	if ((r = daemon_start(d)) < 0) {
		log_err("cannot start: %s", strerror(-r));
		return r;
	}
	vc.max_connections = d->cfg.max_connections;
	vc.idle_timeout = d->cfg.idle_timeout;
	if ((r = vl_server_new(d->base, &vc, control_dispatch, d->ctl,
	    &d->srv)) < 0) {
		log_err("cannot start the IPC server: %s", strerror(-r));
		return r;
	}
	/* A connection's presence goes with it. */
	vl_server_set_close(d->srv, daemon_conn_closed, d);
	/* Test runs: every reply must fit the interface (control.h). */
	check = getenv("FERRY_CHECK_REPLIES");
	if (check != NULL && *check != '\0' && strcmp(check, "0") != 0)
		vl_server_set_check(d->srv, control_check_reply, d->ctl);
	if ((r = listen_socket(d)) < 0)
		return r;
	for (i = 0; i < 3; i++) {
		sig[i] = evsignal_new(d->base, signo[i], signal_cb, d);
		if (sig[i] == NULL || evsignal_add(sig[i], NULL) < 0) {
			log_err("cannot install signal handlers");
			r = -ENOMEM;
			goto out;
		}
	}
	if (d->cfg.remote_url != NULL && *d->cfg.remote_url != '\0')
		log_notice("syncing with %s", d->cfg.remote_url);
	log_notice("ready: socket %s, replica %s, device %s",
	    d->activated ? "(activated)" : d->cfg.socket_path, path,
	    d->keys->pub_b64);
	notify("READY=1");
	notify_status(d);

	if (event_base_dispatch(d->base) < 0) {
		log_err("event loop failed");
		r = -EIO;
	}
out:
	/* Answer what is in hand, close clients, then the replica. */
	daemon_stop(d);
	for (i = 0; i < 3; i++)
		if (sig[i] != NULL)
			event_free(sig[i]);
	return r;
}

int
main(int argc, char **argv)
{
	struct daemon d;
	int r;

	memset(&d, 0, sizeof d);
	d.lock_fd = -1;
	log_init("ferryd");
	/* Replica, key and socket are private to the user. */
	umask(0077);
	signal(SIGPIPE, SIG_IGN);
	if (parse_args(argc, argv, &d.opt) < 0)
		return 2;
	if (sodium_init() < 0) {
		log_err("cannot initialise libsodium");
		return 1;
	}
	if (load_config(&d, &d.cfg) < 0)
		return 1;
	log_set_level(d.cfg.log_level);
	r = run(&d);
	daemon_stop(&d);
	store_close(d.st);
	keys_free(d.keys);
	if (d.base != NULL)
		event_base_free(d.base);
	if (d.lock_fd != -1)
		close(d.lock_fd);
	config_free(&d.cfg);
	if (r == 0)
		log_notice("stopped");
	return r < 0 ? 1 : 0;
}
