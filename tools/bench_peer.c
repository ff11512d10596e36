/* The floor under any lease: bytes echoed by a plain server over unix
 * sockets, with one client or many at once. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "tools/bench.h"

#define MAX_CLIENTS 64

struct peer_client {
	struct bench_series *s;
	int fd;
	size_t runs;
	uint64_t gap_ns;
	int err;
};

/* One process, one poll over every client's socket, as a simple daemon
 * would serve them; exits when a client hangs up. */
static void __attribute__((noreturn)) echo_server(int *fds, size_t n)
{
	struct pollfd pf[MAX_CLIENTS];
	char b;

	for (size_t i = 0; i < n; i++)
		pf[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
	while (poll(pf, n, -1) > 0)
		for (size_t i = 0; i < n; i++)
			if (pf[i].revents && (read(pf[i].fd, &b, 1) != 1 ||
					      write(pf[i].fd, &b, 1) != 1))
				_exit(0);
	_exit(1);
}

static void *client(void *arg)
{
	struct peer_client *c = arg;
	struct timespec gap = {.tv_sec = c->gap_ns / 1000000000,
			       .tv_nsec = c->gap_ns % 1000000000};
	char b = 0;

	for (size_t i = 0; i < c->runs && !c->err; i++) {
		uint64_t t0 = now_ns();

		if (write(c->fd, &b, 1) != 1 || read(c->fd, &b, 1) != 1)
			c->err = -EPIPE;
		else
			bench_series_add(c->s, now_ns() - t0);
		nanosleep(&gap, NULL);
	}
	return NULL;
}

static void close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

/* Socket pairs: client ends in cl[], server ends in sv[]. */
static int pairs(int *cl, int *sv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int p[2];

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0) {
			int err = -errno;

			close_all(cl, i);
			close_all(sv, i);
			return err;
		}
		cl[i] = p[0];
		sv[i] = p[1];
	}
	return 0;
}

static int run_clients(struct peer_client *c, size_t n)
{
	pthread_t th[MAX_CLIENTS];
	size_t started = 0;
	int err = 0;

	while (started < n &&
	       !pthread_create(&th[started], NULL, client, &c[started]))
		started++;
	for (size_t i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		err = err ? err : c[i].err;
	}
	return started < n ? -EAGAIN : err;
}

int bench_socket_round_trips(struct bench_series *s, size_t runs,
			     size_t clients, uint64_t gap_ns)
{
	struct peer_client c[MAX_CLIENTS];
	int cl[MAX_CLIENTS], sv[MAX_CLIENTS], err;
	pid_t pid;

	if (!clients || clients > MAX_CLIENTS)
		return -EINVAL;
	err = pairs(cl, sv, clients);
	if (err)
		return err;
	pid = fork();
	if (pid == 0) {
		close_all(cl, clients);
		echo_server(sv, clients);
	}
	close_all(sv, clients);
	for (size_t i = 0; i < clients; i++)
		c[i] = (struct peer_client){.s = s,
					    .fd = cl[i],
					    .runs = runs / clients,
					    .gap_ns = gap_ns};
	err = pid < 0 ? -errno : run_clients(c, clients);
	close_all(cl, clients);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return err;
}
