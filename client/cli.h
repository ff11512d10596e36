/* The vmpool command line: what its subcommand files share. */
#ifndef VMPOOL_CLI_H
#define VMPOOL_CLI_H

#include <stdbool.h>
#include <sys/types.h>

#include "client/vmpool.h"

/* vmpool's own failures (no daemon, lost VM, bad usage) exit with this,
 * apart from a command's exit code, as env(1) and timeout(1) do. */
#define CLI_EXIT_FAIL  125
#define CLI_EXIT_USAGE 2

/* Each takes the arguments after its name (argv[0] is the name) and
 * returns the program's exit code. */
int cli_run(int argc, char **argv);
int cli_cp(int argc, char **argv);
int cli_shell(int argc, char **argv);
int cli_stats(int argc, char **argv);
int cli_warm(int argc, char **argv);

/* Connect to vmpoold at sock (NULL: $VMPOOL_SOCKET or the default);
 * logs the failure. 0 or -errno. */
int cli_connect(const char *sock, struct vmpool **out);
/* Connect and lease a VM, logging any failure; NULL on failure. */
struct vmpool_lease *cli_lease(const char *sock, struct vmpool **pool);
/* Release, logging a failure; 0 or -errno. */
int cli_release(struct vmpool_lease *l);

/* A private vmpoold for one command, in a temporary folder. */
struct embed {
	pid_t pid;
	char dir[64];
	char sock[96];
	char log[96];
};

/*
 * Pick the embedded pool's backend: `asked` ("kvm", "ns" or NULL for
 * the best this host can run). Where KVM cannot run the guest, NULL
 * falls back to ns with one line saying so; an explicit "kvm" fails
 * with a message. The backend's name, or NULL after logging why not.
 */
const char *embed_backend(const char *asked);
/* Start vmpoold with `backend` and wait for its socket; 0 or -errno,
 * logged. */
int embed_start(struct embed *e, const char *backend);
/* SIGTERM it, wait for its drain, remove its folder. */
void embed_stop(struct embed *e);

#endif
