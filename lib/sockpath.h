/*
 * sockpath: where ferryd's socket is when nothing names it, and the default
 * data directory that decision may fall back to.  ferryd (lib/config.c)
 * and libferry (ferry_default_socket(), ferry_connect(NULL), so ferryctl)
 * both compile this one file, so the daemon and its clients always agree.
 *
 * The default socket: $FERRY_SOCKET if set and not empty, else
 * $XDG_RUNTIME_DIR/ferry/ferryd.sock, else /run/user/<uid>/ferry/ferryd.sock
 * if that directory exists and belongs to us (a login session without the
 * variable), else <default data directory>/ferryd.sock.  The default data
 * directory is $XDG_DATA_HOME/ferry, else $HOME/.local/share/ferry.  XDG
 * variables that are empty or not absolute are ignored, as the XDG base
 * directory specification says.
 *
 * Nothing here creates anything, blocks beyond a stat(2), or logs.  It
 * reads the environment, so it is not safe against a concurrent setenv().
 */
#ifndef FERRY_SOCKPATH_H
#define FERRY_SOCKPATH_H

/*
 * The default data directory.  0 and *ret_dir malloc'd (the caller frees
 * it); -ENOENT if neither XDG_DATA_HOME nor HOME is usable; -ENOMEM.
 */
int	sockpath_data_dir(char **ret_dir);

/*
 * The default socket path, as above.  0 and *ret_path malloc'd; -ENOENT
 * if it falls back to the data directory and there is none; -ENOMEM.
 */
int	sockpath_default(char **ret_path);

#endif
