# The supervisor: vmpoold and its tests.
def targets(b):
    b.library("supervisor", ["supervisor/options.c", "supervisor/spawn.c",
                             "supervisor/workers.c", "supervisor/tenants.c"])
    deps = ["supervisor", "shm", "proto", "ns", "vmm", "ioloop", "common"]
    b.program("vmpoold", ["supervisor/vmpoold.c"], deps=deps,
              libs=["uring"])

    # End to end with real workers (ns backend), when they are built.
    inputs = [b.out("bin/vmpoold"), b.out("guest/initramfs.cpio")]
    worker = b.out("bin/vmpool-worker")
    if worker in b.defaults:
        inputs.append(worker)
    b.test("supervisor_test", ["tests/supervisor_test.c",
                               "tests/supervisor_helpers.c"],
           deps=["shm", "proto", "vmm", "common"], inputs=inputs)

    # The same daemon with backend kvm: in the test host on PVM hosts.
    kvm_inputs = inputs + [b.out("guest/vmlinux")]
    b.test("supervisor_kvm_test", ["tests/supervisor_kvm_test.c",
                                   "tests/supervisor_helpers.c"],
           deps=["shm", "proto", "vmm", "common"], inputs=kvm_inputs,
           where="kvm")
