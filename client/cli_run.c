/* vmpool run: one command in a leased VM, its output streamed live. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/cli.h"
#include "common/log.h"
#include "common/util.h"

/* Standard input read whole before the command starts, at most this. */
#define STDIN_MAX (256u << 20)

struct run_opts {
	const char **env;
	size_t nenv;
	const char *cwd;
	uint64_t timeout_ns;
	const char *backend;
	const char *sock;
	bool want_stdin;
	char **cmd;
};

static int add_env(struct run_opts *o, const char *kv)
{
	const char **env = realloc(o->env, (o->nenv + 2) * sizeof(*env));

	if (!strchr(kv, '=') || kv[0] == '=') {
		pr_err("--env %s: expected NAME=value", kv);
		return -EINVAL;
	}
	if (!env)
		return -ENOMEM;
	env[o->nenv++] = kv;
	env[o->nenv] = NULL;
	o->env = env;
	return 0;
}

static int parse_backend(struct run_opts *o, const char *v)
{
	if (strcmp(v, "kvm") && strcmp(v, "ns")) {
		pr_err("--backend %s: expected kvm or ns", v);
		return -EINVAL;
	}
	o->backend = v;
	return 0;
}

static int parse_timeout(const char *v, uint64_t *ns)
{
	int r = parse_duration_ns(v, ns);

	if (r)
		pr_err("--timeout %s: expected a duration such as 30, 30s, "
		       "250ms or 5m",
		       v);
	return r;
}

static int parse_run(int argc, char **argv, struct run_opts *o)
{
	static const struct option longopts[] = {
	    {"env", required_argument, NULL, 'e'},
	    {"cwd", required_argument, NULL, 'C'},
	    {"timeout", required_argument, NULL, 't'},
	    {"backend", required_argument, NULL, 'b'},
	    {"socket", required_argument, NULL, 's'},
	    {"stdin", no_argument, NULL, 'i'},
	    {NULL, 0, NULL, 0},
	};
	int c, r = 0;

	while (!r && (c = getopt_long(argc, argv, "+e:C:t:b:s:i", longopts,
				      NULL)) != -1) {
		if (c == 'e')
			r = add_env(o, optarg);
		else if (c == 'C')
			o->cwd = optarg;
		else if (c == 't')
			r = parse_timeout(optarg, &o->timeout_ns);
		else if (c == 'b')
			r = parse_backend(o, optarg);
		else if (c == 's')
			o->sock = optarg;
		else if (c == 'i')
			o->want_stdin = true;
		else
			r = -EINVAL;
	}
	if (!r && optind >= argc)
		r = -EINVAL;
	o->cmd = argv + optind;
	return r;
}

/* Room for more input in *buf: 0, or -ENOMEM / -EFBIG. */
static int grow(uint8_t **buf, size_t *cap, size_t len)
{
	uint8_t *p;

	if (len < *cap)
		return 0;
	if (*cap >= STDIN_MAX)
		return -EFBIG;
	p = realloc(*buf, *cap ? *cap * 2 : 65536);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = *cap ? *cap * 2 : 65536;
	return 0;
}

static int read_stdin(void **data, size_t *len)
{
	uint8_t *buf = NULL;
	size_t cap = 0;
	ssize_t n = 1;
	int r = 0;

	*len = 0;
	while (!r && n != 0) {
		r = grow(&buf, &cap, *len);
		n = r ? 0 : read(0, buf + *len, cap - *len);
		if (n < 0 && errno != EINTR)
			r = -errno;
		*len += n > 0 ? n : 0;
	}
	if (r)
		free(buf);
	*data = r ? NULL : buf;
	return r;
}

static void to_terminal(void *arg, int stream, const void *data, size_t len)
{
	write_full(stream == 1 ? 1 : 2, data, len);
}

/* Run the command in the lease; the exit code for vmpool to return. */
static int run_in(struct vmpool_lease *l, const struct run_opts *o)
{
	struct vmpool_exec x = {.argv = (const char *const *)o->cmd,
				.env = o->env,
				.cwd = o->cwd,
				.timeout_ns = o->timeout_ns,
				.output = to_terminal};
	struct vmpool_result res;
	void *in = NULL;
	int r;

	if (o->want_stdin && (r = read_stdin(&in, &x.stdin_len)) < 0) {
		pr_err("reading standard input: %s", strerror(-r));
		return CLI_EXIT_FAIL;
	}
	x.stdin_data = in;

	r = vmpool_exec(l, &x, &res);
	free(in);
	if (r < 0)
		pr_err("%s", vmpool_lease_error(l));
	/* As a shell says a command could not be found or run. */
	if (r == -ENOENT)
		return 127;
	if (r == -EACCES || r == -ENOEXEC)
		return 126;
	return r < 0 ? CLI_EXIT_FAIL : vmpool_result_code(&res);
}

static bool backend_matches(struct vmpool_lease *l, const struct run_opts *o)
{
	struct vmpool_lease_info info;

	vmpool_lease_info(l, &info);
	if (!o->backend || !strcmp(o->backend, info.backend))
		return true;
	pr_err("--backend=%s: this vmpoold serves %s VMs", o->backend,
	       info.backend);
	return false;
}

static int lease_and_run(const char *sock, const struct run_opts *o)
{
	struct vmpool *p;
	struct vmpool_lease *l = cli_lease(sock, &p);
	int code;

	if (!l)
		return CLI_EXIT_FAIL;

	code = backend_matches(l, o) ? run_in(l, o) : CLI_EXIT_FAIL;
	if (cli_release(l) && code != CLI_EXIT_FAIL)
		code = CLI_EXIT_FAIL;
	vmpool_close(p);
	return code;
}

/* Is a daemon listening at the socket vmpool would use? */
static bool daemon_up(void)
{
	struct vmpool *p;
	int r = vmpool_connect(NULL, &p);

	vmpool_close(p);
	return r == 0;
}

static int run_embedded(const struct run_opts *o)
{
	const char *backend = embed_backend(o->backend);
	struct embed e = {0};
	int code = CLI_EXIT_FAIL;

	if (!backend)
		return CLI_EXIT_FAIL;
	if (embed_start(&e, backend) == 0)
		code = lease_and_run(e.sock, o);
	embed_stop(&e);
	return code;
}

int cli_run(int argc, char **argv)
{
	struct run_opts o = {0};
	int code;

	if (parse_run(argc, argv, &o)) {
		fprintf(stderr, "usage: vmpool run [--env K=V]... [--cwd D] "
				"[--timeout S] [--stdin] [--backend kvm|ns] "
				"[--socket P] -- CMD...\n");
		free(o.env);
		return CLI_EXIT_USAGE;
	}

	/* A named socket means that daemon; otherwise, with no daemon
	 * up, the command gets a pool of its own. */
	if (o.sock || daemon_up())
		code = lease_and_run(o.sock, &o);
	else
		code = run_embedded(&o);
	free(o.env);
	return code;
}
