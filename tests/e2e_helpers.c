/* Helpers for the end-to-end suites: libvmpool against a real vmpoold. */
#include "tests/e2e_helpers.h"

#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

#include "common/util.h"

#define POLL_MS 10

struct vmpool *e2e_pool(const struct daemon *d)
{
	struct vmpool *p;
	int r = vmpool_connect(d->sock, &p);

	cr_assert_eq(r, 0, "%s", vmpool_error(p));
	return p;
}

int64_t e2e_counter(struct vmpool *p, const char *name)
{
	struct vmpool_counter cs[64];
	int n = vmpool_stats(p, cs, ARRAY_SIZE(cs));

	cr_assert_geq(n, 0, "stats: %s", vmpool_error(p));
	for (int i = 0; i < MIN(n, (int)ARRAY_SIZE(cs)); i++)
		if (!strcmp(cs[i].name, name))
			return cs[i].value;
	return -1;
}

int64_t e2e_wait_counter(struct vmpool *p, const char *name, int64_t v)
{
	struct timespec ts = {.tv_nsec = POLL_MS * 1000000};
	int64_t got = e2e_counter(p, name);

	for (int t = 0; got < v && t < E2E_WAIT_MS; t += POLL_MS) {
		nanosleep(&ts, NULL);
		got = e2e_counter(p, name);
	}
	return got;
}

struct vmpool_lease *e2e_lease(struct vmpool *p, struct vmpool_lease_info *i)
{
	struct vmpool_lease *l;
	int r = vmpool_acquire(p, 0, &l);

	cr_assert_eq(r, 0, "%s", vmpool_error(p));
	if (i)
		vmpool_lease_info(l, i);
	return l;
}

static void collect(void *arg, int stream, const void *data, size_t len)
{
	struct e2e_out *o = arg;

	len = MIN(len, sizeof(o->text) - 1 - o->len);
	memcpy(o->text + o->len, data, len);
	o->len += len;
	o->text[o->len] = '\0';
}

int e2e_sh(struct vmpool_lease *l, const char *line, struct e2e_out *out,
	   int *code)
{
	const char *argv[] = {line, NULL};
	struct vmpool_exec x = {.argv = argv,
				.flags = VMPOOL_EXEC_SHELL,
				.output = collect,
				.output_arg = out};
	struct vmpool_result res;
	int r;

	out->len = 0;
	out->text[0] = '\0';
	r = vmpool_exec(l, &x, &res);
	*code = r ? -1 : vmpool_result_code(&res);
	return r;
}
