/*
 * log: one line per event on stderr, with a level and the program's name.
 *
 * The daemon and the tools log; library code (lib/, ipc/) logs only at debug
 * level and otherwise returns -errno for its caller to report once, where it
 * decides.  Debug lines are printed only when log_set_level(LOG_DEBUG) was
 * called (ferryd --debug or FERRY_DEBUG=1).  Never blocks beyond a write(2)
 * to stderr.
 */
#ifndef FERRY_LOG_H
#define FERRY_LOG_H

enum log_level {
	LOG_ERR = 0,
	LOG_WARNING,
	LOG_NOTICE,
	LOG_INFO,
	LOG_DEBUG,
};

void	log_init(const char *progname);
void	log_set_level(enum log_level level);
int	log_get_level(void);
void	log_msg(enum log_level level, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#define log_err(...)	log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...)	log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) do {						\
	if (log_get_level() >= LOG_DEBUG)				\
		log_msg(LOG_DEBUG, __VA_ARGS__);			\
} while (0)

#endif
