/*
 * srv_config: ferry-server's configuration file (INI, read with
 * lib/inifile as ferryd's is).  The command line overrides it, key by
 * key; server/main.c does that merge.
 *
 * File ($XDG_CONFIG_HOME/ferry/ferry-server.conf, or --config FILE):
 *   [ferry-server]
 *   listen = 127.0.0.1:8765    ; ADDR:PORT or [ADDR]:PORT, port 0 picks one
 *   data_dir = /var/lib/ferry-server
 *   keys = /etc/ferry/authorized_keys
 *   db = postgresql:///ferry?host=/run/postgresql   ; or a SQLite file path
 *   open = no                  ; yes: any well-formed key (local trials)
 *   debug = no
 *   max_waiters = 512
 *   max_wait = 60              ; seconds
 *   max_connections = 1024       ; at most the open-file limit less a reserve
 *   max_inflight_mib = 64
 *
 * Paths are absolute or start with "~/"; db is a postgresql:// (or
 * postgres://) URL or a path; booleans are yes/no, true/false, on/off,
 * 1/0; the numbers are 1-1000000, as on the command line.  An unknown
 * section or key or a bad value is an error naming the file, the line,
 * the key and the value (never the value of db: a URL may carry a
 * password).  A missing default file is not an error; a file named with
 * --config must exist.
 *
 * Ownership: struct srv_config owns its strings; srv_config_free()
 * accepts NULL.  Nothing here blocks beyond reading the file, or logs.
 */
#ifndef FERRY_SRV_CONFIG_H
#define FERRY_SRV_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define SRV_CONFIG_COUNT_MAX	1000000

struct srv_config {
	char	*listen;		/* NULL where the file does not say */
	char	*data_dir;
	char	*keys;
	char	*db;
	bool	 open;
	bool	 debug;
	int	 max_waiters;		/* 0 where the file does not say */
	int	 max_wait;
	int	 max_connections;
	int	 max_inflight_mib;
};

/*
 * Read path into *c (which must start zeroed or hold an earlier file's
 * settings): the file is applied whole or not at all.  Returns 0, or
 * -EINVAL (a bad line or value) or the -errno of opening or reading, with
 * *ret_error (if ret_error is not NULL) a malloc'd "file:line: what" the
 * caller frees (NULL for -ENOMEM); a missing file is 0 unless must_exist.
 */
int	srv_config_load(struct srv_config *c, const char *path,
	    bool must_exist, char **ret_error);
/*
 * The default path, malloc'd: $XDG_CONFIG_HOME/ferry/ferry-server.conf,
 * else $HOME/.config/ferry/ferry-server.conf; NULL without either.
 */
char	*srv_config_default_path(void);
void	srv_config_free(struct srv_config *c);

/*
 * "ADDR:PORT" or "[ADDR]:PORT" (port 0-65535) into addr (addrsz bytes,
 * NUL-terminated) and *ret_port.  0 or -EINVAL; nothing written on error.
 */
int	srv_config_listen(const char *spec, char *addr, size_t addrsz,
	    int *ret_port);

#endif
