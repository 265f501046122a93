/*
 * log: formatting and level filter for stderr logging; see log.h.
 * A line is written with one write(2) so lines of concurrent processes
 * sharing a terminal or journal do not interleave.
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static const char *log_progname = "ferry";
static int log_level = LOG_INFO;

void
log_init(const char *progname)
{
	const char *env;

	if (progname != NULL)
		log_progname = progname;
	env = getenv("FERRY_DEBUG");
	if (env != NULL && *env != '\0' && strcmp(env, "0") != 0)
		log_level = LOG_DEBUG;
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

int
log_get_level(void)
{
	return log_level;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *prefix[] = { "<3>", "<4>", "<5>", "<6>", "<7>" };
	char line[2048];
	va_list ap;
	int n, m;

	if ((int)level > log_level)
		return;
	/* The <N> prefix is what journald reads as the syslog level. */
	n = snprintf(line, sizeof line, "%s%s: ",
	    getenv("JOURNAL_STREAM") != NULL ? prefix[level] : "",
	    log_progname);
	if (n < 0 || (size_t)n >= sizeof line)
		return;
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n > sizeof line - 2)
		n = sizeof line - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}
