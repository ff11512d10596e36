/* vmpool stats and warm: requests to the pool itself. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "client/cli.h"
#include "common/log.h"
#include "common/util.h"

#define MAX_COUNTERS 128

static void print_counters(const struct vmpool_counter *cs, size_t n, bool json)
{
	for (size_t i = 0; i < n; i++) {
		if (!json) {
			printf("%-24s %llu\n", cs[i].name,
			       (unsigned long long)cs[i].value);
			continue;
		}
		printf(i ? ", " : "{");
		/* Counter names come from the daemon. */
		json_put_str(stdout, cs[i].name);
		printf(": %llu", (unsigned long long)cs[i].value);
	}
	if (json)
		printf(n ? "}\n" : "{}\n");
}

static int parse_common(int argc, char **argv, const char **sock, bool *json)
{
	static const struct option longopts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"json", no_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "s:j", longopts, NULL)) != -1) {
		if (c == 's')
			*sock = optarg;
		else if (c == 'j' && json)
			*json = true;
		else
			return -1;
	}
	return 0;
}

int cli_stats(int argc, char **argv)
{
	struct vmpool_counter cs[MAX_COUNTERS];
	const char *sock = NULL;
	bool json = false;
	struct vmpool *p;
	int n;

	if (parse_common(argc, argv, &sock, &json) || optind != argc) {
		fprintf(stderr, "usage: vmpool stats [--json] [--socket P]\n");
		return CLI_EXIT_USAGE;
	}
	if (cli_connect(sock, &p))
		return CLI_EXIT_FAIL;

	n = vmpool_stats(p, cs, ARRAY_SIZE(cs));
	if (n < 0)
		pr_err("%s", vmpool_error(p));
	else
		print_counters(cs, MIN((size_t)n, ARRAY_SIZE(cs)), json);
	vmpool_close(p);
	return n < 0 ? CLI_EXIT_FAIL : 0;
}

int cli_warm(int argc, char **argv)
{
	const char *sock = NULL;
	uint32_t started = 0;
	struct vmpool *p;
	uint64_t n;
	int r;

	if (parse_common(argc, argv, &sock, NULL) || optind + 1 != argc ||
	    parse_u64(argv[optind], 0, UINT32_MAX, &n)) {
		fprintf(stderr, "usage: vmpool warm N [--socket P]\n");
		return CLI_EXIT_USAGE;
	}
	if (cli_connect(sock, &p))
		return CLI_EXIT_FAIL;

	r = vmpool_warm(p, n, &started);
	if (r)
		pr_err("%s", vmpool_error(p));
	else
		printf("%u boots started\n", started);
	vmpool_close(p);
	return r ? CLI_EXIT_FAIL : 0;
}
