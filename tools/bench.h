/* vmpool-bench subcommands: each measures one thing against a peer. */
#ifndef VMPOOL_BENCH_H
#define VMPOOL_BENCH_H

#include <stddef.h>
#include <stdint.h>

/* Each takes the arguments after its name (argv[0] is the name) and
 * returns the program's exit code. */
int bench_agent(int argc, char **argv);
int bench_boot(int argc, char **argv);
int bench_kvm(int argc, char **argv);
int bench_ns(int argc, char **argv);
int bench_pool(int argc, char **argv);
int bench_virtio(int argc, char **argv);
int bench_shm(int argc, char **argv);
int bench_worker(int argc, char **argv);

/* Shared peers. bwrap running true in fresh namespaces, the host's /usr
 * as its root (bench_ns.c): 0 and the time taken, or -errno. */
int bench_bwrap_true(uint64_t *took);

#endif
