# Operator tools: vmpool-bench and friends.


def testhost_targets(b):
    """bin/vmpool-testhost: a link to the script, which finds its helper
    files under tools/testhost/ through it."""
    src = "tools/vmpool-testhost"
    b.custom([b.out("bin/vmpool-testhost")], [src],
             "ln -sfn %s/%s $out" % (b.top, src), "LN $out")
    b.test("testhost_test", ["tests/testhost_test.c"], where="kvm")


def targets(b):
    testhost_targets(b)
    chaos_targets(b)
    b.program("vmpool-bench", ["tools/bench.c", "tools/bench_agent.c",
                               "tools/bench_ns.c",
                               "tools/bench_pool.c",
                               "tools/bench_peer.c",
                               "tools/bench_virtio.c",
                               "tools/bench_shm.c",
                               "tools/bench_boot.c",
                               "tools/bench_worker.c",
                               "tools/bench_kvm.c",
                               "tools/bench_soak.c",
                               "tools/bench_suite.c",
                               "tests/kvm_agent_guest.c"],
              deps=["vmpool", "backend", "ns", "proto", "virtio", "ioloop",
                    "shm", "vmm", "common"],
              libs=["uring", "m"])
    top = b.program("vmpool-top", [
        "tools/top.c", "tools/top_snap.c", "tools/top_model.c",
        "tools/top_text.c", "tools/top_json.c", "tools/top_prom.c",
        "tools/top_term.c"], deps=["shm", "common"], libs=["m"])
    b.test("top_test", ["tests/top_test.c", "tools/top_snap.c",
                        "tools/top_model.c", "tests/shm_helpers.c"],
           deps=["shm", "common"], libs=["json-c", "m"], inputs=[top])


def chaos_targets(b):
    """vmpool-chaos, and its soak test against a private ns pool."""
    chaos = b.program("vmpool-chaos", [
        "tools/chaos_main.c", "tools/chaos_pool.c", "tools/chaos_load.c",
        "tools/chaos_tenant.c", "tools/chaos_faults.c",
        "tools/chaos_check.c", "tools/chaos_end.c", "tools/chaos_report.c",
        "tools/chaos_guest.c"],
        deps=["vmpool", "shm", "proto", "common"])
    # What a tenant uploads to hang or stall a kvm guest.
    spin = b.program("vmpool-chaos-spin", ["tools/chaos_spin.c"],
                     static=True)
    inputs = [chaos, b.out("bin/vmpoold"), b.out("bin/vmpool-worker"),
              b.out("guest/initramfs.cpio")]
    b.test("chaos_test", ["tests/chaos_test.c", "tests/chaos_helpers.c"],
           deps=["common"], libs=["json-c"], inputs=inputs)
    # The same against a private kvm pool: in the test host on PVM hosts.
    b.test("chaos_kvm_test", ["tests/chaos_kvm_test.c",
                              "tests/chaos_helpers.c"],
           deps=["vmm", "common"], libs=["json-c"], where="kvm",
           inputs=inputs + [spin, b.out("guest/vmlinux")])
