/* vmpool shell: each line run by sh -c in one leased VM, keeping cwd. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/cli.h"
#include "common/log.h"
#include "common/util.h"

/* Where each line leaves its shell's final working directory. */
#define CWD_FILE "/tmp/.vmpool-shell-cwd"

struct shell {
	struct vmpool_lease *l;
	char cwd[4096];
	bool tty;
	int last;
};

static void to_terminal(void *arg, int stream, const void *data, size_t len)
{
	write_full(stream == 1 ? 1 : 2, data, len);
}

/* The line, then a trailer recording where it left the shell. A line
 * that exits early keeps the old directory. */
static char *wrap(const char *line)
{
	char *s;

	if (asprintf(&s,
		     "%s\n__vmpool_rc=$?; pwd >" CWD_FILE "; exit "
		     "$__vmpool_rc",
		     line) < 0)
		return NULL;
	return s;
}

static void follow_cwd(struct shell *sh)
{
	size_t len;
	void *data;

	if (vmpool_read_buf(sh->l, CWD_FILE, &data, &len))
		return;
	while (len && ((char *)data)[len - 1] == '\n')
		len--;
	if (len && len < sizeof(sh->cwd)) {
		memcpy(sh->cwd, data, len);
		sh->cwd[len] = '\0';
	}
	vmpool_free(data);
}

/* One line; -errno when the lease can go no further. */
static int one_line(struct shell *sh, const char *line)
{
	char *script = wrap(line);
	const char *argv[] = {script, NULL};
	struct vmpool_exec x = {.argv = argv,
				.cwd = sh->cwd[0] ? sh->cwd : NULL,
				.flags = VMPOOL_EXEC_SHELL,
				.output = to_terminal};
	struct vmpool_result res;
	int r;

	if (!script)
		return -ENOMEM;
	r = vmpool_exec(sh->l, &x, &res);
	free(script);
	if (r < 0) {
		pr_err("%s", vmpool_lease_error(sh->l));
		return r == -ECONNRESET ? r : 0;
	}

	sh->last = vmpool_result_code(&res);
	if (sh->tty && sh->last)
		fprintf(stderr, "[exit %d]\n", sh->last);
	follow_cwd(sh);
	return 0;
}

static void loop(struct shell *sh)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	for (;;) {
		if (sh->tty) {
			fprintf(stderr, "vm:%s$ ", sh->cwd[0] ? sh->cwd : "~");
			fflush(stderr);
		}
		n = getline(&line, &cap, stdin);
		if (n < 0)
			break;
		if (n && line[n - 1] == '\n')
			line[--n] = '\0';
		if (!strcmp(line, "exit"))
			break;
		if (strspn(line, " \t") == (size_t)n)
			continue;
		if (one_line(sh, line) < 0)
			break;
	}
	free(line);
}

int cli_shell(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {NULL, 0, NULL, 0},
	};
	struct shell sh = {.tty = isatty(0)};
	const char *sock = NULL;
	struct vmpool *p;
	int c;

	while ((c = getopt_long(argc, argv, "s:", longopts, NULL)) != -1) {
		if (c != 's' || optind < argc) {
			fprintf(stderr, "usage: vmpool shell [--socket P]\n");
			return CLI_EXIT_USAGE;
		}
		sock = optarg;
	}

	sh.l = cli_lease(sock, &p);
	if (!sh.l)
		return CLI_EXIT_FAIL;
	loop(&sh);
	if (cli_release(sh.l))
		sh.last = CLI_EXIT_FAIL;
	vmpool_close(p);
	return sh.last;
}
