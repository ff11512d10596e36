/* Small helpers every vmpool module shares: full I/O, clocks, numbers. */
#ifndef VMPOOL_UTIL_H
#define VMPOOL_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b)     ((a) < (b) ? (a) : (b))
#define MAX(a, b)     ((a) > (b) ? (a) : (b))

/* A busy-wait step that lets the sibling hardware thread run. */
#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() __asm__ volatile("" ::: "memory")
#endif

/* Read or write exactly len bytes, retrying on EINTR and short counts.
 * Return 0, -errno, or (read only) -EPIPE on EOF before len bytes. */
int read_full(int fd, void *buf, size_t len);
int write_full(int fd, const void *buf, size_t len);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t now_ns(void);
/* CLOCK_REALTIME in nanoseconds. */
uint64_t wall_ns(void);

/* Parse a whole decimal number in [min, max]; 0 or -EINVAL / -ERANGE. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Parse a duration such as "250ms", "30s", "5m", "1h" (bare: seconds)
 * into nanoseconds; 0 or -EINVAL / -ERANGE. */
int parse_duration_ns(const char *s, uint64_t *out);

/* Parse a size such as "128M", "2G", "4096" (bare: bytes). */
int parse_size(const char *s, uint64_t *out);

/* Write s to f as a JSON string: quoted; quotes, backslashes and control
 * characters escaped. */
void json_put_str(FILE *f, const char *s);

#endif
