/* vmpool: the command line for leasing VMs from vmpoold. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "client/cli.h"
#include "common/log.h"
#include "common/util.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
} commands[] = {
    {"run", cli_run,
     "[--env K=V]... [--cwd D] [--timeout S] [--stdin] "
     "[--backend kvm|ns] [--socket P] -- CMD...\n"
     "\t\trun CMD in a leased VM, streaming its output; exits "
     "with its code\n\t\t(128+signal when killed, 124 on "
     "timeout). With no vmpoold at the\n\t\tdefault socket, "
     "starts a private pool for the command"},
    {"cp", cli_cp,
     "[--socket P] SRC DST\n\t\tcopy a file; 'vm:' marks "
     "the guest's side"},
    {"shell", cli_shell,
     "[--socket P]\n\t\ta line at a time, each run by "
     "sh -c in one leased VM, keeping cwd"},
    {"stats", cli_stats, "[--json] [--socket P]\n\t\tthe pool's counters"},
    {"warm", cli_warm, "N [--socket P]\n\t\tbring the idle VMs up to N"},
};

/* To stdout with status 0 when asked for, else to stderr with 2. */
static int usage(FILE *to)
{
	fprintf(to, "usage: vmpool COMMAND [ARGS...]\n\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(to, "  %s %s\n", commands[i].name, commands[i].help);
	fprintf(to,
		"\nThe socket is --socket, else $%s, else vmpoold's "
		"default.\nExit status %d: vmpool itself failed.\n",
		VMPOOL_SOCKET_ENV, CLI_EXIT_FAIL);
	return to == stdout ? 0 : CLI_EXIT_USAGE;
}

int cli_connect(const char *sock, struct vmpool **out)
{
	int r = vmpool_connect(sock, out);

	if (r == 0)
		return 0;
	pr_err("%s", vmpool_error(*out));
	vmpool_close(*out);
	*out = NULL;
	return r;
}

struct vmpool_lease *cli_lease(const char *sock, struct vmpool **pool)
{
	struct vmpool_lease *l;

	if (cli_connect(sock, pool))
		return NULL;
	if (vmpool_acquire(*pool, 0, &l) == 0)
		return l;
	pr_err("%s", vmpool_error(*pool));
	vmpool_close(*pool);
	*pool = NULL;
	return NULL;
}

int cli_release(struct vmpool_lease *l)
{
	int r = vmpool_release(l);

	if (r == -ECONNRESET)
		pr_err("release: VM lost: its worker closed the connection");
	else if (r)
		pr_err("release: %s", strerror(-r));
	return r;
}

int main(int argc, char **argv)
{
	log_init("vmpool", -1);
	/* Output to a closed pipe is the reader's business, not a crash. */
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2)
		return usage(stderr);
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
		return usage(stdout);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	return usage(stderr);
}
