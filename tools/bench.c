/* vmpool-bench: one program, one subcommand per benchmark. */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "tools/bench.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
} benches[] = {
    {"agent", bench_agent,
     "exec and file transfer through the agent, next to direct syscalls"},
    {"boot", bench_boot, "guest boot to READY, quiet next to full console"},
    {"kvm", bench_kvm,
     "agent guest boot, exec exits, files, next to QEMU microvm"},
    {"kvm-soak", bench_soak,
     "agent guest file uploads and read-backs until it dies, or QEMU's"},
    {"ns", bench_ns, "ns sandbox start to HELLO, next to bwrap true (cold)"},
    {"pool", bench_pool, "leases through vmpoold (ns), next to bwrap true"},
    {"suite", bench_suite,
     "every headline figure of one backend through vmpoold, one table, "
     "next to a peer"},
    {"virtio", bench_virtio, "virtio console echo, next to a socketpair"},
    {"shm", bench_shm,
     "pool lock and acquire+release, 1-4 processes, next to a plain mutex"},
    {"worker", bench_worker,
     "lease, release and requests through vmpool-worker, next to the agent"},
};

static int usage(void)
{
	fprintf(stderr, "usage: vmpool-bench BENCHMARK [ARGS...]\n\n");
	for (size_t i = 0; i < ARRAY_SIZE(benches); i++)
		fprintf(stderr, "  %-10s %s\n", benches[i].name,
			benches[i].help);
	return 2;
}

int main(int argc, char **argv)
{
	log_init(argv[0], -1);
	if (argc < 2)
		return usage();
	for (size_t i = 0; i < ARRAY_SIZE(benches); i++)
		if (!strcmp(argv[1], benches[i].name))
			return benches[i].run(argc - 1, argv + 1);
	return usage();
}
