/* Logging for every vmpool program: level, program, pid, slot, to stderr. */
#include "common/log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "vmpool";
static int log_slot = -1;
static enum log_level log_level = LOG_WARN;

static const char *const level_names[] = {
	[LOG_ERR] = "error",
	[LOG_WARN] = "warning",
	[LOG_INFO] = "info",
	[LOG_DEBUG] = "debug",
};

void log_init(const char *prog, int slot)
{
	const char *base = strrchr(prog, '/');

	log_prog = base ? base + 1 : prog;
	log_slot = slot;
}

void log_set_slot(int slot)
{
	log_slot = slot;
}

void log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level log_get_level(void)
{
	return log_level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[1024];
	struct timespec ts;
	va_list ap;
	int n;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(line, sizeof(line), "%ld.%03ld %s[%d]", (long)ts.tv_sec,
		     ts.tv_nsec / 1000000, log_prog, (int)getpid());
	if (log_slot >= 0)
		n += snprintf(line + n, sizeof(line) - n, " slot %d", log_slot);
	n += snprintf(line + n, sizeof(line) - n, " %s: ", level_names[level]);
	va_start(ap, fmt);
	if (n < (int)sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	fwrite(line, 1, n, stderr);
}

static size_t put_str(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s && at < cap)
		buf[at++] = *s++;
	return at;
}

static size_t put_long(char *buf, size_t at, size_t cap, long v)
{
	char digits[24];
	unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
	int n = 0;

	do
		digits[n++] = '0' + u % 10;
	while ((u /= 10) && n < (int)sizeof(digits));
	if (v < 0 && at < cap)
		buf[at++] = '-';
	while (n && at < cap)
		buf[at++] = digits[--n];
	return at;
}

void log_signal_safe(const char *msg, long value)
{
	char buf[256];
	size_t n = 0, cap = sizeof(buf) - 1;
	ssize_t r;

	n = put_str(buf, n, cap, log_prog);
	n = put_str(buf, n, cap, "[");
	n = put_long(buf, n, cap, getpid());
	n = put_str(buf, n, cap, "]: ");
	n = put_str(buf, n, cap, msg);
	n = put_str(buf, n, cap, " ");
	n = put_long(buf, n, cap, value);
	buf[n++] = '\n';
	r = write(STDERR_FILENO, buf, n);
	(void)r;
}
