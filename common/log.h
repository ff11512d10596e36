/* Logging for every vmpool program: level, program, pid, slot, to stderr. */
#ifndef VMPOOL_LOG_H
#define VMPOOL_LOG_H

#include <stdarg.h>

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Name the program and slot (-1: none) that later lines carry. */
void log_init(const char *prog, int slot);
void log_set_slot(int slot);
/* Lines above this level are dropped; the default is LOG_WARN. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Async-signal-safe: formats with nothing but write(2). */
void log_signal_safe(const char *msg, long value);

#define pr_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define pr_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define pr_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define pr_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
