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
    b.program("vmpool-bench", ["tools/bench.c", "tools/bench_agent.c",
                               "tools/bench_ns.c",
                               "tools/bench_pool.c",
                               "tools/bench_virtio.c",
                               "tools/bench_shm.c",
                               "tools/bench_boot.c",
                               "tools/bench_worker.c",
                               "tools/bench_kvm.c",
                               "tests/kvm_agent_guest.c"],
              deps=["vmpool", "backend", "ns", "proto", "virtio", "ioloop",
                    "shm", "vmm", "common"],
              libs=["uring"])
    top = b.program("vmpool-top", [
        "tools/top.c", "tools/top_snap.c", "tools/top_model.c",
        "tools/top_text.c", "tools/top_json.c", "tools/top_prom.c",
        "tools/top_term.c"], deps=["shm", "common"], libs=["m"])
    b.test("top_test", ["tests/top_test.c", "tools/top_snap.c",
                        "tools/top_model.c", "tests/shm_helpers.c"],
           deps=["shm", "common"], libs=["json-c", "m"], inputs=[top])
