# The supervisor: vmpoold and its tests.
def targets(b):
    b.library("supervisor", ["supervisor/options.c", "supervisor/loop.c",
                             "supervisor/spawn.c", "supervisor/workers.c",
                             "supervisor/tenants.c"])
    deps = ["supervisor", "shm", "proto", "ns", "vmm", "common"]
    b.program("vmpoold", ["supervisor/vmpoold.c"], deps=deps,
              libs=["uring"])
