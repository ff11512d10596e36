# Operator tools: vmpool-bench and friends.
def targets(b):
    b.program("vmpool-bench", ["tools/bench.c", "tools/bench_ns.c"],
              deps=["ns", "proto", "common"])
