/*
 * config: ferryd's settings, from defaults, the INI file, then the command
 * line (each overriding the one before).  Parsing uses libinih.
 *
 * File format ($XDG_CONFIG_HOME/ferry/ferryd.conf):
 *   [ferryd]
 *   data_dir = /path          ; default $XDG_DATA_HOME/ferry (~/.local/share/ferry)
 *   socket = /path            ; default $XDG_RUNTIME_DIR/ferry/ferryd.sock
 *   device_name = laptop      ; default the host name
 *   idle_timeout = 600        ; seconds an idle client connection is kept (0: never)
 *   max_connections = 1024    ; per uid
 *   log_level = info          ; err, warning, notice, info, debug
 *   presence_ttl = 30         ; seconds a presence entry lasts unless set again
 *   [remote]
 *   url = http://127.0.0.1:8765   ; empty: no remote (state "unconfigured")
 *   backoff_max = 60          ; seconds
 *   [sync]
 *   collections = notes, todo ; sync only these (collset.h); default: all
 *                             ; ("*"); `ferryctl sync --collections`
 *                             ; overrides it at run time, persistently
 *
 * Values: paths are absolute or start with "~/" ($HOME); socket fits
 * sun_path (at most 107 bytes); device_name is 1-128 printable bytes; url
 * starts with http:// or https://; idle_timeout 0-86400, max_connections
 * 1-65536, backoff_max 1-86400, presence_ttl 1-3600; log_level also takes
 * "error" and "warn".
 * Lines starting with ";" or "#" are comments, " ;" starts an inline comment,
 * and a line is at most 198 bytes, leading blanks and newline aside
 * (libinih's buffer).
 *
 * Default socket when neither the file nor the command line names one:
 * $FERRY_SOCKET if set (the variable ferryctl and libferry read, so both
 * ends agree), else $XDG_RUNTIME_DIR/ferry/ferryd.sock, else
 * /run/user/<uid>/ferry/ferryd.sock if that directory exists and is ours,
 * else <default data_dir>/ferryd.sock (sockpath.h, the one rule libferry
 * compiles too).  XDG variables that are empty or relative are ignored, as
 * the XDG base directory specification says.
 *
 * An unknown section or key, a bad number, or a value out of range is an
 * error naming the file, the line, the key, what was wrong and the value:
 *   "/home/u/.config/ferry/ferryd.conf:3: idle_timeout: not a number: 'x'"
 * A missing file is not an error unless it was named explicitly.
 *
 * Ownership: struct config owns its strings; config_free() accepts NULL.
 * Nothing here blocks beyond reading the file, or logs.
 */
#ifndef FERRY_CONFIG_H
#define FERRY_CONFIG_H

#include <stdbool.h>

#define CONFIG_IDLE_TIMEOUT_DEFAULT	600
#define CONFIG_IDLE_TIMEOUT_MAX		86400
#define CONFIG_MAX_CONNECTIONS_DEFAULT	1024
#define CONFIG_MAX_CONNECTIONS_MAX	65536
#define CONFIG_BACKOFF_MAX_DEFAULT	60
#define CONFIG_BACKOFF_MAX_MAX		86400
#define CONFIG_PRESENCE_TTL_DEFAULT	30
#define CONFIG_PRESENCE_TTL_MAX		3600

struct config {
	char	*data_dir;
	char	*socket_path;
	char	*device_name;
	char	*remote_url;	/* NULL or "" when unconfigured */
	char	*sync_collections; /* collset; NULL: every collection */
	int	 idle_timeout;	/* seconds, 0 = never */
	int	 max_connections;
	int	 backoff_max;	/* seconds */
	int	 log_level;	/* enum log_level */
	int	 presence_ttl;	/* seconds */
};

/*
 * Fill *c with the built-in defaults (from the XDG environment), ignoring
 * what *c held.  Returns 0, or -ENOMEM, or -ENOENT when neither
 * XDG_DATA_HOME nor HOME gives a data directory; *c is written only on
 * success.
 */
int	config_defaults(struct config *c);
/*
 * Read path into c, overriding what it sets.  If must_exist is false a
 * missing file returns 0 and changes nothing.  The file is applied whole
 * or not at all: on error c is unchanged, the return is -EINVAL (a bad
 * line or value) or the -errno of opening or reading, and, if ret_error
 * is not NULL, *ret_error is a malloc'd message ("file:line: what") the
 * caller frees, or NULL for -ENOMEM.
 */
int	config_load(struct config *c, const char *path, bool must_exist,
	    char **ret_error);
/*
 * Default config file path, malloc'd: $XDG_CONFIG_HOME/ferry/ferryd.conf,
 * else $HOME/.config/ferry/ferryd.conf; NULL without either or memory.
 */
char	*config_default_path(void);
void	config_free(struct config *c);

#endif
