# Operator tools: vmpool-bench and friends.
def targets(b):
    b.program("vmpool-bench", ["tools/bench.c", "tools/bench_agent.c",
                               "tools/bench_ns.c",
                               "tools/bench_virtio.c",
                               "tools/bench_shm.c"],
              deps=["ns", "proto", "virtio", "ioloop", "shm", "common"],
              libs=["uring"])
