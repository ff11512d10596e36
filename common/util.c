/* Small helpers every vmpool module shares: full I/O, clocks, numbers. */
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE;
		p += n;
		len -= n;
	}
	return 0;
}

int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= n;
	}
	return 0;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

uint64_t now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

uint64_t wall_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

/* Split "123abc" into a number and its suffix. */
static int parse_prefix(const char *s, uint64_t *num, const char **rest)
{
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*num = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE;
	*rest = end;
	return 0;
}

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *rest;
	uint64_t v;
	int err = parse_prefix(s, &v, &rest);

	if (err)
		return err;
	if (*rest)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

static int scale(uint64_t v, uint64_t unit, uint64_t *out)
{
	if (unit && v > UINT64_MAX / unit)
		return -ERANGE;
	*out = v * unit;
	return 0;
}

int parse_duration_ns(const char *s, uint64_t *out)
{
	static const struct {
		const char *suffix;
		uint64_t ns;
	} units[] = {
		{ "", 1000000000ull },	 { "ns", 1 },
		{ "us", 1000 },		 { "ms", 1000000 },
		{ "s", 1000000000ull },	 { "m", 60000000000ull },
		{ "h", 3600000000000ull },
	};
	const char *rest;
	uint64_t v;
	int err = parse_prefix(s, &v, &rest);

	if (err)
		return err;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++)
		if (!strcmp(rest, units[i].suffix))
			return scale(v, units[i].ns, out);
	return -EINVAL;
}

int parse_size(const char *s, uint64_t *out)
{
	static const char suffixes[] = "KMGT";
	const char *rest, *at;
	uint64_t v;
	int err = parse_prefix(s, &v, &rest);

	if (err)
		return err;
	if (!*rest)
		return scale(v, 1, out);
	at = strchr(suffixes, *rest);
	if (!at || !*at || (rest[1] && strcmp(rest + 1, "iB")))
		return -EINVAL;
	return scale(v, 1ull << (10 * (at - suffixes + 1)), out);
}

void json_put_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}
