/*
 * inifile: the INI file reader that ferryd's config (lib/config) and
 * ferry-server's (server/srv_config) share: libinih underneath, one
 * callback per "key = value", and errors that name the file, the line,
 * the key, what was wrong and the value:
 *   "/etc/ferry-server.conf:3: max_wait: not a number: 'x'"
 *
 * Lines starting with ";" or "#" are comments, " ;" starts an inline
 * comment, leading blanks are dropped (no key has several lines), and a
 * line is at most 198 bytes, leading blanks and newline aside (libinih's
 * buffer): a longer one is an error, never split in two.  Parsing stops
 * at the first error.
 *
 * What a key means, and whether the settings it set are kept after an
 * error, is the caller's: the callback writes into its own copy and the
 * caller keeps the copy only when inifile_parse() returned 0.  Nothing
 * here blocks beyond reading the file, or logs.
 */
#ifndef FERRY_INIFILE_H
#define FERRY_INIFILE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * One "name = value" line of section ("" before any section header).
 * Returns 0, -ENOMEM, or -EINVAL with *ret_why set to what is wrong (a
 * constant, or text written into buf of bufsz bytes); -EACCES is
 * -EINVAL for a value that may hold a secret (a database URL with a
 * password): the message names the key but does not quote the value.
 */
typedef int	(*inifile_key_fn)(void *arg, const char *section,
		    const char *name, const char *value, char *buf,
		    size_t bufsz, const char **ret_why);

/*
 * Read path, calling fn(arg, ...) for each key in order.  A missing file
 * returns 0 without a call unless must_exist.  Returns 0, -EINVAL (a bad
 * line, or a key fn refused), or the -errno of opening or reading; on
 * error, if ret_error is not NULL, *ret_error is a malloc'd message the
 * caller frees ("file:line: what"), or NULL for -ENOMEM.
 */
int	inifile_parse(const char *path, bool must_exist, inifile_key_fn fn,
	    void *arg, char **ret_error);

/*
 * Values: a decimal integer in [min, max] (no sign but "-", no
 * trailing text); a path, absolute or "~"/"~/..." under $HOME, into a
 * malloc'd *ret.  Both return 0, -ENOMEM, or -EINVAL with *ret_why set
 * (in buf when it quotes the range).
 */
int	inifile_int(const char *value, int min, int max, int *ret, char *buf,
	    size_t bufsz, const char **ret_why);
int	inifile_path(const char *value, char **ret, const char **ret_why);

/*
 * Where a user's configuration file named name lives: under
 * $XDG_CONFIG_HOME/ferry/ (only if absolute), else $HOME/.config/ferry/.
 * A malloc'd path, or NULL when neither is set (or without memory).
 */
char	*inifile_user_path(const char *name);

/* A malloc'd string built as printf would, or NULL without memory. */
char	*inifile_format(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));

#endif
